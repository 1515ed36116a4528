-- Description: tags are named per device from now on (a rebuild that adds the setting)
CREATE TABLE tags2 ( -- stemma: keys per-device
    name  TEXT PRIMARY KEY,
    color TEXT
);
INSERT INTO tags2 SELECT * FROM tags;
DROP TABLE tags;
ALTER TABLE tags2 RENAME TO tags;
