-- Description: Drop the tags column
ALTER TABLE tasks DROP COLUMN tags;
