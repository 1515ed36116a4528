#!/usr/bin/python3
"""Syncs data written at each version of four real SQLite migration histories with
databases at other versions, and checks that nothing is lost or changed silently: what
two databases do not agree on must be explained by an operation stemma parked.

Run by ctest as `python3 tests/realschema_test.py PATH/TO/stemma` from the source root.

Why: stemma's own schema sets are small and made for it. Real histories rename
columns, rebuild and rename tables, change types, add NOT NULL columns, key tables by
several columns, and write rows in their migrations; this runs its sync through all of
that, as the sqlite3 shell and stemma's command line would on users' devices.

The histories (chirpstack, komga, matrix-event-cache, wildebeest) are the projects' own
migrations and are not copied into the repository: they are read from
$STEMMA_REAL_SCHEMAS, else from <repo root>/../shared/real-schemas (its README.md
describes each). Without them the test prints one line saying so and exits 77, which
ctest reports as skipped (tests/tests.cmake).

For one history and a pair of versions i != j:

1. Database A is at version i and database B at version j. Each holds rows written by a
   generator through a plain sqlite3 connection, so that stemma's capture triggers
   record them as they would an application's: a few rows in every table stemma syncs
   (the tables it has put triggers on), in foreign-key order, values chosen by each
   column's declared type, parents picked from existing rows, retried with other values
   where a constraint (CHECK, UNIQUE, a trigger) refuses them; then an update and a
   delete per table. Seeds are fixed per history, side and version: every run writes
   the same rows, and A's and B's keys never collide.
2. A's operations go to B (`changes`, `apply --schemas`); B is migrated to the head (`migrate`,
   which replays what was parked), and so is A; then B's operations go to A (`vector`,
   `changes --since`, `apply`), and A's to B again if A holds any B lacks.
3. Both must be at the head, and stemma_parked must hold as many operations as apply
   said were parked in all. Every user table (stemma's own, schema_version and tables
   excluded from sync aside) must then hold the same rows on A and B, or each row that
   differs must be explained by an operation parked on A or B: one on the same row
   (stemma_parked joined to the oplog), on a column that differs or one the head has
   dropped or renamed, or a parked delete. (A row kept aside as a conflict explains
   nothing: A and B never create rows under one key, so none should be.) Each pair is
     converged  same rows, nothing parked
     PARKED     what differs is parked (the reasons are counted), or nothing differs
                but some operations stay parked: with both databases at the head,
                nothing may wait any more                                    (fails)
     expected   rows differ with nothing parked, as EXPECTED below says they do
     known bug  ... and some as KNOWN_BUGS says
     DIVERGED   a row on both with other values, unexplained and not listed  (fails)
     LOST       a row on one side only, unexplained and not listed           (fails)
     ERROR      a command failed (e.g. migrate refusing a table), or a check of
                step 3 did                                                   (fails)

Two lists keep what stemma does not handle visible without failing every run, and
both are empty: EXPECTED, per history, migrations that write rows in a way stemma
cannot carry (Rewrite); KNOWN_BUGS, bugs this test found. Each entry names what it is,
and the report counts the pairs it explains. (EXPECTED held every migration that
writes rows until stemma sent those writes as operations, sync/migrate_ops.h.)

The databases sync as `stemma apply --schemas` does, with the history's schema set,
as a node does: operations of other versions are translated through renames.

Every pair is run for the small histories (chirpstack 14 versions, wildebeest 11,
matrix-event-cache 16). komga (86) migrates too slowly for its 7310 pairs: every
STEP-th version runs with the next sampled one both ways (so every migration lies
between a pair, in each direction) and with the head, plus a seeded few more. The
database at each version, A written at each version and A migrated to the head from
there are made once per history and copied; each copy gets its own origin, made from
its name so that runs are alike.

Environment:
  STEMMA_REAL_SCHEMAS=DIR    where the histories are
  STEMMA_MATRIX_QUICK=1      a sample of pairs for every history (the sanitized pass)
  STEMMA_MATRIX_EXCLUDE=1    exclude every table with a composite primary key
                             (`migrate --exclude`), for a stemma that cannot sync them;
                             by default nothing is excluded
  STEMMA_MATRIX_ONLY=NAME    one history only
  STEMMA_MATRIX_PAIRS=H:I:J,...  those pairs only, e.g. komga:57:49
  STEMMA_MATRIX_KEEP=1       keep the databases (the directory is printed)
"""
import collections
import concurrent.futures
import glob
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import unittest

STEMMA = None
SKIPPED = 77  # ctest's SKIP_RETURN_CODE for this test (tests/tests.cmake)
HISTORIES = ("chirpstack", "wildebeest", "matrix-event-cache", "komga")
EXCLUDE = os.environ.get("STEMMA_MATRIX_EXCLUDE") == "1"
KEEP = os.environ.get("STEMMA_MATRIX_KEEP") == "1"
PAIRS = [(h, int(i), int(j)) for h, i, j in
         (p.rsplit(":", 2) for p in os.environ.get("STEMMA_MATRIX_PAIRS", "").split(",") if p)]
WORKERS = len(os.sched_getaffinity(0)) + 1  # one more than processors: stemma also waits on fsync
ROWS = 4  # rows inserted per table and database


def schemas_root():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("STEMMA_REAL_SCHEMAS") or os.path.join(here, "..", "shared",
                                                                  "real-schemas")


def migrations(history_dir):
    """The migration files of a history, version 1 first."""
    return sorted(f for f in glob.glob(os.path.join(history_dir, "[0-9][0-9][0-9]_*.sql"))
                  if not f.endswith(".down.sql"))


# ---- stemma ----------------------------------------------------------------------------

class StemmaFailed(Exception):
    pass


def stemma(*args):
    """Runs stemma; returns its standard output, or raises with the last line of its
    standard error (the error; warnings come before it)."""
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines() or [f"exit {p.returncode}"]
        raise StemmaFailed(lines[-1])
    return p.stdout


APPLY = re.compile(r"applied (\d+), already present (\d+), parked (\d+), replayed (\d+) "
                   r"\((\d+) parked in all\)")
