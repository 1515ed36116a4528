#!/usr/bin/python3
"""LAN discovery (docs/user-guide.md, "LAN discovery"): real `stemma node` processes with
no configured peers find each other by UDP beacons, and sync.

The namespace tests give each node a network namespace of its own, joined to the others
by a bridge in one more namespace, as machines on one LAN are by a switch: each node
binds its own address, broadcasts to 255.255.255.255 and dials the address a beacon came
from. Making namespaces needs root (CI runs as root); where `ip netns add` fails these
tests are skipped with one line saying why. Every namespace a test makes has a name of
its own (this process's id and a counter) and is deleted when the test ends, pass or
fail, after its nodes are stopped; at exit, and on SIGTERM, any left are deleted too.

Two tests run on loopback (beacons to 127.255.255.255 on a free UDP port) and need
nothing.

Run by ctest as `python3 tests/netns_discovery_test.py PATH/TO/stemma` from the source
root. It reuses mesh_test.py's nodes; every wait is for a count or a state, its timeout
only matters when something is broken.
"""
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import unittest

import mesh_test
from mesh_test import Mesh, Node, sql

STEMMA = None
SQLITE3 = mesh_test.SQLITE3
TASKS = mesh_test.TASKS
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
LISTS = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY name)"
SUBNET = "10.213.7"  # inside the test's namespaces only: the host never sees it
MESH_PORT = 7420  # every node's own namespace has the port to itself

_made = []  # namespaces made and not deleted yet, for the exit handler
_count = [0]


def ip(*args, check=True):
    p = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def new_namespace():
    """A namespace with a name no other test or run uses: stmd-PID-N."""
    _count[0] += 1
    name = f"stmd-{os.getpid()}-{_count[0]}"
    ip("netns", "add", name)
    _made.append(name)
    ip("-n", name, "link", "set", "lo", "up")
    return name


def delete_namespace(name):
    ip("netns", "delete", name, check=False)
    if name in _made:
        _made.remove(name)


def _delete_all():
    for name in list(_made):
        delete_namespace(name)


atexit.register(_delete_all)
# ctest stops a test past its timeout with SIGTERM: the namespaces go with it.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))


def _why_no_namespaces():
    """None when `ip netns add` works here, else why not, in one line."""
    if os.geteuid() != 0:
        return "not root"
    try:
        name = new_namespace()
    except (AssertionError, OSError) as e:
        return str(e).splitlines()[0]
    delete_namespace(name)
    return None


NO_NETNS = _why_no_namespaces()
if NO_NETNS:
    print(f"netns_discovery_test: the namespace tests are skipped: network namespaces "
          f"cannot be made here ({NO_NETNS})", file=sys.stderr)


class Lan:
    """A bridge in a namespace of its own, and hosts joined to it, each a namespace with
    one veth (eth0, SUBNET.N/24) and, unless told otherwise, a default route through it
    (so that 255.255.255.255 has a way out, as on a real LAN)."""

    def __init__(self):
        self.bridge = new_namespace()
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        self.hosts = []

    def host(self, default_route=True):
        ns = new_namespace()
        n = len(self.hosts) + 1
        port = f"p{n}"
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns",
           self.bridge)
        ip("-n", self.bridge, "link", "set", port, "master", "br0")
        ip("-n", self.bridge, "link", "set", port, "up")
        address = f"{SUBNET}.{n}"
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        if default_route:
            ip("-n", ns, "route", "add", "default", "dev", "eth0")
        self.hosts.append(ns)
        return ns, address

    def delete(self):
        for ns in self.hosts + [self.bridge]:
            delete_namespace(ns)


