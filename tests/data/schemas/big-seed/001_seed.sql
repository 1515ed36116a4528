-- Description: A first migration that writes about 2 MB: 20,000 seed rows
CREATE TABLE seed (id INTEGER PRIMARY KEY, pad BLOB NOT NULL);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000)
INSERT INTO seed SELECT x, randomblob(100) FROM n;
