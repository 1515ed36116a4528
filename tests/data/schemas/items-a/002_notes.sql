-- Description: Notes, on this branch only
CREATE TABLE notes (
    id   TEXT PRIMARY KEY,
    body TEXT
);