REPLAYED = re.compile(r"replayed (\d+) parked operations? \((\d+) still parked\)")


def apply(db, bundle, schemas):
    """Applies a bundle with the history's schema set, as a node does (operations of
    other versions translated through the lenses); returns apply's counts (applied,
    already present, parked, replayed, parked in all)."""
    m = APPLY.search(stemma("apply", "--db", db, "--schemas", schemas, bundle))
    assert m, "stemma apply printed no counts"
    return tuple(int(g) for g in m.groups())


def sync(src, dst, tmp, name, schemas, vector=None):
    """Moves the operations dst lacks from src to dst, as a user would (vector, the
    file of dst's vector when it is known already); returns apply's counts."""
    bundle = os.path.join(tmp, name + ".stmb")
    if vector is None:
        vector = os.path.join(tmp, name + ".stmv")
        stemma("vector", "--db", dst, "-o", vector)
    stemma("changes", "--db", src, "--since", vector, "-o", bundle)
    return apply(dst, bundle, schemas)


def query(path, sql):
    """The rows sql reads from the database at path."""
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def operations(path):
    """The operations a database holds, as (origin, seq)."""
    return {(origin, seq + k) for origin, seq, n in query(
        path, "SELECT i.id, o.seq, o.n FROM stemma_oplog AS o "
              "JOIN stemma_ids AS i ON i.no = o.origin") for k in range(n)}


def migrate(db, schemas, to=None, exclude=()):
    """Migrates db; returns (replayed, still parked) as migrate prints them."""
    args = ["migrate", "--db", db, "--schemas", schemas, "--no-backup"]
    args += ["--to", str(to)] if to is not None else []
    for t in exclude:
        args += ["--exclude", t]
    m = REPLAYED.search(stemma(*args))
    return (int(m.group(1)), int(m.group(2))) if m else (0, "-")


def copy_db(src, dst):
    """Copies a closed database (its -wal file too, should one be left)."""
    shutil.copyfile(src, dst)
    if os.path.exists(src + "-wal"):
        shutil.copyfile(src + "-wal", dst + "-wal")


# ---- the schema, read with the sqlite3 module ------------------------------------------

def q(name):
    return '"' + name.replace('"', '""') + '"'


def is_user_table(name):
    n = name.lower()
    return not (n.startswith("stemma_") or n.startswith("sqlite_") or n == "schema_version")


def tables(con, kinds=("table",)):
    """User tables of the main schema, by name, of the given pragma table_list kinds."""
    rows = con.execute("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")
    return sorted(n for n, t in rows if t in kinds and is_user_table(n))


def synced_tables(con):
    """The tables stemma captures: those it has put its triggers on."""
    rows = con.execute("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' "
                       "AND name LIKE 'stemma\\_%' ESCAPE '\\'")
    return sorted(r[0] for r in rows)


def columns(con, table):
    """(name, declared type, not null, pk position) of the stored columns."""
    rows = con.execute("SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?)",
                       (table,)).fetchall()
    return [(n, t or "", bool(nn), pk) for n, t, nn, pk, hidden in rows if hidden == 0]


def pk_columns(con, table):
    return [c[0] for c in sorted((c for c in columns(con, table) if c[3]), key=lambda c: c[3])]


def foreign_keys(con, table):
    """[(parent table, [(column, parent column or None)])], one entry per key."""
    keys = collections.OrderedDict()
    for fid, _, parent, frm, to in con.execute(
            "SELECT id, seq, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) "
            "ORDER BY id, seq", (table,)):
        keys.setdefault(fid, (parent, []))[1].append((frm, to))
    return list(keys.values())


def composite_key_tables(history_dir):
    """Every table with a primary key of several columns at any version of a history
    (FTS shadow tables aside: stemma leaves those alone)."""
    con = sqlite3.connect(":memory:")
    found = set()
    for path in migrations(history_dir):
        with open(path) as f:
            con.executescript(f.read())
        for t in tables(con):
            if len(pk_columns(con, t)) > 1:
                found.add(t)
    con.close()
    return sorted(found)


# ---- the data generator ----------------------------------------------------------------

def affinity(decl):
    """SQLite's column affinity rules (https://sqlite.org/datatype3.html, 3.1)."""
    d = decl.upper()
    if "INT" in d:
        return "INTEGER"
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return "TEXT"
    if "BLOB" in d or not d:
        return "BLOB"
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return "REAL"
    return "NUMERIC"


def fk_order(con, names):
    """names with every table after the tables its foreign keys name (cycles broken
    by name)."""
    parents = {t: {p for p, _ in foreign_keys(con, t) if p in names and p != t}
               for t in names}
    done, order = set(), []
    while len(order) < len(names):
        ready = [t for t in names if t not in done and parents[t] <= done]
        if not ready:
            ready = [min(t for t in names if t not in done)]
        for t in ready:
            done.add(t)
            order.append(t)
    return order


def eval_literal(text):
    """A SQL literal's value: 'text', a number, or else the text itself."""
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


KEY_BASE = {"A": 1_000_000, "B": 2_000_000}  # integer keys of each side's rows


