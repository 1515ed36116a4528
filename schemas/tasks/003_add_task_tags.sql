-- Description: Tasks carry their tags as a JSON array
ALTER TABLE tasks ADD COLUMN tags TEXT DEFAULT '[]';
