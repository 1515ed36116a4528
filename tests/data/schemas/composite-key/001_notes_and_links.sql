-- Description: Notes, and links between them keyed by both ends
CREATE TABLE notes (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE note_links (
    from_id TEXT NOT NULL REFERENCES notes(id),
    to_id   TEXT NOT NULL REFERENCES notes(id),
    PRIMARY KEY (from_id, to_id)
);
