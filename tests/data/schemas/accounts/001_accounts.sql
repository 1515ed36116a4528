-- Description: Accounts named by email, which each device picks for its own
CREATE TABLE accounts ( -- stemma: keys per-device
    email TEXT PRIMARY KEY COLLATE NOCASE,
    name  TEXT
);
-- Counters whose ids a server hands out: one id is one counter everywhere.
CREATE TABLE counters (
    id INTEGER PRIMARY KEY, -- stemma: keys shared
    n  INTEGER
);
