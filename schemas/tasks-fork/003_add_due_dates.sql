-- Description: Tasks get a due date (customer build)
ALTER TABLE tasks ADD COLUMN due_at TEXT;