def writer(key):
    """Which side's generator wrote a row, read from its key ('A', 'B'), or None for a
    row a migration made. A row made from another (a table keyed by its parent's key)
    counts as its parent's writer's."""
    if key is None:
        return None
    _, v = key[0]
    if isinstance(v, int) and v // 1_000_000 in (1, 2):
        return "AB"[v // 1_000_000 - 1]
    if isinstance(v, bytes) and v[:1] in (b"A", b"B"):
        return v[:1].decode()
    if isinstance(v, str) and re.match(r"[ab]\d+-", v):
        return v[0].upper()
    return None


class Writer:
    """Writes a few rows, some updates and deletes into every synced table of one
    database, deterministically from a seed. side ('A' or 'B') keeps the two databases'
    keys and unique values apart."""

    TRIES = 8

    def __init__(self, path, seed, side):
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA foreign_keys = ON")
        self.rng = random.Random(seed)
        self.side = side
        self.notes = []  # what could not be written, and why
        self.counter = 0
        self.unused = {}  # (table, foreign key): parent rows not referenced yet

    def close(self):
        self.con.close()

    def check_in(self, table):
        """{column: values} of the table's CHECK (column IN (...)) constraints."""
        sql = self.con.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (table,)).fetchone()[0] or ""
        found = {}
        for col, values in re.findall(r'CHECK\s*\(\s*["`]?(\w+)["`]?\s+IN\s*\(([^)]*)\)', sql,
                                      re.IGNORECASE):
            found[col.lower()] = [eval_literal(v) for v in values.split(",")]
        return found

    def literals(self, table):
        """Literals in the table's CREATE statement: the values a CHECK may ask for."""
        sql = self.con.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (table,)).fetchone()[0] or ""
        found = re.findall(r"'((?:[^']|'')*)'", sql)
        found += [int(n) for n in re.findall(r"(?<![\w.])(-?\d+)(?![\w.])", sql)]
        return sorted(set(found), key=repr)

    def value(self, table, name, decl, pk, attempt, literals):
        """A value for a column by its declared type, unique by construction so that
        UNIQUE holds. Retries try text as JSON (a trigger or CHECK may read it), then
        mix in the literals of the table's CREATE statement (a CHECK may ask for them)."""
        rng, n = self.rng, self.counter
        if attempt >= 2 and literals and not pk and rng.random() < 0.5:
            return rng.choice(literals)
        kind, d = affinity(decl), decl.upper()
        tag = f"{self.side}{n}"
        if "BOOL" in d:
            return rng.choice([0, 1])
        if kind == "INTEGER":
            return KEY_BASE[self.side] + n if pk else rng.randrange(10 ** 6)
        if kind == "REAL":
            return rng.randrange(10 ** 6) / 8
        if kind == "BLOB" and "BLOB" in d:
            return tag.encode() + rng.randbytes(4)
        if kind == "NUMERIC" and ("DATE" in d or "TIME" in d):
            return f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T10:{n % 60:02d}:00Z"
        if kind == "NUMERIC":
            return rng.randrange(10 ** 6)
        if attempt % 2 and not pk:
            return f'{{"{name}": "{tag}"}}'
        return f"{tag}-{table}.{name}".lower() if kind == "TEXT" else f"{tag}-{name}"

    def parent_values(self, table, k, parent, pairs):
        """The values of an existing parent row for the table's k-th foreign key, or
        None: each parent once before any twice, so that rows keep distinct references
        (a later migration may add a UNIQUE index over them)."""
        cols = [to for _, to in pairs]
        if any(c is None for c in cols):
            cols = pk_columns(self.con, parent) or ["rowid"]
        if len(cols) != len(pairs) or parent not in tables(self.con):
            return None
        sel = ", ".join(q(c) for c in cols)
        rows = self.con.execute(f"SELECT {sel} FROM {q(parent)} ORDER BY {sel}").fetchall()
        unused = self.unused.setdefault((table, k), [])
        if not unused:
            unused += self.rng.sample(rows, len(rows))
        return unused.pop() if unused else None

    def insert(self, table):
        cols = columns(self.con, table)
        fks = foreign_keys(self.con, table)
        nullable = [c[0] for c in cols if not c[2] and not c[3]]  # in order: one rng
        literals, allowed = self.literals(table), self.check_in(table)
        error = None
        for attempt in range(self.TRIES):
            self.counter += 1
            row = {c[0]: self.value(table, c[0], c[1], c[3], attempt, literals) for c in cols}
            for name in nullable:
                if self.rng.random() < 0.15:
                    row[name] = None
            for name in row:
                if name.lower() in allowed:
                    row[name] = self.rng.choice(allowed[name.lower()])
            for n, (parent, pairs) in enumerate(fks):
                picked = self.parent_values(table, n, parent, pairs)
                for (frm, _), value in zip(pairs, picked or [None] * len(pairs)):
                    row[frm] = value
            names = list(row)
            try:
                self.con.execute(f"INSERT INTO {q(table)} ({', '.join(q(c) for c in names)}) "
                                 f"VALUES ({', '.join('?' * len(names))})",
                                 [row[c] for c in names])
                return True
            except sqlite3.Error as e:
                error = e
        self.notes.append(f"{table}: no row after {self.TRIES} tries ({error})")
        return False

    def update(self, table):
        """Changes one column of one row: not the key, not a foreign key."""
        fk_cols = {frm for _, pairs in foreign_keys(self.con, table) for frm, _ in pairs}
        cols = [c for c in columns(self.con, table) if not c[3] and c[0] not in fk_cols]
        keys = pk_columns(self.con, table)
        if not cols or not keys:
            return
        rows = self.con.execute(f"SELECT {', '.join(q(k) for k in keys)} FROM {q(table)} "
                                f"ORDER BY 1").fetchall()
        if not rows:
            return
        literals = self.literals(table)
        where = " AND ".join(f"{q(k)} IS ?" for k in keys)
        for attempt in range(self.TRIES):
            self.counter += 1
            name, decl, _, _ = self.rng.choice(cols)
            key = self.rng.choice(rows)
            try:
                self.con.execute(f"UPDATE {q(table)} SET {q(name)} = ? WHERE {where}",
                                 [self.value(table, name, decl, False, attempt, literals),
                                  *key])
                return
            except sqlite3.Error:
                pass

    def referenced(self, table, row):
        """Whether another row's foreign key names this one (deleting it would cascade
        or be refused)."""
        for child in tables(self.con):
            for parent, pairs in foreign_keys(self.con, child):
                if parent.lower() != table.lower():
                    continue
                to = [t for _, t in pairs]
                if any(t is None for t in to):
                    to = pk_columns(self.con, table)
                if len(to) != len(pairs):
                    continue
                where = " AND ".join(f"{q(frm)} = ?" for frm, _ in pairs)
                if self.con.execute(f"SELECT 1 FROM {q(child)} WHERE {where} LIMIT 1",
                                    [row[t] for t in to]).fetchone():
                    return True
        return False

    def delete(self, table):
        """Deletes one row no other row refers to, the one with the greatest key."""
        keys = pk_columns(self.con, table)
        if not keys:
            return
        names = [c[0] for c in columns(self.con, table)]
        where = " AND ".join(f"{q(k)} IS ?" for k in keys)
        for values in self.con.execute(f"SELECT {', '.join(q(n) for n in names)} FROM "
                                       f"{q(table)} ORDER BY {', '.join(map(q, keys))} DESC"
                                       ).fetchall():
            row = dict(zip(names, values))
            if self.referenced(table, row):
                continue
            try:
                self.con.execute(f"DELETE FROM {q(table)} WHERE {where}", [row[k] for k in keys])
                return
            except sqlite3.Error:
                pass

    def write(self):
        order = fk_order(self.con, synced_tables(self.con))
        self.con.execute("BEGIN")
        for table in order:
            for _ in range(ROWS):
                if not self.insert(table):
                    break
        for table in order:
            self.update(table)
        for table in reversed(order):
            self.delete(table)
        self.con.execute("COMMIT")
        for table in order:
            if not self.con.execute(f"SELECT 1 FROM {q(table)} LIMIT 1").fetchone() and not any(
                    n.startswith(table + ":") for n in self.notes):
                self.notes.append(f"{table}: no rows left")


