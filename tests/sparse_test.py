#!/usr/bin/python3
"""A sparse mesh (issue 14, item 2): real nodes that all trust each other keep a bounded
set of peers, not every node they hear of; every write still reaches every node, each
operation crosses about one link per node; a node whose kept peers all stop reaches the
rest through one it only knew; and a node short of file descriptors says so in one log
line and keeps fewer peers.

The nodes are configured as a line (each lists the one before it) and trust every key
on first use, so that each learns of the others from peer lists, as a mesh that trusts
all does. It reuses mesh_test.py's nodes (one process each on a free loopback port, its
log checked for sanitizer reports). Run by ctest as `python3 tests/sparse_test.py
PATH/TO/stemma` from the source root.
"""
import os
import re
import resource
import subprocess
import sys
import unittest

import mesh_test as mt
from mesh_test import Mesh, Node, sql

TASKS = mt.TASKS
LISTS = "SELECT count(*) FROM lists"
KEPT = ("configured", "listed", "chosen", "dialled-in")


def bits(n):
    """What a node's mesh takes for k (node/mesh.h): floor(log2 n) + 1."""
    return n.bit_length()


def set_toml(node, key, value):
    path = os.path.join(node.dir, "node.toml")
    with open(path) as f:
        text = f.read()
    text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    assert count == 1, key
    with open(path, "w") as f:
        f.write(text)


def received(node):
    """Operations the node received from its peers (stemma stats), all copies counted."""
    out = node.mesh.stemma("stats", "--dir", node.dir)
    return int(re.search(r"(?m)^received (\d+)$", out).group(1))


@unittest.skipUnless(mt.SQLITE3, "the sqlite3 shell is not installed")
class SparseMesh(Mesh):
    def line(self, count, max_learned=None):
        """count nodes at tasks v4, each listing the one before it, all trusting every key
        on first use; started."""
        nodes = []
        for i in range(count):
            nodes.append(Node(self, f"n{i}", TASKS, 4, peers=nodes[-1:], tofu=True))
            if max_learned is not None:
                set_toml(nodes[-1], "max_learned_peers", max_learned)
        for n in nodes:
            n.start()
        return nodes

    def settled(self, node):
        """Until node knows three peers and is connected to every one it keeps. Peer
        lists travel in the HELLOs sent when a link forms, so a node learns at least the
        peers of those it keeps, and along a line that is two on either side: the count
        is reached whatever the order the links formed in; more may never come (a node
        is told nothing new once its kept peers have all met theirs)."""
        def ready():
            peers = node.report()["peers"]
            return len(peers) >= 3 and all(p["state"] == "connected"
                                           for p in peers if p["role"] in KEPT)
        self.wait(f"{node.name} to know three peers and connect to those it keeps", ready,
                  timeout=60)

    def test_twelve_nodes_that_trust_each_other_keep_a_few_peers_each(self):
        # At most two learned peers dialled each, so that some node knows more than it
        # keeps: a node in the middle of the line hears of peers on both sides.
        nodes = self.line(12, max_learned=2)
        for n in nodes:
            self.settled(n)
        self.wait("a node to know a peer it does not keep", lambda: any(
            p["role"] == "known" for n in nodes for p in n.report()["peers"]), timeout=60)
        # Each report is one moment of one node: what it keeps then is within its bounds
        # (node/mesh.h, invariant 2): k chosen at most, 2k learned ones (chosen and let
        # in) at most, with k the bits of the peers it knows, two at most.
        sparse = 0
        for n in nodes:
            peers = n.report()["peers"]
            k = min(2, bits(len(peers)))
            roles = [p["role"] for p in peers]
            self.assertLessEqual(roles.count("chosen"), k, f"{n.name}: {roles}")
            self.assertLessEqual(roles.count("chosen") + roles.count("dialled-in"), 2 * k,
                                 f"{n.name}: {roles}")
            self.assertEqual(roles.count("configured"), 1 if n is not nodes[0] else 0)
            self.assertEqual(roles.count("listed"), 1 if n is not nodes[-1] else 0)
            for p in peers:
                if p["role"] == "known":
                    self.assertNotEqual(p["state"], "connected", f"{n.name}: {p}")
            sparse += roles.count("known") > 0
        self.assertGreater(sparse, 0, "every node keeps every peer it knows")
        # Every write reaches every node, from either end of the line.
        sql(nodes[0].db, "INSERT INTO lists (id, name) VALUES ('first', 'from n0')")
        sql(nodes[-1].db, "INSERT INTO lists (id, name) VALUES ('last', 'from n11')")
        for n in nodes:
            self.wait(f"{n.name} to hold both rows", lambda n=n: sql(n.db, LISTS) == "2",
                      timeout=60)

    def test_an_operation_crosses_about_one_link_per_node(self):
        # Without lazy links (docs/protocol.md, "PRUNE and GRAFT") each node would be
        # sent every operation by each of its kept peers that had it first: several
        # copies. The receiving side prunes the slower ones; a copy or two more while
        # that happens is all that remains.
        nodes = self.line(12)
        for n in nodes:
            self.settled(n)
        before = sum(received(n) for n in nodes)
        rows = 6000
        sql(nodes[0].db, "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                         f"WHERE i < {rows}) INSERT INTO lists (id, name) "
                         "SELECT 'l' || i, 'list ' || i FROM r")
        for n in nodes:
            self.wait(f"{n.name} to hold the rows", lambda n=n: sql(n.db, LISTS) == str(rows),
                      timeout=120)
        copies = (sum(received(n) for n in nodes) - before) / (3 * rows * (len(nodes) - 1))
        self.assertLess(copies, 2.0, f"{copies:.2f} copies of each operation per node")

    def test_a_node_whose_kept_peers_all_stop_reaches_the_rest_through_one_it_knew(self):
        # Two learned peers dialled at most: a node keeps a few of the eleven it knows.
        nodes = self.line(12, max_learned=2)
        x = nodes[5]
        self.wait("x to know a peer it does not keep",
                  lambda: any(p["role"] == "known" for p in x.report()["peers"]), timeout=60)
        peers = x.report()["peers"]
        kept = {p["id"] for p in peers if p["role"] in KEPT}
        known = {p["id"] for p in peers if p["role"] == "known"}
        self.assertTrue(known, f"x keeps all it knows: {peers}")
        for n in nodes:
            if n.key in kept:
                n.stop()
        rest = [n for n in nodes if n.proc and n is not x]
        # Let go as each said BYE; one it only knew is chosen and connects.
        def reached():
            return [p["id"] for p in x.report()["peers"]
                    if p["id"] in known and p["state"] == "connected"]
        self.wait("x to connect to a peer it only knew", lambda: reached(), timeout=60)
        y = next(n for n in rest if n.key in reached())
        # Writes cross the new link both ways. (That every other node gets them too is
        # likely, not certain: the rest of the line is cut in up to four places and
        # stays one mesh only through the peers its nodes chose, among those they heard
        # of two hops out: docs/user-guide.md, "A sparse mesh".)
        sql(x.db, "INSERT INTO lists (id, name) VALUES ('x', 'from x')")
        sql(y.db, "INSERT INTO lists (id, name) VALUES ('y', 'from the peer x only knew')")
        for n in (x, y):
            self.wait(f"{n.name} to hold both rows", lambda n=n: sql(n.db, LISTS) == "2",
                      timeout=60)


