#!/usr/bin/python3
"""Faults a node must survive without losing anything: real `stemma node` processes on
free loopback ports, killed, locked out of their database, cut off by a lossy proxy,
out of disk space, or given a read-only file (docs/hardening.md, "Faults").

Run by ctest as `python3 tests/fault_test.py PATH/TO/stemma` from the source root. It
reuses mesh_test.py's nodes (one process each, its log checked for sanitizer reports)
and its proxy, and adds what faults need: settings in node.toml, a process started
under a file-size limit or as another user. Every process a test starts is killed when
it ends; its directory is removed.

A fault "part way" through a sync is made at a known point, never by racing the sync:
the sender's stream passes a proxy (tests/lossy_proxy.py) that forwards a set number of
bytes, far fewer than the sync needs, and then holds the rest, so the receiver holds a
part and nothing more however fast or slow the machine; the test waits for that (the
proxy holding, the receiver storing), then stops or kills a node. Every wait is for a
condition; its timeout only matters when something is broken.

What "nothing lost" means here is checked without looking inside stemma's tables, only
through the command line and the application's own table:
  - `stemma changes` counts the operations a database holds;
  - `stemma vector` and `stemma changes --since` count those one lacks of another's;
  - B is consistent with A when ops(B) + lacks(B of A) = ops(A) (its version vector
    covers exactly what it holds: no batch half stored, nothing beyond a gap) and each
    row B holds equals A's row (a row change is never split);
  - two databases converged when each lacks nothing of the other and their rows are
    equal.
"""
import hashlib
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import types
import unittest

import mesh_test
from mesh_test import Mesh, Node, Proxy, sql

STEMMA = None
SQLITE3 = mesh_test.SQLITE3
TASKS = mesh_test.TASKS
NOBODY = 65534


def fill(db, count, start=1):
    """count rows in lists, three operations each (id, name, created_at)."""
    sql(db, "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
            " INSERT INTO lists (id, name) SELECT 'l' || i, 'list ' || i FROM n"
            % (start, start + count - 1))