def write_rows(path, seed, side):
    w = Writer(path, seed, side)
    try:
        w.write()
    finally:
        w.close()
    return w.notes


def set_node_id(path, seed):
    """Gives a copied database an origin made from seed, so that runs are alike (ties
    between writes of one clock go by origin). A copy would take a random one by
    itself at its first write (sync/origin.h); dropping its record of where its origin
    was taken makes it keep this one."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # A database made by migrations alone holds only what they wrote to synced rows
        # (sync/migrate_ops.h), under the origins of the databases it was copied from:
        # every copy holds the same, and the new origin starts its own sequence.
        # The origin it had goes on as another's, as a copy's does (sync/origin.h).
        con.execute("INSERT OR REPLACE INTO stemma_vector (origin, seq) "
                    "SELECT node_id, seq FROM stemma_local WHERE seq > 0")
        con.execute("UPDATE stemma_local SET node_id = ?, seq = 0",
                    (hashlib.sha256(seed.encode()).digest(),))
        con.execute("DROP TABLE IF EXISTS stemma_origin")
    finally:
        con.close()


# ---- comparing two databases ------------------------------------------------------------

def typed(row):
    """A row with each value's type, so that 1, 1.0 and '1' differ."""
    return tuple((type(v).__name__, v) for v in row)


def table_rows(con, table):
    """(column names, {key: row}) for a table with a primary key, else (names,
    {row: count}) with key None."""
    keys = pk_columns(con, table)
    names = [c[0] for c in columns(con, table)]
    out = {} if keys else collections.Counter()
    at = [names.index(k) for k in keys]
    for row in con.execute(f"SELECT {', '.join(q(n) for n in names)} FROM {q(table)}"):
        if keys:
            out[typed(row[i] for i in at)] = typed(row)
        else:
            out[typed(row)] += 1
    return names, bool(keys), out


def msgpack_values(data):
    """The values of a MessagePack sequence of nil, bool, int, float, str and bin: what
    the oplog's cells hold (sync/oplog.h, sync/codec.h)."""
    out, at = [], 0

    def take(n):
        nonlocal at
        at += n
        return data[at - n:at]

    def number(n, signed=False):
        return int.from_bytes(take(n), "big", signed=signed)

    while at < len(data):
        b = take(1)[0]
        if b <= 0x7f or b >= 0xe0:
            out.append(b if b <= 0x7f else b - 0x100)
        elif 0xa0 <= b <= 0xbf:
            out.append(take(b & 0x1f).decode())
        elif b in (0xc0, 0xc2, 0xc3):
            out.append({0xc0: None, 0xc2: False, 0xc3: True}[b])
        elif b in (0xc4, 0xc5, 0xc6):
            out.append(bytes(take(number(1 << (b - 0xc4)))))
        elif b in (0xd9, 0xda, 0xdb):
            out.append(take(number(1 << (b - 0xd9))).decode())
        elif b in (0xca, 0xcb):
            out.append(struct.unpack(">f" if b == 0xca else ">d", take(4 if b == 0xca else 8))[0])
        elif 0xcc <= b <= 0xcf:
            out.append(number(1 << (b - 0xcc)))
        elif 0xd0 <= b <= 0xd3:
            out.append(number(1 << (b - 0xd0), signed=True))
        else:
            raise ValueError(f"MessagePack byte {b:#x} is not in the oplog's subset")
    return out


def unpack_key(pk, packed):
    """A key as the oplog stores it, as a row's typed key: a key of several columns is
    a MessagePack array of their values (sync/key.h)."""
    if not packed:
        return typed([pk])
    header = pk[0]
    assert 0x92 <= header <= 0x9f, f"packed key starts with {header:#x}"
    return typed(msgpack_values(pk[1:]))


def parked_ops(con):
    """[(table as its writer named it, typed key, column or None for a row delete,
    kind, reason)] of the parked operations."""
    out, decoded = [], {}
    for origin, tbl, pk, packed, first, cells, seq, kind, reason in con.execute(
            "SELECT o.origin, o.tbl, o.pk, o.pk_packed, o.seq, o.cells, p.seq, p.kind, "
            "p.reason FROM stemma_parked AS p JOIN stemma_ids AS i ON i.id = p.origin "
            "JOIN stemma_oplog AS o ON o.origin = i.no AND p.seq >= o.seq "
            "AND p.seq < o.seq + o.n"):
        # cells: a (column, affinity, value) triple per operation, in sequence order;
        # a row change's operations are often all parked, so each is decoded once
        if cells is not None and (origin, first) not in decoded:
            decoded[origin, first] = msgpack_values(cells)[::3]
        column = None if cells is None else decoded[origin, first][seq - first]
        out.append((tbl, unpack_key(pk, packed), column, kind, reason))
    return out


class Diff(collections.namedtuple("Diff", "table key what detail cols")):
    """A row that differs between A and B: what is DIVERGED (on both, other values)
    or LOST (on one only); key is None for a table without a primary key; cols, the
    columns whose values differ (DIVERGED)."""

    def __str__(self):
        key = "" if self.key is None else "[" + ", ".join(repr(v) for _, v in self.key) + "]"
        return f"{self.what} {self.table}{key} {self.detail}"


