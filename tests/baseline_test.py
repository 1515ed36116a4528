#!/usr/bin/python3
"""Adopting a database made without stemma (`stemma migrate --baseline`), and naming the
tables that will not sync, end to end: databases built by the real sqlite3 shell from a
schema set's files, the real stemma binary, operations carried between databases in
bundles (`changes`, `apply`).

Run by ctest as `python3 tests/baseline_test.py PATH/TO/stemma` from the source root.
The real histories are tests/baseline_realschema_test.py's.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from cli_store_test import sha256

STEMMA = None
TASKS = "schemas/tasks"
ADOPT = "tests/data/schemas/adopt"
SQLITE3 = shutil.which("sqlite3")


def run(*args):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def sql(db, statements):
    """Runs SQL with the sqlite3 shell, as the application or a person would."""
    p = subprocess.run([SQLITE3, "-bail", db], input=statements, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"sqlite3 {db}: {p.stderr}")
    return p.stdout.strip()


def files_of(schemas, n):
    """The first n migrations of a schema set, in order."""
    return sorted(f for f in glob.glob(os.path.join(schemas, "*.sql"))
                  if not f.endswith(".down.sql"))[:n]


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-baseline-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def made_by_shell(self, name, schemas, n, rows=""):
        """A database whose tables the sqlite3 shell made from the first n migrations of
        schemas, no stemma involved, with rows written after."""
        db = self.path(name)
        for f in files_of(schemas, n):
            with open(f) as text:
                sql(db, text.read())
        if rows:
            sql(db, rows)
        return db

    def ok(self, *args):
        code, out, err = run(*args)
        self.assertEqual(code, 0, f"stemma {' '.join(args)}: exit {code}, stderr {err!r}")
        self.assertEqual(err, "")
        return out

    def refused(self, *args):
        """A refusal: exit 2, stdout empty, the error on stderr; returns stderr's lines."""
        code, out, err = run(*args)
        self.assertEqual(code, 2, f"stemma {' '.join(args)}: stdout {out!r} stderr {err!r}")
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("stemma migrate: "), err)
        return err.splitlines()

    def status(self, db, schemas):
        return json.loads(self.ok("status", "--db", db, "--schemas", schemas, "--format",
                                  "json"))

    def records(self, db):
        return sql(db, "SELECT version, description, version_id, checksum FROM schema_version "
                       "ORDER BY version")

    def carry(self, src, dst, schemas, parks=False):
        """What dst lacks of src's operations, in a bundle, applied to dst (parks: some
        park there, which apply warns of on stderr)."""
        vector, bundle = self.path("dst.vector"), self.path("src.bundle")
        self.ok("vector", "--db", dst, "-o", vector)
        self.ok("changes", "--db", src, "--since", vector, "-o", bundle)
        if not parks:
            return self.ok("apply", "--db", dst, "--schemas", schemas, bundle)
        code, out, err = run("apply", "--db", dst, "--schemas", schemas, bundle)
        self.assertEqual(code, 0, err)
        return out

    def rows(self, db, query):
        return sql(db, query).splitlines()


