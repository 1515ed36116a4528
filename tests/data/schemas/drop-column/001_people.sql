-- Description: People with a nickname
CREATE TABLE people (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    nickname TEXT
);
