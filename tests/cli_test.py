#!/usr/bin/python3
"""Command-line tests of stemma: what a user types and what they get back.

Run by ctest as `python3 tests/cli_test.py PATH/TO/stemma` from the source root.
Exported TOML is checked with tomli (python3-tomli), a parser independent of ours.
"""
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import tomli as toml_reader
except ImportError:  # pragma: no cover - Debian 12 has python3-tomli; 3.11 has tomllib
    import tomllib as toml_reader

STEMMA = None
SETS = ["schemas/tasks", "schemas/tasks-fork", "tests/data/schemas/tasks-v2",
        "tests/data/schemas/notes", "tests/data/schemas/rebuilds"]


def run(*args):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ok(self, *args):
        code, out, err = run(*args)
        self.assertEqual(code, 0, f"stemma {' '.join(args)}: exit {code}, stderr {err!r}")
        self.assertEqual(err, "")
        return out

    def fails(self, code_expected, *args, contains=()):
        code, out, err = run(*args)
        self.assertEqual(code, code_expected, f"stemma {' '.join(args)}: stderr {err!r}")
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
        for c in contains:
            self.assertIn(c, lines[0])
        return lines[0]


class Help(Base):
    def test_version(self):
        # -V and --version say the same: this build, the formats, the libraries.
        out = self.ok("--version")
        self.assertEqual(out, self.ok("-V"))
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^stemma \d+\.\d+\.\d+$")
        self.assertRegex(lines[1], r"^store format \d+, bundle format \d+, wire protocol \d+$")
        self.assertRegex(lines[2], r"^SQLite 3\.[\d.]+, libzmq [\d.]+, libsodium [\d.]+, "
                                   r"msgpack-c [\d.]+$")

    def test_help_everywhere(self):
        self.assertIn("usage: stemma COMMAND", self.ok("--help"))
        for cmd in ["history", "export", "compare"]:
            out = self.ok(cmd, "--help")
            self.assertTrue(out.startswith(f"usage: stemma {cmd}"), out)
            # `stemma help CMD` is `stemma CMD --help`.
            self.assertEqual(self.ok("help", cmd), out)
        self.assertEqual(self.ok("help"), self.ok("--help"))
        self.fails(2, "help", "frobnicate", contains=["unknown command 'frobnicate'"])
        self.fails(2, "help", "history", "export", contains=["one command at most"])

    def test_bad_usage_is_exit_2_with_one_line(self):
        self.fails(2, "frobnicate", contains=["unknown command 'frobnicate'"])
        self.fails(2, "history", contains=["--schemas DIR is required"])
        self.fails(2, "history", "--schemas", "schemas/tasks", "--format", "xml",
                   contains=["--format must be"])
        self.fails(2, "compare", "schemas/tasks", contains=["expected two histories"])
        self.fails(2, "compare", "--bogus", "a", "b", contains=["unknown option '--bogus'"])
        self.fails(2, "export", "--schemas", "schemas/tasks", "extra",
                   contains=["unexpected argument 'extra'"])
        code, out, err = run()
        self.assertEqual(code, 2)


