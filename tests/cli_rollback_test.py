#!/usr/bin/python3
"""Command-line tests of checked rollbacks, of what a rollback drops coming back, and of
two `stemma migrate` processes on one database at once, with writes made by the real
sqlite3 shell. The helpers are cli_store_test.py's.

Run by ctest as `python3 tests/cli_rollback_test.py PATH/TO/stemma` from the source root.
"""
import os
import re
import sqlite3
import subprocess
import sys
import unittest

import cli_store_test as cs
from cli_store_test import TASKS, Base, run, sha256, sql


class CheckedRollback(Base):
    def test_an_empty_down_file_is_refused_in_one_line(self):
        s = self.copy_set()
        with open(os.path.join(s, "003_add_task_tags.down.sql"), "w") as f:
            f.write("-- Description: forgot to drop the column\n")
        self.ok("migrate", "--db", self.db, "--schemas", s)
        before = sha256(self.db)
        want = (f"{s}/003_add_task_tags.down.sql: leaves column tasks.tags that version 2 does "
                "not have; nothing was changed")
        self.fails(2, "rollback", "--db", self.db, "--schemas", s, "--to", "2", contains=[want])
        code, out, err = run("rollback", "--db", self.db, "--schemas", s, "--to", "1",
                             "--dry-run")
        self.assertEqual(code, 2)
        self.assertIn(want, err)
        self.assertEqual(sha256(self.db), before)
        self.assertEqual(self.backups(), [])
        self.assertEqual(self.status(s)["drift"], [])

    def test_status_and_migrate_name_a_column_left_behind(self):
        # What an unchecked rollback through that file left: version 2, tags still there.
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "2")
        sql(self.db, "ALTER TABLE tasks ADD COLUMN tags TEXT DEFAULT '[]'")
        want = (f"{self.db}: has column tasks.tags that version 2 does not have (its schema is "
                "not version 2's")
        out = self.ok("status", "--db", self.db, "--schemas", TASKS)
        self.assertIn("drift     1 problem; 'stemma migrate' refuses until resolved\n  " + want,
                      out)
        self.assertNotIn("drift     none", out)
        self.assertIn(want, self.status()["drift"][0])
        before = sha256(self.db)
        self.fails(2, "migrate", "--db", self.db, "--schemas", TASKS, contains=[want])
        self.assertEqual(sha256(self.db), before)
        sql(self.db, "ALTER TABLE tasks DROP COLUMN tags")
        self.assertIn("now at version 4", self.ok("migrate", "--db", self.db, "--schemas", TASKS))

    def test_values_come_back_after_rollback_and_migrate(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        sql(self.db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                     "INSERT INTO tasks (id, list_id, title, tags) VALUES ('t1', 'l1', 'x', '[1]');"
                     "INSERT INTO comments (id, task_id, body) VALUES ('c1', 't1', 'soon');")
        out = self.ok("rollback", "--db", self.db, "--schemas", TASKS, "--to", "2")
        # tasks.tags of t1, and comments' c1: id, task_id, author, body, created_at.
        self.assertIn("kept 6 values of the columns and tables the rollback dropped, as parked "
                      "operations: they come back when a migration adds them again\n", out)
        out = self.ok("migrate", "--db", self.db, "--schemas", TASKS)
        self.assertIn("replayed 6 parked operations (0 still parked)", out)
        self.assertEqual(sql(self.db, "SELECT tags FROM tasks WHERE id = 't1'"), "[1]")
        self.assertEqual(sql(self.db, "SELECT body FROM comments WHERE id = 'c1'"), "soon")


class ConcurrentMigrates(Base):
    """Two `stemma migrate` on one database at once. Both are held at a known point: the
    test holds the database's write lock (BEGIN IMMEDIATE) while it starts them, and
    waits for each to print its backup line, which comes after its checks and before its
    first step, whose transaction waits for the lock. Then it lets go. Whichever commits
    a step first wins; the other must say where the database really is."""

    def start(self):
        p = subprocess.Popen([cs.STEMMA, "migrate", "--db", self.db, "--schemas", TASKS],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        if not line.startswith("backup: "):
            self.fail(line + p.stderr.read())
        return p

    def test_the_loser_says_where_the_database_is(self):
        self.ok("migrate", "--db", self.db, "--schemas", TASKS, "--to", "1")
        self.procs = []
        holder = sqlite3.connect(self.db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            a, b = self.start(), self.start()
            holder.execute("ROLLBACK")
            results = []
            for p in (a, b):
                # Not communicate(timeout=...): it reads past what readline buffered.
                out, err = p.stdout.read(), p.stderr.read()
                results.append((p.wait(timeout=120), out, err))
        finally:
            holder.close()
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()
        results.sort()
        (won, won_out, won_err), (lost, lost_out, lost_err) = results
        self.assertEqual((won, won_err), (0, ""))
        self.assertIn("now at version 4", won_out)
        self.assertEqual(lost, 1, lost_err)
        self.assertEqual(len(lost_err.splitlines()), 1, lost_err)
        m = re.search(r"another process moved it from version 1 to version (\d) after this run "
                      r"had checked it \(a second migrate or rollback at once\?\); this run "
                      r"changed nothing; 'stemma status' says where it is now", lost_err)
        self.assertIsNotNone(m, lost_err)
        self.assertIn(m.group(1), "234")
        self.assertNotIn("still at version 1", lost_err)
        self.assertEqual(self.status()["version"], 4)
        self.assertIn("nothing to do", self.ok("migrate", "--db", self.db, "--schemas", TASKS))


if __name__ == "__main__":
    cs.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
