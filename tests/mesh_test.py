#!/usr/bin/python3
"""Integration tests of the mesh: real `stemma node` processes on free loopback ports,
with CURVE keys, talking ZeroMQ, syncing real SQLite files written by the sqlite3 shell.

Run by ctest as `python3 tests/mesh_test.py PATH/TO/stemma` from the source root. Every
process a test starts is stopped (and killed if need be) when the test ends.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import unittest

try:
    import zmq
except ImportError:  # pragma: no cover - scripts/install-deps installs python3-zmq
    zmq = None
try:
    import tomli as toml_reader
except ImportError:  # pragma: no cover - Debian 12 has python3-tomli; 3.11 has tomllib
    import tomllib as toml_reader

STEMMA = None


def formats():
    """The bundle format and wire protocol versions the binary speaks (stemma -V)."""
    out = subprocess.run([STEMMA, "-V"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"bundle format (\d+), wire protocol (\d+)", out)
    return int(m.group(1)), int(m.group(2))
SQLITE3 = shutil.which("sqlite3")
TASKS = os.path.abspath("schemas/tasks")
FORK = os.path.abspath("schemas/tasks-fork")
NOTES = os.path.abspath("tests/data/schemas/notes")
LINKS = os.path.abspath("tests/data/schemas/composite-key")  # note_links: a two-column key
BLOBS = os.path.abspath("tests/data/schemas/blobs")  # files: an id, a name and 20 blobs
PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lossy_proxy.py")


_given_ports = set()


def free_port():
    """A port nothing listens on now, and never one this process handed out before: the
    kernel may give a port it just freed again, and two nodes of one test then collide
    on it ("Address already in use") before either binds."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def sql(db, statements):
    # A running node writes the same file: like any application sharing a database, the
    # shell waits for the lock rather than failing at once.
    p = subprocess.run([SQLITE3, "-bail", "-cmd", ".timeout 10000", db, statements],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"sqlite3 {db}: {p.stderr}")
    return p.stdout.strip()


