#!/usr/bin/python3
"""Command-line tests of stemma changes, vector and apply: moving operations between
databases through files, as a user would.

Run by ctest as `python3 tests/cli_sync_test.py PATH/TO/stemma` from the source root.
Databases are made by `stemma migrate` (tests that need one are skipped while the
binary has no migrate command) and written with the real `sqlite3` shell, so the capture
triggers record the changes exactly as they would an application's.
"""
import hashlib
import json
import time
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

STEMMA = None
SCHEMAS = "schemas/tasks"  # v2 adds tasks.priority, v3 tasks.tags, v4 comments
_have_migrate = None


def run(*args):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def have_migrate():
    global _have_migrate
    if _have_migrate is None:
        _have_migrate = run("migrate", "--help")[0] == 0
    return _have_migrate


def sqlite(db, sql):
    """Runs sql in the sqlite3 shell on db; returns what it printed."""
    p = subprocess.run(["sqlite3", db, sql], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"sqlite3 {db} {sql!r}: {p.stderr}")
    return p.stdout


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-cli-sync-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ok(self, *args, warnings=False):
        code, out, err = run(*args)
        self.assertEqual(code, 0, f"stemma {' '.join(args)}: exit {code}, stderr {err!r}")
        if not warnings:
            self.assertEqual(err, "")
            return out
        return out, err

    def fails(self, code_expected, *args, contains=()):
        code, out, err = run(*args)
        self.assertEqual(code, code_expected, f"stemma {' '.join(args)}: stderr {err!r}")
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
        for c in contains:
            self.assertIn(c, lines[0])
        return lines[0]

    def need_sqlite3(self):
        if not shutil.which("sqlite3"):
            self.skipTest("the sqlite3 shell is not installed")

    def db(self, name, version):
        """A database made by stemma migrate at version of schemas/tasks."""
        if not have_migrate():
            self.skipTest("'stemma migrate' is not in this binary yet; these tests create "
                          "their databases with it and run once it lands")
        self.need_sqlite3()
        path = self.path(name)
        self.ok("migrate", "--db", path, "--schemas", SCHEMAS, "--to", str(version),
                "--no-backup")
        return path

    def changes(self, db, bundle, since=None):
        """Runs stemma changes; returns how many operations it wrote."""
        args = ["changes", "--db", db, "-o", bundle] + (["--since", since] if since else [])
        out = self.ok(*args)
        m = re.fullmatch(r"wrote (\d+) operations? to (.*) \((\d+) bytes\)\n", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(2), bundle)
        self.assertEqual(int(m.group(3)), os.path.getsize(bundle))
        return int(m.group(1))

    def apply(self, db, bundle, warnings=False):
        """Runs stemma apply; returns (applied, present, parked, replayed, parked in all)
        and, with warnings, the lines on stderr."""
        res = self.ok("apply", "--db", db, bundle, warnings=warnings)
        out, err = res if warnings else (res, "")
        m = re.fullmatch(r"applied (\d+), already present (\d+), parked (\d+), replayed (\d+) "
                         r"\((\d+) parked in all\)\n", out)
        self.assertIsNotNone(m, out)
        counts = tuple(int(g) for g in m.groups())
        return (counts, err.splitlines()) if warnings else counts

    def oplog_count(self, db, column=None):
        """Operations db holds (after a stemma command collected its writes); with column,
        those writing it: the row changes whose cells hold its name as a MessagePack
        string (docs/architecture.md), each at most once."""
        if column is None:
            return int(sqlite(db, "SELECT coalesce(sum(n), 0) FROM stemma_oplog"))
        name = column.encode()
        assert len(name) < 32
        needle = bytes([0xa0 | len(name)]).hex() + name.hex()
        return int(sqlite(db, f"SELECT count(*) FROM stemma_oplog WHERE instr(cells, x'{needle}')"))

    def assert_same_rows(self, a, b, query):
        self.assertEqual(sqlite(a, query), sqlite(b, query), query)



RENAMES = "tests/data/schemas/renames"  # v2 renames key and type, v3 users to people