def show(value):
    return repr(value[1])[:40]


def differences(a, b):
    """The Diffs between two databases at the same version, in every user table but
    those excluded from sync."""
    out = []
    excluded = {t.lower() for t, in a.execute("SELECT tbl FROM stemma_exclude")}
    for table in tables(a, ("table", "virtual")):
        if table.lower() in excluded:
            continue
        names, has_key, ra = table_rows(a, table)
        _, _, rb = table_rows(b, table)
        if not has_key:
            if ra != rb:
                out.append(Diff(table, None, "DIVERGED", f"{sum((ra - rb).values())} rows only "
                                f"on A, {sum((rb - ra).values())} only on B (no key)", ()))
            continue
        for key in sorted(set(ra) | set(rb), key=repr):
            if key not in ra or key not in rb:
                out.append(Diff(table, key, "LOST", "only on " + ("B" if key in rb else "A"),
                                ()))
            elif ra[key] != rb[key]:
                cols = [(n, x, y) for n, x, y in zip(names, ra[key], rb[key]) if x != y]
                out.append(Diff(table, key, "DIVERGED",
                                "; ".join(f"{n}: A {show(x)}, B {show(y)}" for n, x, y in cols),
                                tuple(n for n, _, _ in cols)))
    return out


def explained(diff, parked, schema):
    """Whether a parked operation accounts for a difference: one on the same row (its
    table by the writer's name, which may be one the head no longer has), and for
    values that differ, one on a column that differs, or on one the head's table
    lacks (dropped or renamed since), or a parked delete. schema: {table: {columns}}
    at the head, lower case. In a table without a key (diff.key None) any operation
    parked on the table will do. A key of another width than the head's (the table's
    key changed since its writer's version) matches when either holds all of the other's
    values."""
    table = diff.table.lower()
    for tbl, key, column, _, _ in parked:
        tbl = tbl.lower()
        if tbl != table and (tbl in schema or diff.key is None):
            continue
        if diff.key is not None and not same_row(key, diff.key):
            continue
        if (diff.what == "LOST" or column is None or column in diff.cols
                or column.lower() not in schema.get(table, ())):
            return True
    return False


def same_row(a, b):
    """Whether two typed keys name one row: equal, or of other widths with one's values
    all in the other (a key that lost or gained columns)."""
    if len(a) == len(b):
        return a == b
    short, long_ = sorted((a, b), key=len)
    return all(v in long_ for v in short)


def head_schema(con):
    return {t.lower(): {c[0].lower() for c in columns(con, t)}
            for t in tables(con, ("table", "virtual"))}


# ---- one pair ----------------------------------------------------------------------------

class Outcome:
    """What happened to one pair."""

    def __init__(self, history, i, j):
        self.history, self.i, self.j = history, i, j
        self.status = None      # converged, PARKED, expected, DIVERGED, LOST, ERROR
        self.error = None       # what failed, for ERROR
        self.counts = []        # (step, apply's or migrate's counts)
        self.parked = collections.Counter()  # reason kinds of what stays parked
        self.silent = []        # differences no parked operation explains
        self.expected = []      # ... of those, the ones EXPECTED lists (with why)
        self.explained = 0      # differences a parked operation explains
        self.conflicts = 0      # rows kept aside (stemma_conflicts) on A and B

    def line(self):
        head = f"{self.history} v{self.i}->v{self.j}: {self.status}"
        if self.error:
            return f"{head}: {self.error}"
        steps = "; ".join(f"{s} {'/'.join(map(str, c))}" for s, c in self.counts)
        parts = [head, steps]
        if self.parked:
            parts.append("parked " + ", ".join(f"{n} {k}" for k, n in
                                               sorted(self.parked.items())))
        if self.conflicts:
            parts.append(f"{self.conflicts} rows kept aside as conflicts")
        if self.explained:
            parts.append(f"{self.explained} rows differ, each parked")
        expected = {id(d) for d, _ in self.expected}
        unexpected = [d for d in self.silent if id(d) not in expected]
        if expected:
            parts.append(f"{len(expected)} rows differ as listed: " + "; ".join(
                sorted({r.label() for _, rules in self.expected for r in rules})))
        parts += [str(d) for d in unexpected[:4]]
        if len(unexpected) > 4:
            parts.append(f"and {len(unexpected) - 4} more")
        return " | ".join(parts)


def reason_kind(reason):
    """A parked reason without its particulars (values, numbers), for counting."""
    return re.sub(r"'[^']*'|\d+", "…", reason)[:80]


def run_pair(h, i, j):
    """Syncs A (rows written at version i) with B (rows written at j); see the module
    docstring. h is the History."""
    out = Outcome(h.name, i, j)
    d = tempfile.mkdtemp(dir=h.tmp, prefix=f"v{i}-v{j}-")
    a, b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
    try:
        copy_db(h.b_written[j], b)
        # A to B at versions i and j. B's vector holds B alone, so `changes --since`
        # writes every operation of A: the bundle History.prepare wrote once.
        out.counts.append(("A->B", apply(b, h.a_bundle[i], h.dir)[:4]))
        out.counts.append(("B migrate", migrate(b, h.dir)))
        copy_db(h.a_head[i], a)  # A migrated to the head, once per i
        counts = sync(b, a, d, "ba", h.dir, vector=h.a_head_vector[i])
        out.counts.append(("B->A", counts[:4]))
        said = {a: counts[4]}  # what apply says is parked in all, by database
        # And back, unless B holds every operation A does already (what it always
        # should): the sync would move nothing, and costs three runs of stemma.
        if not operations(a) <= operations(b):
            counts = sync(a, b, d, "ab", h.dir)
            out.counts.append(("A->B", counts[:4]))
            said[b] = counts[4]
        for path, n in said.items():
            held = query(path, "SELECT count(*) FROM stemma_parked")[0][0]
            assert held == n, f"stemma apply said {n} parked in all, {path} holds {held}"
        for path in (a, b):
            version = query(path, "SELECT max(version) FROM schema_version")[0][0]
            assert version == h.n, f"{path} is at v{version} after migrating, not v{h.n}"
        judge(out, a, b, h)
    except (StemmaFailed, sqlite3.Error, AssertionError) as e:
        out.status, out.error = "ERROR", str(e)
    finally:
        if not KEEP:
            shutil.rmtree(d, ignore_errors=True)
    return out


