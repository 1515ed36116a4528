-- Description: Notes, links between them, drafts and a log of peers
CREATE TABLE notes (
    id    TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body  TEXT
);

-- A key of two columns: synced like any other.
CREATE TABLE note_links (
    from_id TEXT NOT NULL REFERENCES notes(id),
    to_id   TEXT NOT NULL REFERENCES notes(id),
    PRIMARY KEY (from_id, to_id)
) WITHOUT ROWID;

-- Synced unless excluded (the tests exclude it).
CREATE TABLE drafts (
    id   INTEGER PRIMARY KEY,
    body TEXT
);

-- No primary key: its rowids differ between devices.
CREATE TABLE peers (
    host    TEXT NOT NULL,
    seen_at INTEGER
);
