#!/usr/bin/python3
"""The SQLite extension (ext/sqlite_ext.c; docs/user-guide.md, "The SQLite extension"):
two databases at different versions of a schema set kept in sync through SQL alone,
with nothing but Python's standard sqlite3 module: the extension loaded into each
connection migrates them, hands out vectors and bundles as blobs and applies them.
What the older one cannot hold waits parked, and arrives when it migrates. The blobs
are the files `stemma vector` and `stemma changes` write, byte for byte, and bad input
is one SQL error naming what is wrong.

Run by ctest as `python3 tests/sqlext_test.py PATH/TO/stemma PATH/TO/stemma.so` from the
source root. A module built with AddressSanitizer is loaded with its runtime preloaded
(Python itself is not built with it), leak checking off: Python's own allocations at
exit are not stemma's.
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

STEMMA = None
MODULE = None
TASKS = os.path.abspath("schemas/tasks")
FORK = os.path.abspath("schemas/tasks-fork")


def connect(path):
    """A connection of the application's, the extension loaded into it."""
    c = sqlite3.connect(path, isolation_level=None)  # autocommit: no transaction held
    c.enable_load_extension(True)
    c.load_extension(MODULE)
    c.enable_load_extension(False)
    return c


def one(c, sql, *args):
    return c.execute(sql, args).fetchone()[0]


