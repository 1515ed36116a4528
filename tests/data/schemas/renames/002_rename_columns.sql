-- Description: key and type renamed in one step (a real history does this)
ALTER TABLE users RENAME COLUMN key TO akey;
ALTER TABLE users RENAME COLUMN type TO atype;
