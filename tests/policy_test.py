#!/usr/bin/python3
"""The [policy] held per operation (node/admit.h): real `stemma node` processes on free
loopback ports, with CURVE keys, syncing real SQLite files written by the sqlite3 shell.

Run by ctest as `python3 tests/policy_test.py PATH/TO/stemma` from the source root. It
reuses mesh_test.py's nodes.

Two branches of one history (tests/data/schemas/items-a and items-b) share v1, items (id,
name). Branch A adds notes (v2) and later qty (v3); branch B adds qty (v2). A node judges
each operation by the version its writer was at, whoever relays it: with a divergent
version, by default, only what both share applies, the rest is parked with a reason that
names the column, the version and the setting. Every wait is for a condition (a row, a
parked reason, a peer's state); its timeout only matters when something is broken.
"""
import os
import re
import subprocess
import sys
import unittest

import mesh_test
from mesh_test import Mesh, Node, sql

ITEMS_A = os.path.abspath("tests/data/schemas/items-a")
ITEMS_B = os.path.abspath("tests/data/schemas/items-b")


def set_policy(node, relation, mode):
    """Sets [policy] RELATION = "MODE" in node's node.toml (read when the node starts)."""
    toml = os.path.join(node.dir, "node.toml")
    with open(toml) as f:
        text = f.read()
    new, n = re.subn(rf'^{relation} = "\w+"$', f'{relation} = "{mode}"', text, flags=re.M)
    assert n == 1, f"no {relation} setting in {toml}"
    with open(toml, "w") as f:
        f.write(new)


def reasons(node):
    """What node has parked, {reason: count}."""
    return {r["reason"]: r["count"] for r in node.report()["node"]["parked_reasons"]}


def parked_for(node, pattern):
    """The count parked for the reason matching pattern (a regular expression), or 0."""
    return sum(c for r, c in reasons(node).items() if re.search(pattern, r))


NOT_SHARED = r"^{what} not shared with version [0-9a-f]{{12}} \(divergent; \[policy\] divergent = \"shared\"\)$"


def item(node, column, key="i1"):
    return sql(node.db, f"SELECT {column} FROM items WHERE id = '{key}'")


