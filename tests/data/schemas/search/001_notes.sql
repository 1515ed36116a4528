-- Description: Notes, and a log of visits without a key
CREATE TABLE notes (
    id     TEXT PRIMARY KEY,
    title  TEXT NOT NULL,
    body   TEXT,
    legacy TEXT
);

-- No primary key: its rowids differ between devices, so it stays local.
CREATE TABLE visits (
    at      TEXT,
    note_id TEXT
);
