-- Description: Samples (no primary key, so not synced)
CREATE TABLE samples (n INTEGER);
