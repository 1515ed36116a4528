-- Description: users becomes people
ALTER TABLE users RENAME TO people;
