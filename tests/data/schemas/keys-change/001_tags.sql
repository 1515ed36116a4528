-- Description: tags and notes
CREATE TABLE tags (name TEXT PRIMARY KEY, color TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
