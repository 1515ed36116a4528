-- Description: Items have a quantity (this branch parted from items-a after v1)
ALTER TABLE items ADD COLUMN qty INTEGER;
