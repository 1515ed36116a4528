-- Description: Nicknames are dropped
ALTER TABLE people DROP COLUMN nickname;
