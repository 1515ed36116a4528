#!/usr/bin/python3
"""Many origins between real nodes (issue 14, item 3): vectors travel as deltas and
converge, after a reconnection and after a peer restarted without its memory of the last
exchange; an older peer (one that does not list vdelta.v1: [sync] vector_deltas = false
makes a node one) still syncs; more origins than one message carries partition nothing;
and what `stemma apply` records beside a running node is sent on.

Databases of thousands of origins are made by build/make_origins (beside the stemma
binary) in seconds, not by as many processes. It reuses mesh_test.py's nodes (one process
each, its log checked for sanitizer reports). Run by ctest as
`python3 tests/origins_test.py PATH/TO/stemma` from the source root.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

import mesh_test as mt
from mesh_test import Mesh, Node, sql

SQLITE3 = mt.SQLITE3
TASKS = mt.TASKS
# scripts/test's sanitized pass sets it: 100,050 origins through sanitized nodes take
# minutes there, and ran unsanitized just before (test_vdelta.c moves vectors of that
# length under the sanitizers).
QUICK = os.environ.get("STEMMA_MATRIX_QUICK") == "1"
LISTS = "SELECT count(*) FROM lists"


def make_origins(db, n, prefix):
    """n origins' row changes into db (migrated with schemas/tasks), one each."""
    tool = os.path.join(os.path.dirname(mt.STEMMA), "make_origins")
    subprocess.run([tool, db, str(n), prefix], check=True, timeout=300)


def set_toml(node, old, new):
    path = os.path.join(node.dir, "node.toml")
    with open(path) as f:
        text = f.read()
    assert old in text, old
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def older(node):
    """node sends whole vectors and lists no vdelta.v1, as a stemma before them did."""
    set_toml(node, "vector_deltas = true", "vector_deltas = false")


