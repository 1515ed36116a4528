-- Description: Items are found by name (an index only: the tables stay as they were)
CREATE INDEX items_by_name ON items(name);
