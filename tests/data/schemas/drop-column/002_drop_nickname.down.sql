-- Description: Nicknames come back, empty
ALTER TABLE people ADD COLUMN nickname TEXT;
