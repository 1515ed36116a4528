-- Description: A migration with a typo on line 3
CREATE TABLE b (id INTEGER PRIMARY KEY);
CREATE TABEL c (id INTEGER PRIMARY KEY);