class Node:
    def __init__(self, mesh, name, schemas, version, peers=(), trust=(), tofu=False,
                 insecure=False):
        self.mesh, self.name, self.schemas = mesh, name, schemas
        self.dir = os.path.join(mesh.tmp, name)
        self.db = os.path.join(mesh.tmp, name + ".db")
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        mesh.stemma("migrate", "--db", self.db, "--schemas", schemas, "--to", str(version),
                    "--no-backup")
        self.init(peers, trust, tofu, insecure)
        self.proc = None
        self.log = os.path.join(mesh.tmp, name + ".log")

    def init(self, peers=(), trust=(), tofu=False, insecure=False, force=False):
        """stemma init; again with force=True rewrites node.toml and keeps the key."""
        args = ["init", "--dir", self.dir, "--db", self.db, "--schemas", self.schemas,
                "--bind", self.endpoint]
        for p in peers:
            args += ["--peer", p.endpoint if insecure else f"{p.key}@{p.endpoint}"]
        for k in trust:
            args += ["--trust", k]
        if tofu:
            args.append("--trust-on-first-use")
        if insecure:
            args.append("--insecure")
        if force:
            args.append("--force")
        out = self.mesh.stemma(*args)
        self.key = out.strip().splitlines()[-1].split()[-1]

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([STEMMA, "node", "--dir", self.dir], stderr=self.logf,
                                     stdout=subprocess.DEVNULL)
        self.mesh.procs.append(self)
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        self.proc = None

    def report(self):
        p = subprocess.run([STEMMA, "report", "--dir", self.dir, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError(f"report {self.name}: {p.stderr}")
        return json.loads(p.stdout)

    def peer(self, other):
        for p in self.report()["peers"]:
            if p["id"] == other.key:
                return p
        return None

    def logs(self):
        with open(self.log) as f:
            return f.read()


class Proxy:
    """tests/lossy_proxy.py between a node and the port it connects to: each command
    returns once the proxy has taken it."""

    def __init__(self, mesh, target_port, seed=1, hold_after=None, lossy=False):
        self.mesh, self.port = mesh, free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.status_file = os.path.join(mesh.tmp, f"proxy-{self.port}.json")
        args = [sys.executable, PROXY, str(self.port), str(target_port), self.status_file,
                "--seed", str(seed)]
        if hold_after is not None:
            args += ["--hold-after", str(hold_after)]
        if lossy:
            args.append("--lossy")
        self.commands = 0
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, start_new_session=True)
        mesh.proxies.append(self)
        mesh.wait("the proxy to listen", lambda: os.path.exists(self.status_file),
                  interval=0.01)

    def status(self):
        with open(self.status_file) as f:
            return json.load(f)

    def command(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        self.commands += 1
        self.mesh.wait(f"the proxy to take {line!r}",
                       lambda: self.status()["commands"] == self.commands, interval=0.01)

    def allow(self, n):
        """Forward n more bytes toward the target, then hold."""
        self.command(f"allow {n}")

    def open(self):
        self.command("open")

    def lossy(self, on):
        self.command("lossy on" if on else "lossy off")

    def wait_held(self, what):
        """Until the proxy holds bytes its sender sent: the stream is caught part way."""
        return self.mesh.wait(what, lambda: self.status()["held_bytes"] > 0, timeout=60,
                              interval=0.05)

    def stop(self):
        try:
            self.proc.stdin.close()  # the end of its input stops it
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


class Mesh(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-mesh-")
        self.procs = []
        self.proxies = []

    def tearDown(self):
        for n in self.procs:
            n.stop()
        for p in self.proxies:
            p.stop()
        # A node built with sanitizers reports into its log: any report fails the test.
        reports = [f"{n.name}: {line}" for n in self.procs if os.path.exists(n.log)
                   for line in n.logs().splitlines()
                   if "Sanitizer" in line or "runtime error:" in line]
        if os.environ.get("STEMMA_KEEP_LOGS"):
            for n in self.procs:
                if os.path.exists(n.log):
                    print(f"--- {n.name} log ---\n{n.logs()}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(reports, [], "sanitizer reports in node logs")

    def stemma(self, *args):
        p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, f"stemma {' '.join(args)}: {p.stderr}")
        return p.stdout

    def wait(self, what, predicate, timeout=20.0, interval=0.2):
        """Until predicate() is true; timeout only matters when something is broken."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = predicate()
                if last:
                    return last
            except AssertionError:
                pass
            time.sleep(interval)
        logs = "".join(f"\n--- {n.name}.log ---\n{n.logs()}" for n in self.procs
                       if os.path.exists(n.log))
        self.fail(f"timed out waiting for {what} (last: {last!r}){logs}")


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Sync(Mesh):
    def test_three_nodes_at_mixed_versions(self):
        b = Node(self, "b", TASKS, 3, tofu=True)
        c = Node(self, "c", FORK, 3, tofu=True)
        a = Node(self, "a", TASKS, 2, peers=[b, c], tofu=True)
        for n in (a, b, c):
            n.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'home');"
                  "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'from a')")
        sql(b.db, "INSERT INTO tasks (id, list_id, title, tags) VALUES ('t2', 'l1', 'from b', '[\"x\"]')")
        sql(c.db, "INSERT INTO tasks (id, list_id, title, due_at) VALUES ('t3', 'l1', 'from c', 'soon')")
        titles = "SELECT group_concat(id || '=' || title, ',') FROM (SELECT * FROM tasks ORDER BY id)"
        want = "t1=from a,t2=from b,t3=from c"
        for n in (a, b, c):
            self.wait(f"{n.name} to hold every task", lambda n=n: sql(n.db, titles) == want)
        # How they judge each other: a at v2 is where the main line and the fork parted,
        # so an ancestor of both; b and c diverge after v2.
        pb, pc = a.peer(b), a.peer(c)
        self.assertEqual(pb["relation"], "ancestor")
        self.assertEqual(pb["sync"], "full")
        self.assertEqual(pc["relation"], "ancestor")
        self.assertEqual(c.peer(a)["relation"], "descendant")
        # b learned c from a's peer list, and c b.
        self.wait("b to meet c", lambda: (b.peer(c) or {}).get("state") == "connected")
        bc = b.peer(c)
        self.assertEqual(bc["relation"], "divergent")
        self.assertEqual(bc["common_ancestor"]["version"], 2)
        self.assertEqual(bc["sync"], "partial")
        self.assertIn("shared columns only", bc["reason"])
        fam = {f["name"]: f for f in bc["families"]}
        self.assertEqual(fam["tasks"]["local_only"], ["tags"])
        self.assertEqual(fam["tasks"]["remote_only"], ["due_at"])
        # a parked t2's tags; migrating a to v3 while it runs replays them.
        self.assertGreaterEqual(a.report()["node"]["parked"], 1)
        self.stemma("migrate", "--db", a.db, "--schemas", TASKS, "--to", "3", "--no-backup")
        self.assertEqual(sql(a.db, "SELECT tags FROM tasks WHERE id = 't2'"), '["x"]')
        self.wait("a to see b as same", lambda: a.peer(b)["relation"] == "same")
        self.wait("b to see a as same", lambda: b.peer(a)["relation"] == "same")
        # A write after the upgrade travels too, within a second or so.
        sql(a.db, "UPDATE tasks SET tags = '[\"y\"]' WHERE id = 't1'")
        self.wait("b to get the new tags",
                  lambda: sql(b.db, "SELECT tags FROM tasks WHERE id = 't1'") == '["y"]',
                  timeout=5)

    def test_a_hello_after_a_migration_makes_a_pruned_link_eager_on_both_sides(self):
        # b hears a directly (through a proxy) and through c, a divergent fork that cannot
        # carry tasks.tags to b. Held at the proxy, a's batch reaches b after c's copy,
        # all held already, so b prunes a. a then migrates: its HELLO (no reply) makes
        # the link eager again on both sides, so a's later write to tags, which only the
        # direct link carries, reaches b. (A side that kept its PRUNE sent b its vector
        # only, while b, eager again, never grafted it: the write never came.)
        b = Node(self, "b", TASKS, 3, tofu=True)
        c = Node(self, "c", FORK, 3, peers=[b], tofu=True)
        proxy = Proxy(self, b.port)
        via_proxy = types.SimpleNamespace(key=b.key, endpoint=proxy.endpoint)
        a = Node(self, "a", TASKS, 2, peers=[via_proxy, c], tofu=True)
        # The hold outlasts no heartbeat: a and b stay connected. a binds nowhere, so
        # that everything between a and b goes through the proxy (b cannot dial a).
        for n in (a, b):
            with open(os.path.join(n.dir, "node.toml")) as f:
                text = f.read()
            text = re.sub(r"(?m)^peer_timeout_ms = \d+$", "peer_timeout_ms = 600000", text)
            if n is a:
                text = re.sub(r'(?m)^bind = ".*"$', 'bind = ""', text)
            with open(os.path.join(n.dir, "node.toml"), "w") as f:
                f.write(text)
        for n in (a, b, c):
            n.start()
        for x, y in ((a, b), (a, c), (b, c)):
            self.wait(f"{x.name} and {y.name} to connect",
                      lambda x=x, y=y: (x.peer(y) or {}).get("state") == "connected"
                      and (y.peer(x) or {}).get("state") == "connected")
        proxy.allow(0)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'round the long way')")
        proxy.wait_held("a's batch to b to be held")
        self.wait("b to get the list through c",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l2'") != "")
        proxy.open()
        # (a may prune b too, for what b forwarded from c: "lazy, pruned".)
        self.wait("b to prune a", lambda: "pruned" in b.peer(a)["link"])
        self.wait("a to hear it", lambda: "lazy" in a.peer(b)["link"])
        self.stemma("migrate", "--db", a.db, "--schemas", TASKS, "--to", "3", "--no-backup")
        self.wait("b to see a at v3", lambda: b.peer(a)["relation"] == "same")
        self.wait("a's side eager again", lambda: a.peer(b)["link"] == "eager")
        self.wait("b's side eager again", lambda: b.peer(a)["link"] == "eager")
        sql(a.db, "INSERT INTO tasks (id, list_id, title, tags) "
                  "VALUES ('t9', 'l2', 'tagged', '[\"z\"]')")
        self.wait("b to get the tags",
                  lambda: sql(b.db, "SELECT tags FROM tasks WHERE id = 't9'") == '["z"]',
                  timeout=30)

    def test_a_peer_configured_by_another_name_than_it_advertises_is_heard(self):
        # a lists b as tcp://localhost:PORT; b advertises tcp://127.0.0.1:PORT. The same
        # node: its HELLOs (here the one it sends after migrating) are not another
        # device's with its key.
        b = Node(self, "b", TASKS, 2, tofu=True)
        alias = types.SimpleNamespace(key=b.key, endpoint=f"tcp://localhost:{b.port}")
        a = Node(self, "a", TASKS, 2, peers=[alias], tofu=True)
        for n in (a, b):
            n.start()
        self.wait("a to see b as same", lambda: (a.peer(b) or {}).get("relation") == "same")
        self.stemma("migrate", "--db", b.db, "--schemas", TASKS, "--to", "3", "--no-backup")
        self.wait("a to hear b migrated",
                  lambda: a.peer(b)["relation"] == "ancestor", timeout=10)
        self.assertNotIn("key-in-use", a.logs())

    def test_a_table_keyed_by_two_columns_syncs_both_ways(self):
        b = Node(self, "b", LINKS, 1, tofu=True)
        a = Node(self, "a", LINKS, 1, peers=[b], tofu=True)
        for n in (a, b):
            n.start()
        sql(a.db, "INSERT INTO notes VALUES ('n1', 'one'), ('n2', 'two'), ('n3', 'three');"
                  "INSERT INTO note_links VALUES ('n1', 'n2'), ('n2', 'n1'), ('n1', 'n3')")
        links = ("SELECT group_concat(from_id || '>' || to_id, ',') FROM "
                 "(SELECT * FROM note_links ORDER BY from_id, to_id)")
        self.wait("b to hold a's links", lambda: sql(b.db, links) == "n1>n2,n1>n3,n2>n1")
        # b drops one link and points another elsewhere (a new key: delete and insert).
        sql(b.db, "DELETE FROM note_links WHERE from_id = 'n1' AND to_id = 'n3';"
                  "UPDATE note_links SET to_id = 'n3' WHERE from_id = 'n2'")
        self.wait("a to hold b's changes", lambda: sql(a.db, links) == "n1>n2,n2>n3")
        self.assertEqual(a.report()["node"]["parked"], 0)

    def test_what_a_peer_sent_is_never_sent_back(self):
        # No echo (docs/protocol.md, "Anti-entropy"): b holds what a sent it, so b sends a
        # none of it, even though a's HELLO to b was older than a's writes.
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        for n in (a, b):
            n.start()
        self.wait("a and b to meet", lambda: (b.peer(a) or {}).get("state") == "connected")
        sql(a.db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)"
                  " INSERT INTO lists (id, name) SELECT 'l' || i, 'list ' || i FROM n")
        self.wait("b to hold a's 10,000 rows",
                  lambda: sql(b.db, "SELECT count(*) FROM lists") == "10000", timeout=60)
        self.wait("a to hear b's acknowledgements",
                  lambda: a.peer(b)["behind"] == 0, timeout=60)
        self.assertGreaterEqual(b.peer(a)["ops_received"], 30000)
        self.assertEqual(b.peer(a)["ops_sent"], 0)
        self.assertEqual(a.peer(b)["ops_received"], 0)

    def test_line_topology(self):
        c = Node(self, "c", TASKS, 4)
        b = Node(self, "b", TASKS, 4, peers=[c])
        a = Node(self, "a", TASKS, 4, peers=[b])
        # Trust runs along the line only: b trusts a (and c, its peer), c trusts b.
        b.init(peers=[c], trust=[a.key], force=True)
        c.init(trust=[b.key], force=True)
        for n in (c, b, a):
            n.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'from a')")
        self.wait("the write on a to reach c",
                  lambda: sql(c.db, "SELECT name FROM lists WHERE id = 'l1'") == "from a")
        # a learns of c through b (b's HELLO names c, whichever connected first), but
        # does not trust it, so does not dial it: a node chooses only peers whose key it
        # trusts (the user guide, "A sparse mesh"). A report is answered after the pass
        # that learned the peer has chosen, so the role it shows is the choice made.
        self.wait("a to learn of c", lambda: a.peer(c) is not None)
        self.assertEqual(a.peer(c)["role"], "known")
        self.assertEqual(a.peer(c)["state"], "connecting")
        self.assertEqual(a.peer(b)["role"], "configured")
        self.assertEqual(b.peer(a)["role"], "listed")
        self.assertEqual(a.report()["node"]["refused_keys"] + c.report()["node"]["refused_keys"], 0)

    def test_kill_and_restart_mid_sync(self):
        # a reaches b through a proxy that forwards the first 300 KiB a sends and then
        # holds the rest (the 20,000 lists are 2.3 MB on the wire): b is killed part way
        # by construction, whatever the speed of the machine.
        b = Node(self, "b", TASKS, 4, tofu=True)
        proxy = Proxy(self, b.port, hold_after=300 * 1024)
        via_proxy = types.SimpleNamespace(key=b.key, endpoint=proxy.endpoint)
        a = Node(self, "a", TASKS, 4, peers=[via_proxy], tofu=True)
        sql(a.db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
                  " INSERT INTO lists (id, name) SELECT 'l' || i, 'list ' || i FROM n")
        a.start()
        b.start()
        proxy.wait_held("the proxy to hold a's stream part way")
        self.wait("b to store what passed",
                  lambda: int(sql(b.db, "SELECT count(*) FROM lists")) > 0, timeout=60)
        b.stop(kill=True)
        held = int(sql(b.db, "SELECT count(*) FROM lists"))
        self.assertEqual(sql(b.db, "PRAGMA integrity_check"), "ok")
        self.assertLess(held, 20000, "b holds more than passed the proxy")
        proxy.open()
        b.start()
        self.wait("b to hold all 20,000 lists",
                  lambda: sql(b.db, "SELECT count(*) FROM lists") == "20000", timeout=60)
        self.assertEqual(sql(b.db, "SELECT sum(n) FROM stemma_oplog"),
                         sql(a.db, "SELECT sum(n) FROM stemma_oplog"))
        self.assertEqual(sql(b.db, "PRAGMA integrity_check"), "ok")

    def test_untrusted_key_cannot_sync(self):
        c = Node(self, "c", TASKS, 4)  # trusts no one, no trust on first use
        x = Node(self, "x", TASKS, 4, peers=[c])
        c.start()
        x.start()
        sql(x.db, "INSERT INTO lists (id, name) VALUES ('l1', 'intruder')")
        # Refused at the handshake: x's connection is closed before any message of it is
        # read, and x does not connect again.
        self.wait("c to refuse x's key", lambda: c.report()["node"]["refused_keys"] >= 1)
        self.assertEqual(sql(c.db, "SELECT count(*) FROM lists"), "0")
        self.assertEqual(c.report()["peers"], [])
        self.assertEqual(x.peer(c)["state"], "connecting")

    def test_unrelated_peers_refuse_each_other_and_say_why(self):
        b = Node(self, "b", NOTES, 2, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        a.start()
        b.start()
        self.wait("a to refuse b", lambda: a.peer(b)["state"] == "refused")
        self.assertEqual(a.peer(b)["relation"], "unrelated")
        self.assertIn("unrelated", a.peer(b)["reason"])
        self.wait("b to refuse a", lambda: (b.peer(a) or {}).get("state") == "refused")
        self.assertIn("unrelated", b.peer(a)["reason"])
        self.assertIn("peer-refused", a.logs())

    def test_report_formats_peers_and_stats(self):
        b = Node(self, "b", TASKS, 3, tofu=True)
        a = Node(self, "a", TASKS, 2, peers=[b], tofu=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")

        def run(*args):
            p = subprocess.run([STEMMA, *args, "--dir", a.dir], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
            return p.stdout

        # TOML: an independent parser reads what the JSON says (no nulls: absent keys).
        doc = toml_reader.loads(run("report", "--format", "toml"))
        self.assertEqual(doc["node"]["id"], a.key)
        self.assertEqual((doc["node"]["schema_set"], doc["node"]["version"]), ("tasks", 2))
        [pb] = doc["peers"]
        self.assertEqual((pb["id"], pb["state"], pb["role"], pb["relation"], pb["sync"]),
                         (b.key, "connected", "configured", "ancestor", "full"))
        self.assertEqual(pb["common_ancestor"]["version"], 2)
        self.assertNotIn("refused_by", pb)
        fam = {f["name"]: f for f in pb["families"]}
        self.assertEqual(fam["tasks"]["remote_only"], ["tags"])
        js = a.peer(b)
        for key in ("endpoint", "role", "schema_set", "version", "reason", "common_ancestor",
                    "families"):
            self.assertEqual(pb[key], js[key], key)
        # DOT: the lineage tree with both nodes on it.
        dot = run("report", "--format", "dot")
        self.assertTrue(dot.startswith("digraph"), dot[:100])
        self.assertIn(f'"node:{a.key}"', dot)
        self.assertIn(f'"peer:{b.key}"', dot)
        self.assertEqual(dot.count('[label="v'), 3)  # tasks v1, v2, v3
        # The short forms.
        peers = run("peers")
        self.assertIn(f"{b.endpoint}  connected (configured)  tasks v3  ancestor  sync full",
                      peers)
        self.assertNotIn("sent ", peers)
        self.assertIn("peers 1 (connected 1)", run("stats"))
        self.assertIn("peers kept 1 (known, not kept 0)", run("stats"))
        for bad in (["report", "--format", "xml"], ["peers", "--format", "json"]):
            p = subprocess.run([STEMMA, *bad, "--dir", a.dir], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2, bad)


def clone(mesh, src, name, peers, new_identity=True):
    """A device made from an image of src (stopped): its directory and database copied,
    then given its own identity with stemma init --new-identity (or, without, only its
    own endpoint: the same key as src)."""
    n = Node.__new__(Node)
    n.mesh, n.name, n.schemas = mesh, name, src.schemas
    n.dir = os.path.join(mesh.tmp, name)
    n.db = os.path.join(mesh.tmp, name + ".db")
    n.port = free_port()
    n.endpoint = f"tcp://127.0.0.1:{n.port}"
    n.proc, n.log = None, os.path.join(mesh.tmp, name + ".log")
    shutil.copytree(src.dir, n.dir)
    for suffix in ("", "-wal"):
        if os.path.exists(src.db + suffix):
            shutil.copy(src.db + suffix, n.db + suffix)
    for f in ("node.lock", "control.sock"):
        if os.path.exists(os.path.join(n.dir, f)):
            os.remove(os.path.join(n.dir, f))
    n.peers = peers
    n.key = src.key
    renew(n, new_identity)
    mesh.assertEqual(n.key != src.key, new_identity)
    return n


def renew(n, new_identity=True):
    """stemma init --force on n's directory, with --new-identity when asked."""
    args = ["init", "--dir", n.dir, "--db", n.db, "--schemas", n.schemas, "--bind",
            n.endpoint, "--trust-on-first-use", "--new-identity" if new_identity else "--force"]
    for p in n.peers:
        args += ["--peer", f"{p.key}@{p.endpoint}"]
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=120)
    n.mesh.assertEqual(p.returncode, 0, p.stderr)
    n.key = p.stdout.strip().splitlines()[-1].split()[-1]


RENAMES = os.path.abspath("tests/data/schemas/renames")  # v2 renames columns, v3 a table


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Renames(Mesh):
    def test_nodes_at_versions_either_side_of_renames_sync_both_ways(self):
        # a at v1 (users.key), b at v2 (users.akey), c at v3 (people.akey): each one's
        # writes land in the others' columns of the other names, and nothing parks.
        a = Node(self, "a", RENAMES, 1, tofu=True)
        b = Node(self, "b", RENAMES, 2, peers=[a], tofu=True)
        c = Node(self, "c", RENAMES, 3, peers=[b], tofu=True)
        for n in (a, b, c):
            n.start()
        sql(a.db, "INSERT INTO users (id, key, type) VALUES ('u1', 'from a', 't')")
        sql(c.db, "INSERT INTO people (id, akey, atype) VALUES ('u2', 'from c', 't')")
        rows = {a: "SELECT group_concat(id || ':' || key, ',') FROM (SELECT * FROM users ORDER BY id)",
                b: "SELECT group_concat(id || ':' || akey, ',') FROM (SELECT * FROM users ORDER BY id)",
                c: "SELECT group_concat(id || ':' || akey, ',') FROM (SELECT * FROM people ORDER BY id)"}
        for n, q in rows.items():
            self.wait(f"{n.name} to hold both rows", lambda n=n, q=q: sql(n.db, q) == "u1:from a,u2:from c")
        sql(b.db, "UPDATE users SET akey = 'from b' WHERE id = 'u1'")
        self.wait("a to take b's write", lambda: sql(a.db, "SELECT key FROM users WHERE id = 'u1'") == "from b")
        self.wait("c to take b's write", lambda: sql(c.db, "SELECT akey FROM people WHERE id = 'u1'") == "from b")
        for n in (a, b, c):
            self.assertEqual(n.report()["node"]["parked"], 0, n.name)
        # What the reports say: the renames are translated, nothing waits for a migration.
        said = b.peer(a)["reason"]
        self.assertIn("translated: users.akey here = users.key there, users.atype here = "
                      "users.type there", said)
        self.assertIn("parked there until the peer migrates: nothing", said)
        self.assertIn("translated: people here = users there", c.peer(b)["reason"])


BACKFILL = os.path.abspath("tests/data/schemas/backfill")  # v2 backfills and seeds a row


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class MigrationWrites(Mesh):
    """What a migration writes to synced rows travels between running nodes as derived
    operations (sync/migrate_ops.h), and waits on a node that has not run it."""

    ITEMS = ("SELECT group_concat(id || ':' || coalesce(flag, ''), ',') FROM "
             "(SELECT * FROM items ORDER BY id)")

    def test_a_backfill_and_a_seed_row_reach_a_node_once_it_migrates(self):
        a = Node(self, "a", BACKFILL, 1, tofu=True)
        b = Node(self, "b", BACKFILL, 1, peers=[a], tofu=True)
        for n in (a, b):
            n.start()
        sql(a.db, "INSERT INTO items (id, name) VALUES ('i1', 'pen')")
        self.wait("b to hold a's row", lambda: sql(b.db, self.ITEMS) == "i1:")
        # b migrates while it runs: the backfill of a's row and the seed row go to a as
        # a migration's writes, which a (still at v1) parks.
        self.stemma("migrate", "--db", b.db, "--schemas", BACKFILL, "--no-backup")
        self.wait("a to park b's migration's writes",
                  lambda: a.report()["node"]["parked"] >= 2)
        self.assertEqual(sql(a.db, self.ITEMS), "i1:")
        # a migrates: its own seed insert is not refused by b's (it was not applied),
        # and once both ran it they hold the same, with nothing parked.
        self.stemma("migrate", "--db", a.db, "--schemas", BACKFILL, "--no-backup")
        for n in (a, b):
            self.wait(f"{n.name} to hold the backfill and the seed row",
                      lambda n=n: sql(n.db, self.ITEMS) == "i1:legacy,seed:seed")
        for n in (a, b):
            self.wait(f"{n.name} to have nothing parked",
                      lambda n=n: n.report()["node"]["parked"] == 0)


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class CopiesAndRestores(Mesh):
    """No write is lost when a device is made from another's image, or its database is
    restored from a backup (sync/origin.h)."""

    LISTS = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY name)"

    def hub_and_a(self, first_row):
        """A hub and a device a that dials it, running, a's first row at the hub."""
        hub = Node(self, "hub", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[hub], tofu=True)
        hub.start()
        a.start()
        sql(a.db, f"INSERT INTO lists (id, name) VALUES ('l0', '{first_row}')")
        self.wait("hub to hold a's first row", lambda: sql(hub.db, self.LISTS) == first_row)
        return hub, a

    def test_an_imaged_device_and_its_original_both_sync(self):
        hub, a = self.hub_and_a("before the image")
        a.stop()
        a2 = clone(self, a, "a2", peers=[hub])
        a.start()
        a2.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'on a')")
        sql(a2.db, "INSERT INTO lists (id, name) VALUES ('lb', 'on the image')")
        want = "before the image,on a,on the image"
        for n in (hub, a, a2):
            self.wait(f"{n.name} to hold every row", lambda n=n: sql(n.db, self.LISTS) == want)

    def test_a_device_imaged_with_its_key_is_named_then_given_its_own(self):
        hub, a = self.hub_and_a("before the image")
        a.stop()
        a2 = clone(self, a, "a2", peers=[hub], new_identity=False)
        a.start()
        a2.start()
        sql(a2.db, "INSERT INTO lists (id, name) VALUES ('lb', 'on the image')")
        # Two devices, one key: the hub can answer only one, and says so.
        self.wait("hub to name the shared key",
                  lambda: any("key-in-use" in l and a2.endpoint in l and a.endpoint in l
                              for l in hub.logs().splitlines()))
        a2.stop()
        renew(a2)
        a2.start()
        want = "before the image,on the image"
        for n in (hub, a, a2):
            self.wait(f"{n.name} to hold every row", lambda n=n: sql(n.db, self.LISTS) == want)

    def test_a_node_killed_keeps_its_origin(self):
        # A crash is no restore: the database holds all it sent, so nothing is renewed
        # (a new origin each time a phone's app is killed would grow every vector).
        hub, a = self.hub_and_a("one")
        origin = sql(a.db, "SELECT hex(node_id) FROM stemma_local")
        a.stop(kill=True)
        a.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.wait("hub to hold two", lambda: sql(hub.db, self.LISTS) == "one,two")
        self.assertEqual(sql(a.db, "SELECT hex(node_id) FROM stemma_local"), origin)
        self.assertNotIn("new-origin", a.logs())

    def restored_while_stopped(self, restore):
        """a stopped, its database put back to a backup by restore(a, backup), written,
        then started: its new write and what the backup lacked end everywhere."""
        hub, a = self.hub_and_a("one")
        a.stop()
        backup = os.path.join(self.tmp, "a.backup")
        shutil.copy(a.db, backup)
        a.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.wait("hub to hold two", lambda: sql(hub.db, self.LISTS) == "one,two")
        a.stop()
        restore(a, backup)
        # The restored database's next write takes the sequence 'two' had.
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l3', 'three')")
        a.start()
        for n in (hub, a):
            self.wait(f"{n.name} to hold every row",
                      lambda n=n: sql(n.db, self.LISTS) == "one,three,two")
        return a

    def test_a_restored_database_loses_nothing(self):
        self.restored_while_stopped(
            lambda a, backup: self.stemma("restore", "--db", a.db, "--from", backup))

    def test_a_database_restored_in_place_loses_nothing(self):
        # The same file put back in time by other means than stemma restore: the
        # mark beside the database tells (sync/origin.h).
        def restore(a, backup):
            ino = os.stat(a.db).st_ino
            sql(a.db, f".restore {backup}")
            self.assertEqual(os.stat(a.db).st_ino, ino)  # the same file: no copy to tell by
        a = self.restored_while_stopped(restore)
        [line] = [l for l in a.logs().splitlines() if "new-origin" in l]
        self.assertIn("went back below how far its own operations had left it", line)

    def test_a_machine_put_back_mark_and_all_takes_a_new_origin_at_its_first_hello(self):
        # A virtual machine's snapshot reverted: the database and its sent mark go back
        # together, same file, same machine. Only a peer can tell: it holds more of the
        # origin than the database has issued (sync/origin.h, stm_origin_check_held).
        hub, a = self.hub_and_a("one")
        a.stop()
        snapshot = os.path.join(self.tmp, "a.snapshot")
        sql(a.db, f".backup {snapshot}")
        shutil.copy(a.db + "-stemma-sent", snapshot + "-sent")
        a.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.wait("hub to hold two", lambda: sql(hub.db, self.LISTS) == "one,two")
        a.stop()
        sql(a.db, f".restore {snapshot}")
        shutil.copy(snapshot + "-sent", a.db + "-stemma-sent")
        a.start()
        self.wait("a to take a new origin at the hub's HELLO",
                  lambda: "holds more of this database's origin" in a.logs())
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l3', 'three')")
        for n in (hub, a):
            self.wait(f"{n.name} to hold every row",
                      lambda n=n: sql(n.db, self.LISTS) == "one,three,two")

    def restored_under_a_running_node(self, restore):
        """a's database put back to a backup by restore(a, backup) while a runs: its next
        write and what the backup lacked end everywhere."""
        hub, a = self.hub_and_a("one")
        backup = os.path.join(self.tmp, "a.backup")
        sql(a.db, f".backup {backup}")
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'two')")
        self.wait("hub to hold two", lambda: sql(hub.db, self.LISTS) == "one,two")
        restore(a, backup)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l3', 'three')")
        for n in (hub, a):
            self.wait(f"{n.name} to hold every row",
                      lambda n=n: sql(n.db, self.LISTS) == "one,three,two")

    def test_a_database_restored_in_place_under_a_running_node_loses_nothing(self):
        # sync/origin.h: the same file put back in time under a running node's feet.
        self.restored_under_a_running_node(lambda a, backup: sql(a.db, f".restore {backup}"))

    def test_stemma_restore_under_a_running_node_loses_nothing(self):
        # The restore takes a new origin; the node tells its peers (a HELLO), which
        # send back what the backup lacked.
        self.restored_under_a_running_node(
            lambda a, backup: self.stemma("restore", "--db", a.db, "--from", backup))


