-- Description: Flags backfilled, and a welcome item
UPDATE items SET flag = 'legacy' WHERE flag IS NULL;
INSERT INTO items VALUES ('seed', 'welcome', 'seed');
