-- Description: Codes become unique (fails when two items share a code)
ALTER TABLE items ADD COLUMN note TEXT;
CREATE UNIQUE INDEX items_by_code ON items(code);
