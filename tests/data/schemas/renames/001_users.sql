-- Description: Users with a key and a type
CREATE TABLE users (id TEXT PRIMARY KEY, key TEXT, type TEXT, note TEXT);
