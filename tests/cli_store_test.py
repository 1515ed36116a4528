#!/usr/bin/python3
"""Command-line tests of stemma's database commands: migrate, status, rollback,
restore and history --db, end to end, with writes made by the real sqlite3 shell.

Run by ctest as `python3 tests/cli_store_test.py PATH/TO/stemma` from the source root.
"""
import glob
import hashlib
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import tomli as toml_reader
except ImportError:  # pragma: no cover - Debian 12 has python3-tomli; 3.11 has tomllib
    import tomllib as toml_reader

STEMMA = None
TASKS = "schemas/tasks"
DATA = "tests/data/schemas"
SQLITE3 = shutil.which("sqlite3")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run(*args, **kw):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=120, **kw)
    return p.returncode, p.stdout, p.stderr


def sql(db, statements):
    """Runs SQL with the sqlite3 shell, as a user or another program would."""
    p = subprocess.run([SQLITE3, "-bail", db, statements], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"sqlite3 {db} {statements!r}: {p.stderr}")
    return p.stdout.strip()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-cli-store-")
        self.db = os.path.join(self.tmp, "app.db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def collect(self, db=None):
        """Runs a stemma command that turns queued writes into operations."""
        self.ok("changes", "--db", db or self.db, "-o", os.path.join(self.tmp, "collect.stmb"))

    def ok(self, *args):
        code, out, err = run(*args)
        self.assertEqual(code, 0, f"stemma {' '.join(args)}: exit {code}, stderr {err!r}")
        self.assertEqual(err, "")
        return out

    def fails(self, code_expected, *args, contains=(), stdout_empty=True):
        code, out, err = run(*args)
        self.assertEqual(code, code_expected, f"stemma {' '.join(args)}: stderr {err!r}")
        if stdout_empty:
            self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
        for c in contains:
            self.assertIn(c, lines[0])
        return lines[0]

    def status(self, schemas=TASKS, db=None):
        return json.loads(self.ok("status", "--db", db or self.db, "--schemas", schemas,
                                  "--format", "json"))

    def lineage(self, schemas=TASKS):
        return json.loads(self.ok("history", "--schemas", schemas, "--format", "json"))["versions"]

    def copy_set(self, src=TASKS, name="tasks"):
        dst = os.path.join(self.tmp, name)
        shutil.copytree(src, dst)
        return dst

    def backups(self):
        return sorted(glob.glob(self.db + ".v*.bak"))


class Help(Base):
    def test_help_everywhere(self):
        out = self.ok("--help")
        for cmd in ["migrate", "status", "rollback", "restore"]:
            self.assertIn(f"  {cmd} ", out)
            self.assertTrue(self.ok(cmd, "--help").startswith(f"usage: stemma {cmd}"))
        self.assertIn("stemma history --db FILE", self.ok("history", "--help"))

    def test_bad_usage_is_exit_2_with_one_line(self):
        self.fails(2, "migrate", contains=["--db FILE and --schemas DIR are required"])
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS, "--to", "two",
                   contains=["--to must be a version number, not 'two'"])
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS, "--bogus",
                   contains=["unknown option '--bogus'"])
        self.fails(2, "status", "--db", self.db, "--schemas", TASKS, "--format", "toml",
                   contains=["--format must be text or json"])
        self.fails(2, "rollback", "--db", self.db, "--schemas", TASKS,
                   contains=["--to N are required"])
        self.fails(2, "restore", "--db", self.db, contains=["--from BACKUP"])
        self.fails(2, "history", "--db", self.db, "--schemas", TASKS, contains=["not both"])
        self.fails(2, "history", contains=["--schemas DIR is required"])
        self.fails(2, "history", "--db", self.db, contains=["no such database file"])
        self.assertFalse(os.path.exists(self.db))


