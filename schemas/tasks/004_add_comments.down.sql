-- Description: Remove comments
DROP INDEX comments_by_task;
DROP TABLE comments;
