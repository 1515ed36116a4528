-- Description: It has a tasks table of its own
CREATE TABLE tasks (
    id    INTEGER PRIMARY KEY,
    title TEXT
);