def judge(out, a_path, b_path, h):
    a, b = sqlite3.connect(a_path), sqlite3.connect(b_path)
    try:
        parked = parked_ops(a) + parked_ops(b)
        out.conflicts = sum(db.execute("SELECT count(*) FROM stemma_conflicts").fetchone()[0]
                            for db in (a, b))
        for _, _, _, kind, reason in parked:
            out.parked[f"{kind}: {reason_kind(reason)}"] += 1
        schema = head_schema(a)
        for diff in differences(a, b):
            if explained(diff, parked, schema):
                out.explained += 1
                continue
            out.silent.append(diff)
            why = expected_reasons(h.name, diff, out.i, out.j)
            if why:
                out.expected.append((diff, why))
    finally:
        a.close()
        b.close()
    if len(out.expected) < len(out.silent):
        out.status = "LOST" if any(d.what == "LOST" for d in out.silent) else "DIVERGED"
    elif any(isinstance(r, KnownBug) for _, rules in out.expected for r in rules):
        out.status = "known bug"
    elif out.silent:
        out.status = "expected"
    else:
        out.status = "PARKED" if parked or out.explained else "converged"


# ---- one history --------------------------------------------------------------------------

class Rewrite(collections.namedtuple("Rewrite", "version table columns why")):
    """A KNOWN SILENT DIVERGENCE: migration `version` writes rows of `table` itself
    (UPDATE, INSERT ... SELECT, DELETE, or values it computes per database). stemma
    does not capture a migration's writes, nor transform operations written before
    it, so a row that was on one database when the migration ran there and reaches the
    other past it keeps what the migration changed on one side only (or, for values
    it computes, each side has its own), and nothing is parked. columns: the columns
    it sets, or None when it inserts or deletes rows."""

    def applies(self, table, i, j, key):
        """Whether it can explain a difference on the row key of table in pair (i, j):
        the row was on a database that ran this migration. B's rows are on B from
        version j (they reach A at the head); A's are on A from i and on B from j (the
        first sync); a row a migration made, on both from the start."""
        there_from = j if writer(key) == "B" else min(i, j)
        return table.lower() == self.table.lower() and there_from < self.version

    def label(self):
        return f"EXPECTED v{self.version} {self.table}" + (
            "." + ",".join(self.columns) if self.columns else "")


# Per history, the Rewrites the pairs run here meet (see Rewrite). None is left: since
# a migration's own writes are sent as operations (sync/migrate_ops.h), the rows they
# touch converge like any other (the fourteen komga, three wildebeest, chirpstack and
# matrix-event-cache entries this list held before all met no pair). A difference
# with nothing parked now fails as DIVERGED or LOST; list one here only with its cause.
EXPECTED = {}


class KnownBug(collections.namedtuple("KnownBug", "table when why")):
    """A KNOWN BUG in stemma that this test found: rows of `table` differ, with nothing
    parked, in the pairs (i, j) for which when(i, j) holds. Listed so that the rest
    of the matrix still guards against new ones; remove it once fixed (the report then
    says it met nothing)."""

    def applies(self, table, i, j, key):
        return table.lower() == self.table.lower() and self.when(i, j)

    def label(self):
        return f"KNOWN BUG {self.table}"


# The bugs this test found and stemma still has (see KnownBug): none. (wildebeest's
# subscriptions, rebuilt by 008 with another key type, met no pair once migrations'
# writes were sent.)
KNOWN_BUGS = {}


def expected_reasons(history, diff, i, j):
    """The Rewrites that together explain a difference, or the KnownBug that does, or
    []."""
    bugs = [b for b in KNOWN_BUGS.get(history, ()) if b.applies(diff.table, i, j, diff.key)]
    if bugs:
        return bugs[:1]
    rules = [r for r in EXPECTED.get(history, ()) if r.applies(diff.table, i, j, diff.key)]
    if any(r.columns is None for r in rules):
        return [r for r in rules if r.columns is None][:1]
    if diff.what != "DIVERGED":
        return []
    used = [r for r in rules if set(r.columns) & set(diff.cols)]
    covered = {c for r in used for c in r.columns}
    return used if set(diff.cols) <= covered else []


# STEMMA_MATRIX_QUICK=1 samples every history (scripts/test sets it for its sanitized
# pass, whose binary runs several times slower): every pair is run in the plain pass.
QUICK = os.environ.get("STEMMA_MATRIX_QUICK") == "1"
SAMPLE_ABOVE = 0 if QUICK else 20  # histories with more versions run a sample of pairs
STEP = 4 if QUICK else 12  # ... every STEP-th version, each with the next, both ways
EXTRA = 4          # ... and this many seeded pairs of those versions


