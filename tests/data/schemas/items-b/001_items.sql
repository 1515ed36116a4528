-- Description: Items, by name
CREATE TABLE items (
    id   TEXT PRIMARY KEY,
    name TEXT
);