class MatchesAVersion(Base):
    ROWS = ("INSERT INTO lists (id, name) VALUES ('l1', 'home'), ('l2', 'work');"
            "INSERT INTO tasks (id, list_id, title, tags) VALUES ('t1', 'l1', 'milk', '[\"x\"]');"
            "INSERT INTO tags (id, label) VALUES ('g1', 'urgent');")

    def test_refused_without_baseline_and_nothing_changed(self):
        db = self.made_by_shell("app.db", TASKS, 3, self.ROWS)
        before = sha256(db)
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("has no schema_version, yet holds tables of schemas/tasks", lines[0])
        self.assertIn("'stemma migrate --baseline'", lines[0])
        self.assertIn("nothing was changed", lines[0])
        self.assertEqual(sha256(db), before)
        self.assertEqual(glob.glob(db + ".v*.bak"), [], "no backup for a refusal")
        # status says what it is, and which version its schema is
        st = self.status(db, TASKS)
        self.assertTrue(st["untracked"])
        self.assertEqual(st["baseline"], {"versions": [3], "closest": None, "differences": []})
        text = self.ok("status", "--db", db, "--schemas", TASKS)
        self.assertIn("baseline  its schema is version 3's exactly", text)
        self.assertEqual(sha256(db), before)

    def test_dry_run_says_version_3_and_changes_nothing(self):
        db = self.made_by_shell("app.db", TASKS, 3, self.ROWS)
        before = sha256(db)
        out = self.ok("migrate", "--db", db, "--schemas", TASKS, "--baseline", "--dry-run")
        self.assertIn("has no schema_version, and its schema is version 3's exactly", out)
        self.assertIn("would record versions 1 to 3 in schema_version", out)
        self.assertIn("send its 4 rows in synced tables as operations", out)
        self.assertIn("\nv4  schemas/tasks/004_add_comments.sql", out)
        self.assertNotIn("\nv3  ", out)
        self.assertTrue(out.endswith("dry run: nothing was changed\n"), out)
        self.assertEqual(sha256(db), before)

    def test_a_target_below_its_version_is_refused(self):
        db = self.made_by_shell("app.db", TASKS, 3, self.ROWS)
        before = sha256(db)
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS, "--baseline", "--to", "2")
        self.assertIn("its schema is version 3's, above 2: migrate only goes forward", lines[0])
        self.assertEqual(sha256(db), before)

    def test_baseline_records_what_migrate_writes_and_migrates_on(self):
        db = self.made_by_shell("app.db", TASKS, 3, self.ROWS)
        out = self.ok("migrate", "--db", db, "--schemas", TASKS, "--baseline")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith(f"backup: {db}.v0-"), lines)
        self.assertIn("baseline: " + db + " had no schema_version and its schema is version 3's: "
                      "recorded versions 1 to 3 as applied, set up change capture, and made its "
                      "4 rows operations", lines[1])
        self.assertTrue(lines[2].startswith("applied v4  schemas/tasks/004_add_comments.sql"))
        self.assertTrue(lines[3].startswith(f"{db}: now at version 4 (id "), lines)
        # schema_version holds what a migrate from nothing writes, times aside
        fresh = self.path("fresh.db")
        self.ok("migrate", "--db", fresh, "--schemas", TASKS)
        self.assertEqual(self.records(db), self.records(fresh))
        st = self.status(db, TASKS)
        self.assertEqual((st["version"], st["drift"], st["prepared"], st["untracked"]),
                         (4, [], True, False))
        self.assertIsNone(st["baseline"])
        # capture works from here on: a write by the shell is an operation
        sql(db, "INSERT INTO comments (id, task_id, body) VALUES ('c1', 't1', 'soon')")
        out = self.ok("changes", "--db", db, "-o", self.path("all.bundle"))
        self.assertTrue(out.startswith("wrote 21 operations"), out)  # 4 rows, 16 + 5
        # a second run has nothing to do, with --baseline or without
        self.assertIn("nothing to do", self.ok("migrate", "--db", db, "--schemas", TASKS,
                                               "--baseline"))


class OlderTool(Base):
    def test_rows_of_an_adopted_table_are_operations_too(self):
        """An older tool's schema_version (three columns) is adopted as before; the rows
        the database held become operations as a baseline's do."""
        db = self.made_by_shell("app.db", TASKS, 2,
                                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                "applied_at TEXT NOT NULL, description TEXT NOT NULL);"
                                "INSERT INTO schema_version VALUES (1, 'then', 'one'), "
                                "(2, 'then', 'two');"
                                "INSERT INTO lists (id, name) VALUES ('l1', 'home'), "
                                "('l2', 'work');")
        out = self.ok("migrate", "--db", db, "--schemas", TASKS, "--no-backup")
        self.assertIn("adopted schema_version (from an older tool, at version 2)", out)
        self.assertIn("made the 2 rows it held operations (6), which any later write beats",
                      out)
        b = self.path("b.db")
        self.ok("migrate", "--db", b, "--schemas", TASKS)
        self.carry(db, b, TASKS)
        self.assertEqual(self.rows(b, "SELECT id, name FROM lists ORDER BY id"),
                         ["l1|home", "l2|work"])