@unittest.skipUnless(mesh_test.SQLITE3, "the sqlite3 shell is not installed")
class Policy(Mesh):
    def test_divergent_peers_sync_shared_columns_only_both_ways(self):
        a = Node(self, "a", ITEMS_A, 2, tofu=True)
        b = Node(self, "b", ITEMS_B, 2, peers=[a], tofu=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        sql(b.db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'bolt', 7)")
        sql(a.db, "INSERT INTO items (id, name) VALUES ('i2', 'nut');"
                  "INSERT INTO notes (id, body) VALUES ('n1', 'from a')")
        self.wait("a to get b's name", lambda: item(a, "name") == "bolt")
        self.wait("b to get a's name", lambda: item(b, "name", "i2") == "nut")
        # What is not shared is parked on each side, saying why, never applied: b's qty on
        # a (which has no such column), a's notes on b (which has no such table).
        self.wait("a to park b's qty",
                  lambda: parked_for(a, NOT_SHARED.format(what=r"items\.qty")) == 1)
        self.wait("b to park a's notes",
                  lambda: parked_for(b, NOT_SHARED.format(what=r"notes \(table\)")) == 2)
        # The verdicts say the same, on both sides.
        pa, pb = a.peer(b), b.peer(a)
        self.assertEqual((pa["relation"], pa["sync"]), ("divergent", "partial"))
        self.assertEqual((pb["relation"], pb["sync"]), ("divergent", "partial"))
        self.assertIn("not synced: items.qty, notes (table)", pa["reason"])
        self.assertIn("not synced: items.qty, notes (table)", pb["reason"])
        self.assertGreaterEqual(pa["parked"], 1)
        # a migrates to v3, which adds qty as b has it: shared now, and what the policy
        # parked applies (the node judges it again after a migration).
        self.stemma("migrate", "--db", a.db, "--schemas", ITEMS_A, "--to", "3", "--no-backup")
        self.wait("a to apply b's qty", lambda: item(a, "qty") == "7")
        self.assertEqual(parked_for(a, r"items\.qty"), 0)
        # b still parks a's notes: the policy holds after a's migration too.
        self.assertEqual(parked_for(b, NOT_SHARED.format(what=r"notes \(table\)")), 2)

    def test_divergent_full_applies_what_both_have(self):
        a = Node(self, "a", ITEMS_A, 2, tofu=True)
        b = Node(self, "b", ITEMS_B, 2, peers=[a], tofu=True)
        set_policy(a, "divergent", "full")
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        pa = a.peer(b)
        self.assertEqual((pa["relation"], pa["sync"]), ("divergent", "full"))
        self.assertIn('[policy] divergent = "full"', pa["reason"])
        sql(b.db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'bolt', 7)")
        self.wait("a to get b's name", lambda: item(a, "name") == "bolt")
        # Full cannot put qty where a has no column: parked as for an older peer, and
        # applied by the migration that adds it.
        self.wait("a to park qty for its schema",
                  lambda: reasons(a).get("column not in this database") == 1)
        self.assertEqual(parked_for(a, "policy"), 0)
        self.stemma("migrate", "--db", a.db, "--schemas", ITEMS_A, "--to", "3", "--no-backup")
        self.assertEqual(item(a, "qty"), "7")

    def test_none_holds_for_what_a_relay_brings_and_a_new_policy_admits_it(self):
        # c is at v1, where the branches parted: an ancestor of both, it syncs fully with
        # each and relays b's writes to a, which refuses b itself.
        c = Node(self, "c", ITEMS_A, 1, tofu=True)
        b = Node(self, "b", ITEMS_B, 2, peers=[c], tofu=True)
        a = Node(self, "a", ITEMS_A, 2, peers=[b, c], tofu=True)
        set_policy(a, "divergent", "none")
        for n in (a, b, c):
            n.start()
        self.wait("a to refuse b", lambda: (a.peer(b) or {}).get("state") == "refused")
        self.wait("a and c to connect", lambda: (a.peer(c) or {}).get("state") == "connected")
        sql(b.db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'bolt', 7)")
        self.wait("c to get b's name", lambda: item(c, "name") == "bolt")
        none = r"^nothing syncs with version [0-9a-f]{12} \(divergent; \[policy\] divergent = \"none\"\)$"
        self.wait("a to park what c relays of b's", lambda: parked_for(a, none) == 3)
        self.assertEqual(item(a, "name"), "")
        # Divergent shared from now on: the node judges them again when it starts.
        a.stop()
        set_policy(a, "divergent", "shared")
        a.start()
        self.wait("a to apply b's name", lambda: item(a, "name") == "bolt")
        self.assertEqual(parked_for(a, none), 0)
        self.wait("a to park b's qty",
                  lambda: parked_for(a, NOT_SHARED.format(what=r"items\.qty")) == 1)

    def test_a_version_no_hello_described_waits_for_one(self):
        c = Node(self, "c", ITEMS_A, 1, tofu=True)
        b = Node(self, "b", ITEMS_B, 2, peers=[c], tofu=True)
        c.start()
        b.start()
        sql(b.db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'bolt', 7)")
        self.wait("c to get b's name", lambda: item(c, "name") == "bolt")
        b.stop()
        # a meets only c, which relays b's writes: nothing a knows describes b's version.
        a = Node(self, "a", ITEMS_A, 2, peers=[c], tofu=True)
        a.start()
        unknown = r"^version [0-9a-f]{12} unknown: no peer has described it$"
        self.wait("a to park b's writes", lambda: parked_for(a, unknown) == 3)
        self.assertEqual(item(a, "name"), "")
        # b comes back; a meets it (c names it) and judges again by its HELLO.
        b.start()
        self.wait("a to apply b's name", lambda: item(a, "name") == "bolt")
        self.wait("a to park b's qty as not shared",
                  lambda: parked_for(a, NOT_SHARED.format(what=r"items\.qty")) == 1)
        self.assertEqual(parked_for(a, unknown), 0)


def branches(tmp):
    """Two branches parted after v1, items (id, name): one renames name to title (v2),
    the other adds qty (v2). Returns their directories."""
    made = []
    for name, v2 in (("renamed", "ALTER TABLE items RENAME COLUMN name TO title;\n"),
                     ("counted", "ALTER TABLE items ADD COLUMN qty INTEGER;\n")):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "001_items.sql"), "w") as f:
            f.write("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT);\n")
        with open(os.path.join(d, "002_" + name + ".sql"), "w") as f:
            f.write(v2)
        made.append(d)
    return made