class Migrate(Base):
    def test_fresh_migrate_then_status_and_history(self):
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        self.assertNotIn("backup:", out)  # a new file: nothing to back up
        for n, f in enumerate(["001_initial_schema", "002_add_priority", "003_add_task_tags",
                               "004_add_comments"], 1):
            self.assertIn(f"applied v{n}  {TASKS}/{f}.sql", out)
        self.assertIn("now at version 4", out)
        ids = [v["id"] for v in self.lineage()]
        st = self.status()
        self.assertEqual((st["version"], st["id"], st["pending"], st["drift"], st["prepared"]),
                         (4, ids[3], [], [], True))
        self.assertEqual(st["head"], {"version": 4, "id": ids[3]})
        text = self.ok("status", "--db", self.db, "--schemas", TASKS)
        self.assertIn("version 4, id " + ids[3][:12], text)
        self.assertIn("pending   0", text)
        self.assertIn("drift     none", text)
        # The record is readable in the sqlite3 shell.
        rows = sql(self.db, "SELECT version, version_id, checksum FROM schema_version").splitlines()
        self.assertEqual([r.split("|")[1] for r in rows], ids)
        h = json.loads(self.ok("history", "--db", self.db, "--format", "json"))
        self.assertEqual([v["version"] for v in h["versions"]], [1, 2, 3, 4])
        self.assertEqual([v["id"] for v in h["versions"]], ids)
        for v in h["versions"]:
            self.assertRegex(v["applied_at"], TIME)
        self.assertEqual(h["versions"][1]["description"], "Tasks get a priority")
        t = toml_reader.loads(self.ok("history", "--db", self.db, "--format", "toml"))
        self.assertEqual(t["versions"], h["versions"])
        text = self.ok("history", "--db", self.db)
        self.assertIn("4 versions applied, now at v4", text)
        self.assertRegex(text, r"v2  \d{4}-\d\d-\d\dT[0-9:.]+Z  " + ids[1][:12] +
                         "  Tasks get a priority")

    def test_writes_from_the_sqlite3_shell_are_captured(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        sql(self.db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                     "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'Milk');"
                     "DELETE FROM tasks WHERE id = 't1';")
        # Queued by the triggers; the next stemma command makes them operations.
        self.assertEqual(sql(self.db, "SELECT count(*) FROM stemma_pending"), "3")
        self.collect()
        self.assertEqual(sql(self.db, "SELECT count(*) FROM stemma_pending"), "0")
        out = sql(self.db, "SELECT sum(n), count(DISTINCT i.id), lower(hex(max(i.id))) "
                           "FROM stemma_oplog JOIN stemma_ids AS i ON i.no = version")
        count, distinct, vid = out.split("|")
        # The list's three columns, and t1's delete: it was gone before stemma looked.
        self.assertEqual(int(count), 4)
        self.assertEqual((distinct, vid), ("1", self.lineage()[3]["id"]))

    def test_to_backup_and_rerun(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "2")
        st = self.status()
        self.assertEqual(st["version"], 2)
        self.assertEqual(st["pending"], [
            {"version": 3, "file": TASKS + "/003_add_task_tags.sql",
             "description": "Tasks carry their tags as a JSON array"},
            {"version": 4, "file": TASKS + "/004_add_comments.sql",
             "description": "Comments on tasks"}])
        sql(self.db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home')")
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        first = out.splitlines()[0]
        self.assertTrue(first.startswith("backup: "), out)
        path = first[len("backup: "):]
        self.assertRegex(os.path.basename(path), r"^app\.db\.v2-\d{8}T\d{6}Z\.bak$")
        self.assertEqual(self.backups(), [path])
        # The backup is a whole database at the old version, data included.
        self.assertEqual(sql(path, "SELECT max(version) FROM schema_version"), "2")
        self.assertEqual(sql(path, "SELECT name FROM lists"), "Home")
        self.assertEqual(sql(path, "PRAGMA integrity_check"), "ok")
        # Again: nothing to do, nothing written, no second backup.
        before = sha256(self.db)
        self.assertIn("nothing to do", self.ok("migrate", "--db", self.db, "--schemas", TASKS))
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [path])
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS, "--to", "1",
                   contains=["at version 4, above 1", "stemma rollback --to 1"])
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS, "--to", "9",
                   contains=["there is no version 9", "has 4 migrations"])

    def test_no_backup(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "1")
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--no-backup")
        self.assertNotIn("backup", out)
        self.assertEqual(self.backups(), [])

    def test_dry_run_leaves_the_file_byte_for_byte(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "2")
        before = sha256(self.db)
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--dry-run")
        self.assertIn("is at version 2", out)
        self.assertIn("drift: none", out)
        self.assertIn(f"v3  {TASKS}/003_add_task_tags.sql  Tasks carry their tags", out)
        self.assertIn("\n    ALTER TABLE tasks ADD COLUMN tags TEXT DEFAULT '[]';\n", out)
        self.assertIn("\n    CREATE INDEX comments_by_task ON comments(task_id);\n", out)
        self.assertIn("nothing was changed", out)
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])
        self.assertEqual(self.status()["version"], 2)
        # A file that does not exist is not created, by a dry run or by status.
        other = os.path.join(self.tmp, "new.db")
        out = self.ok("migrate", "--db", other, "--schemas", TASKS, "--dry-run")
        self.assertIn("does not exist: it would be created", out)
        st = self.status(db=other)
        self.assertEqual((st["exists"], st["version"], st["id"], len(st["pending"])),
                         (False, 0, None, 4))
        self.assertFalse(os.path.exists(other))

    def test_a_composite_key_table_syncs_unless_excluded(self):
        s = DATA + "/composite-key"
        self.ok("migrate", "--db", self.db, "--schemas", s)
        sql(self.db, "INSERT INTO notes VALUES ('a', 'x'), ('b', 'y');"
                     "INSERT INTO note_links VALUES ('a', 'b');")
        self.collect()
        self.assertEqual(sql(self.db, "SELECT group_concat(tbl) FROM "
                                      "(SELECT DISTINCT tbl FROM stemma_oplog ORDER BY tbl)"),
                         "note_links,notes")
        other = os.path.join(self.tmp, "other.db")
        self.ok("migrate", "--db", other, "--schemas", s, "--exclude", "note_links")
        sql(other, "INSERT INTO notes VALUES ('a', 'x'), ('b', 'y');"
                   "INSERT INTO note_links VALUES ('a', 'b');")
        self.collect(db=other)
        self.assertEqual(sql(other, "SELECT DISTINCT tbl FROM stemma_oplog"), "notes")