class History(Base):
    def test_text(self):
        out = self.ok("history", "--schemas", "schemas/tasks")
        self.assertIn("schema set tasks: 4 versions, head v4", out)
        self.assertIn("v2  ", out)
        self.assertIn("Tasks get a priority", out)

    def test_json_and_toml_agree(self):
        j = json.loads(self.ok("history", "--schemas", "schemas/tasks", "--format", "json"))
        t = toml_reader.loads(self.ok("history", "--schemas", "schemas/tasks", "--format", "toml"))
        self.assertEqual(j["schema_set"], "tasks")
        self.assertEqual([v["number"] for v in j["versions"]], [1, 2, 3, 4])
        self.assertEqual(j["versions"], t["versions"])
        for prev, v in zip(j["versions"], j["versions"][1:]):
            self.assertEqual(v["parent"], prev["id"])
        self.assertEqual(j["versions"][0]["parent"], "0" * 64)

    def test_checksum_is_b2sum_of_the_file(self):
        if not shutil.which("b2sum"):
            self.skipTest("b2sum not installed")
        j = json.loads(self.ok("history", "--schemas", "schemas/tasks", "--format", "json"))
        out = subprocess.run(["b2sum", "-l", "256", "schemas/tasks/002_add_priority.sql"],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(j["versions"][1]["checksum"], out.split()[0])

    def test_lenses(self):
        # What each migration does to the data: a column renamed, a rebuild that fills
        # NULLs on the way, a table dropped (tests/data/schemas/rebuilds).
        out = self.ok("history", "--schemas", "tests/data/schemas/rebuilds", "--lenses")
        self.assertIn("  v2  ", out)
        self.assertIn("      Item Log.quantity  renamed from Item Log.qty\n", out)
        self.assertIn("      Item Log.quantity  filled from Item Log.quantity\n", out)
        self.assertIn("      kv  dropped\n", out)
        j = json.loads(self.ok("history", "--schemas", "tests/data/schemas/rebuilds", "--lenses",
                               "--format", "json"))
        v2 = j["versions"][1]
        self.assertTrue(v2["derived"])
        self.assertEqual(v2["changes"], [{"kind": "renamed", "table": "Item Log",
                                          "column": "quantity", "from_table": "Item Log",
                                          "from_column": "qty"}])
        self.assertEqual(j["versions"][3]["changes"][0]["column"], None)
        # Without --lenses nothing changes.
        self.assertNotIn("changes", json.loads(self.ok(
            "history", "--schemas", "tests/data/schemas/rebuilds", "--format", "json"))
            ["versions"][1])

    def test_one_column_put_into_two(self):
        # Which of two columns holding one column's values is "the same column" is not
        # guessed per operation: the first is the rename, the other a copy.
        d = os.path.join(self.tmp, "split")
        os.makedirs(d)
        with open(os.path.join(d, "001_t.sql"), "w") as f:
            f.write("CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT);\n")
        with open(os.path.join(d, "002_split.sql"), "w") as f:
            f.write("CREATE TABLE t_new (id TEXT PRIMARY KEY, b TEXT, c TEXT);\n"
                    "INSERT INTO t_new SELECT id, a, a FROM t;\n"
                    "DROP TABLE t;\nALTER TABLE t_new RENAME TO t;\n")
        out = self.ok("history", "--schemas", d, "--lenses")
        self.assertIn("      t.b  renamed from t.a\n      t.c  copied from t.a\n", out)

    def test_lenses_from_an_export(self):
        # An export carries the lenses: history --lenses reads the same from it.
        exported = os.path.join(self.tmp, "rebuilds.toml")
        self.ok("export", "--schemas", "tests/data/schemas/rebuilds", "-o", exported)
        for fmt in ("text", "json"):
            self.assertEqual(
                self.ok("history", "--schemas", exported, "--lenses", "--format", fmt),
                self.ok("history", "--schemas", "tests/data/schemas/rebuilds", "--lenses",
                        "--format", fmt))
        self.fails(2, "history", "--db", exported, "--lenses",
                   contains=["--lenses needs --schemas DIR"])
        self.fails(2, "history", "--schemas", "schemas/tasks", "--lenses", "--format", "toml",
                   contains=["--lenses is shown as text or json"])

    def test_bad_sets(self):
        self.fails(2, "history", "--schemas", "tests/data/schemas/bad-gap",
                   contains=["003_c.sql", "gap"])
        self.fails(2, "history", "--schemas", "tests/data/schemas/bad-sql",
                   contains=["002_broken.sql:3:", "syntax error"])
        self.fails(2, "history", "--schemas", "tests/data/no-such-dir",
                   contains=["tests/data/no-such-dir", "No such file"])


class Export(Base):
    def test_every_export_is_valid_toml_and_round_trips(self):
        for s in SETS:
            with self.subTest(set=s):
                first = self.ok("export", "--schemas", s)
                doc = toml_reader.loads(first)  # the independent parser accepts it
                self.assertEqual(doc["format"], 1)
                self.assertEqual(doc["schema_set"], os.path.basename(s))
                path = os.path.join(self.tmp, os.path.basename(s) + ".toml")
                with open(path, "w") as f:
                    f.write(first)
                # Export of the export is byte-identical.
                self.assertEqual(self.ok("export", "--schemas", path), first)

    def test_export_content(self):
        doc = toml_reader.loads(self.ok("export", "--schemas", "schemas/tasks"))
        hist = json.loads(self.ok("history", "--schemas", "schemas/tasks", "--format", "json"))
        self.assertEqual([v["id"] for v in doc["versions"]], [v["id"] for v in hist["versions"]])
        self.assertEqual(doc["head_version"], 4)
        tasks = doc["families"]["tasks"]
        self.assertEqual(tasks["current_version"], 3)
        self.assertEqual(tasks["status"], "live")
        self.assertEqual([v["version"] for v in tasks["versions"]], [1, 2, 3])
        self.assertEqual(tasks["versions"][1]["added_fields"], ["priority"])
        self.assertEqual(tasks["versions"][2]["added_fields"], ["tags"])
        self.assertEqual(tasks["versions"][2]["removed_fields"], [])
        self.assertEqual(tasks["head"], tasks["versions"][-1]["head"])
        cols = {c["name"]: c for c in tasks["versions"][-1]["columns"]}
        self.assertEqual(cols["priority"]["affinity"], "INTEGER")
        self.assertEqual(cols["priority"]["default"], "0")
        self.assertNotIn("default", cols["notes"])
        self.assertEqual(cols["id"]["pk"], 1)
        self.assertEqual(doc["families"]["comments"]["versions"][0]["version"], 4)

    def test_export_dropped_and_quoted_names(self):
        doc = toml_reader.loads(self.ok("export", "--schemas", "tests/data/schemas/rebuilds"))
        self.assertEqual(doc["families"]["kv"]["status"], "dropped")
        self.assertEqual(doc["families"]["kv"]["versions"][-1]["action"], "dropped")
        log = doc["families"]["Item Log"]
        self.assertEqual(log["versions"][1]["added_fields"], ["quantity"])
        self.assertEqual(log["versions"][1]["removed_fields"], ["qty"])
        self.assertIn('note "quoted"', [c["name"] for c in log["versions"][0]["columns"]])

    def test_output_file(self):
        path = os.path.join(self.tmp, "out.toml")
        self.assertEqual(self.ok("export", "--schemas", "schemas/tasks", "-o", path), "")
        with open(path) as f:
            self.assertEqual(f.read(), self.ok("export", "--schemas", "schemas/tasks"))
        self.assertEqual(os.listdir(self.tmp), ["out.toml"])  # no temporary left behind
        self.fails(1, "export", "--schemas", "schemas/tasks", "-o",
                   os.path.join(self.tmp, "no", "such", "dir.toml"), contains=["cannot write"])


class Compare(Base):
    def test_renames_are_followed(self):
        # A copy of the renames history at v2 against the whole (v3): the columns
        # renamed at v2 sync as they are (same names at v2 and v3), the table renamed at
        # v3 is translated, not parked; and a v1 copy names the renamed columns.
        for keep in ("001", "002"):
            d = os.path.join(self.tmp, "upto" + keep)
            os.makedirs(d)
            for f in sorted(os.listdir("tests/data/schemas/renames")):
                if f[:3] <= keep:
                    shutil.copy(os.path.join("tests/data/schemas/renames", f), d)
        out = self.ok("compare", os.path.join(self.tmp, "upto001"), "tests/data/schemas/renames")
        self.assertIn("users   ancestor    table renamed: people there; renamed: key here = akey "
                      "there, type here = atype there\n", out)
        self.assertIn("  Translated between the versions (renamed, history --lenses):\n"
                      "    users here = people there, users.key here = people.akey there, "
                      "users.type here = people.atype there\n", out)
        self.assertNotIn("Parked", out)
        j = json.loads(self.ok("compare", "tests/data/schemas/renames",
                               os.path.join(self.tmp, "upto002"), "--format", "json"))
        fam = {f["name"]: f for f in j["families"]}
        self.assertEqual(fam["people"]["renamed_table"], "users")
        self.assertEqual(fam["users"]["renamed_table"], "people")
        self.assertEqual(fam["people"]["renamed"], [])
        # An export says what the migrations do (its lenses): compare follows the renames
        # through it as through the directory, and history --lenses reads them back.
        exported = os.path.join(self.tmp, "renames.toml")
        self.ok("export", "--schemas", "tests/data/schemas/renames", "-o", exported)
        up1 = os.path.join(self.tmp, "upto001.toml")
        self.ok("export", "--schemas", os.path.join(self.tmp, "upto001"), "-o", up1)
        self.assertEqual(self.ok("compare", up1, exported),
                         self.ok("compare", os.path.join(self.tmp, "upto001"),
                                 "tests/data/schemas/renames"))
        self.assertEqual(self.ok("history", "--schemas", exported, "--lenses"),
                         self.ok("history", "--schemas", "tests/data/schemas/renames",
                                 "--lenses"))
        # One written without them (an older stemma's) follows nothing, and says so by
        # parking what differs.
        with open(exported) as f:
            text = f.read()
        bare = os.path.join(self.tmp, "bare.toml")
        with open(bare, "w") as f:
            f.write(re.sub(r"\nlenses = true\n", "\n",
                           re.sub(r"\n\[\[versions\.lenses\]\]\n(?:[a-z_]+ = \"[^\"]*\"\n)+",
                                  "\n", text)))
        self.assertNotIn("lenses", open(bare).read())
        out = self.ok("compare", os.path.join(self.tmp, "upto001"), bare)
        self.assertIn("  Parked here, then replayed when this side migrates to the version that "
                      "adds it:\n    people (table, v3)\n"
                      "  Parked on the remote, and no migration replays them (its history "
                      "dropped them):\n    users (table, dropped at v3)\n"
                      "  Renames are not followed here: no schema directory given holds both "
                      "versions", out)
        self.assertFalse(json.loads(self.ok("compare", os.path.join(self.tmp, "upto001"),
                                            bare, "--format", "json"))["renames_followed"])
        self.fails(2, "history", "--schemas", bare, "--lenses",
                   contains=["does not say what its migrations do"])
        # A change of a kind no stemma writes is bad input, named where it is.
        with open(bare + "2", "w") as f:
            f.write(text.replace('kind = "renamed"', 'kind = "teleported"', 1))
        self.fails(2, "history", "--schemas", bare + "2", "--lenses",
                   contains=["bare.toml2:", "kind: not one of"])

    def compare(self, a, b):
        return json.loads(self.ok("compare", a, b, "--format", "json"))

    def test_tasks_against_fork(self):
        hist = json.loads(self.ok("history", "--schemas", "schemas/tasks", "--format", "json"))
        c = self.compare("schemas/tasks", "schemas/tasks-fork")
        self.assertEqual(c["relation"], "divergent")
        self.assertEqual(c["common_ancestor"], {"version": 2, "id": hist["versions"][1]["id"]})
        self.assertEqual(c["local"]["version"], 4)
        self.assertEqual(c["local"]["id"], hist["versions"][3]["id"])
        self.assertEqual(c["remote"]["version"], 3)
        fam = {f["name"]: f for f in c["families"]}
        self.assertEqual(sorted(fam), ["comments", "lists", "tags", "tasks"])
        self.assertEqual(fam["lists"]["relation"], "same")
        self.assertEqual(fam["tasks"]["relation"], "divergent")
        self.assertEqual(fam["tasks"]["local_only"], ["tags"])
        self.assertEqual(fam["tasks"]["remote_only"], ["due_at"])
        self.assertEqual(fam["tasks"]["conflicting"], [])
        self.assertIn("priority", fam["tasks"]["shared"])
        self.assertEqual(fam["comments"]["relation"], "descendant")

    def test_all_relations(self):
        self.assertEqual(self.compare("schemas/tasks", "schemas/tasks")["relation"], "same")
        c = self.compare("tests/data/schemas/tasks-v2", "schemas/tasks")
        self.assertEqual(c["relation"], "ancestor")
        self.assertEqual(c["common_ancestor"]["version"], 2)
        self.assertEqual(self.compare("schemas/tasks", "tests/data/schemas/tasks-v2")["relation"],
                         "descendant")
        c = self.compare("schemas/tasks", "tests/data/schemas/notes")
        self.assertEqual(c["relation"], "unrelated")
        self.assertIsNone(c["common_ancestor"])
        fam = {f["name"]: f for f in c["families"]}
        self.assertEqual(fam["tasks"]["relation"], "unrelated")
        self.assertEqual(fam["tasks"]["conflicting"], ["id"])  # TEXT key against INTEGER key

    def test_exported_files_compare_like_directories(self):
        paths = []
        for s in ["schemas/tasks", "schemas/tasks-fork"]:
            p = os.path.join(self.tmp, os.path.basename(s) + ".toml")
            self.ok("export", "--schemas", s, "-o", p)
            paths.append(p)
        self.assertEqual(self.compare(*paths), self.compare("schemas/tasks", "schemas/tasks-fork"))
        self.assertEqual(self.compare(paths[0], "schemas/tasks-fork"),
                         self.compare("schemas/tasks", "schemas/tasks-fork"))

    def test_text_says_what_syncs(self):
        out = self.ok("compare", "schemas/tasks", "schemas/tasks-fork")
        self.assertIn("relation: divergent (common ancestor v2", out)
        self.assertIn('  Shared columns only ([policy] divergent = "shared"): the histories '
                      'parted after v2.\n', out)
        # Parked for the policy where it is missing: no version compared here replays it.
        self.assertIn("  Parked here for the policy (only there), replayed only if a later "
                      "version of this side has them the same:\n    tasks.due_at\n", out)
        self.assertIn("  Parked on the remote for the policy (only here), replayed only if a "
                      "later version there has them the same:\n    comments (table), "
                      "tasks.tags\n", out)
        out = self.ok("compare", "tests/data/schemas/tasks-v2", "schemas/tasks")
        self.assertIn("relation: ancestor", out)
        # Each replay is the migration that adds the column or the table.
        self.assertIn("  Parked here, then replayed when this side migrates to the version that "
                      "adds it:\n    comments (table, v4), tasks.tags (v3)\n", out)
        out = self.ok("compare", "schemas/tasks", "tests/data/schemas/notes")
        self.assertIn("Nothing", out)

    def upto(self, src, keep):
        """A copy of the schema set src up to version keep (a number)."""
        d = os.path.join(self.tmp, f"{os.path.basename(src)}-v{keep}")
        os.mkdir(d)
        for f in sorted(os.listdir(src)):
            if f[:3].isdigit() and int(f[:3]) <= keep and f.endswith(".sql"):
                shutil.copy(os.path.join(src, f), d)
        return d

    def test_what_parks_and_what_replays_it(self):
        # tests/data/schemas/search: v1 notes (with legacy) and visits (no key), v2 an
        # FTS5 index fed by triggers, v3 adds notes.tag, v4 drops notes.legacy.
        full = "tests/data/schemas/search"
        v1 = self.upto(full, 1)
        out = self.ok("compare", v1, full)
        self.assertIn("visits  same        2 shared; never synced on either side\n", out)
        self.assertIn("  Parked here, then replayed when this side migrates to the version that "
                      "adds it:\n    notes.tag (v3)\n"
                      "  Parked on the remote, and no migration replays them (its history "
                      "dropped them):\n    notes.legacy (dropped at v4)\n", out)
        self.assertNotIn("Renames are not followed", out)  # full holds both versions
        self.assertIn("  Never synced there:\n    notes_fts: a virtual table (triggers cannot "
                      "capture its rows); nor are the tables its module keeps (notes_fts_*): "
                      "each device keeps its own", out)
        self.assertNotIn("Syncs:", out)
        # The same from the other side, and in JSON.
        out = self.ok("compare", full, v1)
        self.assertIn("  Parked on the remote, then replayed when it migrates to the version "
                      "that adds it:\n    notes.tag (v3)\n"
                      "  Parked here, and no migration replays them (this history dropped "
                      "them):\n    notes.legacy (dropped at v4)\n", out)
        c = self.compare(full, v1)
        self.assertTrue(c["renames_followed"])
        self.assertEqual(c["parks"], [
            {"table": "notes", "column": "tag", "parked": "there", "kind": "missing",
             "replayed_at": 3},
            {"table": "notes", "column": "legacy", "parked": "here", "kind": "dropped",
             "dropped_at": 4}])
        fts = [u for u in c["unsynced"]["local"] if u["table"] == "notes_fts"][0]
        self.assertEqual((fts["kind"], fts["shadow_tables"]), ("virtual", "notes_fts_*"))
        self.assertIn("nor are the tables its module keeps (notes_fts_*)", fts["reason"])

    def test_a_real_history_with_full_text_search(self):
        komga = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                             "shared", "real-schemas", "komga")
        if not os.path.isdir(komga):
            self.skipTest("../shared/real-schemas/komga is not here")
        # 027 adds five FTS5 tables fed by triggers; 031 drops them again.
        before, fts, after = self.upto(komga, 26), self.upto(komga, 27), self.upto(komga, 31)
        out = self.ok("compare", before, fts)
        for name in ("fts_book_metadata", "fts_collection", "fts_readlist",
                     "fts_series_metadata"):
            self.assertIn(f"    {name}: a virtual table (triggers cannot capture its rows); nor "
                          f"are the tables its module keeps ({name}_*)", out)
        self.assertNotRegex(out, r"(?m)^fts_")  # no family of their own, shadows neither
        here = out[out.index("  Never synced here:"):out.index("  Never synced there:")]
        self.assertNotIn("fts_", here)  # v26 has none
        out = self.ok("compare", fts, after)
        never_here = out[out.index("  Never synced here:"):]
        self.assertIn("fts_book_metadata: a virtual table", never_here)
        self.assertNotIn("Never synced there:\n    fts_", out)

    def unsynced_sets(self):
        """The unsynced set at v1 and v2, and a fork of v1 with a table of its own."""
        src = "tests/data/schemas/unsynced"
        v1, fork = os.path.join(self.tmp, "unsynced-v1"), os.path.join(self.tmp, "fork")
        for d in (v1, fork):
            os.mkdir(d)
            shutil.copy(os.path.join(src, "001_notes.sql"), d)
        with open(os.path.join(fork, "002_audit.sql"), "w") as f:
            f.write("-- Description: An audit trail, without a key\n"
                    "CREATE TABLE audit (at TEXT, what TEXT);\n")
        return v1, src, fork

    def test_tables_that_cannot_sync_are_named_and_not_promised(self):
        v1, v2, fork = self.unsynced_sets()
        no_key = ("peers: no primary key (rowids differ between devices); add one, or it "
                  "stays local\n")
        virtual = ("search_fts: a virtual table (triggers cannot capture its rows); nor are the "
                   "tables its module keeps (search_fts_*): each device keeps its own, which "
                   "triggers that feed it from synced tables keep in step as their rows "
                   "arrive\n")
        out = self.ok("compare", v2, v2)
        self.assertIn("  Every table stemma can sync: both sides have the same schema history.\n"
                      "  Never synced, on either side:\n    " + no_key + "    " + virtual, out)
        out = self.ok("compare", v1, v2)
        self.assertIn("  Every table stemma can sync. The remote is newer (v2 against v1).\n"
                      "  Never synced here:\n    " + no_key +
                      "  Never synced there:\n    " + no_key + "    " + virtual, out)
        self.assertNotIn("Parked", out)  # search_fts is no table to park for
        out = self.ok("compare", v2, fork)
        syncs = [line for line in out.splitlines() if line.startswith("  Syncs:")][0]
        self.assertIn("notes (3 columns)", syncs)
        self.assertIn("note_links (2 columns)", syncs)  # a composite key syncs
        self.assertNotIn("peers", syncs)
        self.assertNotIn("Does not sync", out)  # audit and search_fts are named below instead
        self.assertIn("  Never synced there:\n    audit: no primary key", out)
        self.assertNotIn("note_links:", out)
        # drafts' key is its rowid, each device picks it: named, with what that means.
        self.assertIn("  Keys chosen per device (rows two devices create apart under one key "
                      "are never merged: the first made keeps the key, the other is kept aside "
                      "(stemma conflicts)):\n    here:  drafts\n    there: drafts\n", out)
        c = self.compare(v2, fork)
        self.assertEqual(c["keys_per_device"], {"local": ["drafts"], "remote": ["drafts"]})
        self.assertEqual([(u["table"], u["kind"]) for u in c["unsynced"]["local"]],
                         [("peers", "no_key"), ("search_fts", "virtual")])
        self.assertEqual([(u["table"], u["kind"]) for u in c["unsynced"]["remote"]],
                         [("audit", "no_key"), ("peers", "no_key")])
        self.assertEqual(c["unsynced"]["local"][1]["reason"], virtual.split(": ", 1)[1].strip())
        # An exported file carries its virtual tables: it compares as its directory does.
        path = os.path.join(self.tmp, "unsynced.toml")
        self.ok("export", "--schemas", v2, "-o", path)
        self.assertEqual(self.compare(path, fork), c)
        # Between unrelated histories nothing syncs: the text says only that.
        out = self.ok("compare", v2, "tests/data/schemas/notes")
        self.assertIn("  Nothing: the histories have no common ancestor", out)
        self.assertNotIn("Never synced", out)
        self.assertEqual(len(self.compare(v2, "tests/data/schemas/notes")["unsynced"]["local"]), 2)
        # Every table syncs: nothing said, and "everything" promised.
        out = self.ok("compare", "schemas/tasks", "schemas/tasks")
        self.assertIn("  Everything: both sides have the same schema history.\n", out)
        self.assertNotIn("Never synced", out)
        self.assertEqual(self.compare("schemas/tasks", "schemas/tasks")["unsynced"],
                         {"local": [], "remote": []})

    def test_bad_exported_files(self):
        good = self.ok("export", "--schemas", "schemas/tasks")
        cases = {
            "syntax": ('format = 1\nschema_set = "x"\nhead_version = = 0\n', ["syntax.toml:3:"]),
            "missing": ('format = 1\nschema_set = "x"\n', ["missing.toml:", "head_version: missing"]),
            "newer": ('format = 99\n', ["newer stemma"]),
            "badhex": (good.replace('head_id = "', 'head_id = "zz', 1), ["badhex.toml:", "head_id"]),
            # A definition edited by hand no longer matches its head.
            "tampered": (good.replace('name = "priority", type = "INTEGER"',
                                      'name = "priority", type = "TEXT"', 1),
                         ["tampered.toml:", "head does not match"]),
            # A version id edited by hand breaks the parent chain.
            "chain": (re.sub(r'parent = "[0-9a-f]{64}"', 'parent = "' + "a" * 64 + '"', good),
                      ["chain.toml:", "parent"]),
        }
        for name, (text, fragments) in cases.items():
            with self.subTest(case=name):
                path = os.path.join(self.tmp, name + ".toml")
                with open(path, "w") as f:
                    f.write(text)
                self.fails(2, "compare", path, "schemas/tasks", contains=fragments)


