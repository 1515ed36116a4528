-- Description: Remove the task schema
DROP INDEX tasks_by_list;
DROP TABLE tags;
DROP TABLE tasks;
DROP TABLE lists;
