#!/usr/bin/python3
"""Reads four real migration histories through the layouts of the tools people use
(Flyway, Diesel, sqlx, dbmate, goose, golang-migrate) and checks that each reads as the
same history as stemma's own layout: `stemma compare` says `same`, and `stemma export`
gives the very version ids.

Run by ctest as `python3 tests/layouts_test.py PATH/TO/stemma` from the source root.

Why: a team that moves from its old tool's layout to stemma's must keep its lineage,
and real histories are where a layout's details (empty rollbacks, comments, files that
end without a blank line, dozens of versions) show. The histories are read from
$STEMMA_REAL_SCHEMAS, else from <repo root>/../shared/real-schemas, and never copied
into the repository: each layout is made at test time in a scratch directory by
renaming the files, or wrapping them in goose's and dbmate's markers (docs/user-guide.md,
"Other tools' layouts"). Without the histories the test prints one line saying so and
exits 77, which ctest reports as skipped (tests/tests.cmake).

The versions each layout is given exercise its ordering: Flyway's 1.9 before 1.10,
Diesel's first version all zeros, golang-migrate's numbered from 0, timestamps with gaps.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest

STEMMA = None
SKIPPED = 77  # ctest's SKIP_RETURN_CODE for this test (tests/tests.cmake)
HISTORIES = ("chirpstack", "komga", "matrix-event-cache", "wildebeest")


def schemas_root():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("STEMMA_REAL_SCHEMAS") or os.path.join(here, "..", "shared",
                                                                  "real-schemas")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def history(name):
    """A history's migrations in order: (words, up text, down text or None), as bytes."""
    d = os.path.join(schemas_root(), name)
    out = []
    for path in sorted(glob.glob(os.path.join(d, "[0-9][0-9][0-9]_*.sql"))):
        if path.endswith(".down.sql"):
            continue
        words = re.match(r"\d+_(.*)\.sql$", os.path.basename(path)).group(1)
        down = path[:-len(".sql")] + ".down.sql"
        out.append((words, read(path), read(down) if os.path.exists(down) else None))
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def wrapped(up, down, markers):
    """A goose or dbmate file: the sections' text as it is, marker lines around it."""
    assert up.endswith(b"\n"), "a marker line must start a line"
    return markers[0] + up + (markers[1] + down if down is not None else b"")


def timestamp(i):
    """Version i + 1 as a timestamp, hours apart (gaps, as the tools have them)."""
    return 20200101000000 + i * 10000


def make_layout(layout, migrations, d):
    """Writes migrations in layout into the directory d."""
    for i, (words, up, down) in enumerate(migrations):
        if layout == "flyway":
            write(f"{d}/V1.{i + 1}__{words}.sql", up)  # 1.9 before 1.10
            if down is not None:
                write(f"{d}/U1.{i + 1}__{words}.sql", down)
        elif layout == "diesel":
            version = "00000000000000" if i == 0 else f"2024-01-01-{i:06d}"
            write(f"{d}/{version}_{words}/up.sql", up)
            if down is not None:
                write(f"{d}/{version}_{words}/down.sql", down)
        elif layout == "sqlx":
            if down is None:
                write(f"{d}/{timestamp(i)}_{words}.sql", up)
            else:
                write(f"{d}/{timestamp(i)}_{words}.up.sql", up)
                write(f"{d}/{timestamp(i)}_{words}.down.sql", down)
        elif layout == "dbmate":
            write(f"{d}/{timestamp(i)}_{words}.sql",
                  wrapped(up, down, (b"-- migrate:up\n", b"-- migrate:down\n")))
        elif layout == "goose":
            write(f"{d}/{i + 1:05d}_{words}.sql",
                  wrapped(up, down, (b"-- +goose Up\n", b"-- +goose Down\n")))
        elif layout == "golang-migrate":
            write(f"{d}/{i}_{words}.up.sql", up)  # numbered from 0
            if down is not None:
                write(f"{d}/{i}_{words}.down.sql", down)
    # What each tool keeps beside its migrations, and ignores.
    write(f"{d}/README.md", b"not a migration\n")


LAYOUTS = ("flyway", "diesel", "sqlx", "dbmate", "goose", "golang-migrate")


def run(*args, check=True):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"stemma {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def version_ids(path, *layout):
    """The version ids of `stemma export`, in order."""
    with tempfile.NamedTemporaryFile(suffix=".toml") as out:
        run("export", "--schemas", path, *layout, "-o", out.name)
        with open(out.name, "rb") as f:
            doc = tomllib.load(f)
    return [(v["number"], v["id"]) for v in doc["versions"]]