class Extension(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="stemma-sqlext-")
        self.a_path = os.path.join(self.tmp.name, "a.db")
        self.b_path = os.path.join(self.tmp.name, "b.db")
        self.a, self.b = connect(self.a_path), connect(self.b_path)

    def tearDown(self):
        self.a.close()
        self.b.close()
        self.tmp.cleanup()

    def sync(self, src, dst, schemas=None):
        """dst takes from src what it lacks; what applying it did."""
        bundle = one(src, "SELECT stemma_changes(?)", one(dst, "SELECT stemma_vector()"))
        self.assertIsInstance(bundle, bytes)
        if schemas:
            return json.loads(one(dst, "SELECT stemma_apply(?, ?)", bundle, schemas))
        return json.loads(one(dst, "SELECT stemma_apply(?)", bundle))

    def test_two_versions_sync_through_sql_alone(self):
        self.assertEqual(one(self.a, "SELECT stemma_migrate(?, 3)", TASKS), 3)
        self.assertEqual(one(self.b, "SELECT stemma_migrate(?, 2)", TASKS), 2)
        self.assertEqual(json.loads(one(self.a, "SELECT stemma_status(?)", TASKS))["version"], 3)
        self.assertEqual(json.loads(one(self.a, "SELECT stemma_compare(?, ?)", TASKS, FORK)),
                         {"relation": "divergent", "common": 2})
        # The application writes as ever; its triggers record the changes.
        self.a.executescript(
            "INSERT INTO lists (id, name) VALUES ('l1', 'home');"
            "INSERT INTO tasks (id, list_id, title, priority, tags) "
            "VALUES ('t1', 'l1', 'milk', 2, '[\"shop\"]');")
        st = self.sync(self.a, self.b)
        self.assertGreater(st["applied"], 0)
        self.assertEqual(st["parked"], 1)  # tags: a column v2 does not have
        self.assertEqual(self.b.execute("SELECT title, priority FROM tasks").fetchall(),
                         [("milk", 2)])
        # Applied again: held already, nothing changes.
        again = self.sync(self.a, self.b)
        self.assertEqual(again["applied"], 0)
        # b upgrades: the parked write arrives.
        self.assertEqual(one(self.b, "SELECT stemma_migrate(?)", TASKS), 4)
        self.assertEqual(one(self.b, "SELECT tags FROM tasks WHERE id = 't1'"), '["shop"]')
        self.assertEqual(json.loads(one(self.b, "SELECT stemma_status()"))["parked"], 0)
        # And back the other way, a's history given so that b's operations at v4 are
        # read with it.
        self.b.execute("UPDATE tasks SET title = 'oat milk', done = 1 WHERE id = 't1'")
        self.sync(self.b, self.a, TASKS)
        self.assertEqual(self.a.execute("SELECT title, done FROM tasks").fetchall(),
                         [("oat milk", 1)])
        self.assertEqual(self.a.execute("SELECT * FROM tasks").fetchall()[0][:3],
                         self.b.execute("SELECT * FROM tasks").fetchall()[0][:3])

    def test_blobs_are_the_files_bytes(self):
        one(self.a, "SELECT stemma_migrate(?, 2)", TASKS)
        one(self.b, "SELECT stemma_migrate(?, 2)", TASKS)
        self.a.execute("INSERT INTO lists (id, name) VALUES ('l1', 'home')")
        vector = os.path.join(self.tmp.name, "b.vector")
        bundle = os.path.join(self.tmp.name, "a.bundle")
        subprocess.run([STEMMA, "vector", "--db", self.b_path, "-o", vector], check=True,
                       capture_output=True)
        with open(vector, "rb") as f:
            self.assertEqual(f.read(), one(self.b, "SELECT stemma_vector()"))
        subprocess.run([STEMMA, "changes", "--db", self.a_path, "--since", vector, "-o", bundle],
                       check=True, capture_output=True)
        since = one(self.b, "SELECT stemma_vector()")
        with open(bundle, "rb") as f:
            self.assertEqual(f.read(), one(self.a, "SELECT stemma_changes(?)", since))
        # A file from the command line applied as a blob.
        with open(bundle, "rb") as f:
            st = json.loads(one(self.b, "SELECT stemma_apply(?)", f.read()))
        self.assertGreater(st["applied"], 0)
        self.assertEqual(st["parked"], 0)
        self.assertEqual(one(self.b, "SELECT name FROM lists"), "home")

    def test_bad_input_is_one_sql_error(self):
        one(self.a, "SELECT stemma_migrate(?, 2)", TASKS)
        cases = [
            ("SELECT stemma_apply(x'00')", "not a stemma bundle"),
            ("SELECT stemma_apply('a bundle')", "must be a blob"),
            ("SELECT stemma_changes(x'53544d56')", "a vector: "),
            ("SELECT stemma_migrate('/nonexistent/schemas')", "/nonexistent/schemas"),
            ("SELECT stemma_migrate(?, 0)", "positive integer"),
            ("SELECT stemma_compare('/nonexistent', ?)", "/nonexistent"),
        ]
        for sql, want in cases:
            with self.subTest(sql=sql):
                args = (TASKS,) if "?" in sql else ()
                with self.assertRaises(sqlite3.OperationalError) as e:
                    self.a.execute(sql, args).fetchone()
                self.assertIn(want, str(e.exception))
                self.assertEqual(len(str(e.exception).splitlines()), 1)
        # A database stemma has not set up, one in memory, a call inside a transaction.
        with self.assertRaises(sqlite3.OperationalError) as e:
            one(self.b, "SELECT stemma_vector()")
        self.assertIn("not set up for stemma", str(e.exception))
        memory = connect(":memory:")
        with self.assertRaises(sqlite3.OperationalError) as e:
            one(memory, "SELECT stemma_status()")
        self.assertIn("not a file", str(e.exception))
        memory.close()
        self.a.execute("BEGIN")
        with self.assertRaises(sqlite3.OperationalError) as e:
            one(self.a, "SELECT stemma_vector()")
        self.assertIn("inside a transaction", str(e.exception))
        self.a.execute("ROLLBACK")
        # The functions that write cannot hide in the database's schema (a trigger
        # someone else's file brings): SQLite refuses them there.
        self.a.execute("CREATE TRIGGER t AFTER INSERT ON lists BEGIN "
                       "SELECT stemma_migrate('x'); END")
        with self.assertRaises(sqlite3.OperationalError) as e:
            self.a.execute("INSERT INTO lists (id, name) VALUES ('l9', 'x')")
        self.assertIn("unsafe use of stemma_migrate", str(e.exception))
        self.a.execute("DROP TRIGGER t")


def _asan_runtime(module):
    """The AddressSanitizer runtime module links, if it does: it must come first."""
    out = subprocess.run(["ldd", module], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    MODULE = os.path.splitext(os.path.abspath(sys.argv.pop(1)))[0]
    runtime = _asan_runtime(MODULE + ".so")
    if runtime and os.environ.get("LD_PRELOAD") != runtime:
        env = dict(os.environ, LD_PRELOAD=runtime,
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
        os.execve(sys.executable, [sys.executable, __file__, STEMMA, MODULE + ".so"] +
                  sys.argv[1:], env)
    unittest.main(verbosity=1)
