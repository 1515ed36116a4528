#!/usr/bin/python3
"""Adopting databases of four real migration histories made without stemma
(`stemma migrate --baseline`): each built by the sqlite3 shell from a history's first
files, as the project's own migration runner would have left it.

Run by ctest as `python3 tests/baseline_realschema_test.py PATH/TO/stemma` from the source
root. The histories are read from $STEMMA_REAL_SCHEMAS, else from <repo
root>/../shared/real-schemas, as tests/realschema_test.py reads them; without them the test
says so in one line and exits 77, which ctest reports as skipped.

1. chirpstack at v7, with a row of the application's: --baseline is refused, since v6 and v7
   have one schema (007 only deletes rows), naming both; --baseline-version 7 records it and
   migrates to the head. Its schema and schema_version are then those of a database stemma
   migrated from nothing, and it syncs both ways with one (seed rows included) to the same
   rows.
2. Every version of chirpstack, wildebeest and matrix-event-cache, and a sample of komga's:
   the dry run recognises the version the database was built at, exactly, or names the
   versions that have its schema, that one among them; told the version, it accepts it.
"""
import os
import sys
import unittest

import baseline_test as bt
from baseline_test import run
from baseline_test import sql as shell
from realschema_test import HISTORIES, SKIPPED, migrations, schemas_root

KOMGA_STEP = 6  # komga's 86 versions: every sixth, and the last


def schema_of(db):
    """The application's schema as SQLite keeps it: stemma's own objects left out."""
    rows = shell(db, "SELECT type || '|' || name || '|' || tbl_name || '|' || "
                     "replace(coalesce(sql, ''), char(10), ' ') FROM sqlite_schema "
                     "WHERE name NOT LIKE 'stemma\\_%' ESCAPE '\\' "
                     "AND tbl_name NOT LIKE 'stemma\\_%' ESCAPE '\\' "
                     "AND name <> 'schema_version' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                     "ORDER BY type, name")
    return rows.splitlines()


def tables_of(db):
    return [line.split("|")[1] for line in schema_of(db) if line.startswith("table|")]


class Base(bt.Base):
    root = None

    @classmethod
    def setUpClass(cls):
        cls.root = schemas_root()


class Chirpstack(Base):
    def test_v7_adopted_and_migrated_to_the_head(self):
        history = os.path.join(self.root, "chirpstack")
        files = migrations(history)
        a = self.path("a.db")
        for f in files[:7]:
            with open(f) as text:
                shell(a, text.read())
        shell(a, "INSERT INTO application (id, tenant_id, created_at, updated_at, name, "
                 "description) VALUES ('app-1', '52f14cd4-c6f1-4fbd-8f87-4025e1d49242', "
                 "'2024-01-01', '2024-01-01', 'meters', 'kept through the baseline');")
        with open(a, "rb") as f:
            before = f.read()
        code, out, err = run("migrate", "--db", a, "--schemas", history, "--baseline")
        self.assertEqual(code, 2, err)
        self.assertIn("its schema is that of versions 6 and 7 alike: what "
                      f"{history}/007_delete_lora_cloud_integration.sql changes is not in the "
                      "schema", err)
        self.assertIn("--baseline-version 6 or --baseline-version 7", err)
        with open(a, "rb") as f:
            self.assertEqual(f.read(), before, "a refusal changes nothing")

        out = self.ok("migrate", "--db", a, "--schemas", history, "--baseline-version", "7")
        self.assertIn("its schema is version 7's: recorded versions 1 to 7", out)
        self.assertNotIn("applied v7 ", out)
        for v in range(8, len(files) + 1):
            self.assertIn(f"applied v{v}  ", out)
        self.assertIn(f"now at version {len(files)}", out)

        b = self.path("b.db")
        self.ok("migrate", "--db", b, "--schemas", history)
        self.assertEqual(schema_of(a), schema_of(b))
        q = "SELECT version, description, version_id, checksum FROM schema_version ORDER BY 1"
        self.assertEqual(shell(a, q), shell(b, q))
        st = self.ok("status", "--db", a, "--schemas", history)
        self.assertIn("drift     none", st)

        # both ways: the same rows on both, seed rows (made on each) included
        for src, dst in ((a, b), (b, a)):
            vector, bundle = self.path("v"), self.path("bundle")
            self.ok("vector", "--db", dst, "-o", vector)
            self.ok("changes", "--db", src, "--since", vector, "-o", bundle)
            out = self.ok("apply", "--db", dst, "--schemas", history, bundle)
            self.assertIn(" parked 0,", out)
        for table in tables_of(a):
            q = f'SELECT * FROM "{table}" ORDER BY 1'
            self.assertEqual(shell(a, q), shell(b, q), table)
        self.assertIn("app-1|", shell(b, "SELECT id, name FROM application"))


class EveryVersion(Base):
    def test_each_version_is_recognised(self):
        summary = []
        for name in HISTORIES:
            history = os.path.join(self.root, name)
            files = migrations(history)
            versions = list(range(1, len(files) + 1))
            if name == "komga":
                versions = sorted(set(versions[::KOMGA_STEP] + [len(files)]))
            db = self.path(f"{name}.db")
            built, exact, alike = 0, 0, 0
            for v in versions:
                while built < v:
                    with open(files[built]) as text:
                        shell(db, text.read())
                    built += 1
                code, out, err = run("migrate", "--db", db, "--schemas", history, "--baseline",
                                     "--dry-run")
                if code == 0:
                    self.assertIn(f"its schema is version {v}'s exactly", out, f"{name} v{v}")
                    exact += 1
                else:
                    self.assertEqual(code, 2, f"{name} v{v}: {err}")
                    self.assertIn("alike", err, f"{name} v{v}")
                    self.assertIn(f"--baseline-version {v}", err, f"{name} v{v}")
                    alike += 1
                    out = self.ok("migrate", "--db", db, "--schemas", history,
                                  "--baseline-version", str(v), "--dry-run")
                    self.assertIn(f"its schema is version {v}'s exactly", out, f"{name} v{v}")
                self.assertTrue(out.endswith("dry run: nothing was changed\n"))
            self.assertEqual(exact + alike, len(versions))
            summary.append(f"{name}: {exact} exact, {alike} alike with a neighbour")
        print("baseline_realschema_test: " + "; ".join(summary), file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: baseline_realschema_test.py PATH/TO/stemma [unittest args]")
    bt.STEMMA = os.path.abspath(sys.argv.pop(1))
    root = schemas_root()
    missing = [h for h in HISTORIES if not os.path.isdir(os.path.join(root, h))]
    if missing or not bt.SQLITE3:
        what = "the sqlite3 shell" if not bt.SQLITE3 else ", ".join(missing) + " in " + root
        print(f"baseline_realschema_test: skipped: no {what} (set STEMMA_REAL_SCHEMAS to the "
              f"real-schemas directory)", file=sys.stderr)
        sys.exit(SKIPPED)  # ctest reports the test as skipped
    result = unittest.main(verbosity=1, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
