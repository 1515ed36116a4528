-- Description: Counts every triple of samples (instant when empty, slow on data)
CREATE TABLE triple_counts AS
    SELECT count(*) AS c FROM samples AS a, samples AS b, samples AS c;