class Cache(Base):
    """The derived lineages kept in STEMMA_CACHE_DIR (lineage/cache.h): used only for the
    set as it is, a damaged file told in one line and the right answer given anyway."""

    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, "cache")
        self.set = os.path.join(self.tmp, "tasks")
        shutil.copytree("schemas/tasks", self.set)

    def stemma(self, *args, cache=True):
        env = dict(os.environ)
        env.pop("STEMMA_NO_CACHE", None)
        if cache:
            env["STEMMA_CACHE_DIR"] = self.cache
        else:
            env["STEMMA_NO_CACHE"] = "1"
        p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=60,
                           env=env)
        return p.returncode, p.stdout, p.stderr

    def files(self):
        return sorted(os.listdir(self.cache)) if os.path.isdir(self.cache) else []

    def test_commands_read_what_they_wrote(self):
        db = os.path.join(self.tmp, "app.db")
        for args in (["history", "--schemas", self.set], ["history", "--lenses", "--schemas",
                     self.set], ["status", "--db", db, "--schemas", self.set],
                     ["compare", self.set, "schemas/tasks-fork"]):
            with self.subTest(args=args):
                plain = self.stemma(*args, cache=False)
                self.assertEqual(plain[0], 0, plain[2])
                self.assertEqual(self.stemma(*args), plain)  # written
                self.assertEqual(self.stemma(*args), plain)  # read back
        code, _, err = self.stemma("migrate", "--db", db, "--schemas", self.set, "--no-backup")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(len(self.files()), 2)  # the two sets compared
        shutil.rmtree(self.cache)
        self.assertEqual(self.stemma("history", "--schemas", self.set, cache=False)[0], 0)
        self.assertEqual(self.files(), [])

    def test_a_damaged_cache_is_one_line_and_the_right_answer(self):
        args = ["history", "--lenses", "--schemas", self.set]
        want = self.stemma(*args, cache=False)
        self.stemma(*args)
        [name] = self.files()
        path = os.path.join(self.cache, name)
        for damage in ("garbage", "cut"):
            with self.subTest(damage=damage):
                if damage == "garbage":
                    with open(path, "wb") as f:
                        f.write(bytes(range(256)) * 16)
                else:
                    with open(path, "r+b") as f:
                        f.truncate(os.path.getsize(path) // 3)
                code, out, err = self.stemma(*args)
                self.assertEqual((code, out), want[:2])
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertTrue(lines[0].startswith("stemma: warning: cache " + path), err)
                self.assertEqual(self.stemma(*args), want)  # made good again

    def test_an_edited_migration_is_not_answered_from_the_cache(self):
        args = ["history", "--schemas", self.set, "--format", "json"]
        before = json.loads(self.stemma(*args)[1])
        path = os.path.join(self.set, "002_add_priority.sql")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("priority", "urgency"))
        code, out, err = self.stemma(*args)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, self.stemma(*args, cache=False)[1])
        self.assertNotEqual(json.loads(out), before)
        self.assertIn("urgency", out)


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
