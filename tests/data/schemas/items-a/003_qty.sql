-- Description: Items have a quantity here too, as on the other branch
ALTER TABLE items ADD COLUMN qty INTEGER;
