-- Description: Drop the priority column
ALTER TABLE tasks DROP COLUMN priority;
