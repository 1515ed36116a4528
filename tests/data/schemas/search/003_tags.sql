-- Description: Notes have a tag
ALTER TABLE notes ADD COLUMN tag TEXT;
