-- Description: Items, keyed by a number each device picks, labels and a log
CREATE TABLE items (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    qty  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE labels (
    code TEXT PRIMARY KEY,
    text TEXT
);

-- No primary key: never synced, and named as such.
CREATE TABLE log (
    at  TEXT,
    msg TEXT
);