class History:
    """One history's databases and pairs. Its work comes in stages (stages()), each a
    list of tasks that may run at once."""

    def __init__(self, name, root, tmp):
        self.name = name
        self.dir = os.path.join(root, name)
        self.n = len(migrations(self.dir))
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.exclude = composite_key_tables(self.dir) if EXCLUDE else []
        self.base = {}       # version: database migrated there, no rows
        self.a_bundle = {}   # version: every operation of A, written there
        self.b_written = {}  # version: B with its rows
        self.a_head = {}     # version: A migrated to the head (from there)
        self.a_head_vector = {}  # version: a_head's vector
        self.failed = {}     # version: why its databases could not be made
        self.notes = collections.defaultdict(list)  # version: what the writer skipped
        self.outcomes = []
        self.task_seconds = []  # how long each of its tasks took

    def path(self, name):
        return os.path.join(self.tmp, name)

    def pairs(self):
        """Every pair for a small history. For a large one, whose migrations to the head
        cost too much to run them all: every STEP-th version with the next such one,
        both ways (so that every migration lies between a pair, in each direction),
        each with the head, and a seeded few more."""
        n = self.n
        if PAIRS:
            return [(i, j) for h, i, j in PAIRS if h == self.name]
        if n <= SAMPLE_ABOVE:
            return [(i, j) for i in range(1, n + 1) for j in range(1, n + 1) if i != j]
        step = STEP if n <= 20 or not QUICK else 3 * STEP  # komga: every 12th in quick
        some = sorted(set(range(1, n + 1, step)) | {n})
        chosen = set()
        for lo, hi in zip(some, some[1:]):
            chosen |= {(lo, hi), (hi, lo), (lo, n)}
        rng = random.Random(f"{self.name}:pairs")
        for _ in range(EXTRA):
            i, j = rng.sample(some, 2)
            chosen.add((i, j))
        return sorted(chosen)

    def stages(self):
        pairs = self.pairs()
        a_side, b_side = {i for i, _ in pairs}, {j for _, j in pairs}
        yield [lambda: self.build_bases(sorted(a_side | b_side))]
        yield [lambda k=k: self.prepare(k, k in a_side, k in b_side)
               for k in sorted(a_side | b_side)]
        yield [lambda i=i, j=j: self.outcomes.append(self.pair(i, j)) for i, j in pairs]

    def build_bases(self, versions):
        """An empty database at each of versions, each migrated from a copy of the one
        before."""
        prev = None
        for k in versions:
            path = self.path(f"base{k}.db")
            try:
                if prev:
                    copy_db(prev, path)
                migrate(path, self.dir, to=k, exclude=() if prev else self.exclude)
            except StemmaFailed as e:
                for rest in versions[versions.index(k):]:
                    self.failed[rest] = f"migrating an empty database to v{k}: {e}"
                return
            self.base[k] = prev = path

    def write(self, k, side):
        """A copy of the version k database, its own node id, and side's rows."""
        path = self.path(f"{side.lower()}{k}.db")
        copy_db(self.base[k], path)
        seed = f"{self.name}:{side}:{k}"
        set_node_id(path, seed)
        self.notes[k] += [f"{side}: {note}" for note in write_rows(path, seed, side)]
        return path

    def prepare(self, k, a_side, b_side):
        """A and/or B at version k with their rows; A also migrated to the head."""
        if k in self.failed:
            return
        try:
            if a_side:
                a = self.write(k, "A")
                bundle = self.path(f"a{k}.stmb")
                stemma("changes", "--db", a, "-o", bundle)
                head, vector = self.path(f"a{k}-head.db"), self.path(f"a{k}-head.stmv")
                copy_db(a, head)
                migrate(head, self.dir)
                stemma("vector", "--db", head, "-o", vector)
                self.a_bundle[k], self.a_head[k], self.a_head_vector[k] = bundle, head, vector
            if b_side:
                self.b_written[k] = self.write(k, "B")
        except (StemmaFailed, sqlite3.Error) as e:
            self.failed[k] = f"v{k} with rows: {e}"

    def pair(self, i, j):
        bad = self.failed.get(i) or self.failed.get(j)
        if not bad:
            return run_pair(self, i, j)
        o = Outcome(self.name, i, j)
        o.status, o.error = "ERROR", bad
        return o


def timed(h, task):
    start = time.monotonic()
    try:
        task()
    finally:
        h.task_seconds.append(time.monotonic() - start)  # append: safe across threads


def run_stages(histories, pool):
    """Runs every history's stages on pool, each stage once the one before it is done,
    the histories side by side (the longest first keeps both workers busy)."""
    stages = {h: h.stages() for h in histories}
    running, left = {}, {}

    def advance(h):
        tasks = next(stages[h], None)
        if tasks is not None:
            left[h] = len(tasks)
            for t in tasks:
                running[pool.submit(timed, h, t)] = h
            if not tasks:
                advance(h)

    for h in histories:
        advance(h)
    while running:
        done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
        for f in done:
            h = running.pop(f)
            f.result()
            left[h] -= 1
            if left[h] == 0:
                advance(h)


# ---- the test -----------------------------------------------------------------------------

STATUSES = ("converged", "PARKED", "expected", "known bug", "DIVERGED", "LOST", "ERROR")


def summary(results, histories):
    """The table of outcomes per history, with the time its tasks took (summed over
    the workers)."""
    head = f"{'history':<20}{'pairs':>6}" + "".join(f"{s:>10}" for s in STATUSES) + "  tasks"
    lines = [head]
    for name, outcomes in results.items():
        c = collections.Counter(o.status for o in outcomes)
        lines.append(f"{name:<20}{len(outcomes):>6}" + "".join(f"{c[s]:>10}" for s in STATUSES)
                     + f"  {sum(histories[name].task_seconds):.0f} s")
    return "\n".join(lines)


def silent_by_table(outcomes):
    """The differences no parked operation explains, by table, columns and kind, each
    marked expected (EXPECTED lists it) or UNEXPECTED: how many rows, and the first."""
    seen = collections.OrderedDict()
    for o in outcomes:
        expected = {id(d) for d, _ in o.expected}
        for d in o.silent:
            k = (d.table, d.cols, d.what, id(d) in expected)
            seen.setdefault(k, [0, o, d])[0] += 1
    return [f"  {'expected' if exp else 'UNEXPECTED'} {d.what} {t}"
            f"{'.' + ','.join(cols) if cols else ''}: {n} rows, first v{o.i}->v{o.j} {d}"
            for (t, cols, _, exp), (n, o, d) in seen.items()]


def errors(outcomes):
    """The pairs that failed to run, one line per error."""
    by = collections.OrderedDict()
    for o in outcomes:
        if o.status == "ERROR":
            by.setdefault(o.error, []).append(o)
    return [f"{os[0].history}: {len(os)} pairs ERROR (first v{os[0].i}->v{os[0].j}): {e}"
            for e, os in by.items()]


