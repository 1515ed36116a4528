-- Description: Rebuild Item Log with quantity as INTEGER NOT NULL
CREATE TABLE item_log_new (id INTEGER PRIMARY KEY, "note ""quoted""" TEXT, quantity INTEGER NOT NULL DEFAULT 0);
INSERT INTO item_log_new SELECT id, "note ""quoted""", coalesce(quantity, 0) FROM "Item Log";
DROP TABLE "Item Log";
ALTER TABLE item_log_new RENAME TO "Item Log";