class Unsynced(Base):
    """Every table stemma cannot sync is named at once, each with its reason: in a dry
    run, a run, a run with nothing to do, and status; the composite key is synced."""
    SET = DATA + "/unsynced"
    NO_KEY = ("  peers: no primary key (rowids differ between devices); add one in a "
              "migration, or keep it local with --exclude\n")
    VIRTUAL = ("  search_fts: a virtual table (triggers cannot capture its rows); nor are the "
               "tables its module keeps (search_fts_*): each device keeps its own, which "
               "triggers that feed it from synced tables keep in step as their rows arrive\n")
    EXCLUDED = "  drafts: excluded (stemma migrate --exclude)\n"
    PER_DEVICE = ("keys chosen per device at version 1 (1 table): drafts\n  rows two devices "
                  "create apart under one key are never merged: the first made keeps the key, "
                  "the other is kept aside (stemma conflicts)\n")

    def test_migrate_dry_run_run_and_status_name_them(self):
        block = "not synced at version 2 (3 tables):\n" + self.EXCLUDED + self.NO_KEY + \
            self.VIRTUAL
        out = self.ok("migrate", "--db", self.db, "--schemas", self.SET, "--exclude", "drafts",
                      "--dry-run")
        self.assertIn("\n\n" + block + "\ndry run: nothing was changed\n", out)
        self.assertFalse(os.path.exists(self.db))
        out = self.ok("migrate", "--db", self.db, "--schemas", self.SET, "--to", "1")
        self.assertTrue(out.endswith("(id %s)\nnot synced at version 1 (1 table):\n%s%s"
                                     % (self.lineage(self.SET)[0]["id"][:12], self.NO_KEY,
                                        self.PER_DEVICE)), out)
        # drafts' integer key is its rowid: named as chosen per device, in status too.
        self.assertIn("\nkeys      chosen per device in 1 table: drafts\n",
                      self.ok("status", "--db", self.db, "--schemas", self.SET))
        self.assertEqual(self.status(self.SET)["keys_per_device"], ["drafts"])
        # What syncs is named as well as what does not.
        self.assertIn("\nsynced    3 tables: drafts, note_links, notes\n",
                      self.ok("status", "--db", self.db, "--schemas", self.SET))
        self.assertEqual(self.status(self.SET)["synced"], ["drafts", "note_links", "notes"])
        out = self.ok("migrate", "--db", self.db, "--schemas", self.SET, "--exclude", "drafts")
        self.assertTrue(out.endswith("\n" + block), out)
        # Nothing to do: said again, the exclusion remembered.
        out = self.ok("migrate", "--db", self.db, "--schemas", self.SET)
        self.assertEqual(out, f"{self.db} is at version 2: nothing to do\n" + block)
        text = self.ok("status", "--db", self.db, "--schemas", self.SET)
        self.assertIn("\nunsynced  3 tables\n" + self.EXCLUDED + self.NO_KEY + self.VIRTUAL,
                      text)
        # note_links (a composite key) is synced, and so named only there; drafts no more.
        self.assertIn("\nsynced    2 tables: note_links, notes\nunsynced", text)
        self.assertEqual(text.count("note_links"), 1)
        st = self.status(self.SET)
        self.assertEqual([(u["table"], u["kind"]) for u in st["unsynced"]],
                         [("drafts", "excluded"), ("peers", "no_key"), ("search_fts", "virtual")])
        self.assertEqual(st["unsynced"][1]["reason"], self.NO_KEY.strip()[len("peers: "):])
        self.assertEqual(st["keys_per_device"], [])  # drafts is excluded now
        # What is named is what capture does: the composite key and notes are captured.
        sql(self.db, "INSERT INTO notes VALUES ('a', 't', 'x'), ('b', 'u', 'y');"
                     "INSERT INTO note_links VALUES ('a', 'b');"
                     "INSERT INTO drafts (body) VALUES ('d');"
                     "INSERT INTO peers VALUES ('h', 1);"
                     "INSERT INTO search_fts (rowid, title, body) SELECT rowid, title, body "
                     "FROM notes;")
        self.collect()
        self.assertEqual(sql(self.db, "SELECT group_concat(tbl) FROM "
                                      "(SELECT DISTINCT tbl FROM stemma_oplog ORDER BY tbl)"),
                         "note_links,notes")

    def test_every_table_synced_says_so_in_status_only(self):
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        self.assertNotIn("not synced", out)
        self.assertIn("\nunsynced  none\n", self.ok("status", "--db", self.db, "--schemas", TASKS))
        self.assertEqual(self.status()["unsynced"], [])
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--dry-run")
        self.assertNotIn("not synced", out)