class Renames(Base):
    """Operations written at one version apply to the columns that hold their values at
    another (sync/apply.h, invariant 8): renamed columns and tables, both ways, and a
    migration carries the renamed columns' clocks (sync/carry.h)."""

    def at(self, name, version, schemas=RENAMES):
        """A database at version (None: the newest) of schemas."""
        if not have_migrate():
            self.skipTest("no stemma migrate")
        self.need_sqlite3()
        path = self.path(name)
        to = ["--to", str(version)] if version else []
        self.ok("migrate", "--db", path, "--schemas", schemas, *to, "--no-backup")
        return path

    def schema_set(self, files):
        """A schema set of files ({name: SQL}) in the test's directory."""
        d = self.path("set")
        os.makedirs(d)
        for name, sql in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(sql)
        return d

    def send(self, src, dst, lenses=True, schemas=RENAMES):
        """src's operations dst lacks, applied to dst; returns apply's counts."""
        vec, bundle = self.path("v.stmv"), self.path("b.stmb")
        self.ok("vector", "--db", dst, "-o", vec)
        self.changes(src, bundle, since=vec)
        args = ["apply", "--db", dst] + (["--schemas", schemas] if lenses else []) + [bundle]
        out, _ = self.ok(*args, warnings=True)
        m = re.fullmatch(r"applied (\d+), already present (\d+), parked (\d+), replayed (\d+) "
                         r"\((\d+) parked in all\)\n", out)
        self.assertIsNotNone(m, out)
        return tuple(int(g) for g in m.groups())

    def test_renamed_columns_arrive_both_ways(self):
        old, new = self.at("old.db", 1), self.at("new.db", 2)
        sqlite(old, "INSERT INTO users (id, key, type, note) VALUES ('u1', 'k1', 't1', 'n1')")
        applied, _, parked, _, in_all = self.send(old, new)
        self.assertEqual((applied, parked, in_all), (4, 0, 0))
        self.assertEqual(sqlite(new, "SELECT id, akey, atype, note FROM users"), "u1|k1|t1|n1\n")
        # And back: the newer side's write to akey lands in key.
        sqlite(new, "UPDATE users SET akey = 'k2' WHERE id = 'u1'")
        applied, _, parked, _, _ = self.send(new, old)
        self.assertEqual((applied, parked), (1, 0))
        self.assertEqual(sqlite(old, "SELECT key, type FROM users"), "k2|t1\n")
        # A table renamed too: v1's writes reach people at v3.
        newest = self.at("newest.db", 3)
        applied, _, parked, _, _ = self.send(old, newest)
        self.assertEqual(parked, 0)
        self.assertEqual(sqlite(newest, "SELECT id, akey, atype FROM people"), "u1|k2|t1\n")

    def test_without_the_schema_set_they_park_as_before(self):
        old, new = self.at("old.db", 1), self.at("new.db", 2)
        sqlite(old, "INSERT INTO users (id, key, type) VALUES ('u1', 'k1', 't1')")
        applied, _, parked, _, _ = self.send(old, new, lenses=False)
        self.assertEqual(parked, 2)  # key and type: no such columns here (warned)
        self.assertEqual(sqlite(new, "SELECT akey IS NULL, atype IS NULL FROM users"), "1|1\n")

    def test_a_migration_carries_the_clocks_of_renamed_columns(self):
        # e writes key first, d later; d migrates (key becomes akey) before e's write
        # reaches it. e's write is older than d's: it must lose at d, as it would have
        # before the rename.
        a = self.at("a.db", 1)
        sqlite(a, "INSERT INTO users (id, key) VALUES ('u1', 'first')")
        d, e = self.at("d.db", 1), self.at("e.db", 1)
        self.send(a, d)
        self.send(a, e)
        sqlite(e, "UPDATE users SET key = 'older' WHERE id = 'u1'")
        self.ok("vector", "--db", e, "-o", self.path("collect.stmv"))  # e takes its write now
        time.sleep(0.01)  # a later millisecond: d's write is the later one
        sqlite(d, "UPDATE users SET key = 'later' WHERE id = 'u1'")
        self.ok("vector", "--db", d, "-o", self.path("collect.stmv"))
        self.ok("migrate", "--db", d, "--schemas", RENAMES, "--to", "2", "--no-backup")
        applied, _, parked, _, _ = self.send(e, d)
        self.assertEqual(parked, 0)
        self.assertEqual(sqlite(d, "SELECT akey FROM users"), "later\n")
        # And the other way, e keeps d's value once it has it.
        self.send(d, e)
        self.assertEqual(sqlite(e, "SELECT key FROM users"), "later\n")

    def test_a_column_dropped_since_takes_nothing_and_parks_nothing(self):
        # search v4 drops notes.legacy: a v1 write to it reaches a v4 database, which
        # holds what the migration left (no legacy), so it applies to nothing; a column
        # the later version still has (title) applies. Without the schema set it parks.
        if not have_migrate():
            self.skipTest("no stemma migrate")
        self.need_sqlite3()
        search = "tests/data/schemas/search"
        old, new = self.path("old.db"), self.path("new.db")
        self.ok("migrate", "--db", old, "--schemas", search, "--to", "1", "--no-backup")
        self.ok("migrate", "--db", new, "--schemas", search, "--no-backup")
        sqlite(old, "INSERT INTO notes (id, title, legacy) VALUES ('n1', 't', 'l')")
        vec, bundle = self.path("v.stmv"), self.path("b.stmb")
        self.ok("vector", "--db", new, "-o", vec)
        self.changes(old, bundle, since=vec)
        out, _ = self.ok("apply", "--db", new, "--schemas", search, bundle, warnings=True)
        self.assertTrue(out.startswith("applied 4, already present 0, parked 0,"), out)
        self.assertEqual(sqlite(new, "SELECT id, title, body IS NULL FROM notes"), "n1|t|1\n")
        fresh = self.path("fresh.db")
        self.ok("migrate", "--db", fresh, "--schemas", search, "--no-backup")
        out, _ = self.ok("apply", "--db", fresh, bundle, warnings=True)
        self.assertIn("parked 1,", out)

    def test_a_row_refused_for_a_column_a_migration_makes_says_which(self):
        # v2 rebuilds items with a NOT NULL label it computes: a row written at v1
        # cannot be inserted at v2; the reason names the migration and what brings it,
        # and once its writer migrates the row comes whole and nothing stays parked.
        d = self.schema_set({
            "001_items.sql": "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n",
            "002_label.sql": "CREATE TABLE items_new (id TEXT PRIMARY KEY, name TEXT NOT NULL,\n"
                             "  label TEXT NOT NULL);\n"
                             "INSERT INTO items_new SELECT id, name, upper(name) FROM items;\n"
                             "DROP TABLE items;\nALTER TABLE items_new RENAME TO items;\n"})
        old, new = self.at("old.db", 1, d), self.at("new.db", None, d)
        sqlite(old, "INSERT INTO items VALUES ('i1', 'pen')")
        self.assertEqual(self.send(old, new, schemas=d)[2], 2)
        self.assertEqual(
            sqlite(new, "SELECT DISTINCT reason FROM stemma_parked"),
            "NOT NULL constraint failed: items.label (made by migration 2, which its writer at "
            "version 1 had not run: the row comes whole once the writer migrates)\n")
        self.ok("migrate", "--db", old, "--schemas", d, "--no-backup")
        self.send(old, new, schemas=d)
        self.assertEqual(sqlite(new, "SELECT id, name, label FROM items"), "i1|pen|PEN\n")
        self.assertEqual(sqlite(new, "SELECT count(*) FROM stemma_parked"), "0\n")

    def test_a_row_gets_the_default_a_migration_added_its_column_with(self):
        # chirpstack 004 then 009 in small: v2 adds flags NOT NULL DEFAULT 'none', v3
        # rebuilds items keeping flags, NOT NULL with no default. A v1 row at v3 gets
        # 'none', as the migration gives every row it had, instead of parking for a
        # value no operation will ever bring (the writer's migration sends nothing for
        # a row it leaves at the default); then both sides agree.
        d = self.schema_set({
            "001_items.sql": "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n",
            "002_flags.sql": "ALTER TABLE items ADD COLUMN flags TEXT NOT NULL DEFAULT 'none';\n",
            "003_rebuild.sql": "CREATE TABLE items_new (id TEXT PRIMARY KEY, name TEXT NOT NULL,\n"
                               "  flags TEXT NOT NULL);\n"
                               "INSERT INTO items_new SELECT id, name, flags FROM items;\n"
                               "DROP TABLE items;\nALTER TABLE items_new RENAME TO items;\n"})
        old, new = self.at("old.db", 1, d), self.at("new.db", None, d)
        sqlite(old, "INSERT INTO items VALUES ('i1', 'pen')")
        self.assertEqual(self.send(old, new, schemas=d)[:3], (2, 0, 0))
        self.assertEqual(sqlite(new, "SELECT id, name, flags FROM items"), "i1|pen|none\n")
        self.ok("migrate", "--db", old, "--schemas", d, "--no-backup")
        self.send(old, new, schemas=d)
        self.send(new, old, schemas=d)
        for db in (old, new):
            self.assertEqual(sqlite(db, "SELECT id, name, flags FROM items"), "i1|pen|none\n")
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_parked"), "0\n")

    def test_seed_rows_of_the_first_migration_travel(self):
        # chirpstack 001 in small: the first migration seeds an admin row with a value
        # each device picks itself. a deletes it, b renames it later: the row comes
        # back at a whole (its NOT NULL created from the seeds, which are operations
        # like any migration's writes), and both sides hold one and the same row.
        d = self.schema_set({
            "001_users.sql": "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL,\n"
                             "  created TEXT NOT NULL);\n"
                             "INSERT INTO users VALUES ('admin', 'admin', hex(randomblob(8)));\n"})
        a, b = self.at("a.db", None, d), self.at("b.db", None, d)
        self.assertNotEqual(sqlite(a, "SELECT created FROM users"),
                            sqlite(b, "SELECT created FROM users"))
        sqlite(a, "DELETE FROM users WHERE id = 'admin'")
        self.ok("vector", "--db", a, "-o", self.path("collect.stmv"))  # a takes its delete now
        time.sleep(0.01)  # a later millisecond: b's rename is the later write
        sqlite(b, "UPDATE users SET name = 'root' WHERE id = 'admin'")
        self.ok("vector", "--db", b, "-o", self.path("collect.stmv"))
        self.send(a, b, schemas=d)
        self.send(b, a, schemas=d)
        self.send(a, b, schemas=d)
        row = sqlite(b, "SELECT id, name, created FROM users")
        self.assertTrue(row.startswith("admin|root|"), row)
        for db in (a, b):
            self.assertEqual(sqlite(db, "SELECT id, name, created FROM users"), row)
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_parked"), "0\n")

    def test_a_rebuild_that_keys_a_table_by_part_of_its_key(self):
        # komga 059 in small: v2 rebuilds hashes keyed by hash alone instead of (hash,
        # kind, size). A v1 row names the v2 row by its hash, as the rebuild carried
        # it: it applies, and so does a later v1 update; a v2 row at v1 has no kind or
        # size to be keyed by and waits for v1 to migrate.
        d = self.schema_set({
            "001_hashes.sql": "CREATE TABLE hashes (hash TEXT NOT NULL, kind TEXT NOT NULL,\n"
                              "  size INTEGER NOT NULL, action TEXT NOT NULL,\n"
                              "  PRIMARY KEY (hash, kind, size));\n",
            "002_by_hash.sql": "CREATE TABLE hashes_new (hash TEXT PRIMARY KEY, size INTEGER,\n"
                               "  action TEXT NOT NULL);\n"
                               "INSERT INTO hashes_new SELECT hash, size, action FROM hashes;\n"
                               "DROP TABLE hashes;\nALTER TABLE hashes_new RENAME TO hashes;\n"})
        old, new = self.at("old.db", 1, d), self.at("new.db", None, d)
        sqlite(old, "INSERT INTO hashes VALUES ('h1', 'png', 10, 'keep')")
        sqlite(new, "INSERT INTO hashes VALUES ('h2', 5, 'ask')")
        self.assertEqual(self.send(old, new, schemas=d)[2], 0)
        self.assertEqual(sqlite(new, "SELECT hash, size, action FROM hashes ORDER BY hash"),
                         "h1|10|keep\nh2|5|ask\n")
        sqlite(old, "UPDATE hashes SET action = 'drop' WHERE hash = 'h1'")
        self.assertEqual(self.send(old, new, schemas=d)[:3], (1, 0, 0))
        self.assertEqual(sqlite(new, "SELECT action FROM hashes WHERE hash = 'h1'"), "drop\n")
        self.assertEqual(self.send(new, old, schemas=d)[2], 3)
        self.assertEqual(sqlite(old, "SELECT DISTINCT reason FROM stemma_parked"),
                         "its key has 1 columns, the table's key here 3\n")
        self.ok("migrate", "--db", old, "--schemas", d, "--no-backup")
        self.send(old, new, schemas=d)
        self.send(new, old, schemas=d)
        for db in (old, new):
            self.assertEqual(sqlite(db, "SELECT hash, size, action FROM hashes ORDER BY hash"),
                             "h1|10|drop\nh2|5|ask\n")
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_parked"), "0\n")

    def test_a_table_dropped_and_made_anew_with_another_key(self):
        # wildebeest 008 in small: v2 drops subs (text keys) and makes it anew keyed by
        # integers. A v2 row reaching v1 parks whole (another table than v1's subs: no
        # cell of it applied to v1's, none parked apart from its row), and arrives
        # when v1 migrates; a v1 row reaching v2 is gone with the old table (the
        # writer's migration drops it too), and parks nothing. Without the schema set
        # the row parks whole all the same, for its key's other type.
        d = self.schema_set({
            "001_subs.sql": "CREATE TABLE subs (id TEXT PRIMARY KEY, who TEXT NOT NULL);\n",
            "002_subs_by_number.sql": "DROP TABLE subs;\n"
                                      "CREATE TABLE subs (id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                                      "  who TEXT NOT NULL);\n"})
        self.assertIn("subs  replaced", self.ok("history", "--schemas", d, "--lenses"))
        old, new = self.at("old.db", 1, d), self.at("new.db", None, d)
        sqlite(old, "INSERT INTO subs VALUES ('s1', 'old')")
        sqlite(new, "INSERT INTO subs (who) VALUES ('new')")
        plain = self.at("plain.db", 1, d)
        self.assertEqual(self.send(new, plain, lenses=False)[:3], (0, 0, 2))
        self.assertEqual(sqlite(plain, "SELECT count(*) FROM subs"), "0\n")
        self.assertEqual(sqlite(plain, "SELECT DISTINCT reason FROM stemma_parked"),
                         "its key column id is TEXT here, I at the writer\n")
        self.assertEqual(self.send(new, old, schemas=d)[:3], (0, 0, 2))
        self.assertEqual(sqlite(old, "SELECT id, who FROM subs"), "s1|old\n")
        self.assertEqual(sqlite(old, "SELECT DISTINCT reason FROM stemma_parked"),
                         "table subs of version 2 is another table than the one here: "
                         "migration 2 made it anew; the row waits whole for this database "
                         "to migrate\n")
        self.assertEqual(self.send(old, new, schemas=d)[:3], (2, 0, 0))
        self.assertEqual(sqlite(new, "SELECT id, who FROM subs"), "1|new\n")
        self.ok("migrate", "--db", old, "--schemas", d, "--no-backup")
        self.send(old, new, schemas=d)
        self.send(new, old, schemas=d)
        for db in (old, new):
            self.assertEqual(sqlite(db, "SELECT id, who FROM subs"), "1|new\n")
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_parked"), "0\n")
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_conflicts"), "0\n")

    def test_a_replaced_table_forgets_the_clocks_of_its_old_rows(self):
        # v2 drops subs and makes it anew under the same key. a wrote row s5 at v1
        # after b wrote its own row s5 at v2; once a migrates, its old row is gone
        # and so must its clocks be: b's row is the only row s5 there is, and a takes
        # it (a stale clock, later than b's write, would refuse it for good).
        d = self.schema_set({
            "001_subs.sql": "CREATE TABLE subs (id TEXT PRIMARY KEY, who TEXT);\n",
            "002_subs_anew.sql": "DROP TABLE subs;\n"
                                 "CREATE TABLE subs (id TEXT PRIMARY KEY, who TEXT NOT NULL);\n"})
        a, b = self.at("a.db", 1, d), self.at("b.db", None, d)
        sqlite(b, "INSERT INTO subs VALUES ('s5', 'b')")
        self.ok("vector", "--db", b, "-o", self.path("collect.stmv"))  # b takes its write now
        time.sleep(0.01)  # a later millisecond: a's write is the later one
        sqlite(a, "INSERT INTO subs VALUES ('s5', 'a')")
        self.ok("vector", "--db", a, "-o", self.path("collect.stmv"))
        self.ok("migrate", "--db", a, "--schemas", d, "--no-backup")
        self.send(b, a, schemas=d)
        self.send(a, b, schemas=d)
        for db in (a, b):
            self.assertEqual(sqlite(db, "SELECT id, who FROM subs"), "s5|b\n")
            self.assertEqual(sqlite(db, "SELECT count(*) FROM stemma_parked"), "0\n")

TASKS = ("SELECT id, list_id, title, typeof(title), done, typeof(done), notes, typeof(notes), "
         "priority FROM tasks ORDER BY id")
LISTS = "SELECT id, name, created_at FROM lists ORDER BY id"


class Usage(Base):
    def test_help(self):
        for cmd in ["changes", "vector", "apply"]:
            for flag in ["--help", "-h"]:
                out = self.ok(cmd, flag)
                self.assertTrue(out.startswith(f"usage: stemma {cmd} "), out)
        self.assertIn("--since", self.ok("changes", "--help"))
        for cmd in ["changes", "vector", "apply"]:
            self.assertIn(f"  {cmd} ", self.ok("--help"))

    def test_missing_arguments(self):
        x = self.path("x.db")
        self.fails(2, "changes", contains=["--db FILE and -o BUNDLE are required", "--help"])
        self.fails(2, "changes", "--db", x, contains=["-o BUNDLE"])
        self.fails(2, "changes", "-o", self.path("b"), contains=["--db FILE"])
        self.fails(2, "changes", "--db", contains=["stemma changes:"])
        self.fails(2, "vector", contains=["--db FILE and -o VECTOR_FILE are required"])
        self.fails(2, "vector", "--db", x, contains=["-o VECTOR_FILE"])
        self.fails(2, "apply", contains=["--db FILE is required"])
        self.fails(2, "apply", self.path("b.stmb"), contains=["--db FILE is required"])
        self.fails(2, "apply", "--db", x, contains=["expected one BUNDLE, got 0"])
        self.fails(2, "apply", "--db", x, "a", "b", contains=["expected one BUNDLE, got 2"])
        self.fails(2, "changes", "--bogus", contains=["unknown option '--bogus'"])
        self.fails(2, "vector", "--db", x, "-o", "v", "extra",
                   contains=["unexpected argument 'extra'"])

    def test_missing_database(self):
        missing, out = self.path("missing.db"), self.path("out")
        self.fails(2, "changes", "--db", missing, "-o", out, contains=[missing])
        self.fails(2, "vector", "--db", missing, "-o", out, contains=[missing])
        self.fails(2, "apply", "--db", missing, out, contains=[missing])
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(missing))