def stats(node):
    return node.report()["node"]


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class VectorDeltas(Mesh):
    ORIGINS = 2000  # a whole vector: 72 KB; a delta of one origin: under 100 bytes

    def pair(self, b_older=False):
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        make_origins(a.db, self.ORIGINS, "o")
        if b_older:
            older(b)
        a.start()
        b.start()
        want = str(self.ORIGINS)
        self.wait("b to hold a's origins", lambda: sql(b.db, LISTS) == want, timeout=60)
        return a, b

    def write(self, db, tag, rows=1000):
        """rows new lists written to db, as an application writes them."""
        sql(db, f"WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
                f"WHERE i < {rows}) INSERT INTO lists (id, name) "
                f"SELECT '{tag}' || i, 'row ' || i FROM k")

    def wait_rows(self, node, count):
        self.wait(f"{node.name} to hold {count} rows", lambda: sql(node.db, LISTS) == str(count),
                  timeout=60)

    def test_acks_carry_the_entries_that_changed(self):
        a, b = self.pair()
        acks = stats(b)["bytes_ack"]
        self.write(a.db, "new")  # 3,000 operations of one origin: a few batches
        self.wait_rows(b, self.ORIGINS + 1000)
        self.wait("a to hear b's last ACK", lambda: a.peer(b)["behind"] == 0)
        # Each ACK names the one origin that changed, not the 2,000 others: a whole
        # vector would be 72 KB an ACK.
        sent = stats(b)["bytes_ack"] - acks
        self.assertGreater(sent, 0)
        self.assertLess(sent, 2000)
        for n in (a, b):
            self.assertEqual(stats(n)["vector_entries_cut"], 0)
            self.assertEqual(stats(n)["dropped"]["vector"], 0)

    def test_a_reconnection_sends_deltas_and_converges(self):
        a, b = self.pair()
        # b stops answering (held, not timed): a takes it as gone, and asks again with
        # HELLOs, then b resumes and the two meet again.
        b.proc.send_signal(signal.SIGSTOP)
        try:
            self.wait("a to take b as gone", lambda: a.peer(b)["state"] == "gone", timeout=60)
            hellos = stats(a)["bytes_hello"]
            self.write(a.db, "while-away", rows=10)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        self.wait("a to meet b again", lambda: a.peer(b)["state"] == "connected", timeout=60)
        self.wait_rows(b, self.ORIGINS + 10)
        # Every HELLO a sent since carried a delta over the vector b holds, not the 72 KB
        # of a whole one.
        retries = stats(a)["bytes_hello"] - hellos
        self.assertLess(retries, 20000)
        self.assertEqual(stats(a)["bytes_vector"], 0)

    def test_a_peer_restarted_without_its_memory_gets_the_whole_vector(self):
        a, b = self.pair()
        b.stop()  # its memory of what it held of a's vector goes with it
        self.write(a.db, "meanwhile", rows=10)
        b.start()
        self.wait_rows(b, self.ORIGINS + 10)
        # Its first HELLO said it held nothing of a's (no vknow): a's answer was whole,
        # and the two agree; what follows goes as deltas again.
        self.write(a.db, "after", rows=10)
        self.wait_rows(b, self.ORIGINS + 20)
        self.write(b.db, "back", rows=10)
        self.wait_rows(a, self.ORIGINS + 30)
        self.assertEqual(stats(a)["origins"], stats(b)["origins"])
        for n in (a, b):
            self.assertEqual(stats(n)["dropped"]["vector"], 0)

    def test_an_older_peer_still_syncs(self):
        a, b = self.pair(b_older=True)
        self.write(a.db, "new", rows=500)
        self.wait_rows(b, self.ORIGINS + 500)
        self.write(b.db, "old", rows=500)
        self.wait_rows(a, self.ORIGINS + 1000)
        # b lists no vdelta.v1: a sends it whole vectors and no VECTOR message, and b's
        # ACKs carry its whole vector, as before deltas. (b reads vectors as an older
        # stemma does, whole: had a sent it a delta, b would think a lacks what b holds.)
        self.wait("b to hear a's last ACK", lambda: b.peer(a)["behind"] == 0)
        self.assertEqual(stats(a)["bytes_vector"], 0)
        self.assertEqual(stats(b)["bytes_vector"], 0)
        self.assertGreater(stats(b)["bytes_ack"], 36 * self.ORIGINS)

    def test_what_stemma_apply_records_beside_a_running_node_is_sent_on(self):
        a, b = self.pair()
        # c's writes reach a's database through a bundle, applied by another process
        # while a runs: a finds them by comparing its vector with the database's.
        c = os.path.join(self.tmp, "c.db")
        self.stemma("migrate", "--db", c, "--schemas", TASKS, "--no-backup")
        self.write(c, "from-c", rows=20)
        bundle = os.path.join(self.tmp, "c.stmb")
        self.stemma("changes", "--db", c, "-o", bundle)
        self.stemma("apply", "--db", a.db, bundle)
        self.wait_rows(b, self.ORIGINS + 20)


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
@unittest.skipIf(QUICK, "STEMMA_MATRIX_QUICK: ran in the unsanitized pass")
class ManyOrigins(Mesh):
    def test_more_origins_than_one_message_carries_partition_nothing(self):
        # 100,050 origins: past the 100,000 entries one message carries, where older
        # stemmas refused each other's HELLOs and ACKs for good. b and c are copies (they
        # hold every origin, and each takes one of its own); c is an older peer.
        b = Node(self, "b", TASKS, 4, tofu=True)
        c = Node(self, "c", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b, c], tofu=True)
        make_origins(a.db, 100050, "o")
        for n in (b, c):
            shutil.copyfile(a.db, n.db)
        older(c)
        for n in (a, b, c):
            n.start()
        for n in (b, c):
            self.wait(f"a and {n.name} to connect",
                      lambda n=n: (a.peer(n) or {}).get("state") == "connected", timeout=120)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('from-a', 'a')")
        sql(c.db, "INSERT INTO lists (id, name) VALUES ('from-c', 'c')")
        for n in (a, b, c):
            self.wait(f"{n.name} to hold both", lambda n=n: sql(
                n.db, "SELECT count(*) FROM lists WHERE id IN ('from-a', 'from-c')") == "2",
                timeout=120)
        self.assertGreater(stats(a)["origins"], 100000)
        # The older peer was never sent more than it takes in one message.
        self.assertEqual(stats(c)["vector_entries_cut"], 0)
        self.assertIn("more than this peer's stemma takes in one message", a.logs())
        for n in (a, b, c):
            self.assertEqual(stats(n)["dropped"]["hello"], 0)
            self.assertEqual(stats(n)["dropped"]["ack"], 0)


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class BulkSync(Mesh):
    """A node taking in a backlog of over 100,000 operations (node/bulk.h) says so in its
    log, and says when it is over; a small sync says nothing."""

    def test_a_bulk_sync_is_logged_from_start_to_end(self):
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        # 40,000 lists written as an application writes them: 120,000 operations.
        sql(a.db, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
                  "WHERE i < 40000) INSERT INTO lists (id, name) SELECT 'l' || i, 'row ' || i "
                  "FROM k")
        # a makes them operations first (a slice at a time), so that b, meeting it,
        # learns of them all at once from its vector.
        a.start()
        self.wait("a to collect its lists", lambda: stats(a)["operations"] >= 120000,
                  timeout=120)
        b.start()
        self.wait("b to hold a's lists", lambda: sql(b.db, LISTS) == "40000", timeout=120)
        self.wait("b to say the bulk sync is done",
                  lambda: "sync-bulk" in b.logs() and " done: " in b.logs(), timeout=60)
        lines = [line for line in b.logs().splitlines() if "sync-bulk" in line]
        self.assertRegex(lines[0], r"it holds about \d+ operations this database lacks")
        first = int(re.search(r"about (\d+) operations", lines[0]).group(1))
        self.assertGreaterEqual(first, 100000)
        self.assertLessEqual(first, 120000)
        done = int(re.search(r"done: (\d+) operations taken", lines[-1]).group(1))
        self.assertGreaterEqual(done, 100000)
        # A small sync after it is not bulk: nothing more is logged.
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('small', 'one')")
        self.wait("b to hold the one more", lambda: sql(b.db, LISTS) == "40001", timeout=60)
        self.assertEqual(len([line for line in b.logs().splitlines() if "sync-bulk" in line]),
                         len(lines))
        self.assertNotIn("sync-bulk", a.logs())


if __name__ == "__main__":
    mt.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