def configure(node, section, **settings):
    """Sets node.toml's section.key for each setting (the value as TOML writes it)."""
    path = os.path.join(node.dir, "node.toml")
    with open(path) as f:
        text = f.read()
    start = text.index(f"\n[{section}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    part = text[start:end]
    for key, value in settings.items():
        part, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", part)
        assert n == 1, f"{section}.{key} is not in node.toml"
    with open(path, "w") as f:
        f.write(text[:start] + part + text[end:])


class LanNode(Node):
    """A mesh_test node with discovery on, in namespace ns (None: this one), bound at bind
    (None: mesh_test's free loopback port)."""

    def __init__(self, mesh, name, ns, bind=None, broadcast="255.255.255.255", udp_port=7422,
                 tofu=False):
        self.ns = ns
        super().__init__(mesh, name, TASKS, 4, tofu=tofu)
        if bind is not None:
            configure(self, "node", bind=f'"{bind}"')
            self.endpoint = bind
        configure(self, "discovery", enabled="true", port=str(udp_port),
                  broadcast=f'"{broadcast}"', interval_ms="200")

    def trust(self, *others):
        for o in others:
            self.mesh.stemma("trust", "add", o.key, "--dir", self.dir)

    def start(self):
        self.logf = open(self.log, "a")
        prefix = [IP, "netns", "exec", self.ns] if self.ns else []
        # ip netns exec execs the node: the pid is the node's, and SIGTERM reaches it.
        self.proc = subprocess.Popen([*prefix, STEMMA, "node", "--dir", self.dir],
                                     stderr=self.logf, stdout=subprocess.DEVNULL)
        self.mesh.procs.append(self)
        return self

    def node(self):
        return self.report()["node"]

    def state_of(self, other):
        return (self.peer(other) or {}).get("state")

    def log_lines(self, event):
        return [line for line in self.logs().splitlines()
                if re.search(rf"Z \w+ +{event}\b", line)]


@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Loopback(Mesh):
    """Nodes on one machine, beacons to 127.255.255.255: no namespace needed."""

    def test_two_nodes_find_each_other_and_a_stray_datagram_is_counted(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            udp = s.getsockname()[1]
        a = LanNode(self, "a", None, broadcast="127.255.255.255", udp_port=udp)
        b = LanNode(self, "b", None, broadcast="127.255.255.255", udp_port=udp)
        a.trust(b)
        b.trust(a)
        a.start()
        b.start()
        self.wait("a and b to meet", lambda: a.state_of(b) == "connected"
                  and b.state_of(a) == "connected")
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        for n in (a, b):
            self.wait(f"{n.name} to hold both rows",
                      lambda n=n: sql(n.db, LISTS) == "from a,from b")
        self.assertEqual(a.peer(b)["endpoint"], b.endpoint)
        d = a.node()["discovery"]
        self.assertEqual(d["port"], udp)
        self.assertTrue(d["sending"])
        self.assertGreaterEqual(d["beacons_sent"], 1)
        # Whichever heard the other first dialled it; the other knew it by then.
        self.assertGreaterEqual(
            d["peers_discovered"] + b.node()["discovery"]["peers_discovered"], 1)
        # Datagrams that are no beacon: dropped and counted, and the nodes go on.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for junk in (b"STMB" + bytes(36), b"STMD\x02" + bytes(35), b"x" * 1000, b""):
                s.sendto(junk, ("127.255.255.255", udp))
        for n in (a, b):
            self.wait(f"{n.name} to count 4 stray datagrams",
                      lambda n=n: n.node()["dropped"]["beacon"] == 4)
            self.assertRegex(n.logs(), r"malformed: discovery: from 127\.0\.0\.1: a beacon of "
                                       r"version 2")
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('lc', 'after')")
        self.wait("b to hold a's next row", lambda: sql(b.db, LISTS) == "after,from a,from b")
        stats = subprocess.run([STEMMA, "stats", "--dir", a.dir], capture_output=True,
                               text=True, timeout=30).stdout
        self.assertIn("dropped beacon 4\n", stats)
        self.assertRegex(stats, r"beacons heard \d+ \(untrusted 0, other mode 0\)\n")
        self.assertRegex(stats, r"peers discovered [01]\n")


    def test_under_trust_on_first_use_whoever_beacons_is_met(self):
        # a trusts no key but takes any on first use: b, which trusts a, is met by its
        # beacon and its key lands in a's known_peers. Meeting whoever beacons is a's
        # user's choice (docs/user-guide.md, "LAN discovery").
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            udp = s.getsockname()[1]
        a = LanNode(self, "a", None, broadcast="127.255.255.255", udp_port=udp, tofu=True)
        b = LanNode(self, "b", None, broadcast="127.255.255.255", udp_port=udp)
        b.trust(a)
        a.start()
        b.start()
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        self.wait("a to hold b's row", lambda: sql(a.db, LISTS) == "from b")
        known = os.path.join(a.dir, "known_peers")
        self.wait("a to write b's key to known_peers",
                  lambda: os.path.exists(known) and b.key in open(known).read())
        self.assertEqual(a.log_lines("beacon-untrusted"), [])
        self.assertEqual(a.node()["discovery"]["beacons_untrusted"], 0)


@unittest.skipIf(NO_NETNS, f"network namespaces cannot be made here ({NO_NETNS})")
@unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
class Namespaces(Mesh):
    def setUp(self):
        super().setUp()
        self.lan = Lan()

    def tearDown(self):
        try:
            super().tearDown()  # the nodes stopped first: nothing runs in a namespace deleted
        finally:
            self.lan.delete()

    def test_three_nodes_find_each_other_and_an_untrusted_fourth_gets_nothing(self):
        # a binds every interface, b its own address, c nowhere (it only dials, and sends
        # no beacon); d beacons like the others, and no one trusts its key.
        hosts = [self.lan.host() for _ in range(4)]
        a = LanNode(self, "a", hosts[0][0], f"tcp://*:{MESH_PORT}")
        b = LanNode(self, "b", hosts[1][0], f"tcp://{hosts[1][1]}:{MESH_PORT}")
        c = LanNode(self, "c", hosts[2][0], "")
        d = LanNode(self, "d", hosts[3][0], f"tcp://*:{MESH_PORT}")
        trio = (a, b, c)
        for n in trio:
            n.trust(*[o for o in trio if o is not n])
        d.trust(a, b, c)  # d would take them: what it gets is theirs to give
        for n in (a, b, c, d):
            n.start()
        for n in trio:
            for o in trio:
                if o is not n:
                    self.wait(f"{n.name} to be connected to {o.name}",
                              lambda n=n, o=o: n.state_of(o) == "connected", timeout=60)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        sql(c.db, "INSERT INTO lists (id, name) VALUES ('lc', 'from c')")
        sql(d.db, "INSERT INTO lists (id, name) VALUES ('ld', 'from d')")
        for n in trio:
            self.wait(f"{n.name} to hold the three rows",
                      lambda n=n: sql(n.db, LISTS) == "from a,from b,from c", timeout=60)
        # Where each was found: b where its beacon came from (which is what it
        # advertises); a there too, or, had its HELLO come first, at no endpoint (it
        # binds a wildcard and advertises none) and answered on its connection; c, which
        # sends no beacon, at no endpoint, answered on the connections it opened.
        self.assertEqual(a.peer(b)["endpoint"], f"tcp://{hosts[1][1]}:{MESH_PORT}")
        self.assertIn(b.peer(a)["endpoint"], ("", f"tcp://{hosts[0][1]}:{MESH_PORT}"))
        self.assertEqual(a.peer(c)["endpoint"], "")
        self.assertIsNotNone(a.peer(c)["dialled_in_from"])
        self.assertFalse(c.node()["discovery"]["sending"])
        self.assertEqual(c.node()["discovery"]["beacons_sent"], 0)
        self.assertIn("sending none: it binds nowhere", c.logs())

        # d: a and b heard it, each dialled by it and refused its key; c heard it too.
        for n in trio:
            self.wait(f"{n.name} to hear d's beacon",
                      lambda n=n: n.node()["discovery"]["beacons_untrusted"] >= 1)
        for n in (a, b):
            self.wait(f"{n.name} to refuse d's key", lambda n=n: n.node()["refused_keys"] >= 1)
        self.wait("d to hear a's and b's beacons",
                  lambda: d.node()["discovery"]["peers_discovered"] == 2)
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la2', 'after d')")
        for n in trio:
            self.wait(f"{n.name} to hold a's last row",
                      lambda n=n: "after d" in sql(n.db, LISTS), timeout=60)
        # d is no peer of theirs: never sent a HELLO (d, which trusts them, would have
        # answered it and been connected), and its row went nowhere.
        for n in trio:
            self.assertIsNone(n.peer(d), f"{n.name} knows d as a peer")
            self.assertNotIn("from d", sql(n.db, LISTS))
            told = [l for l in n.log_lines("beacon-untrusted") if d.key in l]
            self.assertEqual(len(told), 1, f"{n.name} names d's key once: {told}")
            self.assertIn(f"stemma trust add '{d.key}' --dir {n.dir}", told[0])
        for p in d.report()["peers"]:
            self.assertEqual(p["state"], "connecting", p)
            self.assertEqual(p["ops_received"], 0)
        self.assertEqual(sql(d.db, LISTS), "from d")
        self.assertNotIn("peer-connected", d.logs())

    def test_a_key_trusted_while_running_is_met_at_its_next_beacon(self):
        # a binds nowhere, so d never hears of it: only a's hearing d's beacons can
        # bring them together. d's machine has no default route, so 255.255.255.255
        # goes nowhere: d broadcasts to its network's own address.
        (ha, _), (hd, ad) = self.lan.host(), self.lan.host(default_route=False)
        a = LanNode(self, "a", ha, "")
        d = LanNode(self, "d", hd, f"tcp://{ad}:{MESH_PORT}", broadcast=f"{SUBNET}.255")
        d.trust(a)
        a.start()
        d.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(d.db, "INSERT INTO lists (id, name) VALUES ('ld', 'from d')")
        self.wait("a to name d's key",
                  lambda: any(d.key in l for l in a.log_lines("beacon-untrusted")))
        self.assertIsNone(a.peer(d))
        self.assertEqual(d.report()["peers"], [])
        # What the log says to run, while a runs.
        self.stemma("trust", "add", d.key, "--dir", a.dir)
        self.wait("a to meet d", lambda: a.state_of(d) == "connected", timeout=60)
        for n in (a, d):
            self.wait(f"{n.name} to hold both rows",
                      lambda n=n: sql(n.db, LISTS) == "from a,from d", timeout=60)
        self.assertEqual(a.peer(d)["endpoint"], f"tcp://{ad}:{MESH_PORT}")
        self.assertEqual(len(a.log_lines("peer-discovered")), 1)
        self.assertEqual(len(a.log_lines("beacon-untrusted")), 1)


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    mesh_test.STEMMA = STEMMA
    unittest.main(verbosity=2)
