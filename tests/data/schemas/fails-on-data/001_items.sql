-- Description: Items with a code
CREATE TABLE items (
    id   INTEGER PRIMARY KEY,
    code TEXT
);
