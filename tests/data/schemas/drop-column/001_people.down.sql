-- Description: Remove people
DROP TABLE people;