def report(h, outcomes):
    """What happened to h's pairs, for the log: a line per pair, then by kind."""
    lines = [o.line() for o in outcomes if o.status != "ERROR"] + errors(outcomes)
    silent = silent_by_table(outcomes)
    if silent:
        lines.append(f"{h.name}: rows that differ with nothing parked to say why")
        lines += silent
    met = collections.Counter()  # pairs per Rewrite
    for o in outcomes:
        met.update({id(r) for _, rules in o.expected for r in rules})
    for r in EXPECTED.get(h.name, []) + KNOWN_BUGS.get(h.name, []):
        lines.append(f"{h.name}: {r.label()}: {r.why}: {met[id(r)] or 'no'} pairs here")
    notes = collections.defaultdict(list)
    for k, ns in sorted(h.notes.items()):
        for n in ns:
            notes[n].append(k)
    lines += [f"{h.name}: the writer left out {n} at v{', v'.join(map(str, ks))}"
              for n, ks in notes.items()]
    return lines


class RealSchemas(unittest.TestCase):
    results = {}
    histories = {}

    @classmethod
    def setUpClass(cls):
        root = schemas_root()
        names = [n for n in HISTORIES if os.environ.get("STEMMA_MATRIX_ONLY", n) == n
                 and (not PAIRS or any(h == n for h, _, _ in PAIRS))]
        missing = [n for n in names if not os.path.isdir(os.path.join(root, n))]
        if missing:
            why = (f"realschema_test: skipped: no {', '.join(missing)} in {root} (set "
                   f"STEMMA_REAL_SCHEMAS to the real-schemas directory)")
            print(why, file=sys.stderr)
            raise unittest.SkipTest(why)
        cls.tmp = tempfile.mkdtemp(prefix="stemma-realschema-")
        start, cpu = time.monotonic(), os.times()
        try:
            for name in names:
                cls.histories[name] = History(name, root, cls.tmp)
            with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
                run_stages(sorted(cls.histories.values(), key=lambda h: -h.n), pool)
        except BaseException:
            cls.tearDownClass()  # not called when setUpClass fails
            raise
        seconds, cpu = time.monotonic() - start, sum(os.times()[:4]) - sum(cpu[:4])
        print("Per pair: what A->B applied/already present/parked/replayed; what B's migrate "
              "replayed/left parked ('-': nothing was parked); the same for B->A (and A->B "
              "again, when A held anything B lacked); what stays parked; how rows differ.")
        for name in names:
            h = cls.histories[name]
            cls.results[name] = sorted(h.outcomes, key=lambda o: (o.i, o.j))
            print("\n".join(report(h, cls.results[name])))
        print(summary(cls.results, cls.histories))
        excluded = ", composite-key tables excluded (STEMMA_MATRIX_EXCLUDE=1)" if EXCLUDE else ""
        print(f"{sum(map(len, cls.results.values()))} pairs in {seconds:.1f} s on {WORKERS} "
              f"workers ({cpu:.0f} s of processor time){excluded}")
        sys.stdout.flush()

    @classmethod
    def tearDownClass(cls):
        if KEEP:
            print(f"kept {cls.tmp}")
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, name):
        if name not in self.results:
            self.skipTest(f"{name} not run (STEMMA_MATRIX_ONLY or STEMMA_MATRIX_PAIRS)")
        outcomes = self.results[name]
        bad = [o.line() for o in outcomes if o.status in ("PARKED", "DIVERGED", "LOST")] + \
            errors(outcomes)
        if bad:
            self.fail(f"{len(bad)} failures in {name}:\n" + "\n".join(bad[:20]) +
                      (f"\n... and {len(bad) - 20} more" if len(bad) > 20 else ""))

    def test_chirpstack(self):
        self.check("chirpstack")

    def test_wildebeest(self):
        self.check("wildebeest")

    def test_matrix_event_cache(self):
        self.check("matrix-event-cache")

    def test_komga(self):
        self.check("komga")


class Lenses(unittest.TestCase):
    """What the real histories' migrations do to the data, as `history --lenses` derives
    it from marked rows (lineage/lens.h): the renames, rebuilds and drops they hold."""

    def lenses(self, name):
        root = os.path.join(schemas_root(), name)
        if not os.path.isdir(root):
            self.skipTest(f"{root} is not there")
        out = stemma("history", "--schemas", root, "--lenses", "--format", "json")
        return {v["number"]: v for v in json.loads(out)["versions"]}

    def changes(self, version):
        return [(c["kind"], f'{c["table"]}.{c["column"]}',
                 f'{c["from_table"]}.{c["from_column"]}' if c["from_table"] else None)
                for c in version["changes"]]

    def test_three_column_renames_in_one_step(self):
        v = self.lenses("chirpstack")
        self.assertEqual(self.changes(v[6]), [
            ("renamed", "device_profile_template.class_b_ping_slot_periodicity",
             "device_profile_template.class_b_ping_slot_nb_k"),
            ("renamed", "fuota_deployment.multicast_class_b_ping_slot_periodicity",
             "fuota_deployment.multicast_class_b_ping_slot_nb_k"),
            ("renamed", "multicast_group.class_b_ping_slot_periodicity",
             "multicast_group.class_b_ping_slot_nb_k")])

    def test_a_table_renamed_and_tables_emptied(self):
        v = self.lenses("matrix-event-cache")
        self.assertIn(("renamed", "gap_chunks.prev_token", "gaps.prev_token"), self.changes(v[7]))
        self.assertIn(("emptied", "linked_chunks.None", None), self.changes(v[11]))
        self.assertIn(("dropped", "media.None", None), self.changes(v[10]))

    def test_a_rebuild_through_a_renamed_table_drops_one_column(self):
        # 004: MEDIA renamed to _MEDIA_OLD, MEDIA made again without THUMBNAIL, the rows
        # copied back: every other column is carried, only THUMBNAIL is dropped.
        v = self.lenses("komga")
        self.assertEqual(self.changes(v[4]), [("dropped", "MEDIA.THUMBNAIL", None)])
        self.assertTrue(all(version["derived"] for version in v.values()))


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    result = unittest.main(verbosity=1, exit=False).result
    if result.skipped and len(result.skipped) >= result.testsRun and result.wasSuccessful():
        sys.exit(SKIPPED)  # nothing ran: ctest reports the test as skipped
    sys.exit(0 if result.wasSuccessful() else 1)