class OneSided(Mesh):
    def test_a_refusal_by_one_side_sticks_on_the_other(self):
        b = Node(self, "b", TASKS, 3, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        # a refuses peers older than v4: b, at v3, is refused by a's policy alone.
        toml = os.path.join(a.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace("min_supported_version = 0", "min_supported_version = 4"))
        a.start()
        b.start()
        self.wait("a to refuse b", lambda: (a.peer(b) or {}).get("state") == "refused")
        self.wait("b to hear it", lambda: (b.peer(a) or {}).get("state") == "refused")
        self.assertEqual(b.peer(a)["refused_by"], "peer")
        self.assertIn("older than min_supported_version 4", b.peer(a)["reason"])
        # HELLOs and answers go on (b asks again, with backoff; a refuses and answers):
        # once b has heard from a in two later seconds, it has handled at least one whole
        # answer given after the refusal. The refusal stands on both sides.
        seen = b.peer(a)["last_seen"]
        for _ in range(2):
            seen = self.wait("b to hear from a again",
                             lambda: (lambda t: t if t > seen else None)(b.peer(a)["last_seen"]))
        self.assertEqual(b.peer(a)["state"], "refused")
        self.assertEqual(a.peer(b)["state"], "refused")
        # Said once, not at every HELLO.
        self.assertEqual(b.logs().count("refused-by-peer"), 1)


def rebind(node, bind, advertise=""):
    """node.toml's bind (and advertise) changed, as a user binding every interface would."""
    toml = os.path.join(node.dir, "node.toml")
    with open(toml) as f:
        text = f.read()
    text = text.replace(f'bind = "{node.endpoint}"', f'bind = "{bind}"')
    text = text.replace('advertise = ""', f'advertise = "{advertise}"')
    with open(toml, "w") as f:
        f.write(text)


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
def insert_file(file_id, parts, size, blob="randomblob"):
    """SQL inserting row file_id of files with `parts` blobs of `size` bytes each."""
    cols = ", ".join(f"b{i}" for i in range(1, parts + 1))
    vals = ", ".join(f"{blob}({size})" for _ in range(parts))
    return f"INSERT INTO files (id, name, {cols}) VALUES ('{file_id}', '{file_id}', {vals});"


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class LargeRows(Mesh):
    """Row changes larger than a message (issue 13, item 7): sent in parts and put
    together again, or, over what a batch may carry, withheld loudly with the rows after
    them still arriving (docs/protocol.md, "OPS" and "Withheld row changes")."""

    FILES = "SELECT hex(sha3_query('SELECT * FROM files ORDER BY id'))"

    def test_a_100_mb_row_arrives_once_and_so_does_the_row_after_it(self):
        b = Node(self, "b", BLOBS, 1, tofu=True)
        a = Node(self, "a", BLOBS, 1, peers=[b], tofu=True)
        # a's loop is busy for a while turning the row into operations and reading it
        # back, without a PING: on a loaded machine b could take a for gone, and its HELLO
        # would make a send the row again, once. b is patient here so that the count
        # below holds whatever the machine; a keeps the default timeout, within which
        # b's RECEIVED answers keep the row from being sent again.
        toml = os.path.join(b.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(re.sub(r"(?m)^peer_timeout_ms = \d+$", "peer_timeout_ms = 60000", text))
        a.start()
        b.start()
        self.wait("a and b to meet", lambda: (a.peer(b) or {}).get("state") == "connected"
                  and (b.peer(a) or {}).get("state") == "connected")
        # Seven blobs of 14 MB: 98 MB in one row change, over the 64 MiB a message may be.
        sql(a.db, insert_file("big", 7, 14_000_000) + insert_file("small", 1, 10))
        want = sql(a.db, self.FILES)
        started = time.monotonic()
        self.wait("b to hold the large row and the one after it",
                  lambda: sql(b.db, self.FILES) == want, timeout=180, interval=0.5)
        took = time.monotonic() - started
        print(f"\n  (a 98 MB row change reached b in {took:.1f} s)", file=sys.stderr)
        self.wait("a to hear b holds everything", lambda: a.peer(b)["behind"] == 0, timeout=60)
        ops = int(sql(a.db, "SELECT sum(n) FROM stemma_oplog"))
        # Sent once: every operation b stored from a, it stored once (a batch sent again
        # would be counted again), in parts put together without a drop.
        self.assertEqual(b.peer(a)["ops_received"], ops)
        rb = b.report()
        self.assertEqual(rb["node"]["dropped"]["parts"], 0)
        self.assertEqual(rb["node"]["withheld"], 0)
        self.assertEqual(a.peer(b)["withheld"], 0)
        self.assertNotIn("withheld", a.logs())

    def test_a_row_over_the_limit_is_withheld_loudly_and_later_rows_arrive(self):
        # A line, a - b - c: a and c do not trust each other, so c hears of a's row only
        # through b.
        c = Node(self, "c", BLOBS, 1)
        b = Node(self, "b", BLOBS, 1, peers=[c])
        a = Node(self, "a", BLOBS, 1, peers=[b])
        b.init(peers=[c], trust=[a.key], force=True)
        c.init(trust=[b.key], force=True)
        for n in (c, b, a):
            n.start()
        self.wait("a and b to meet", lambda: (a.peer(b) or {}).get("state") == "connected")
        self.wait("b and c to meet", lambda: (b.peer(c) or {}).get("state") == "connected")
        # Twenty blobs of 14 MB: 280 MB in one row change, over the 256 MiB a batch may
        # carry. The row after it must not wait for it.
        sql(a.db, insert_file("huge", 20, 14_000_000, blob="zeroblob")
            + insert_file("after", 1, 10))
        for n in (b, c):
            self.wait(f"{n.name} to hold the row after the withheld one",
                      lambda n=n: sql(n.db, "SELECT count(*) FROM files WHERE id = 'after'")
                      == "1", timeout=120, interval=0.5)
            self.assertEqual(sql(n.db, "SELECT count(*) FROM files WHERE id = 'huge'"), "0")
        # Refused loudly where it was refused: a log line naming it, a counter, a line in
        # the report; and the peer's vector moved past it, so nothing is sent for ever.
        self.wait("a to hear b holds everything", lambda: a.peer(b)["behind"] == 0, timeout=60)
        lines = [l for l in a.logs().splitlines() if "withheld" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("table files, key 'huge'", lines[0])
        self.assertIn("too large to travel", lines[0])
        self.assertEqual(a.peer(b)["withheld"], 1)
        stats = self.stemma("stats", "--dir", a.dir)
        self.assertIn("withheld from peers 1\n", stats)
        report = self.stemma("report", "--dir", a.dir)
        self.assertIn("withheld: 1 row change too large to send it", report)
        # Where it did not arrive, held as withheld, said and counted: at b, and at c,
        # to which b sent the stand-in on.
        for n in (b, c):
            # The insert's 22 operations: id, name and the twenty blobs.
            self.assertEqual(n.report()["node"]["withheld"], 22)
            self.assertIn("table files, key 'huge'", n.logs())
            self.assertIn("withheld: 22 operations are held only as stand-ins",
                          self.stemma("report", "--dir", n.dir))
        self.wait("b to hear c holds everything", lambda: b.peer(c)["behind"] == 0, timeout=60)
        # A later, smaller write of that row travels as any other.
        sql(a.db, "UPDATE files SET b1 = x'01' WHERE id = 'huge'")
        for n in (b, c):
            self.wait(f"{n.name} to hold the later write",
                      lambda n=n: sql(n.db, "SELECT hex(b1) FROM files WHERE id = 'huge'")
                      == "01")
        self.assertEqual(a.peer(b)["withheld"], 1)


class WildcardBind(Mesh):
    def endpoints(self, node):
        return [p["endpoint"] for p in node.report()["peers"]]

    def test_a_wildcard_bind_is_never_dialled(self):
        # a binds every interface and advertises nothing: b and c reach it where they
        # were told (their [peers]), and meet each other through a's peer list.
        a = Node(self, "a", TASKS, 4, tofu=True)
        rebind(a, f"tcp://0.0.0.0:{a.port}")
        b = Node(self, "b", TASKS, 4, peers=[a], tofu=True)
        c = Node(self, "c", TASKS, 4, peers=[a], tofu=True)
        # d binds every interface too, but says where to reach it: b, which was not told
        # of d, dials the address d advertises.
        d = Node(self, "d", TASKS, 4, peers=[a], tofu=True)
        rebind(d, f"tcp://0.0.0.0:{d.port}", advertise=d.endpoint)
        for n in (a, b, c, d):
            n.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        sql(d.db, "INSERT INTO lists (id, name) VALUES ('ld', 'from d')")
        names = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY id)"
        for n in (a, b, c, d):
            self.wait(f"{n.name} to hold every list",
                      lambda n=n: sql(n.db, names) == "from a,from b,from d")
        self.wait("b to meet c and d", lambda: len(b.report()["peers"]) == 3)
        self.assertEqual(b.peer(d)["endpoint"], d.endpoint)
        self.assertEqual(b.peer(a)["endpoint"], a.endpoint)
        self.assertEqual(a.report()["node"]["endpoint"], f"tcp://0.0.0.0:{a.port}")
        for n in (a, b, c, d):
            for e in self.endpoints(n):
                self.assertNotIn("0.0.0.0", e, f"{n.name} dials {e}")
        self.assertIn(f"tcp://0.0.0.0:{a.port} is a wildcard address and [node] advertise is "
                      "not set", a.logs())
        self.assertNotIn("is a wildcard address", d.logs())
        self.assertIn(f"peers are told {d.endpoint}", d.logs())

    def test_a_peer_that_gives_no_endpoint_is_answered_on_its_connection(self):
        # e binds nowhere (behind NAT, say): it dials b, and b answers on that one
        # connection, both ways.
        b = Node(self, "b", TASKS, 4, tofu=True)
        e = Node(self, "e", TASKS, 4, peers=[b], tofu=True)
        rebind(e, "")
        toml = os.path.join(e.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace('name = ""', 'name = "laptop of e"'))
        b.start()
        e.start()
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        sql(e.db, "INSERT INTO lists (id, name) VALUES ('le', 'from e')")
        names = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY id)"
        for n in (b, e):
            self.wait(f"{n.name} to hold both lists",
                      lambda n=n: sql(n.db, names) == "from b,from e")
        self.assertIn("its HELLO gives no endpoint to dial (none): it is answered on the "
                      "connection it opened from 127.0.0.1", b.logs())
        self.assertIn("bound nowhere", e.logs())
        self.assertEqual(self.endpoints(b), [""])
        self.assertEqual(b.peer(e)["dialled_in_from"], "127.0.0.1")
        self.assertEqual(b.peer(e)["state"], "connected")
        self.assertEqual(e.peer(b)["state"], "connected")
        self.assertEqual(e.report()["node"]["endpoint"], "")
        text = subprocess.run([STEMMA, "report", "--dir", b.dir], capture_output=True,
                              text=True, timeout=30).stdout
        self.assertIn('"laptop of e"  (no endpoint) (dialled in from 127.0.0.1)  connected', text)
        # Devices are named: the setting, or else the machine's host name.
        self.assertEqual(b.peer(e)["name"], "laptop of e")
        self.assertEqual(e.report()["node"]["name"], "laptop of e")
        self.assertEqual(e.peer(b)["name"], socket.gethostname()[:64])
        self.assertIn('peer-connected', b.logs())
        self.assertIn('"laptop of e" (no endpoint)', b.logs())

    def test_nodes_that_cannot_be_dialled_reach_each_other_through_a_relay(self):
        # e and f bind nowhere and know only r: what each writes reaches the other
        # through r, and neither is told of the other (it could not dial it).
        r = Node(self, "r", TASKS, 4, tofu=True)
        e = Node(self, "e", TASKS, 4, peers=[r], tofu=True)
        f = Node(self, "f", TASKS, 4, peers=[r], tofu=True)
        rebind(e, "")
        rebind(f, "")
        for n in (r, e, f):
            n.start()
        sql(e.db, "INSERT INTO lists (id, name) VALUES ('le', 'from e')")
        sql(f.db, "INSERT INTO lists (id, name) VALUES ('lf', 'from f')")
        names = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY id)"
        for n in (r, e, f):
            self.wait(f"{n.name} to hold both lists",
                      lambda n=n: sql(n.db, names) == "from e,from f")
        self.assertEqual(len(e.report()["peers"]), 1)
        self.assertEqual(len(f.report()["peers"]), 1)
        self.assertEqual(sorted(p["state"] for p in r.report()["peers"]),
                         ["connected", "connected"])


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class OneNodePerDirectory(Mesh):
    """NODE_DIR/node.lock: one node a directory; what a node leaves, and who removes it."""

    def ask(self, node, cmd="peers"):
        return subprocess.run([STEMMA, cmd, "--dir", node.dir], capture_output=True, text=True,
                              timeout=30)

    def serving(self, node):
        self.wait(f"{node.name} to answer", lambda: self.ask(node).returncode == 0)

    def files(self, node):
        """What the node's directory holds: each file's inode, size and mtime."""
        out = {}
        for name in sorted(os.listdir(node.dir)):
            st = os.lstat(os.path.join(node.dir, name))
            out[name] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return out

    def asks_fast(self, node, *contains):
        """stemma report on a node that is not running: it says so at once (the 5 s of
        waiting for an answer are never reached) and exits 1."""
        start = time.monotonic()
        p = self.ask(node, "report")
        took = time.monotonic() - start
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("no node answers", p.stderr)
        self.assertIn(f"stemma report: no node is running on {node.dir} (", p.stderr)
        for text in contains:
            self.assertIn(text, p.stderr)
        self.assertLess(took, 4.0, "stemma report waited for an answer")

    def test_a_second_node_is_refused_and_the_first_keeps_serving(self):
        a = Node(self, "a", TASKS, 4).start()
        self.serving(a)
        before = self.files(a)
        self.assertIn("control.sock", before)
        p = subprocess.run([STEMMA, "node", "--dir", a.dir], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, f"stemma node: {a.dir}: already running (pid {a.proc.pid})\n")
        # It touched nothing: the first node's socket is the same file, and answers.
        self.assertEqual(self.files(a), before)
        self.assertEqual(self.ask(a).returncode, 0)
        self.assertIsNone(a.proc.poll())
        # Nor does init --force rewrite the running node's files under it.
        p = subprocess.run([STEMMA, "init", "--dir", a.dir, "--db", a.db, "--schemas", TASKS,
                            "--bind", a.endpoint, "--force"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"already running (pid {a.proc.pid})", p.stderr)
        self.assertIn("stop it before 'stemma init --force'", p.stderr)
        self.assertEqual(self.files(a), before)

    def test_a_stale_socket_is_removed_by_the_next_node(self):
        a = Node(self, "a", TASKS, 4).start()
        self.serving(a)
        sock = os.path.join(a.dir, "control.sock")
        a.stop(kill=True)
        self.assertTrue(os.path.exists(sock), "kill -9 left no socket file to clean")
        self.asks_fast(a, "did not stop cleanly")
        a.start()
        self.serving(a)
        self.assertIn(f"removed {sock}, left by a node that did not stop cleanly", a.logs())
        # Stopped cleanly, it removes its socket, and a report says so at once.
        a.stop()
        self.assertFalse(os.path.exists(sock))
        self.asks_fast(a, "(no control socket)")

    def test_sighup_does_not_stop_the_node(self):
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b], tofu=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to log the SIGHUP", lambda: "reload" in a.logs())
        self.assertIn("SIGHUP: reading node.toml and known_peers", a.logs())
        self.assertNotIn("needs a restart", a.logs())
        self.assertIsNone(a.proc.poll())
        self.assertEqual(a.peer(b)["state"], "connected")
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'after the SIGHUP')")
        self.wait("b to get a's write",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l1'") == "after the SIGHUP")
        # Still stopped cleanly by SIGTERM: BYE to b, the socket removed.
        a.stop()
        self.wait("b to hear a's BYE", lambda: "peer-left" in b.logs())
        self.assertFalse(os.path.exists(os.path.join(a.dir, "control.sock")))

    def test_log_level_in_node_toml_and_read_again_on_sighup(self):
        a = Node(self, "a", TASKS, 4)
        toml = os.path.join(a.dir, "node.toml")

        def edit(pattern, line):
            with open(toml) as f:
                text = f.read()
            text, count = re.subn(pattern, line, text)
            self.assertEqual(count, 1, pattern)
            with open(toml, "w") as f:
                f.write(text)

        edit(r'(?m)^log_level = "info"$', 'log_level = "warn"')
        a.start()
        self.wait("a to answer", lambda: a.report()["node"]["id"] == a.key)
        # A warning still comes (a setting that needs a restart); no info line does,
        # not even "started" or the reload's own.
        edit(r"(?m)^heartbeat_ms = \d+$", "heartbeat_ms = 1234")
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to warn of the restart", lambda: "needs a restart" in a.logs())
        self.assertNotRegex(a.logs(), r"Z info ")
        # Back to "info" by SIGHUP: the reload is logged at the new level.
        edit(r'(?m)^log_level = "warn"$', 'log_level = "info"')
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to log at info again",
                  lambda: "SIGHUP: reading node.toml and known_peers" in a.logs())
        self.assertNotIn("node.log_level", a.logs())  # applied, not "needs a restart"
        # A word that is no level: one line naming the file and the words; nothing changes.
        edit(r'(?m)^log_level = "info"$', 'log_level = "debug"')
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to say it runs on", lambda: "running on with what was read before" in a.logs())
        self.assertIn('expected "info", "warn" or "error", found "debug"', a.logs())
        self.assertIsNone(a.proc.poll())