class LayoutsTest(unittest.TestCase):
    def setUp(self):
        if not os.path.isdir(schemas_root()):
            self.skipTest(f"{schemas_root()} is not there")
        self.tmp = tempfile.mkdtemp(prefix="stemma-layouts-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def layout_dir(self, name, layout):
        d = os.path.join(self.tmp, f"{name}-{layout}")
        make_layout(layout, history(name), d)
        return d

    def test_every_layout_reads_as_the_same_history(self):
        for name in HISTORIES:
            original = os.path.join(schemas_root(), name)
            want = version_ids(original)
            self.assertEqual(len(want), len(history(name)))
            for layout in LAYOUTS:
                with self.subTest(history=name, layout=layout):
                    d = self.layout_dir(name, layout)
                    # sqlx's plain files are the one layout detection cannot tell from
                    # stemma's: where a history has no rollbacks, it is named.
                    plain = layout == "sqlx" and all(down is None for _, _, down in history(name))
                    named = ["--layout", layout] if plain else []
                    out = run("compare", d, original, *named, "--format", "json").stdout
                    self.assertEqual(json.loads(out)["relation"], "same")
                    self.assertEqual(version_ids(d, *named), want)
                    # Named or detected, the same.
                    self.assertEqual(version_ids(d, "--layout", layout), want)

    def test_sqlx_plain_files_are_named_and_the_message_says_so(self):
        d = self.layout_dir("wildebeest", "sqlx")
        p = run("history", "--schemas", d, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a migration file name", p.stderr)
        self.assertIn("--layout sqlx", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        out = run("history", "--schemas", d, "--layout", "sqlx", "--format", "json").stdout
        self.assertEqual(len(json.loads(out)["versions"]), 11)
        # A layout named for the other side of compare.
        original = os.path.join(schemas_root(), "wildebeest")
        out = run("compare", original, d, "--remote-layout", "sqlx", "--format", "json").stdout
        self.assertEqual(json.loads(out)["relation"], "same")
        # A node set up on it keeps the layout in node.toml.
        node = os.path.join(self.tmp, "node")
        run("init", "--dir", node, "--db", os.path.join(self.tmp, "w.db"), "--schemas", d,
            "--layout", "sqlx", "--insecure")
        with open(os.path.join(node, "node.toml"), "rb") as f:
            self.assertEqual(tomllib.load(f)["node"]["layout"], "sqlx")

    def test_rollbacks_come_from_where_each_layout_keeps_them(self):
        # chirpstack has a rollback for every migration (007's an empty file): each
        # layout's Down sections, undo files and down.sql files take a database from 8
        # back to 4, through 006's column renames. Below 4, and from the head below 9,
        # its own rollbacks leave other schemas than the migrations made (defaults
        # lost), which stemma refuses in every layout as in its own, naming the file.
        names = {"flyway": "U1.9__refactor_device_profiles.sql",
                 "diesel": "2024-01-01-000008_refactor_device_profiles/down.sql",
                 "dbmate": f"{timestamp(8)}_refactor_device_profiles.sql",
                 "goose": "00009_refactor_device_profiles.sql",
                 "golang-migrate": "8_refactor_device_profiles.down.sql"}
        for layout, name in names.items():
            with self.subTest(layout=layout):
                d = self.layout_dir("chirpstack", layout)
                db = os.path.join(self.tmp, f"{layout}.db")
                run("migrate", "--db", db, "--schemas", d, "--no-backup")
                p = run("rollback", "--db", db, "--schemas", d, "--to", "0", check=False)
                self.assertEqual(p.returncode, 2)
                self.assertIn(f"{d}/{name}: leaves column device_profile.", p.stderr)
                run("rollback", "--db", db, "--schemas", d, "--to", "9", "--no-backup")
                db = os.path.join(self.tmp, f"{layout}-8.db")
                run("migrate", "--db", db, "--schemas", d, "--to", "8", "--no-backup")
                out = run("rollback", "--db", db, "--schemas", d, "--to", "4",
                          "--no-backup").stdout
                self.assertIn("rolled back v7", out)
                status = json.loads(run("status", "--db", db, "--schemas", d, "--format",
                                        "json").stdout)
                self.assertEqual(status["version"], 4)
                self.assertEqual(status["drift"], [])

    def test_a_missing_rollback_is_named_where_the_layout_keeps_it(self):
        # wildebeest has no rollbacks: goose's file lacks its Down section.
        d = self.layout_dir("wildebeest", "goose")
        db = os.path.join(self.tmp, "w.db")
        run("migrate", "--db", db, "--schemas", d, "--to", "1", "--no-backup")
        p = run("rollback", "--db", db, "--schemas", d, "--to", "0", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn(f"{d}/00001_initial.sql's '-- +goose Down' section: missing, so version 1 "
                      "cannot be rolled back", p.stderr)


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    result = unittest.main(verbosity=1, exit=False).result
    if result.skipped and len(result.skipped) >= result.testsRun and result.wasSuccessful():
        if not os.path.isdir(schemas_root()):
            print(f"layouts_test: {schemas_root()} is not there: skipped")
        sys.exit(SKIPPED)  # nothing ran: ctest reports the test as skipped
    sys.exit(0 if result.wasSuccessful() else 1)
