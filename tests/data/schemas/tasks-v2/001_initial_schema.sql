-- Description: Task lists, tasks and tags
CREATE TABLE lists (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE tasks (
    id       TEXT PRIMARY KEY,
    list_id  TEXT NOT NULL REFERENCES lists(id),
    title    TEXT NOT NULL,
    done     INTEGER NOT NULL DEFAULT 0,
    notes    TEXT
);

CREATE TABLE tags (
    id    TEXT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    color TEXT
);

CREATE INDEX tasks_by_list ON tasks(list_id);
