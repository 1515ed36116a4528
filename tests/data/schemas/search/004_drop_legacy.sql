-- Description: The legacy column goes
ALTER TABLE notes DROP COLUMN legacy;
