-- Description: Tasks get a priority
ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT 0;