def rows(db):
    """Every row of lists, read by Python's sqlite3 (a reader: WAL lets it in while a node
    writes)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict((r[0], r[1:]) for r in
                    con.execute("SELECT id, name, created_at FROM lists"))
    finally:
        con.close()


def count(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM lists").fetchone()[0]
    finally:
        con.close()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class FaultNode(Node):
    """A mesh_test node that can be given settings, and started under a file-size limit
    or as another user, in a session of its own (so that stopping it is stopping it)."""

    def configure(self, **settings):
        path = os.path.join(self.dir, "node.toml")
        with open(path) as f:
            text = f.read()
        for key, value in settings.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n == 1, f"{key} is not in node.toml"
        with open(path, "w") as f:
            f.write(text)

    def reinit(self, peers=(), trust=()):
        """init again (keeping the key): peers are (key, endpoint) pairs."""
        args = ["init", "--dir", self.dir, "--db", self.db, "--schemas", self.schemas,
                "--bind", self.endpoint, "--force"]
        for key, endpoint in peers:
            args += ["--peer", f"{key}@{endpoint}"]
        for key in trust:
            args += ["--trust", key]
        self.mesh.stemma(*args)

    def start(self, preexec_fn=None, binary=None):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([binary or STEMMA, "node", "--dir", self.dir],
                                     stderr=self.logf, stdout=subprocess.DEVNULL,
                                     preexec_fn=preexec_fn, start_new_session=True)
        if self not in self.mesh.procs:
            self.mesh.procs.append(self)
        return self

    def node(self):
        return self.report()["node"]

    def stats(self):
        p = subprocess.run([STEMMA, "stats", "--dir", self.dir], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError(f"stats {self.name}: {p.stderr}")
        return p.stdout

    def log_lines(self, level, event):
        return [line for line in self.logs().splitlines()
                if re.search(rf"Z {level} +{event}: ", line)]


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Faults(Mesh):
    # ---- two nodes, a configured to reach b, each trusting the other ----

    def pair(self, rows_on_a=0, a_settings=None, b_settings=None, proxy=None):
        """Two nodes, a and b. With proxy (Proxy's settings, {} for none), a reaches b's
        inbox through a tests/lossy_proxy.py, returned third: everything a sends b passes
        it, so it can hold a's stream at a known point; b's answers go straight to a."""
        b = FaultNode(self, "b", TASKS, 4)
        to_b = b
        if proxy is not None:
            proxy = Proxy(self, b.port, **proxy)
            to_b = types.SimpleNamespace(key=b.key, endpoint=proxy.endpoint)
        a = FaultNode(self, "a", TASKS, 4, peers=[to_b])
        b.reinit(trust=[a.key])
        a.configure(**(a_settings or {}))
        b.configure(**(b_settings or {}))
        if rows_on_a:
            fill(a.db, rows_on_a)
        return (a, b) if proxy is None else (a, b, proxy)

    # ---- counting operations through the command line ----

    def ops(self, db):
        """How many operations db holds."""
        out = self.stemma("changes", "--db", db, "-o", os.path.join(self.tmp, "all.stmb"))
        return int(re.match(r"wrote (\d+) operation", out).group(1))

    def lacks(self, db, of):
        """How many of of's operations db lacks, by db's version vector."""
        vec = os.path.join(self.tmp, "lacks.stmv")
        self.stemma("vector", "--db", db, "-o", vec)
        out = self.stemma("changes", "--db", of, "--since", vec, "-o",
                          os.path.join(self.tmp, "lacks.stmb"))
        return int(re.match(r"wrote (\d+) operation", out).group(1))

    def assert_consistent(self, b, a):
        """b holds whole batches of a's only: integrity, vector against oplog, rows."""
        self.assertEqual(sql(b.db, "PRAGMA integrity_check"), "ok")
        self.assertEqual(self.ops(b.db) + self.lacks(b.db, a.db), self.ops(a.db),
                         "b's version vector does not cover exactly what it holds")
        theirs, mine = rows(a.db), rows(b.db)
        differ = sorted(k for k in mine if theirs.get(k) != mine[k])
        self.assertEqual(differ, [], "rows b holds that differ from a's (a row change split?): "
                         + ", ".join(f"{k}: {mine[k]} against {theirs.get(k)}" for k in differ[:3]))
        return len(mine)

    def assert_converged(self, a, b):
        self.assertEqual(self.lacks(a.db, b.db), 0)
        self.assertEqual(self.lacks(b.db, a.db), 0)
        self.assertEqual(self.ops(a.db), self.ops(b.db))
        self.assertEqual(rows(a.db), rows(b.db))
        for n in (a, b):
            self.assertEqual(sql(n.db, "PRAGMA integrity_check"), "ok")

    def wait_converged(self, a, b, timeout=90):
        want = None

        def same():
            nonlocal want
            want = count(a.db)
            return count(b.db) == want and self.lacks(b.db, a.db) == 0 and \
                self.lacks(a.db, b.db) == 0
        self.wait("a and b to hold the same operations", same, timeout=timeout)
        self.assert_converged(a, b)

    # ---- the faults ----

    def test_kill_9_mid_receive_of_100000_operations(self):
        # a's stream to b passes a proxy that forwards its first 400 KiB and then holds
        # the rest: b gets a few of a's batches of 2,000 operations (some 40 bytes each on
        # the wire: 4 MB in all) and nothing more, however fast the machine, until it is
        # killed. So it is killed part way by construction, not by luck.
        # (a takes the killed b as gone, and says HELLO again, after 1.5 s of silence.)
        a, b, proxy = self.pair(rows_on_a=33334, proxy={"hold_after": 400 * 1024},
                                a_settings={"heartbeat_ms": 300, "peer_timeout_ms": 1500})
        total = self.ops(a.db)  # 100,002 operations
        self.assertGreaterEqual(total, 100000)
        a.start()
        b.start()
        proxy.wait_held("the proxy to hold a's stream part way")
        self.wait("b to store the batches that passed", lambda: count(b.db) > 0, timeout=60)
        b.stop(kill=True)
        held = self.assert_consistent(b, a)
        self.assertLess(held, 33334, "b holds more than passed the proxy")
        proxy.open()
        b.start()
        self.wait_converged(a, b)
        self.assertEqual(count(b.db), 33334)

    def test_application_holds_the_write_lock_while_operations_arrive(self):
        # b waits 200 ms for the lock per attempt. a sends 32 batches of 100 at a time and
        # sends them again when 1.5 s pass without an acknowledgement, so while the lock
        # is held b gets more batches than it keeps (64): the rest are left to a.
        a, b = self.pair(rows_on_a=5000, b_settings={"busy_timeout_ms": 200},
                         a_settings={"heartbeat_ms": 300, "peer_timeout_ms": 1500,
                                     "batch_ops": 100, "window": 32})
        b.start()
        self.wait("b to answer", lambda: b.node()["id"] == b.key)
        app = sqlite3.connect(b.db, isolation_level=None, timeout=30)
        try:
            app.execute("BEGIN IMMEDIATE")
            app.execute("INSERT INTO lists (id, name) VALUES ('app', 'written under the lock')")
            a.start()

            def waiting():
                node = b.node()
                return node["apply_failures_busy"] >= 5 and node["batches_deferred"] >= 1 \
                    and node["batches_waiting"] == 64
            self.wait("b to find the database locked, keep the batches and retry", waiting,
                      timeout=60)
            # Reports answer while the batches wait, and say so.
            self.assertRegex(b.stats(), r"apply failures (\d+) \(busy \1, io 0\)\n"
                                        r"batches waiting 64 \(deferred [1-9]")
            self.assertEqual(count(b.db), 0)
            app.execute("COMMIT")
        finally:
            app.close()
        self.wait_converged(a, b)
        self.assertEqual(count(a.db), 5001)
        node = b.node()
        self.assertEqual(node["apply_failures_io"], 0)
        self.assertEqual(node["batches_waiting"], 0)
        self.assertEqual(len(b.log_lines("warn", "busy")), 1, b.logs())
        self.assertEqual(len(b.log_lines("info", "apply")), 1, b.logs())
        self.assertEqual(b.log_lines("error", r"\S+"), [], b.logs())

    def test_lossy_network_between_the_nodes(self):
        # Each node reaches the other through a proxy that, lossy from the start, cuts its
        # connections with bytes in flight and stalls them (lossy_proxy.py says why that
        # is how to lose messages on TCP). A connection carries at most 256 KiB before it
        # is cut, and a's 20,000 rows are 2.3 MB on the wire: the sync cannot be over
        # before 8 cuts. Writes go on on both sides meanwhile, one round after each of the
        # first 6 cuts, so every round is written while the network is losing.
        a, b = self.pair(rows_on_a=20000)
        settings = {"heartbeat_ms": 300, "peer_timeout_ms": 1500, "reconnect_max_ms": 1000}
        to_a = Proxy(self, a.port, seed=1, lossy=True)
        to_b = Proxy(self, b.port, seed=2, lossy=True)
        a.reinit(peers=[(b.key, to_b.endpoint)])
        b.reinit(peers=[(a.key, to_a.endpoint)])
        for n in (a, b):
            n.configure(batch_ops=500, **settings)
        a.start()
        b.start()
        cuts = lambda: to_a.status()["cuts"] + to_b.status()["cuts"]
        rounds = 6
        for i in range(1, rounds + 1):
            self.wait(f"the proxies to cut connection {i}", lambda: cuts() >= i, timeout=120)
            fill(a.db, 200, start=100000 + 200 * i)
            sql(b.db, f"INSERT INTO lists (id, name) VALUES ('b{i}', 'from b during the loss')")
        for p in (to_a, to_b):
            p.lossy(False)
        self.wait_converged(a, b)
        self.assertEqual(count(a.db), 20000 + 201 * rounds)
        seen = [p.status() for p in (to_a, to_b)]
        self.assertGreaterEqual(sum(s["cuts"] for s in seen), rounds, seen)
        self.assertGreater(sum(s["dropped_bytes"] for s in seen), 0, seen)

    def test_sender_vanishes_mid_stream(self):
        # a stops dead (SIGSTOP) for longer than b waits for a silent peer, comes back,
        # then is killed outright and started again, each time in the middle of sending.
        # a's stream to b passes a proxy that lets 200 KiB through (some 10 of a's
        # batches of 500 operations; the 30,000 rows are 3.5 MB) and then holds the rest,
        # so a is stopped, and later killed, part way by construction; and while the
        # proxy holds, what b has is what passed, however long the test looks.
        hold = 200 * 1024
        a, b, proxy = self.pair(rows_on_a=30000, a_settings={"batch_ops": 500, "window": 1},
                                b_settings={"heartbeat_ms": 300, "peer_timeout_ms": 1500},
                                proxy={"hold_after": hold})
        a.start()
        b.start()
        proxy.wait_held("the proxy to hold a's stream part way")
        self.wait("b to store the batches that passed", lambda: count(b.db) > 0, timeout=60)
        # b hears nothing from a from the moment the proxy holds; a is stopped, and stays
        # stopped until b has taken it as gone. Gone means silent for peer_timeout_ms: all
        # b got came before that, and is stored.
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            self.wait("b to take a as gone", lambda: b.peer(a)["state"] == "gone")
            frozen = count(b.db)
            self.assertLess(frozen, 30000, "b holds more than passed the proxy")
            self.assert_consistent(b, a)
            # Once a is back, what it sent before it stopped and then more passes, up to
            # another 200 KiB; then the proxy holds again.
            proxy.allow(hold)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        proxy.wait_held("the proxy to hold a's stream again")
        self.wait("b to receive again", lambda: count(b.db) > frozen, timeout=60)
        a.stop(kill=True)
        # Gone again (silent since the proxy held): what passed is stored, nothing more comes.
        self.wait("b to take a as gone again", lambda: b.peer(a)["state"] == "gone")
        self.assertLess(count(b.db), 30000, "b holds more than passed the proxy")
        self.assert_consistent(b, a)
        proxy.open()
        a.start()
        self.wait_converged(a, b)

    def test_disk_full(self):
        # b may write files of at most LIMIT bytes (RLIMIT_FSIZE, with SIGXFSZ ignored, so
        # that a write past it fails with EFBIG as one past a full disk fails with ENOSPC).
        # Its database starts with 2,000 rows; the 8,000 more that come do not fit.
        a, b = self.pair(rows_on_a=2000)
        a.start()
        b.start()
        self.wait("b to hold the first 2,000 rows", lambda: count(b.db) == 2000)
        b.stop()
        before = rows(b.db)
        fill(a.db, 8000, start=2001)
        limit = os.path.getsize(b.db) + 256 * 1024

        def small_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        b.start(preexec_fn=small_disk)
        self.wait("b to fail to store and keep the batches",
                  lambda: b.node()["apply_failures_io"] >= 2 and
                  b.node()["batches_waiting"] >= 1, timeout=60)
        self.assertRegex(b.stats(), r"apply failures \d+ \(busy 0, io [1-9]")
        [line] = b.log_lines("error", "apply")
        self.assertRegex(line, r"(disk I/O error|database or disk is full).*received batches "
                               r"wait \(\d+\), unacknowledged")
        # Nothing stored is damaged: the first rows are there as they were.
        self.assert_consistent(b, a)
        now = rows(b.db)
        self.assertEqual({k: now.get(k) for k in before}, before)
        # The disk has room again: b stores what waited, without a restart.
        resource.prlimit(b.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.wait_converged(a, b)
        self.assertEqual(count(b.db), 10000)
        self.assertEqual(len(b.log_lines("info", "apply")), 1, b.logs())
        self.assertEqual(len(b.log_lines("error", "apply")), 1, b.logs())

    def test_a_replay_cut_short_by_a_full_disk_resumes(self):
        # b (v1) holds 20,000 operations on tasks.priority, parked: it has no such column.
        # Its migrate to v2 commits the step, then runs out of disk while the replay
        # applies them (RLIMIT_FSIZE). The replay is owed, and the next migrate runs it: nothing stays
        # parked, where before it said "nothing to do" and they stayed parked for good.
        a, b = os.path.join(self.tmp, "a.db"), os.path.join(self.tmp, "b.db")
        self.stemma("migrate", "--db", a, "--schemas", TASKS, "--to", "2", "--no-backup")
        self.stemma("migrate", "--db", b, "--schemas", TASKS, "--to", "1", "--no-backup")
        sql(a, "INSERT INTO lists (id, name) VALUES ('l', 'list');"
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
               "INSERT INTO tasks (id, list_id, title, priority) "
               "SELECT 't' || i, 'l', 'task ' || i, i FROM n")
        bundle = os.path.join(self.tmp, "a.stmb")
        self.stemma("changes", "--db", a, "-o", bundle)
        out = self.stemma("apply", "--db", b, bundle)
        self.assertIn("parked 20000,", out)
        # Writes go to the WAL, which starts empty: 256 KiB hold the step's few pages,
        # not the replay's megabytes (the database file itself is only read).
        limit = 256 * 1024

        def small_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        p = subprocess.run([STEMMA, "migrate", "--db", b, "--schemas", TASKS, "--to", "2",
                            "--no-backup"], capture_output=True, text=True, timeout=120,
                           preexec_fn=small_disk)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertRegex(p.stderr, r"disk I/O error|database or disk is full")
        self.assertEqual(sql(b, "SELECT max(version) FROM schema_version"), "2")
        self.assertEqual(sql(b, "SELECT count(*) FROM stemma_parked"), "20000")
        # The owed replay is finished by the next migrate, or apply, or node start: here,
        # a copy of b is given an empty bundle, b itself migrated again.
        for suffix in ("", "-wal"):  # the step may still be in the WAL
            if os.path.exists(b + suffix):
                shutil.copy(b + suffix, b + ".copy" + suffix)
        vector = os.path.join(self.tmp, "a.stmv")
        self.stemma("vector", "--db", a, "-o", vector)
        self.stemma("changes", "--db", a, "--since", vector, "-o", bundle)
        out = self.stemma("apply", "--db", b + ".copy", bundle)
        self.assertIn("replayed 20000 (0 parked in all)", out)
        out = self.stemma("migrate", "--db", b, "--schemas", TASKS, "--to", "2", "--no-backup")
        self.assertIn("replayed 20000 parked operations (0 still parked)", out)
        self.assertNotIn("nothing to do", out)
        self.assertEqual(sql(b, "SELECT count(*) FROM stemma_parked"), "0")
        self.assertEqual(sql(b, "SELECT sum(priority) FROM tasks"), str(20000 * 20001 // 2))
        # Owed no more: the next run has nothing to do.
        out = self.stemma("migrate", "--db", b, "--schemas", TASKS, "--to", "2", "--no-backup")
        self.assertIn("nothing to do", out)

    def test_read_only_database(self):
        # b's database file loses its write permission while b is stopped. Root may write
        # any file, so as root b runs as nobody (its files given to nobody), from a copy
        # of the binary and the schemas that nobody can surely read.
        a, b = self.pair(rows_on_a=2000)
        a.start()
        b.start()
        self.wait("b to hold the first 2,000 rows", lambda: count(b.db) == 2000)
        b.stop()
        before = rows(b.db)
        fill(a.db, 3000, start=2001)
        binary, preexec = None, None
        if os.geteuid() == 0:
            binary, preexec = self.as_nobody(b)
        os.chmod(b.db, 0o444)
        digest = sha256(b.db)
        b.start(preexec_fn=preexec, binary=binary)
        self.wait("b to fail to store and keep the batches",
                  lambda: b.node()["apply_failures_io"] >= 1 and
                  b.node()["batches_waiting"] >= 1, timeout=60)
        self.assertIn("is read-only", b.log_lines("error", "database")[0])
        [line] = b.log_lines("error", "apply")
        self.assertIn("readonly database", line)
        self.assertIn("peers 1 (connected 1)", b.stats())
        self.assertEqual(sha256(b.db), digest)
        self.assertEqual(sql(b.db, "PRAGMA integrity_check"), "ok")
        self.assertEqual(rows(b.db), before)
        # Writable again (with the -wal and -shm files SQLite made beside it): b reopens
        # the file at its next attempt and stores what waited.
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(b.db + suffix):
                os.chmod(b.db + suffix, 0o644)
        self.wait_converged(a, b)
        self.assertEqual(count(b.db), 5000)
        self.assertEqual(len(b.log_lines("info", "database")), 1, b.logs())

    def as_nobody(self, node):
        """Gives node's files to nobody and returns a binary and a preexec_fn that run
        it as nobody."""
        # The database's directory too: SQLite makes its -wal and -shm files there.
        os.chmod(self.tmp, 0o755)
        os.chown(self.tmp, NOBODY, NOBODY)
        binary = os.path.join(self.tmp, "stemma")
        shutil.copy(STEMMA, binary)
        os.chmod(binary, 0o755)
        schemas = os.path.join(self.tmp, "schemas", os.path.basename(node.schemas))
        shutil.copytree(node.schemas, schemas)
        node.configure(schemas=f'"{schemas}"')
        for path in [node.dir, os.path.dirname(schemas)] + \
                [node.db + s for s in ("", "-wal", "-shm")]:
            if not os.path.exists(path):
                continue
            os.chown(path, NOBODY, NOBODY)
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), NOBODY, NOBODY)

        def drop():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        return binary, drop


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    mesh_test.STEMMA = STEMMA
    unittest.main(verbosity=2)