class NotSetUp(Base):
    """A database stemma has not set up: refused, with what to do, and left alone."""

    def plain(self):
        self.need_sqlite3()
        db = self.path("plain.db")
        sqlite(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                   "INSERT INTO notes VALUES (1, 'hello');")
        return db

    def test_refused_with_a_clear_line(self):
        db = self.plain()
        out = self.path("out")
        for args in [("changes", "--db", db, "-o", out), ("vector", "--db", db, "-o", out),
                     ("apply", "--db", db, self.path("missing.stmb"))]:
            with self.subTest(cmd=args[0]):
                self.fails(2, *args, contains=[f"stemma {args[0]}: {db}: not set up for stemma",
                                               "stemma migrate"])
        self.assertFalse(os.path.exists(out))

    def test_reading_commands_leave_it_alone(self):
        db = self.plain()
        before = sha256(db)
        self.fails(2, "changes", "--db", db, "-o", self.path("out"))
        self.fails(2, "vector", "--db", db, "-o", self.path("out"))
        self.assertEqual(sha256(db), before)
        self.assertEqual(os.listdir(self.tmp), ["plain.db"])

    def test_apply_leaves_it_alone(self):
        # Opening for writing would switch the file to WAL mode (header bytes 18-19):
        # apply checks through a read-only connection first.
        db = self.plain()
        before = sha256(db)
        self.fails(2, "apply", "--db", db, self.path("missing.stmb"))
        self.assertEqual(sha256(db), before)