class KeysChange(Base):
    """A migration that changes how a table's keys name rows says what that means."""
    SET = DATA + "/keys-change"
    CHANGE = ("keys change rule between versions 1 and 2 (1 table): tags\n  rows synced before "
              "keep what they were: merged rows are not split again, rows kept apart are not "
              "merged (not carried across versions yet)\n")

    def test_dry_run_and_run_name_the_table(self):
        self.ok("migrate", "--db", self.db, "--schemas", self.SET, "--to", "1")
        self.assertIn(self.CHANGE, self.ok("migrate", "--db", self.db, "--schemas", self.SET,
                                           "--dry-run"))
        out = self.ok("migrate", "--db", self.db, "--schemas", self.SET)
        self.assertTrue(out.endswith(self.CHANGE), out)
        self.assertNotIn("keys change", self.ok("migrate", "--db", self.db, "--schemas",
                                                self.SET))


class Drift(Base):
    def test_a_changed_file(self):
        s = self.copy_set()
        self.ok("migrate", "--db", self.db, "--schemas", s, "--to", "3")
        with open(os.path.join(s, "002_add_priority.sql"), "a") as f:
            f.write("-- edited after release\n")
        before = sha256(self.db)
        msg = f"{s}/002_add_priority.sql: changed since it was applied (checksum differs)"
        self.fails(2, "migrate", "--db", self.db, "--schemas", s, contains=[msg])
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])
        st = self.status(schemas=s)
        self.assertEqual(st["drift"], [msg])
        self.assertEqual(st["version"], 3)
        text = self.ok("status", "--db", self.db, "--schemas", s)
        self.assertIn("drift     1 problem", text)
        self.assertIn(msg, text)
        # A dry run shows it too, and says migrate would refuse.
        code, out, err = run("migrate", "--db", self.db, "--schemas", s, "--dry-run")
        self.assertEqual(code, 2)
        self.assertIn(msg, out)
        self.assertIn(msg, err)

    def test_a_version_the_directory_lacks(self):
        s = self.copy_set()
        self.ok("migrate", "--db", self.db, "--schemas", s)
        for f in glob.glob(os.path.join(s, "004_*")):
            os.unlink(f)
        self.fails(2, "migrate", "--db", self.db, "--schemas", s,
                   contains=["holds version 4, which " + s + " lacks", "Comments on tasks"])
        self.fails(2, "rollback", "--db", self.db, "--schemas", s, "--to", "1",
                   contains=["holds version 4"])
        self.assertEqual(len(self.status(schemas=s)["drift"]), 1)

    def test_an_older_tool_table_is_adopted(self):
        with open(TASKS + "/001_initial_schema.sql") as f:
            initial = f.read()
        sql(self.db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                     "applied_at TEXT NOT NULL, description TEXT NOT NULL);" + initial +
                     "INSERT INTO schema_version VALUES (1, '2021-05-01 10:00:00', 'initial');"
                     "INSERT INTO lists (id, name) VALUES ('l1', 'Home');")
        st = self.status()
        self.assertEqual((st["version"], st["adopt"], st["prepared"], st["drift"]),
                         (1, True, False, []))
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        self.assertIn("backup: ", out)
        self.assertIn("adopted schema_version", out)
        self.assertIn("applied v4", out)
        h = json.loads(self.ok("history", "--db", self.db, "--format", "json"))
        self.assertEqual([v["id"] for v in h["versions"]], [v["id"] for v in self.lineage()])
        self.assertEqual(h["versions"][0]["applied_at"], "2021-05-01 10:00:00")
        self.assertEqual(h["versions"][0]["description"], "initial")
        self.assertEqual(self.status()["adopt"], False)
        (path,) = self.backups()
        self.assertEqual(sql(path, "SELECT count(*) FROM pragma_table_info('schema_version')"),
                         "3")

    def test_an_older_tool_table_with_a_version_the_directory_lacks(self):
        sql(self.db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                     "applied_at TEXT NOT NULL, description TEXT NOT NULL);"
                     "INSERT INTO schema_version VALUES (1, 't', 'a'), (2, 't', 'b'), "
                     "(3, 't', 'c'), (4, 't', 'd'), (5, 't', 'e');")
        before = sha256(self.db)
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS,
                   contains=["holds version 5, which schemas/tasks lacks"])
        self.assertEqual(sha256(self.db), before)


