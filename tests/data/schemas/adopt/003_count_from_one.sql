-- Description: Items hold at least one (data only: the schema stays as it was)
UPDATE items SET qty = 1 WHERE qty = 0;