def trust(node, *args, ok=True, cmd="trust"):
    """stemma trust ARGS --dir NODE: its output (stdout, then stderr), checked for ok."""
    p = subprocess.run([STEMMA, cmd, *args, "--dir", node.dir], capture_output=True,
                       text=True, timeout=30)
    if (p.returncode == 0) != ok:
        raise AssertionError(f"stemma {cmd} {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout + p.stderr


def peer_cmd(node, *args, ok=True):
    """stemma peer ARGS --dir NODE, as trust()."""
    return trust(node, *args, ok=ok, cmd="peer")


def node_toml(node):
    with open(os.path.join(node.dir, "node.toml"), "rb") as f:
        return toml_reader.load(f)


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class LiveTrust(Mesh):
    def two_answering(self):
        """Nodes a and b at v4, neither a peer of the other, both answering on their
        control sockets (so the commands reach the running nodes)."""
        a = Node(self, "a", TASKS, 4)
        b = Node(self, "b", TASKS, 4)
        a.start()
        b.start()
        for n in (a, b):
            self.wait(f"{n.name} to answer", lambda n=n: n.report()["node"]["id"] == n.key)
        return a, b

    def known_peers(self, node):
        with open(os.path.join(node.dir, "known_peers")) as f:
            return f.read()

    def test_a_key_removed_and_added_on_a_running_node(self):
        # b trusts a only through known_peers, added while b is stopped; a trusts b as
        # its configured peer.
        b = Node(self, "b", TASKS, 4)
        a = Node(self, "a", TASKS, 4, peers=[b])
        self.assertIn("no node is running", trust(b, "add", a.key))
        self.assertIn(f"{a.key} known_peers", trust(b, "list"))
        a.start()
        b.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'before')")
        self.wait("b to get a's first write",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l1'") == "before")
        # Removed on the running b: its connection from a stays open in libzmq, but what
        # a sends on it is dropped, and a is told it is refused.
        out = trust(b, "remove", a.key)
        self.assertIn(f"no longer trusting {a.key}", out)
        self.assertNotIn("no node is running", out)
        self.assertNotIn(a.key, self.known_peers(b))
        self.assertNotIn(a.key, trust(b, "list"))
        self.wait("b to report a refused", lambda: b.peer(a)["state"] == "refused")
        self.assertEqual(b.peer(a)["refused_by"], "this node")
        self.assertIn("no longer trusted", b.peer(a)["reason"])
        self.wait("a to hear it", lambda: a.peer(b)["refused_by"] == "peer")
        self.assertIn("no longer trusted", a.peer(b)["reason"])
        # a asks again with backoff; b drops each HELLO by the key it came with.
        self.wait("b to drop a's messages",
                  lambda: b.report()["node"]["dropped"]["untrusted"] >= 1)
        self.assertIn("trust-removed", b.logs())
        # Removing it again, or a key node.toml trusts, is refused.
        self.assertIn("is not trusted", trust(b, "remove", a.key, ok=False))
        self.assertIn("is trusted by node.toml", trust(a, "remove", b.key, ok=False))
        # Trusted again: both sides connect and sync, neither restarted.
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l2', 'after')")
        self.assertIn(f"trusting {a.key}", trust(b, "add", a.key))
        self.wait("b to get a's later write",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l2'") == "after")
        self.wait("both connected", lambda: b.peer(a)["state"] == "connected"
                  and a.peer(b)["state"] == "connected")
        self.assertIn("is trusted already", trust(b, "add", a.key))
        # Persisted: still trusted after b restarts.
        b.stop()
        self.assertIn(a.key, self.known_peers(b))
        b.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l3', 'after the restart')")
        self.wait("b to get a's write after its restart",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l3'") == "after the restart")

    def test_under_trust_on_first_use_a_removed_key_is_trusted_at_its_next_connection(self):
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4, peers=[b])
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (b.peer(a) or {}).get("state") == "connected")
        self.wait("b to write a's key", lambda: a.key in self.known_peers(b))
        out = trust(b, "remove", a.key)
        self.assertIn("trusted again when it next connects", out)
        self.wait("b to report a refused", lambda: b.peer(a)["state"] == "refused")
        self.assertNotIn(a.key, self.known_peers(b))
        # a's connection stays as it was: what comes on it is dropped. A new one (a
        # restarted) is trusted on first use again, and the two connect and sync.
        a.stop()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('l1', 'after the restart')")
        a.start()
        self.wait("b to get a's write",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'l1'") == "after the restart")
        self.wait("b to report a connected", lambda: b.peer(a)["state"] == "connected")
        self.assertIsNone(b.peer(a)["refused_by"])
        self.wait("b to write a's key again", lambda: a.key in self.known_peers(b))

    def test_peer_remove_under_trust_on_first_use_says_the_key_comes_back(self):
        b = Node(self, "b", TASKS, 4, tofu=True)
        a = Node(self, "a", TASKS, 4)
        b.start()
        self.wait("b to answer", lambda: subprocess.run(
            [STEMMA, "peers", "--dir", b.dir], capture_output=True, timeout=30).returncode == 0)
        peer_cmd(b, "add", f"{a.key}@{a.endpoint}")
        out = peer_cmd(b, "remove", a.key)
        self.assertIn("trusted again when it next connects", out)

    def test_a_peer_added_and_removed_on_a_running_node(self):
        a, b = self.two_answering()
        trust(b, "add", a.key)
        spec = f"{b.key}@{b.endpoint}"
        out = peer_cmd(a, "add", spec)
        self.assertIn(f"peer {spec} added to", out)
        self.assertNotIn("no node is running", out)
        cfg = node_toml(a)
        self.assertEqual(cfg["peers"]["addresses"], [spec])
        self.assertIn(b.key, cfg["security"]["trusted"])
        self.assertIn(f"{b.key} node.toml [security] trusted", trust(a, "list"))
        self.assertIn("is a peer already", peer_cmd(a, "add", spec, ok=False))
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        self.wait("b to get a's row",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'la'") == "from a")
        self.wait("a to get b's row",
                  lambda: sql(a.db, "SELECT name FROM lists WHERE id = 'lb'") == "from b")
        # Removed: out of node.toml, no longer dialled nor trusted; b hears the refusal.
        self.assertIn("removed from", peer_cmd(a, "remove", b.key))
        cfg = node_toml(a)
        self.assertEqual(cfg["peers"]["addresses"], [])
        self.assertNotIn(b.key, cfg["security"]["trusted"])
        self.wait("a to report b refused", lambda: a.peer(b)["state"] == "refused")
        self.assertIn("no longer a peer", a.peer(b)["reason"])
        self.wait("b to hear it", lambda: b.peer(a)["refused_by"] == "peer")
        self.assertIn("no peer", peer_cmd(a, "remove", b.key, ok=False))
        # Added again, and kept across a restart of a.
        peer_cmd(a, "add", spec)
        self.wait("a and b to connect again", lambda: a.peer(b)["state"] == "connected"
                  and b.peer(a)["state"] == "connected")
        a.stop()
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lc', 'after the restart')")
        a.start()
        self.wait("a to get b's row after its restart",
                  lambda: sql(a.db, "SELECT name FROM lists WHERE id = 'lc'") == "after the restart")

    def test_sighup_applies_trust_and_peers_and_names_what_needs_a_restart(self):
        a, b = self.two_answering()
        # b trusts a through known_peers, edited by hand; a gets b as a peer in node.toml
        # by hand, and a heartbeat that only a restart would apply.
        with open(os.path.join(b.dir, "known_peers"), "a") as f:
            f.write(a.key + "\n")
        b.proc.send_signal(signal.SIGHUP)
        self.wait("b to trust a", lambda: "trust-added" in b.logs())
        toml = os.path.join(a.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        text = text.replace("addresses = []", f'addresses = ["{b.key}@{b.endpoint}"]')
        text = text.replace("trusted = []", f'trusted = ["{b.key}"]')
        text = re.sub(r"(?m)^heartbeat_ms = \d+$", "heartbeat_ms = 1234", text)
        with open(toml, "w") as f:
            f.write(text)
        a.proc.send_signal(signal.SIGHUP)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        self.wait("b to get a's row",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'la'") == "from a")
        self.assertIn("peer-added", a.logs())
        self.assertIn("node.toml changes timing.heartbeat_ms: that needs a restart", a.logs())
        # Taken out of known_peers again: b refuses a at once.
        with open(os.path.join(b.dir, "known_peers"), "w") as f:
            f.write("# emptied\n")
        b.proc.send_signal(signal.SIGHUP)
        self.wait("b to report a refused", lambda: b.peer(a)["state"] == "refused")
        self.assertIn("SIGHUP", b.peer(a)["reason"])
        self.wait("a to hear it", lambda: a.peer(b)["refused_by"] == "peer")
        # A peer moved in node.toml is named as needing a restart, not ignored.
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace(f"{b.key}@{b.endpoint}", f"{b.key}@tcp://127.0.0.1:1"))
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to name the move", lambda: "node.toml moves a peer" in a.logs())
        # A node.toml that does not read changes nothing.
        with open(toml, "a") as f:
            f.write("[securty]\n")
        a.proc.send_signal(signal.SIGHUP)
        self.wait("a to say it runs on", lambda: "running on with what was read before" in a.logs())
        self.assertIsNone(a.proc.poll())

    def test_a_refused_side_connects_once_trusted(self):
        # a does not trust b; b dials a and is refused by a's ZAP handler. Trusted on
        # the running a, b gets through without either restarting: b's rows reach a
        # and a's reach b.
        a = Node(self, "a", TASKS, 4)
        b = Node(self, "b", TASKS, 4, peers=[a])
        # b dials anew every reconnect_max_ms while a is silent: 500 ms, not 5 s.
        toml = os.path.join(b.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        self.assertIn("reconnect_max_ms = 5000", text)
        with open(toml, "w") as f:
            f.write(text.replace("reconnect_max_ms = 5000", "reconnect_max_ms = 500"))
        a.start()
        b.start()
        self.wait("a to refuse b's key", lambda: a.report()["node"]["refused_keys"] >= 1)
        self.assertIsNone(a.peer(b))
        self.assertEqual(b.peer(a)["state"], "connecting")
        # Refused more than once: b's attempts go on (with backoff), not only its first.
        self.wait("b to try again", lambda: a.report()["node"]["refused_keys"] >= 2)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        self.assertIn(f"trusting {b.key}", trust(a, "add", b.key))
        self.wait("a to get b's row",
                  lambda: sql(a.db, "SELECT name FROM lists WHERE id = 'lb'") == "from b")
        self.wait("b to get a's row",
                  lambda: sql(b.db, "SELECT name FROM lists WHERE id = 'la'") == "from a")
        self.assertEqual(b.peer(a)["state"], "connected")
        # b said once that it dials again, naming the command, not at every attempt.
        self.assertEqual(b.logs().count("peer-redial"), 1)
        self.assertIn(f"stemma trust add {b.key}", b.logs())


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Demo(unittest.TestCase):
    def test_demo_runs_end_to_end_and_leaves_nothing_running(self):
        keep = tempfile.mkdtemp(prefix="stemma-demo-test-")
        try:
            p = subprocess.run([STEMMA, "demo", "--keep", keep], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr)
            self.assertIn("every node holds 3 tasks", p.stdout)
            self.assertIn("divergent  sync partial", p.stdout)
            self.assertIn("replayed 1 parked operation", p.stdout)
            self.assertIn("all nodes stopped", p.stdout)
            left = subprocess.run(["pgrep", "-f", f"node --dir {keep}"], capture_output=True)
            self.assertEqual(left.stdout, b"", "a node is still running")
            # The demo's nodes log into the kept directory: built with the sanitizers, a
            # leak or an error they report at exit is there, and fails the test.
            reports = []
            for name in sorted(os.listdir(keep)):
                if name.endswith(".log"):
                    with open(os.path.join(keep, name), errors="replace") as f:
                        reports += [f"{name}: {line}" for line in f
                                    if "Sanitizer" in line or "runtime error:" in line]
            self.assertEqual(reports, [], "sanitizer reports in the demo's node logs")
        finally:
            shutil.rmtree(keep, ignore_errors=True)


@unittest.skipUnless(SQLITE3 and zmq, "needs the sqlite3 shell and python3-zmq")
class BadInput(Mesh):
    def test_garbage_is_dropped_and_the_node_keeps_serving(self):
        b = Node(self, "b", TASKS, 4, insecure=True)
        a = Node(self, "a", TASKS, 4, peers=[b], insecure=True)
        a.start()
        b.start()
        self.wait("a and b to connect", lambda: (a.peer(b) or {}).get("state") == "connected")
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(a.endpoint)
        hello_type = bytes([1])
        v = formats()[1]
        for frame in [b"", b"garbage", b"STMW", b"STMW" + bytes([99, 1]) + b"\x80",
                      b"STMW" + bytes([v, 1]) + b"\x8a\xa4node\xc4\x20",   # cut short
                      b"STMW" + bytes([v, 77]) + b"\x80",                 # unknown type
                      b"STMW" + bytes([v, 3]) + b"\xdf\xff\xff\xff\xff",  # a map claiming 4G keys
                      b"STMW" + bytes([v]) + hello_type + b"\x81\xa5lineage\xdd\x7f\xff\xff\xff"]:
            s.send(frame)
        s.send_multipart([b"STMW", b"two frames"])
        # All of it counted (below) before the socket goes: closed (linger 0), it would
        # throw away what it had not sent yet.
        self.wait("a to count the garbage", lambda: a.report()["node"]["malformed_messages"] == 7)
        monitor = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        s.send(b"x" * (65 * 1024 * 1024))  # over the 64 MiB limit: the connection is dropped
        self.assertTrue(monitor.poll(20000), "a did not drop the connection")
        s.disable_monitor()
        monitor.close()
        s.close()
        ctx.term()
        # Still serving: reports answer, and the real peer still syncs.
        self.assertEqual(a.report()["node"]["id"], a.key)
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('l9', 'after the garbage')")
        self.wait("a to get b's write",
                  lambda: sql(a.db, "SELECT name FROM lists WHERE id = 'l9'") == "after the garbage")
        # Counted by kind: four frames that are not stemma's ("", "garbage", "STMW" alone
        # and as the first of two frames), one of version 99, two broken HELLOs. The OPS
        # and the unknown type came from no peer: counted as unknown senders instead.
        node = a.report()["node"]
        dropped = node["dropped"]
        self.assertEqual({k: dropped[k] for k in ("not_stemma", "protocol_version", "hello",
                                                  "refuse", "ops", "batch", "ack")},
                         {"not_stemma": 4, "protocol_version": 1, "hello": 2, "refuse": 0,
                          "ops": 0, "batch": 0, "ack": 0})
        self.assertEqual(node["malformed_messages"], 7)
        self.assertGreaterEqual(node["unknown_senders"], 2)
        self.assertEqual(dropped["unknown_sender"] + dropped["impostor"], node["unknown_senders"])
        stats = subprocess.run([STEMMA, "stats", "--dir", a.dir], capture_output=True,
                               text=True, timeout=30).stdout
        self.assertIn("malformed messages 7\n", stats)
        for line in ("dropped not-stemma 4\n", "dropped protocol-version 1\n",
                     "dropped hello 2\n"):
            self.assertIn(line, stats)


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