@unittest.skipUnless(mesh_test.SQLITE3, "the sqlite3 shell is not installed")
class Branches(Mesh):
    """A column one branch renamed is the same column on the other (sync/apply.h,
    invariant 8): a node follows a divergent peer's operations back through the lenses
    its HELLO carries to the version both share, and on to its own names."""

    def test_a_renamed_column_syncs_between_divergent_nodes(self):
        renamed, counted = branches(self.tmp)
        a = Node(self, "a", counted, 2, tofu=True)
        b = Node(self, "b", renamed, 2, peers=[a], tofu=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        sql(b.db, "INSERT INTO items (id, title) VALUES ('i1', 'bolt')")
        self.wait("a to get b's title as its name", lambda: item(a, "name") == "bolt")
        sql(a.db, "UPDATE items SET name = 'nut', qty = 3 WHERE id = 'i1'")
        self.wait("b to get a's name as its title", lambda: item(b, "title") == "nut")
        # qty is a's alone: parked on b as not shared, and nothing else is.
        self.wait("b to park a's qty",
                  lambda: parked_for(b, NOT_SHARED.format(what=r"items\.qty")) == 1)
        self.assertEqual(sum(reasons(a).values()), 0)
        self.assertEqual(sum(reasons(b).values()), 1)
        # The verdicts name the rename as translated, and only qty as not synced.
        pa, pb = a.peer(b), b.peer(a)
        self.assertIn("not synced: items.qty; translated: items.name here = items.title "
                      "there", pa["reason"])
        self.assertIn("not synced: items.qty; translated: items.title here = items.name "
                      "there", pb["reason"])

    def moved(self):
        """A third branch parted after v1: it renames items to things (v2)."""
        moved = os.path.join(self.tmp, "moved")
        os.makedirs(moved)
        with open(os.path.join(moved, "001_items.sql"), "w") as f:
            f.write("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT);\n")
        with open(os.path.join(moved, "002_things.sql"), "w") as f:
            f.write("ALTER TABLE items RENAME TO things;\n")
        return moved

    def test_a_renamed_table_syncs_between_divergent_nodes(self):
        moved, (_, counted) = self.moved(), branches(self.tmp)
        a = Node(self, "a", counted, 2, tofu=True)
        b = Node(self, "b", moved, 2, peers=[a], tofu=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        sql(b.db, "INSERT INTO things (id, name) VALUES ('i1', 'bolt')")
        self.wait("a to get b's thing as an item", lambda: item(a, "name") == "bolt")
        sql(a.db, "UPDATE items SET name = 'nut' WHERE id = 'i1'")
        self.wait("b to get a's item as a thing",
                  lambda: sql(b.db, "SELECT name FROM things WHERE id = 'i1'") == "nut")
        self.assertIn("translated: items here = things there", a.peer(b)["reason"])
        self.assertIn("translated: things here = items there", b.peer(a)["reason"])

    def apply_offline(self, theirs, insert):
        """A database on the counted branch takes, through stemma apply --writer, a row
        inserted (insert) on a database of branch theirs: what apply says, and its items."""
        _, counted = branches(self.tmp)
        a, b = os.path.join(self.tmp, "a.db"), os.path.join(self.tmp, "b.db")
        for db, schemas in ((a, counted), (b, theirs)):
            self.stemma("migrate", "--db", db, "--schemas", schemas, "--no-backup")
        sql(b, insert)
        vec, bundle = os.path.join(self.tmp, "a.stmv"), os.path.join(self.tmp, "b.stmb")
        self.stemma("vector", "--db", a, "-o", vec)
        self.stemma("changes", "--db", b, "--since", vec, "-o", bundle)
        node = os.path.join(self.tmp, "a-node")
        self.stemma("init", "--dir", node, "--db", a, "--schemas", counted, "--bind",
                    f"tcp://127.0.0.1:{mesh_test.free_port()}")
        out = self.stemma("apply", "--db", a, "--node", node, "--writer", theirs, bundle)
        return out, sql(a, "SELECT id, name FROM items")

    def test_a_table_renamed_on_one_branch_takes_the_rows_of_the_other(self):
        out, items = self.apply_offline(
            self.moved(), "INSERT INTO things (id, name) VALUES ('i1', 'bolt')")
        self.assertIn("applied 2, already present 0, parked 0", out)
        self.assertEqual(items, "i1|bolt")

    def test_apply_with_the_writer_history_translates_offline(self):
        renamed = os.path.join(self.tmp, "renamed-writer")
        os.makedirs(renamed)
        for name, text in (("001_items.sql", "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT);\n"),
                           ("002_renamed.sql", "ALTER TABLE items RENAME COLUMN name TO title;\n")):
            with open(os.path.join(renamed, name), "w") as f:
                f.write(text)
        out, items = self.apply_offline(renamed, "INSERT INTO items (id, title) VALUES ('i1', 'bolt')")
        self.assertIn("applied 2, already present 0, parked 0", out)
        self.assertEqual(items, "i1|bolt")


@unittest.skipUnless(mesh_test.SQLITE3, "the sqlite3 shell is not installed")
class ApplyUnderPolicy(Mesh):
    """stemma apply --node DIR judges a bundle's operations by that node's [policy], as the
    node would; --writer describes the writer's versions, as a HELLO would."""

    def test_a_bundle_from_a_divergent_writer(self):
        a, b = os.path.join(self.tmp, "a.db"), os.path.join(self.tmp, "b.db")
        for db, schemas in ((a, ITEMS_A), (b, ITEMS_B)):
            self.stemma("migrate", "--db", db, "--schemas", schemas, "--to", "2", "--no-backup")
        sql(b, "INSERT INTO items (id, name, qty) VALUES ('i1', 'bolt', 7)")
        vec, bundle = os.path.join(self.tmp, "a.stmv"), os.path.join(self.tmp, "b.stmb")
        self.stemma("vector", "--db", a, "-o", vec)
        self.stemma("changes", "--db", b, "--since", vec, "-o", bundle)
        node = os.path.join(self.tmp, "a-node")
        self.stemma("init", "--dir", node, "--db", a, "--schemas", ITEMS_A, "--bind",
                    f"tcp://127.0.0.1:{mesh_test.free_port()}")
        parked = f"SELECT kind || ': ' || reason FROM stemma_parked ORDER BY seq"
        # Nothing describes b's version to the policy: all of it waits.
        out = self.stemma("apply", "--db", a, "--node", node, bundle)
        self.assertIn("applied 0, already present 0, parked 3", out)
        self.assertEqual(len(re.findall(r"^policy: version [0-9a-f]{12} unknown: no peer has "
                                        r"described it$", sql(a, parked), re.M)), 3)
        # Told b's history, the policy lets the shared columns through.
        out = self.stemma("apply", "--db", a, "--node", node, "--writer", ITEMS_B, bundle)
        self.assertIn("already present 3, parked 0, replayed 2", out)
        self.assertEqual(sql(a, "SELECT name FROM items WHERE id = 'i1'"), "bolt")
        self.assertRegex(sql(a, parked), NOT_SHARED.format(what=r"policy: items\.qty"))
        # A migration that makes qty shared replays without the policy: it leaves it.
        self.stemma("migrate", "--db", a, "--schemas", ITEMS_A, "--to", "3", "--no-backup")
        self.assertEqual(sql(a, "SELECT count(*) FROM stemma_parked WHERE kind = 'policy'"), "1")
        out = self.stemma("apply", "--db", a, "--node", node, "--writer", ITEMS_B, bundle)
        self.assertIn("replayed 1 (0 parked in all)", out)
        self.assertEqual(sql(a, "SELECT qty FROM items WHERE id = 'i1'"), "7")

    def test_writer_without_a_node_is_bad_usage(self):
        p = subprocess.run([mesh_test.STEMMA, "apply", "--db", "x.db", "--writer", ITEMS_B,
                            "b.stmb"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr.count("\n"), 1)
        self.assertIn("--writer describes versions to a policy: give --node", p.stderr)


if __name__ == "__main__":
    mesh_test.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