class MatchesNothing(Base):
    def test_differences_named_and_nothing_changed(self):
        db = self.made_by_shell("app.db", TASKS, 3,
                                "ALTER TABLE tasks ADD COLUMN qty INTEGER;"
                                "ALTER TABLE tags DROP COLUMN color;"
                                "CREATE TABLE app_notes (id TEXT PRIMARY KEY);")
        before = sha256(db)
        for extra in ([], ["--dry-run"]):
            code, out, err = run("migrate", "--db", db, "--schemas", TASKS, "--baseline", *extra)
            self.assertEqual(code, 2, err)
            lines = err.splitlines()
            self.assertEqual(len(lines), 1, err)
            self.assertIn("has no schema_version, and its schema is no version of schemas/tasks: "
                          "it differs from version 3, the closest, in 2 places: it lacks column "
                          "tags.color that version 3 has; has column tasks.qty that version 3 "
                          "does not have;", lines[0])
            self.assertIn("nothing was changed", lines[0])
            self.assertEqual(sha256(db), before)
        self.assertEqual(glob.glob(db + ".v*.bak"), [])
        # a version named that it is not: what differs from that one
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS, "--baseline-version", "2")
        self.assertIn("its schema is not version 2's (--baseline-version): it lacks column "
                      "tags.color that version 2 has; has column tasks.tags that version 2 does "
                      "not have; has column tasks.qty", lines[0])
        self.assertEqual(sha256(db), before)
        st = self.status(db, TASKS)
        self.assertEqual(st["baseline"]["versions"], [])
        self.assertEqual(st["baseline"]["closest"], 3)
        self.assertEqual(st["baseline"]["differences"],
                         ["lacks column tags.color that version 3 has",
                          "has column tasks.qty that version 3 does not have"])

    def test_many_differences_one_a_line_after_the_summary(self):
        db = self.made_by_shell("app.db", TASKS, 3,
                                "ALTER TABLE tasks ADD COLUMN qty INTEGER;"
                                "ALTER TABLE tasks ADD COLUMN due TEXT;"
                                "ALTER TABLE tags DROP COLUMN color;"
                                "DROP TABLE lists;")
        before = sha256(db)
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS, "--baseline")
        self.assertIn("in 4 places:", lines[0])
        self.assertIn("(and 1 more)", lines[0])
        self.assertEqual(lines[1:], ["  lacks table lists that version 3 has",
                                     "  lacks column tags.color that version 3 has",
                                     "  has column tasks.qty that version 3 does not have",
                                     "  has column tasks.due that version 3 does not have"])
        self.assertEqual(sha256(db), before)


    def test_closest_counts_the_columns_of_a_table(self):
        """A table that one version lacks weighs its columns: comments is there, with
        two of its columns gone, so v4 is closer than v3, which has no comments at all."""
        db = self.made_by_shell("app.db", TASKS, 4,
                                "ALTER TABLE comments DROP COLUMN author;"
                                "ALTER TABLE comments DROP COLUMN created_at;"
                                "ALTER TABLE tasks ADD COLUMN a1 TEXT;"
                                "ALTER TABLE tasks ADD COLUMN a2 TEXT;"
                                "ALTER TABLE tasks ADD COLUMN a3 TEXT;")
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS, "--baseline")
        self.assertIn("it differs from version 4, the closest, in 5 places", lines[0])


    def test_version_0_is_never_the_closest(self):
        """One table of the set, changed: it is compared with the versions that have it,
        never with "version 0, which has no tables"."""
        db = self.path("app.db")
        sql(db, "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT NOT NULL UNIQUE, x TEXT);")
        lines = self.refused("migrate", "--db", db, "--schemas", TASKS, "--baseline")
        self.assertNotIn("version 0", lines[0])
        self.assertIn("has column tags.x", lines[0])


