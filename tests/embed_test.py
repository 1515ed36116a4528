#!/usr/bin/python3
"""A node embedded in an application (include/stemma.h, examples/embed_node.c) syncs with
a `stemma node` process: real CURVE keys, free loopback ports, real SQLite files.

Run by ctest as `python3 tests/embed_test.py PATH/TO/stemma PATH/TO/embed_node` from the
source root. The example program is the application: it writes a row into its own
database, runs the node (stepped by its own poll loop, or on the node's own thread) and
says "synced" once the other node's row has arrived; the test then waits for its row to
arrive on the other side, and closes its stdin to stop it."""
import os
import queue
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh_test  # noqa: E402  (its nodes, ports and waits)
from mesh_test import Node, TASKS, sql  # noqa: E402

EMBED = None


class Embedded(mesh_test.Mesh):
    def run_app(self, b, *args):
        """Starts the example as the application of node b; returns it and a queue of the
        lines it prints."""
        log = open(os.path.join(self.tmp, "embedded.log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([EMBED, "--dir", b.dir, "--db", b.db, *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        lines = queue.Queue()

        def read():
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)
        threading.Thread(target=read, daemon=True).start()
        return proc, lines

    def wait_line(self, lines, seen, want):
        """Until the application printed `want` (a line's start); timeout only matters
        when something is broken."""
        end = time.time() + 30
        while not any(s.startswith(want) for s in seen):
            try:
                line = lines.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                line = "(nothing)"
            if line is None or time.time() > end:
                with open(os.path.join(self.tmp, "embedded.log")) as f:
                    self.fail(f"waited for {want!r}; the application printed {seen}; "
                              f"its stderr:\n{f.read()}")
            seen.append(line)

    def check(self, *app_args):
        # a: a `stemma node` process at v3; b: the embedded node at v2 (its history is an
        # ancestor of a's). Each trusts the other's CURVE key, no trust on first use.
        a = Node(self, "a", TASKS, 3)
        b = Node(self, "b", TASKS, 2, peers=[a])
        a.init(peers=[b], force=True)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('from-a', 'written beside the daemon')")
        a.start()
        proc, lines = self.run_app(
            b, *app_args, "--write", "INSERT INTO lists (id, name) VALUES ('from-b', 'the app')",
            "--until", "SELECT count(*) FROM lists WHERE id = 'from-a'")
        seen = []
        self.wait_line(lines, seen, "synced")
        self.wait("the daemon to get the application's row",
                  lambda: sql(a.db, "SELECT name FROM lists WHERE id = 'from-b'") == "the app")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=30), 0)
        while True:
            line = lines.get(timeout=30)
            if line is None:
                break
            seen.append(line)
        # What the application was told, through its callbacks.
        self.assertIn(f"node {b.key} on {b.endpoint}", seen)
        self.assertIn(f"event peer-judged {a.key} relation=ancestor sync=full version=3", seen)
        applied = [s for s in seen if s.startswith("event applied ")]
        self.assertTrue(applied, seen)
        self.assertTrue(any("applied=0 " not in s for s in applied), applied)
        self.assertTrue(all("parked_total=0 " in s for s in applied), applied)
        # Its log reached it too (the example writes it to stderr), and it said BYE.
        with open(os.path.join(self.tmp, "embedded.log")) as f:
            log = f.read()
        self.assertIn("node info started", log)
        self.assertIn("node info stopped", log)
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error:", log)
        if os.environ.get("STEMMA_KEEP_LOGS"):
            print("\n".join(seen), log, sep="\n", file=sys.stderr)

    def test_stepped_by_the_applications_loop(self):
        self.check()

    def test_on_a_thread_of_its_own(self):
        self.check("--thread")


if __name__ == "__main__":
    mesh_test.STEMMA = os.path.abspath(sys.argv.pop(1))
    EMBED = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
