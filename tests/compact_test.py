#!/usr/bin/python3
"""Compaction between real nodes (docs/user-guide.md, "Compaction"): a node prunes the
operations later writes replaced once every peer it still counts as known holds the
later write; a peer that was offline through a pruning comes back to the current cells
(rows whose NOT NULL cells were last written apart arrive in pieces, and are put
together), and holds what the others hold, as does a newcomer that never met anyone.

Run by ctest as `python3 tests/compact_test.py PATH/TO/stemma` from the source root. The
nodes are mesh_test.py's (real `stemma node` processes on loopback, CURVE); a node is
offline because it was stopped, and a pass runs when `stemma compact` asks for it, which
waits for the pass to finish: nothing here waits on the machine's speed.
"""
import os
import re
import sys
import unittest

import mesh_test
from mesh_test import Mesh, Node, TASKS, sql


def compaction(node, **settings):
    """Sets [compaction] settings in node's node.toml (node stopped)."""
    path = os.path.join(node.dir, "node.toml")
    with open(path) as f:
        head, section = f.read().split("\n[compaction]\n")
    for key, value in settings.items():
        section, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", section, flags=re.M)
        assert n == 1, key
    with open(path, "w") as f:
        f.write(head + "\n[compaction]\n" + section)


def tasks(node):
    """Every task of node's database as id:list:title:done, comma separated."""
    return sql(node.db, "SELECT group_concat(id || ':' || list_id || ':' || title || ':' || done,"
                        " ',') FROM (SELECT * FROM tasks ORDER BY id)")


def stats(node):
    out = node.mesh.stemma("stats", "--dir", node.dir)
    return dict(re.findall(r"^(pruned|operations|compaction passes) (\d+)", out, re.M))


@unittest.skipUnless(mesh_test.SQLITE3, "the sqlite3 shell is not installed")
class Compaction(Mesh):
    def three(self, known_peer_hours):
        """a between b and c, all at tasks v4, b and c trusting a alone (so c hears only
        from a); passes only when asked."""
        b = Node(self, "b", TASKS, 4)
        c = Node(self, "c", TASKS, 4)
        a = Node(self, "a", TASKS, 4, peers=[b, c], tofu=True)
        b.init(trust=[a.key], force=True)
        c.init(trust=[a.key], force=True)
        compaction(a, interval_ms=86400000, known_peer_hours=known_peer_hours)
        for n in (b, c):
            compaction(n, interval_ms=86400000)
        for n in (a, b, c):
            n.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'home'), ('l2', 'work');"
                  "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'milk')")
        for n in (b, c):
            self.wait(f"{n.name} to hold t1", lambda n=n: tasks(n) == "t1:l1:milk:0")
        return a, b, c

    def write_while_c_is_away(self, a, b, c):
        """c stops; a rewrites t1 and makes t2, whose NOT NULL cells it then writes apart;
        b takes it all."""
        self.wait("a to hear c hold t1", lambda: a.peer(c)["behind"] == 0)
        c.stop()
        for title in ("bread", "eggs", "cheese"):
            sql(a.db, f"UPDATE tasks SET title = '{title}' WHERE id = 't1'")
            self.wait(f"b to take {title}",
                      lambda title=title: sql(b.db, "SELECT title FROM tasks WHERE id = 't1'")
                      == title)
        sql(a.db, "INSERT INTO tasks (id, list_id, title) VALUES ('t2', 'l1', 'draft')")
        self.wait("b to take t2", lambda: sql(b.db, "SELECT count(*) FROM tasks") == "2")
        sql(a.db, "UPDATE tasks SET title = 'final' WHERE id = 't2'")
        self.wait("b to take t2's title",
                  lambda: sql(b.db, "SELECT title FROM tasks WHERE id = 't2'") == "final")
        sql(a.db, "UPDATE tasks SET list_id = 'l2', done = 1 WHERE id = 't2'")
        want = "t1:l1:cheese:0,t2:l2:final:1"
        self.wait("b to hold a's writes", lambda: tasks(b) == want)
        self.wait("a to hear b hold them", lambda: a.peer(b)["behind"] == 0)
        return want

    def assert_back_with(self, a, c, want):
        """c starts again and comes to hold want, nothing parked, no operation lacking."""
        c.start()
        self.wait("c to hold the current cells", lambda: tasks(c) == want, timeout=30)
        self.wait("a to hear c hold everything", lambda: a.peer(c)["behind"] == 0, timeout=30)
        self.assertEqual(c.report()["node"]["parked"], 0)

    def test_a_peer_offline_through_a_pruning_gets_the_current_cells(self):
        # known_peer_hours = 0: only peers connected at a pass hold pruning back.
        a, b, c = self.three(0)
        want = self.write_while_c_is_away(a, b, c)
        before = stats(a)
        out = self.stemma("compact", "--dir", a.dir)
        self.assertIn("compaction last pass", out)
        after = stats(a)
        # t1's first three titles, t2's first title, list_id and done: six at least.
        self.assertGreaterEqual(int(after["pruned"]), 6, out)
        self.assertEqual(int(after["operations"]), int(before["operations"]) - int(after["pruned"]))
        self.assertEqual(int(after["compaction passes"]), int(before["compaction passes"]) + 1)
        # What b and a hold is untouched.
        self.assertEqual(sql(a.db, "SELECT title FROM tasks WHERE id = 't1'"), "cheese")
        self.assertEqual(a.report()["node"]["compaction"]["known_peers"], 1)
        # c comes back: pruned stand-ins for what is gone, the current cells, and t2 made
        # of its pieces.
        self.assert_back_with(a, c, want)
        # A newcomer that never met anyone: the same.
        d = Node(self, "d", TASKS, 4, peers=[a], tofu=True)
        d.start()
        self.wait("d to hold the current cells", lambda: tasks(d) == want, timeout=30)
        # One that hears only from d, which took the pruned stand-ins with no row: d
        # hands them on (its feed knows the gaps), so e's vector passes them too.
        e = Node(self, "e", TASKS, 4, peers=[d])
        e.init(peers=[d], trust=[d.key], force=True)
        e.start()
        self.wait("e to hold the current cells", lambda: tasks(e) == want, timeout=30)
        self.wait("d to hear e hold everything", lambda: d.peer(e)["behind"] == 0, timeout=30)
        self.assertEqual(e.report()["node"]["parked"], 0)

    def test_a_known_peer_offline_holds_pruning_back_until_it_holds_the_later_writes(self):
        a, b, c = self.three(168)
        want = self.write_while_c_is_away(a, b, c)
        out = self.stemma("compact", "--dir", a.dir)
        self.assertEqual(int(stats(a)["pruned"]), 0, out)
        compaction_report = a.report()["node"]["compaction"]
        self.assertEqual(compaction_report["known_peers"], 2)
        self.assertGreaterEqual(compaction_report["last_waiting"], 6)
        # c comes back to the history, then the pass prunes.
        self.assert_back_with(a, c, want)
        self.stemma("compact", "--dir", a.dir)
        self.assertGreaterEqual(int(stats(a)["pruned"]), 6)
        self.assertEqual(a.report()["node"]["compaction"]["last_waiting"], 0)


if __name__ == "__main__":
    mesh_test.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