@unittest.skipUnless(mt.SQLITE3, "the sqlite3 shell is not installed")
class Descriptors(Mesh):
    def start_limited(self, node, limit):
        """Starts node with RLIMIT_NOFILE at limit, soft and hard (so it cannot raise it)."""
        node.logf = open(node.log, "a")
        node.proc = subprocess.Popen(
            [mt.STEMMA, "node", "--dir", node.dir], stderr=node.logf, stdout=subprocess.DEVNULL,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        self.procs.append(node)

    def open_fds(self, node):
        return len(os.listdir(f"/proc/{node.proc.pid}/fd"))

    def test_a_node_short_of_descriptors_says_so_and_keeps_fewer_peers(self):
        a = Node(self, "a", TASKS, 4, tofu=True)
        # What a node with no peer holds open, once it answers; then a limit that leaves
        # room for two or three peers beside that and the reserve (node/fdbudget.h).
        a.start()
        self.wait("a to answer", lambda: a.report()["node"]["id"] == a.key)
        base = self.open_fds(a)
        a.stop()
        self.start_limited(a, base + 16 + 3 * 2 + 2)
        self.wait("a to answer", lambda: a.report()["node"]["id"] == a.key)
        [line] = [l for l in a.logs().splitlines() if " fd-budget:" in l]
        self.assertIn(f"RLIMIT_NOFILE) is {base + 24}, its hard limit too", line)
        room = int(re.search(r"room for (\d+) peers", line).group(1))
        self.assertGreaterEqual(room, 1)
        self.assertLessEqual(room, 4)
        self.assertIn("raise the limit (ulimit -n", line)
        # More nodes dial it (each lists it) than it has room for: it keeps room of them,
        # tells the others it is full, and syncs with those it keeps.
        others = [Node(self, f"o{i}", TASKS, 4, peers=[a], tofu=True) for i in range(room + 2)]
        for o in others:
            o.start()
        self.wait("a to keep as many as it has room for",
                  lambda: sum(p["state"] == "connected" for p in a.report()["peers"]) == room,
                  timeout=60)
        self.wait("the others to be told", lambda: sum(
            "peer-full" in o.logs() for o in others) >= 2, timeout=60)
        self.assertLessEqual(sum(p["role"] in KEPT for p in a.report()["peers"]), room)
        kept = [o for o in others if (a.peer(o) or {}).get("state") == "connected"]
        sql(kept[0].db, "INSERT INTO lists (id, name) VALUES ('o', 'from a kept peer')")
        self.wait("a to get its row", lambda: sql(a.db, LISTS) == "1", timeout=30)
        self.assertIsNone(a.proc.poll())
        self.assertLessEqual(self.open_fds(a), base + 24)


if __name__ == "__main__":
    mt.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
