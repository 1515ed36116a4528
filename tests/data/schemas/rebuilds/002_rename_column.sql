ALTER TABLE "Item Log" RENAME COLUMN qty TO quantity;
