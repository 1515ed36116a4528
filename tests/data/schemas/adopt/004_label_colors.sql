-- Description: Labels get a colour
ALTER TABLE labels ADD COLUMN color TEXT;