class Failures(Base):
    def test_a_failing_migration_names_file_line_and_statement(self):
        s = DATA + "/fails-on-data"
        self.ok("migrate", "--db", self.db, "--schemas", s, "--to", "1")
        sql(self.db, "INSERT INTO items (code) VALUES ('x'), ('x');")
        code, out, err = run("migrate", "--db", self.db, "--schemas", s)
        self.assertEqual(code, 2, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(f"stemma migrate: {s}/002_unique_codes.sql:3: UNIQUE constraint failed",
                      lines[0])
        self.assertIn("(in: CREATE UNIQUE INDEX items_by_code ON items(code);", lines[0])
        self.assertIn("still at version 1", lines[0])
        self.assertIn("backup: " + self.db + ".v1-", lines[0])
        self.assertTrue(out.startswith("backup: "), out)
        self.assertEqual(self.status(schemas=s)["version"], 1)
        self.assertEqual(sql(self.db, "SELECT count(*) FROM pragma_table_info('items') "
                                      "WHERE name = 'note'"), "0")

    def test_a_dry_run_meets_what_the_run_would_on_the_data(self):
        s = DATA + "/fails-on-data"
        self.ok("migrate", "--db", self.db, "--schemas", s, "--to", "1")
        sql(self.db, "INSERT INTO items (code) VALUES ('x'), ('x');")
        before = sha256(self.db)
        code, out, err = run("migrate", "--db", self.db, "--schemas", s, "--dry-run")
        self.assertEqual(code, 2, err)
        stop = (f"{s}/002_unique_codes.sql:3: UNIQUE constraint failed: items.code (in: CREATE "
                "UNIQUE INDEX items_by_code ON items(code); ); found running the migrations on "
                f"a copy of {self.db}: the run would roll migration 2 back and stop at version 1 "
                "(nothing was changed)")
        self.assertEqual(err, f"stemma migrate: {stop}\n")
        self.assertTrue(out.endswith(f"\nthe run would stop: {stop}\n"), out)
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])
        # Rows that let it through: the dry run says so, and the run does it.
        sql(self.db, "UPDATE items SET code = 'y' WHERE id = 2;")
        self.assertIn("dry run: nothing was changed",
                      self.ok("migrate", "--db", self.db, "--schemas", s, "--dry-run"))
        self.ok("migrate", "--db", self.db, "--schemas", s, "--no-backup")

    def test_a_dry_run_rehearses_as_the_run_does(self):
        # v4 drops a column stemma's capture triggers name: the run drops them first, and
        # so does the rehearsal.
        s = DATA + "/search"
        self.ok("migrate", "--db", self.db, "--schemas", s, "--to", "3")
        sql(self.db, "INSERT INTO notes (id, title, legacy) VALUES ('n1', 'hello', 'old');")
        self.assertIn("dry run: nothing was changed",
                      self.ok("migrate", "--db", self.db, "--schemas", s, "--dry-run"))
        self.ok("migrate", "--db", self.db, "--schemas", s, "--no-backup")
        self.assertEqual(sql(self.db, "SELECT title FROM notes_fts WHERE notes_fts MATCH 'hello'"),
                         "hello")

    def test_a_bad_schema_set_is_refused_before_the_database_is_touched(self):
        self.fails(2, "migrate", "--db", self.db, "--schemas", DATA + "/bad-sql",
                   contains=["002_broken.sql:3:"])
        self.assertFalse(os.path.exists(self.db))

    def test_a_file_that_is_not_sqlite(self):
        with open(self.db, "w") as f:
            f.write("just text, " * 20)
        self.fails(2, "status", "--db", self.db, "--schemas", TASKS,
                   contains=["not a usable SQLite database"])
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS,
                   contains=["not a usable SQLite database"])


