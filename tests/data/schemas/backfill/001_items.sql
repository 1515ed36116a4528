-- Description: Items with a flag
CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, flag TEXT);