class OlderFormat(Base):
    """A database set up by the stemma before store format 3 (no write times in the
    capture queue): every command refuses it with one line saying what to do."""

    def test_format_2_refused_with_what_to_do(self):
        db = self.db("old.db", 3)
        sqlite(db, "UPDATE stemma_local SET format = 2;"
                   "ALTER TABLE stemma_pending DROP COLUMN at;"
                   "ALTER TABLE stemma_mark DROP COLUMN gate;"
                   "ALTER TABLE stemma_mark DROP COLUMN at;")
        out = self.path("out")
        for args in [("changes", "--db", db, "-o", out), ("vector", "--db", db, "-o", out),
                     ("apply", "--db", db, self.path("missing.stmb")),
                     ("migrate", "--db", db, "--schemas", SCHEMAS, "--no-backup")]:
            with self.subTest(cmd=args[0]):
                self.fails(2, *args, contains=["in format 2, this stemma reads format 7",
                                               "stemma_*"])
        self.assertFalse(os.path.exists(out))


class Options(Base):
    def test_option_without_its_value(self):
        self.fails(2, "changes", "--db", contains=["option '--db' needs a value"])
        self.fails(2, "apply", "--bogus", contains=["unknown option '--bogus'"])


class Sync(Base):
    def write_some(self, db):
        sqlite(db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home'), ('l2', 'Work');"
                   "INSERT INTO tasks (id, list_id, title, notes) VALUES "
                   "('t1', 'l1', 'Milk', NULL), ('t2', 'l1', 'Brot für morgen', 'x|y'),"
                   "('t3', 'l2', 'Report', '');"
                   "UPDATE tasks SET done = 1, priority = 5 WHERE id = 't1';"
                   "DELETE FROM tasks WHERE id = 't3';")

    def test_changes_then_apply(self):
        a, b = self.db("a.db", 3), self.db("b.db", 3)
        self.write_some(a)
        bundle = self.path("a.stmb")
        n = self.changes(a, bundle)
        self.assertEqual(n, self.oplog_count(a))
        self.assertGreater(n, 15)
        self.assertEqual(self.apply(b, bundle), (n, 0, 0, 0, 0))
        self.assert_same_rows(a, b, TASKS)
        self.assert_same_rows(a, b, LISTS)
        self.assertEqual(sqlite(b, "SELECT count(*) FROM tasks WHERE id = 't3'"), "0\n")
        # Twice: everything is already there, nothing changes.
        before = sqlite(b, TASKS)
        self.assertEqual(self.apply(b, bundle), (0, n, 0, 0, 0))
        self.assertEqual(sqlite(b, TASKS), before)
        # Back to where it came from: all present.
        self.assertEqual(self.apply(a, bundle), (0, n, 0, 0, 0))
        self.assertEqual(self.oplog_count(b), n)

    def test_a_clock_far_ahead_is_parked_until_allowed(self):
        a, b = self.db("a.db", 3), self.db("b.db", 3)
        # a's machine thinks it is tomorrow.
        sqlite(a, "UPDATE stemma_local SET hlc = (CAST((julianday('now') - 2440587.5) * "
                  "86400000 AS INTEGER) + 86400000) << 16")
        self.write_some(a)
        bundle = self.path("a.stmb")
        n = self.changes(a, bundle)
        counts, warnings = self.apply(b, bundle, warnings=True)
        self.assertEqual(counts, (0, 0, n, 0, n))
        self.assertTrue(warnings)
        for w in warnings:
            self.assertIn("its clock is more than 600000 ms ahead of this machine's", w)
        self.assertEqual(sqlite(b, "SELECT count(*) FROM tasks"), "0\n")
        self.fails(2, "apply", "--db", b, "--max-clock-ahead", "-1", bundle,
                   contains=["--max-clock-ahead must be milliseconds"])
        # Allowed two days ahead, the next apply applies what was parked.
        out = self.ok("apply", "--db", b, "--max-clock-ahead", "172800000", bundle)
        self.assertEqual(out, f"applied 0, already present {n}, parked 0, replayed {n} "
                              f"(0 parked in all)\n")
        self.assert_same_rows(a, b, TASKS)

    def test_vector_and_since(self):
        a, b = self.db("a.db", 3), self.db("b.db", 3)
        self.write_some(a)
        first = self.path("first.stmb")
        n = self.changes(a, first)
        self.apply(b, first)
        vec = self.path("b.stmv")
        self.assertEqual(self.ok("vector", "--db", b, "-o", vec),
                         f"wrote a vector of 2 origins to {vec}\n")
        # Only what came after.
        sqlite(a, "UPDATE tasks SET title = 'Oat milk' WHERE id = 't1';"
                  "DELETE FROM tasks WHERE id = 't2';")
        later = self.path("later.stmb")
        self.assertEqual(self.changes(a, later, since=vec), 2)
        self.assertEqual(self.apply(b, later), (2, 0, 0, 0, 0))
        self.assert_same_rows(a, b, TASKS)
        # Up to date: an empty bundle, which applies as nothing.
        self.ok("vector", "--db", b, "-o", vec)
        empty = self.path("empty.stmb")
        self.assertEqual(self.changes(a, empty, since=vec), 0)
        self.assertEqual(self.apply(b, empty), (0, 0, 0, 0, 0))
        # The other way: b's own writes, and nothing a already has.
        sqlite(b, "INSERT INTO tasks (id, list_id, title) VALUES ('t9', 'l2', 'From b');")
        avec = self.path("a.stmv")
        self.ok("vector", "--db", a, "-o", avec)
        back = self.path("back.stmb")
        sent = self.changes(b, back, since=avec)  # b's write becomes an operation here
        mine = self.oplog_count(b) - self.oplog_count(a)
        self.assertEqual(sent, mine)
        self.assertEqual(self.apply(a, back), (mine, 0, 0, 0, 0))
        self.assert_same_rows(a, b, TASKS)
        self.assertEqual(self.oplog_count(a), n + 2 + mine)

    def test_older_schema_parks_with_one_warning_per_origin_and_column(self):
        a, d = self.db("a.db", 3), self.db("d.db", 3)
        c = self.db("c.db", 2)  # has no tasks.tags
        self.write_some(a)
        sqlite(a, "UPDATE tasks SET tags = '[\"shop\"]' WHERE id = 't1';")
        ab = self.path("a.stmb")
        self.changes(a, ab)
        self.apply(d, ab)
        # d writes tags too: its bundle carries tags operations of two origins.
        sqlite(d, "INSERT INTO tasks (id, list_id, title, tags) VALUES "
                  "('t4', 'l2', 'Call', '[\"phone\"]');"
                  "UPDATE tasks SET tags = '[\"bakery\"]' WHERE id = 't2';")
        db_ = self.path("d.stmb")
        n = self.changes(d, db_)
        tags = self.oplog_count(d, "tags")
        self.assertGreaterEqual(tags, 4)  # t1, t2 (a's), t4 and t2 again (d's)
        counts, warnings = self.apply(c, db_, warnings=True)
        self.assertEqual(counts, (n - tags, 0, tags, 0, tags))
        self.assertEqual(len(warnings), 2, warnings)
        for w in warnings:
            self.assertTrue(w.startswith("stemma apply: warning: "), w)
            self.assertIn("tasks.tags", w)
        self.assertNotEqual(warnings[0], warnings[1])  # one per origin
        # Everything c has columns for arrived.
        self.assertEqual(sqlite(c, "SELECT id, title FROM tasks ORDER BY id"),
                         sqlite(d, "SELECT id, title FROM tasks ORDER BY id"))
        # Applied again: all present, parked stays parked, nothing to warn about.
        counts, warnings = self.apply(c, db_, warnings=True)
        self.assertEqual(counts, (0, n, 0, 0, tags))
        self.assertEqual(warnings, [])

    def test_damaged_bundle_changes_nothing(self):
        a, b = self.db("a.db", 3), self.db("b.db", 3)
        self.write_some(a)
        bundle = self.path("a.stmb")
        self.changes(a, bundle)
        with open(bundle, "rb") as f:
            data = f.read()
        size = len(data)
        before = sha256(b)
        cut = self.path("cut.stmb")
        # In the header, in the first frame's length, in the frame, in the end marker,
        # in the count, in the digest, one byte short.
        for n in [0, 3, 8, 10, 12, size // 2, size - 44, size - 40, size - 33, size - 10,
                  size - 1]:
            with self.subTest(cut=n):
                with open(cut, "wb") as f:
                    f.write(data[:n])
                self.fails(2, "apply", "--db", b, cut, contains=[f"stemma apply: {cut}: "])
                self.assertEqual(sha256(b), before)
        # A byte flipped inside, and a byte added at the end.
        for name, damaged in [("flipped", data[:size // 2] + bytes([data[size // 2] ^ 0x20]) +
                               data[size // 2 + 1:]), ("longer", data + b"\0")]:
            with self.subTest(damage=name):
                with open(cut, "wb") as f:
                    f.write(damaged)
                self.fails(2, "apply", "--db", b, cut, contains=[cut, "damaged"])
                self.assertEqual(sha256(b), before)
        self.assertEqual(sqlite(b, "SELECT count(*) FROM tasks"), "0\n")
        # Not a bundle at all, and no file.
        self.fails(2, "apply", "--db", b, a, contains=[a, "not a stemma bundle"])
        self.fails(2, "apply", "--db", b, self.path("none.stmb"),
                   contains=[self.path("none.stmb")])
        self.assertEqual(sha256(b), before)
        # The whole file still applies.
        self.apply(b, bundle)
        self.assert_same_rows(a, b, TASKS)

    def test_bad_vector_file(self):
        a = self.db("a.db", 3)
        bundle, vec = self.path("a.stmb"), self.path("a.stmv")
        self.changes(a, bundle)
        self.ok("vector", "--db", a, "-o", vec)
        out = self.path("out.stmb")
        self.fails(2, "changes", "--db", a, "--since", bundle, "-o", out,
                   contains=[bundle, "not a stemma vector file"])
        with open(vec, "rb") as f:
            data = f.read()
        for n in [0, 7, 12, len(data) - 1]:
            with open(vec, "wb") as f:
                f.write(data[:n])
            self.fails(2, "changes", "--db", a, "--since", vec, "-o", out, contains=[vec])
        self.fails(2, "changes", "--db", a, "--since", self.path("none"), "-o", out,
                   contains=[self.path("none")])
        self.assertFalse(os.path.exists(out))

    def test_output_replaced_whole(self):
        a = self.db("a.db", 3)
        self.write_some(a)
        out = self.path("out.stmb")
        with open(out, "w") as f:
            f.write("an older file")
        self.changes(a, out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(4), b"STMB")
        self.ok("vector", "--db", a, "-o", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(4), b"STMV")
        self.assertEqual([n for n in os.listdir(self.tmp) if ".tmp" in n], [])
        # Nowhere to write: one line naming the file, nothing left behind.
        nowhere = self.path("no/such/dir/out.stmb")
        self.fails(1, "changes", "--db", a, "-o", nowhere, contains=[nowhere])
        self.fails(1, "vector", "--db", a, "-o", nowhere, contains=[nowhere])
        self.assertEqual([n for n in os.listdir(self.tmp) if ".tmp" in n], [])


class Compact(Base):
    """stemma compact on a database file (docs/user-guide.md, "Compaction"): what later
    writes replaced goes, a bundle from it carries the current cells and pruned
    stand-ins, and one applied elsewhere leaves the same rows; bad input is one line."""

    def test_compact_a_file_then_carry_its_current_cells(self):
        a, b = self.db("a.db", 3), self.db("b.db", 3)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                  "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'Milk')")
        self.ok("vector", "--db", a, "-o", self.path("v"))
        for title in ("Bread", "Eggs", "Cheese"):
            # Each a write of its own (stemma collects between them), not folded into one.
            sqlite(a, f"UPDATE tasks SET title = '{title}' WHERE id = 't1'")
            self.ok("vector", "--db", a, "-o", self.path("v"))
        out = self.ok("compact", "--db", a)
        m = re.match(r"pruned (\d+) operations \(0 kept for 0 known peers that lack what "
                     r"replaced them\); the oplog held (\d+), holds (\d+);", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(int(m.group(1)), 3)  # the insert's title and two updates
        self.assertEqual(int(m.group(2)) - int(m.group(3)), 3)
        self.assertEqual(sqlite(a, "SELECT title FROM tasks"), "Cheese\n")
        # Again: nothing more to prune.
        self.assertTrue(self.ok("compact", "--db", a).startswith("pruned 0 operations"))
        bundle = self.path("a.stmb")
        self.changes(a, bundle)
        code, out, err = run("apply", "--db", b, bundle)
        self.assertEqual(code, 0, err)
        self.assertIn("pruned 3 operations", out)
        self.assert_same_rows(a, b, TASKS)
        self.assert_same_rows(a, b, LISTS)

    def test_bad_input_is_one_line(self):
        a = self.db("a.db", 3)
        self.fails(2, "compact", contains=["give --dir NODE_DIR, --control ENDPOINT or --db FILE"])
        self.fails(2, "compact", "--db", a, "--known-peer-hours", "-1",
                   contains=["--known-peer-hours must be a whole number of hours"])
        self.fails(2, "compact", "--db", self.path("none.db"), contains=["no such database file"])
        self.fails(2, "compact", "--dir", self.path("nodedir"), "--schemas", SCHEMAS,
                   contains=["--schemas and --known-peer-hours go with --db"])


class Origins(Base):
    """A database copied or restored never reuses (origin, seq): its writes reach the
    peers that hold the original's (sync/origin.h)."""

    def push(self, src, dst):
        vec, bundle = self.path("v"), self.path("b")
        self.ok("vector", "--db", dst, "-o", vec)
        code, out, err = run("changes", "--db", src, "--since", vec, "-o", bundle)
        self.assertEqual(code, 0, err)
        self.apply(dst, bundle)
        return err

    def lists(self, db):
        return sqlite(db, "SELECT group_concat(name, ',') FROM (SELECT name FROM lists "
                          "ORDER BY name)").strip()

    def test_a_copy_writes_as_a_new_origin(self):
        a, hub = self.db("a.db", 1), self.db("hub.db", 1)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l0', 'before the copy')")
        self.assertEqual(self.push(a, hub), "")
        # A golden image: the database copied to a second device, and each writes.
        c = self.path("c.db")
        shutil.copy(a, c)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('la', 'written on a')")
        sqlite(c, "INSERT INTO lists (id, name) VALUES ('lc', 'written on the copy')")
        self.assertEqual(self.push(a, hub), "")
        note = self.push(c, hub)
        self.assertIn(f"stemma: note: {c}: this database file is a copy of the one its origin "
                      "was used in; its own writes carry a new origin from now on", note)
        self.assertEqual(self.lists(hub), "before the copy,written on a,written on the copy")
        # Said once: the copy is its own database now.
        self.assertEqual(self.push(c, hub), "")
        origin = lambda db: json.loads(self.ok("status", "--db", db, "--schemas", SCHEMAS,
                                               "--format", "json"))["origin"]
        self.assertNotEqual(origin(a), origin(c))
        self.assertEqual(len(origin(c)), 64)
        self.push(hub, a)
        self.push(hub, c)
        self.assert_same_rows(a, c, LISTS)

    def test_a_restored_database_writes_as_a_new_origin(self):
        a, hub = self.db("a.db", 1), self.db("hub.db", 1)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l1', 'one')")
        self.push(a, hub)
        backup = self.path("a.backup")
        shutil.copy(a, backup)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.push(a, hub)
        out = self.ok("restore", "--db", a, "--from", backup)
        self.assertIn("its writes from now on carry a new origin", out)
        self.assertEqual(self.lists(a), "one")
        # Its next write takes the sequence 'two' had: under a new origin, it arrives.
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l3', 'three')")
        self.assertEqual(self.push(a, hub), "")
        self.assertEqual(self.lists(hub), "one,three,two")
        # And what the backup lacked comes back from the hub.
        self.push(hub, a)
        self.assertEqual(self.lists(a), "one,three,two")


    def test_a_database_restored_in_place_writes_as_a_new_origin(self):
        # The same file put back with the sqlite3 shell: no copy to tell by, but its
        # own operations had left it (in a bundle) further than it now holds.
        a, hub = self.db("a.db", 1), self.db("hub.db", 1)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l1', 'one')")
        self.push(a, hub)
        backup = self.path("a.backup")
        sqlite(a, f".backup {backup}")
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.push(a, hub)
        ino = os.stat(a).st_ino
        sqlite(a, f".restore {backup}")
        self.assertEqual(os.stat(a).st_ino, ino)
        sqlite(a, "INSERT INTO lists (id, name) VALUES ('l3', 'three')")
        note = self.push(a, hub)
        self.assertIn("went back below how far its own operations had left it", note)
        self.assertEqual(self.lists(hub), "one,three,two")
        self.assertTrue(os.path.exists(a + "-stemma-sent"))


class Conflicts(Base):
    """Rows made on two databases under one key of a table whose keys each picks
    (tests/data/schemas/notes: notes.id INTEGER PRIMARY KEY)."""

    NOTES = "tests/data/schemas/notes"

    def notes_db(self, name):
        self.need_sqlite3()
        path = self.path(name)
        self.ok("migrate", "--db", path, "--schemas", self.NOTES, "--to", "1", "--no-backup")
        return path

    def exchange(self, a, b):
        for src, dst in ((a, b), (b, a)):
            vec, bundle = self.path("v"), self.path("b")
            self.ok("vector", "--db", dst, "-o", vec)
            self.changes(src, bundle, since=vec)
            self.apply(dst, bundle)

    def conflicts(self, db):
        return json.loads(self.ok("conflicts", "--db", db, "--format", "json"))

    def test_two_rows_under_one_key_are_kept_and_resolved(self):
        a, b = self.notes_db("a.db"), self.notes_db("b.db")
        self.assertIn("no conflicts", self.ok("conflicts", "--db", a))
        sqlite(a, "INSERT INTO notes (title, body) VALUES ('from a', 'a body')")
        sqlite(b, "INSERT INTO notes (title, body) VALUES ('from b', 'b''s body')")
        self.exchange(a, b)
        # The first made keeps id 1 on both; the other is kept aside, listed alike.
        self.assert_same_rows(a, b, "SELECT * FROM notes ORDER BY id")
        self.assertEqual(sqlite(a, "SELECT title FROM notes").strip(), "from a")
        ca, cb = self.conflicts(a), self.conflicts(b)
        self.assertEqual(ca, cb)
        self.assertEqual(len(ca), 1)
        kept = ca[0]
        self.assertEqual((kept["table"], kept["key"]), ("notes", 1))
        self.assertEqual(kept["row"], {"id": 1, "title": "from b", "body": "b's body"})
        text = self.ok("conflicts", "--db", a)
        self.assertIn(f"notes 1  {kept['incarnation']}  created ", text)
        self.assertIn("    body = 'b''s body'\n", text)
        self.assertIn("1 row kept aside", text)
        # Kept under a new key on b; the choice reaches a.
        out = self.ok("conflicts", "keep", "--db", b, "notes", "1", kept["incarnation"])
        self.assertEqual(out, "kept: inserted into notes as key 2; the row aside is discarded\n")
        self.exchange(a, b)
        self.assert_same_rows(a, b, "SELECT * FROM notes ORDER BY id")
        self.assertEqual(sqlite(a, "SELECT group_concat(id || '=' || title, ',') FROM notes").strip(),
                         "1=from a,2=from b")
        self.assertEqual(self.conflicts(a), [])
        # Resolved already: nothing to discard, said in one line.
        self.fails(2, "conflicts", "discard", "--db", a, "notes", "1", kept["incarnation"],
                   contains=["no row of notes with key 1 is kept aside as " + kept["incarnation"]])

    def test_discard(self):
        a, b = self.notes_db("a.db"), self.notes_db("b.db")
        sqlite(a, "INSERT INTO notes (title) VALUES ('a')")
        sqlite(b, "INSERT INTO notes (title) VALUES ('b')")
        self.exchange(a, b)
        [kept] = self.conflicts(b)
        self.ok("conflicts", "discard", "--db", a, "notes", "1", kept["incarnation"])
        self.exchange(a, b)
        self.assertEqual((self.conflicts(a), self.conflicts(b)), ([], []))
        self.assertEqual(sqlite(b, "SELECT count(*) FROM notes").strip(), "1")

    def test_natural_keys_declared_per_device(self):
        self.need_sqlite3()
        a, b = self.path("a.db"), self.path("b.db")
        schemas = "tests/data/schemas/accounts"
        out = self.ok("migrate", "--db", a, "--schemas", schemas, "--no-backup")
        self.assertIn("keys chosen per device at version 1 (1 table): accounts\n", out)
        self.ok("migrate", "--db", b, "--schemas", schemas, "--no-backup")
        sqlite(a, "INSERT INTO accounts VALUES ('Ann@x.org', 'Ann A'); "
                  "INSERT INTO counters VALUES (1, 5)")
        time.sleep(0.01)
        sqlite(b, "INSERT INTO accounts VALUES ('ann@x.org', 'Ann B'); "
                  "INSERT INTO counters VALUES (1, 7)")
        self.exchange(a, b)
        self.assert_same_rows(a, b, "SELECT * FROM accounts")
        self.assert_same_rows(a, b, "SELECT * FROM counters")
        self.assertEqual(sqlite(a, "SELECT * FROM accounts").strip(), "Ann@x.org|Ann A")
        self.assertEqual(sqlite(a, "SELECT * FROM counters").strip(), "1|7")  # merged
        [kept] = self.conflicts(a)
        self.assertEqual(self.conflicts(b), [kept])
        self.assertEqual((kept["table"], kept["key"]), ("accounts", "ann@x.org"))
        self.assertEqual(kept["row"], {"email": "ann@x.org", "name": "Ann B"})
        # Its key is no rowid: keeping it needs a new one.
        self.fails(2, "conflicts", "keep", "--db", b, "accounts", "ann@x.org",
                   kept["incarnation"],
                   contains=["the kept row needs a new key", "--as VALUE"])
        self.fails(2, "conflicts", "--db", b, "--as", "x",
                   contains=["--as gives a kept row's new key: only with keep"])
        out = self.ok("conflicts", "keep", "--db", b, "--as", "ann.b@x.org", "accounts",
                      "'ann@x.org'", kept["incarnation"])
        self.assertEqual(out, "kept: inserted into accounts as key ann.b@x.org; the row aside "
                              "is discarded\n")
        self.exchange(a, b)
        self.assert_same_rows(a, b, "SELECT * FROM accounts ORDER BY email")
        self.assertEqual(sqlite(a, "SELECT count(*) FROM accounts").strip(), "2")
        self.assertEqual(self.conflicts(a), [])

    def test_bad_usage(self):
        a = self.notes_db("a.db")
        self.fails(2, "conflicts", contains=["--db FILE is required"])
        self.fails(2, "conflicts", "resolve", "--db", a, contains=["unknown action 'resolve'"])
        self.fails(2, "conflicts", "keep", "--db", a, "notes",
                   contains=["keep expects TABLE KEY INCARNATION, got 1 arguments"])
        self.fails(2, "conflicts", "--db", a, "--format", "toml",
                   contains=["--format must be text or json"])


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