class RollbackRestore(Base):
    def test_rollback_then_restore(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        sql(self.db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                     "INSERT INTO tasks (id, list_id, title, tags) VALUES ('t1', 'l1', 'x', '[1]');")
        out = self.ok("rollback", "--db", self.db, "--schemas", TASKS, "--to", "2")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("backup: " + self.db + ".v4-"), out)
        self.assertIn(f"rolled back v4  {TASKS}/004_add_comments.down.sql", lines[1])
        self.assertIn(f"rolled back v3  {TASKS}/003_add_task_tags.down.sql", lines[2])
        self.assertIn("now at version 2", lines[3])
        ids = [v["id"] for v in self.lineage()]
        st = self.status()
        self.assertEqual((st["version"], st["id"], len(st["pending"])), (2, ids[1], 2))
        self.assertEqual(sql(self.db, "SELECT count(*) FROM pragma_table_info('tasks') "
                                      "WHERE name = 'tags'"), "0")
        # Writes after the rollback carry version 2's id.
        sql(self.db, "UPDATE tasks SET title = 'y' WHERE id = 't1'")
        self.collect()
        self.assertEqual(sql(self.db, "SELECT lower(hex(i.id)) FROM stemma_oplog JOIN stemma_ids "
                                      "AS i ON i.no = version ORDER BY hlc DESC LIMIT 1"), ids[1])
        self.fails(2, "rollback", "--db", self.db, "--schemas", TASKS, "--to", "3",
                   contains=["below 3", "stemma migrate --to 3"])
        self.assertIn("nothing to do",
                      self.ok("rollback", "--db", self.db, "--schemas", TASKS, "--to", "2"))
        # Restore the backup taken at version 4.
        bak = lines[0][len("backup: "):]
        out = self.ok("restore", "--db", self.db, "--from", bak)
        saved = out.splitlines()[0]
        self.assertTrue(saved.startswith("backup of the database as it was: " + self.db + ".v2-"),
                        out)
        saved = saved.split(": ", 1)[1]
        self.assertIn("now at version 4", out)
        self.assertEqual(self.status()["version"], 4)
        self.assertEqual(sql(self.db, "SELECT tags FROM tasks"), "[1]")
        # Nothing is lost: the database as it was before the restore is kept.
        self.assertEqual(sql(saved, "SELECT max(version) FROM schema_version"), "2")
        self.assertEqual(sql(saved, "SELECT title FROM tasks"), "y")

    def test_rollback_refuses_a_missing_down_file_even_in_a_dry_run(self):
        s = self.copy_set()
        os.unlink(os.path.join(s, "003_add_task_tags.down.sql"))
        self.ok("migrate", "--db", self.db, "--schemas", s)
        before = sha256(self.db)
        self.fails(2, "rollback", "--db", self.db, "--schemas", s, "--to", "1",
                   contains=[f"{s}/003_add_task_tags.down.sql: missing", "version 3"])
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])
        code, out, err = run("rollback", "--db", self.db, "--schemas", s, "--to", "1",
                             "--dry-run")
        self.assertEqual(code, 2)
        self.assertIn("003_add_task_tags.down.sql: missing", err)
        # Above it is fine, and a dry run shows the down SQL.
        out = self.ok("rollback", "--db", self.db, "--schemas", s, "--to", "3", "--dry-run")
        self.assertIn("004_add_comments.down.sql", out)
        self.assertIn("\n    DROP TABLE comments;\n", out)
        self.assertEqual(sha256(self.db), before)

    def test_restore_refuses_bad_backups(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        before = sha256(self.db)
        junk = os.path.join(self.tmp, "junk.bak")
        with open(junk, "w") as f:
            f.write("not a database " * 10)
        self.fails(2, "restore", "--db", self.db, "--from", junk,
                   contains=["junk.bak: not a usable SQLite database"])
        self.fails(2, "restore", "--db", self.db, "--from", junk + ".missing",
                   contains=["no such database file"])
        self.fails(2, "restore", "--db", self.db, "--from", self.db,
                   contains=["is the database itself"])
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])