class VersionsAlike(Base):
    """tests/data/schemas/adopt: 002 adds an index only, 003 changes data only, so the
    versions 1, 2 and 3 have one catalog; the index tells 1 from 2, nothing tells 2
    from 3."""

    def test_an_index_tells_versions_apart(self):
        db = self.made_by_shell("app.db", ADOPT, 1, "INSERT INTO items (name) VALUES ('a');")
        out = self.ok("migrate", "--db", db, "--schemas", ADOPT, "--baseline", "--no-backup")
        self.assertIn("its schema is version 1's", out)
        self.assertIn("applied v2  ", out)
        self.assertIn("applied v3  ", out)
        self.assertEqual(sql(db, "SELECT qty FROM items"), "1")  # 003 ran

    def test_data_only_migration_asks_which(self):
        db = self.made_by_shell("app.db", ADOPT, 2, "INSERT INTO items (name) VALUES ('a');")
        before = sha256(db)
        lines = self.refused("migrate", "--db", db, "--schemas", ADOPT, "--baseline")
        self.assertEqual(len(lines), 1)
        self.assertIn("its schema is that of versions 2 and 3 alike: what "
                      "tests/data/schemas/adopt/003_count_from_one.sql changes is not in the "
                      "schema", lines[0])
        self.assertIn("say it with --baseline-version 2 or --baseline-version 3", lines[0])
        self.assertEqual(sha256(db), before)
        self.assertEqual(self.status(db, ADOPT)["baseline"]["versions"], [2, 3])
        # version 1 is not it: its index says so
        lines = self.refused("migrate", "--db", db, "--schemas", ADOPT, "--baseline-version", "1")
        self.assertIn("its schema is not version 1's (--baseline-version): it has index "
                      "items_by_name that version 1 does not have", lines[0])
        self.assertEqual(sha256(db), before)
        # told it is at 3, 003 does not run again
        out = self.ok("migrate", "--db", db, "--schemas", ADOPT, "--baseline-version", "3",
                      "--no-backup")
        self.assertIn("its schema is version 3's", out)
        self.assertNotIn("applied v3", out)
        self.assertIn("applied v4  ", out)
        self.assertEqual(sql(db, "SELECT qty FROM items"), "0")
        self.assertEqual(sql(db, "SELECT max(version) FROM schema_version"), "4")

    def test_told_2_it_runs_3(self):
        db = self.made_by_shell("app.db", ADOPT, 2, "INSERT INTO items (name) VALUES ('a');")
        self.ok("migrate", "--db", db, "--schemas", ADOPT, "--baseline-version", "2",
                "--no-backup")
        self.assertEqual(sql(db, "SELECT qty FROM items"), "1")


class RowsSync(Base):
    def test_rows_reach_a_fresh_peer_and_lose_to_real_writes(self):
        a = self.made_by_shell("a.db", TASKS, 3,
                               "INSERT INTO lists (id, name) VALUES ('l1', 'A home'), "
                               "('l2', 'A work');"
                               "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l2', 'file');")
        b = self.path("b.db")
        self.ok("migrate", "--db", b, "--schemas", TASKS)
        # b's application writes l1 before a is adopted: a real write, which beats a's
        # rows however late stemma met them, since they were there before it
        sql(b, "INSERT INTO lists (id, name) VALUES ('l1', 'B home')")
        self.ok("changes", "--db", b, "-o", self.path("collect.bundle"))  # collected: clocked
        self.ok("migrate", "--db", a, "--schemas", TASKS, "--baseline", "--no-backup")
        out = self.carry(a, b, TASKS)
        self.assertIn("parked 0", out)
        self.carry(b, a, TASKS)
        want = ["l1|B home", "l2|A work"]
        for db in (a, b):
            self.assertEqual(self.rows(db, "SELECT id, name FROM lists ORDER BY id"), want, db)
            self.assertEqual(self.rows(db, "SELECT id, list_id, title FROM tasks"),
                             ["t1|l2|file"], db)
        # a's own later write wins everywhere
        sql(a, "UPDATE lists SET name = 'A office' WHERE id = 'l2'")
        self.carry(a, b, TASKS)
        self.assertEqual(self.rows(b, "SELECT name FROM lists WHERE id = 'l2'"), ["A office"])
        # they are the application's rows, not a migration's: a device still at version
        # 2 takes them now (what v3 added to tasks parks there, as any v3 write's would)
        c = self.path("c.db")
        self.ok("migrate", "--db", c, "--schemas", TASKS, "--to", "2")
        out = self.carry(a, c, TASKS, parks=True)
        self.assertIn("parked 1,", out)  # t1's tags
        self.assertEqual(self.rows(c, "SELECT id, name FROM lists ORDER BY id"),
                         ["l1|B home", "l2|A office"])
        self.assertEqual(self.rows(c, "SELECT id, title FROM tasks"), ["t1|file"])

    def test_rows_of_per_device_keys_are_kept_apart(self):
        """Two devices that made item 1 apart, both adopted: two rows, one kept aside as a
        conflict, the same on both; nothing merged."""
        a = self.made_by_shell("a.db", ADOPT, 4, "INSERT INTO items (id, name) VALUES (1, 'A');")
        c = self.made_by_shell("c.db", ADOPT, 4, "INSERT INTO items (id, name) VALUES (1, 'C');")
        for db in (a, c):
            self.ok("migrate", "--db", db, "--schemas", ADOPT, "--baseline", "--no-backup")
        self.carry(a, c, ADOPT)
        self.carry(c, a, ADOPT)
        rows = self.rows(a, "SELECT id, name FROM items")
        self.assertEqual(rows, self.rows(c, "SELECT id, name FROM items"))
        self.assertEqual(len(rows), 1)
        conflicts = [json.loads(self.ok("conflicts", "--db", db, "--format", "json"))
                     for db in (a, c)]
        self.assertEqual(conflicts[0], conflicts[1])
        kept = json.dumps(conflicts[0])
        self.assertEqual(len(conflicts[0]), 1, kept)
        other = "C" if rows[0].endswith("|A") else "A"
        self.assertEqual(conflicts[0][0]["row"], {"id": 1, "name": other, "qty": 0})
        self.assertEqual(conflicts[0][0]["created"], "before stemma")


