-- Description: Drop the due date
ALTER TABLE tasks DROP COLUMN due_at;