class Progress(Base):
    """A long migration shows its time and the rows it has written on a terminal
    (stderr, as git and curl draw theirs), and nothing when stderr is not one or with
    --quiet; a bundle applied shows how far it has got.

    "Long" is a step that runs over a second, and no amount of data makes that true on
    every machine. So the migration is stopped (SIGSTOP) for 1.1 s in the middle of its
    step, which then runs over a second however fast the machine. The middle is known
    without a race: once the process has used more CPU than a whole migration of the
    same set on an empty table takes (measured first), it can only be in the step that
    counts every triple of 500 rows: 125 million of them, some thirty times that much
    CPU on any machine, fast or slow, since both are the same machine's work."""

    SLOW = DATA + "/slow-on-data"

    def slow_db(self, name, rows=500):
        db = os.path.join(self.tmp, name)
        self.ok("migrate", "--db", db, "--schemas", self.SLOW, "--to", "1")
        sql(db, "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < %d)"
                " INSERT INTO samples SELECT i FROM r;" % rows)
        return db

    @staticmethod
    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def in_the_step_after(self, db=None, schemas=None):
        """CPU ticks past which a migration of the slow set is in its long step: twice
        what a whole migration of it with no samples (db: that database, at version 1)
        uses, and 20 ms more."""
        db = db or self.slow_db("empty.db", rows=0)
        p = subprocess.Popen([STEMMA, "migrate", "--db", db, "--schemas", schemas or self.SLOW,
                              "--no-backup"], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        self.assertEqual(p.returncode, 0)
        cpu = usage.ru_utime + usage.ru_stime
        return int((2 * cpu + 0.02) * os.sysconf("SC_CLK_TCK")) + 1

    def migrate_with_a_pause(self, db, stderr, ticks, *extra, schemas=None,
                             step="002_count_triples"):
        """Migrates db, stopped for 1.1 s in its long step, stderr where given; returns
        its stdout."""
        p = subprocess.Popen([STEMMA, "migrate", "--db", db, "--schemas", schemas or self.SLOW,
                              "--no-backup", *extra], stdout=subprocess.PIPE, stderr=stderr)
        try:
            while self.cpu_ticks(p.pid) < ticks:
                self.assertIsNone(p.poll(), "the migration was over before its step ran long")
                time.sleep(0.001)
            os.kill(p.pid, signal.SIGSTOP)
            time.sleep(1.1)  # a stopped process stays stopped: the step's time only grows
            os.kill(p.pid, signal.SIGCONT)
            out = p.stdout.read()
            self.assertEqual(p.wait(timeout=120), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
        out = out.decode()
        ms = int(re.search(step + r"\.sql .*\((\d+) ms\)", out).group(1))
        self.assertGreaterEqual(ms, 1000, "the step was not long: nothing tested")
        return out

    @staticmethod
    def on_a_terminal(run):
        """What run(slave) drew on a terminal: bytes read from its master end."""
        master, slave = pty.openpty()
        try:
            run(slave)
            os.close(slave)
            slave = None
            seen = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not chunk:
                    break
                seen += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        return seen.decode()

    def test_a_long_step_on_a_terminal_and_not(self):
        ticks = self.in_the_step_after()
        err_file = os.path.join(self.tmp, "piped.err")
        with open(err_file, "wb") as err:
            out = self.migrate_with_a_pause(self.slow_db("piped.db"), err, ticks)
        self.assertIn("applied v2", out)
        with open(err_file) as f:
            self.assertEqual(f.read(), "")
        seen = self.on_a_terminal(
            lambda tty: self.migrate_with_a_pause(self.slow_db("tty.db"), tty, ticks))
        self.assertRegex(seen, r"\r\033\[Kv2 tests/data/schemas/slow-on-data/002_count_triples\.sql:"
                               r" running for \d+\.\d s")
        self.assertTrue(seen.endswith("\r\033[K"), repr(seen[-20:]))
        quiet = self.on_a_terminal(
            lambda tty: self.migrate_with_a_pause(self.slow_db("quiet.db"), tty, ticks,
                                                  "--quiet"))
        self.assertEqual(quiet, "")

    def test_a_step_that_writes_shows_its_rows(self):
        """The rows a long step has written, counted as SQLite writes them: a step that
        copies 20,000 rows and then counts triples is stopped in its count (past the
        CPU the same migration takes with no samples), so the line drawn after shows
        the copy whole."""
        schemas = os.path.join(self.tmp, "copy-then-count")
        os.mkdir(schemas)
        with open(os.path.join(schemas, "001_tables.sql"), "w") as f:
            f.write("CREATE TABLE samples (n INTEGER);\n"
                    "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);\n")
        with open(os.path.join(schemas, "002_copy_and_count.sql"), "w") as f:
            # Not CREATE TABLE AS: SQLite counts (and tells the update hook of) the rows
            # of an INSERT, not those a table is created with.
            f.write("CREATE TABLE copy (id INTEGER PRIMARY KEY, v TEXT);\n"
                    "INSERT INTO copy SELECT * FROM big;\n"
                    "CREATE TABLE triple_counts AS\n"
                    "    SELECT count(*) AS c FROM samples AS a, samples AS b, samples AS c;\n")

        def at_v1(name, samples):
            db = os.path.join(self.tmp, name)
            self.ok("migrate", "--db", db, "--schemas", schemas, "--to", "1", "--no-backup")
            sql(db, "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                    "WHERE i < 20000) INSERT INTO big SELECT i, 'row ' || i FROM r;"
                    "INSERT INTO samples SELECT id FROM big WHERE id <= %d;" % samples)
            return db

        ticks = self.in_the_step_after(at_v1("measured.db", 0), schemas)
        seen = self.on_a_terminal(
            lambda tty: self.migrate_with_a_pause(at_v1("rows.db", 500), tty, ticks,
                                                  schemas=schemas, step="002_copy_and_count"))
        self.assertIn("002_copy_and_count.sql: running for", seen)
        rows = re.findall(r"002_copy_and_count\.sql: running for \d+\.\d s, ([\d,]+) rows "
                          r"written", seen)
        self.assertEqual(set(rows), {"20,000"}, repr(seen[-300:]))

    def test_a_bundle_applied_on_a_terminal(self):
        newer = os.path.join(self.tmp, "newer.db")
        self.ok("migrate", "--db", newer, "--schemas", TASKS, "--no-backup")
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--no-backup")
        sql(newer, "INSERT INTO lists (id, name) VALUES ('l1', 'home')")
        bundle = os.path.join(self.tmp, "b.bundle")
        self.ok("changes", "--db", newer, "-o", bundle)

        def run(tty, *extra):
            p = subprocess.run([STEMMA, "apply", "--db", self.db, *extra, bundle],
                               stdout=subprocess.PIPE, stderr=tty, timeout=60)
            self.assertEqual(p.returncode, 0)
            self.assertIn(b"applied", p.stdout)

        seen = self.on_a_terminal(run)
        self.assertRegex(seen, r"^\r\033\[Kapplying: \d+%, [\d,]+ operations")
        self.assertTrue(seen.endswith("\r\033[K"), repr(seen))
        self.assertEqual(self.on_a_terminal(lambda tty: run(tty, "--quiet")), "")


class ReplayAfterMigrate(Base):
    """Operations from a newer peer wait, parked, in an older database, and apply by
    themselves when that database migrates to the version that has their column."""

    def test_parked_operations_replay(self):
        newer = os.path.join(self.tmp, "newer.db")
        self.ok("migrate", "--db", newer, "--schemas", TASKS, "--to", "3", "--no-backup")
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "2", "--no-backup")
        sql(newer, "INSERT INTO lists (id, name) VALUES ('l1', 'home');"
                   "INSERT INTO tasks (id, list_id, title, tags) VALUES ('t1', 'l1', 'milk', '[\"shop\"]');")
        bundle = os.path.join(self.tmp, "b.bundle")
        self.ok("changes", "--db", newer, "-o", bundle)
        code, out, err = run("apply", "--db", self.db, bundle)
        self.assertEqual(code, 0, err)
        self.assertIn("parked 1", out)
        self.assertIn("tasks.tags", err)
        self.assertEqual(sql(self.db, "SELECT title FROM tasks"), "milk")
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "3", "--no-backup")
        self.assertIn("replayed 1 parked operation (0 still parked)", out)
        self.assertEqual(sql(self.db, "SELECT tags FROM tasks WHERE id = 't1'"), '["shop"]')
        self.assertEqual(sql(self.db, "SELECT count(*) FROM stemma_parked"), "0")


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