class Unsynced(Base):
    NO_KEY = ("no primary key (rowids differ between devices); add one in a migration, or keep "
              "it local with --exclude")

    def test_the_databases_own_tables_are_named(self):
        db = self.made_by_shell("app.db", ADOPT, 4,
                                "CREATE TABLE app_log (at TEXT, msg TEXT);"
                                "CREATE TABLE app_prefs (k TEXT PRIMARY KEY, v TEXT);"
                                "INSERT INTO app_prefs VALUES ('theme', 'dark');")
        out = self.ok("migrate", "--db", db, "--schemas", ADOPT, "--baseline", "--no-backup")
        self.assertIn("not synced at version 4 (2 tables):\n"
                      f"  app_log: {self.NO_KEY} (not in the schema set: the database's own)\n"
                      f"  log: {self.NO_KEY}\n", out)
        self.assertIn("made its 1 row operations", out)  # app_prefs': synced like the rest
        text = self.ok("status", "--db", db, "--schemas", ADOPT)
        self.assertIn("synced    3 tables: app_prefs (not in the schema set), items, labels\n",
                      text)
        self.assertIn(f"  app_log: {self.NO_KEY} (not in the schema set", text)
        # a table the application makes after capture was set up is not captured yet
        sql(db, "CREATE TABLE app_cache (k TEXT PRIMARY KEY);")
        st = self.status(db, ADOPT)
        cache = [t for t in st["unsynced"] if t["table"] == "app_cache"]
        self.assertEqual(len(cache), 1, st["unsynced"])
        self.assertEqual(cache[0]["kind"], "uncaptured")
        self.assertFalse(cache[0]["in_schema_set"])
        self.assertIn("not captured yet", cache[0]["reason"])
        self.assertNotIn("app_cache", st["synced"])
        log = [t for t in st["unsynced"] if t["table"] == "log"]
        self.assertEqual(log, [{"table": "log", "kind": "no_key", "reason": self.NO_KEY,
                                "in_schema_set": True}])
        # excluded, it says so instead
        out = self.ok("migrate", "--db", db, "--schemas", ADOPT, "--exclude", "app_log")
        self.assertIn("  app_log: excluded (stemma migrate --exclude)", out)

    def test_compare_names_a_table_without_a_key(self):
        out = self.ok("compare", ADOPT, ADOPT)
        self.assertIn(f"  Never synced, on either side:\n    log: {self.NO_KEY}\n", out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: baseline_test.py PATH/TO/stemma [unittest args]")
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main()
