#!/usr/bin/env python3
"""Nodes on separate hosts (issue 13): each node runs in a network namespace of its own,
the hosts joined by veth pairs, so that addresses, routes and wildcard binds are those of
real machines and not of one loopback.

Needs root (CI runs as root) and `ip netns`. Where namespaces cannot be created the test
prints one line saying so and exits 77, which ctest reports as skipped. Every namespace
is deleted at the end of its test, and every node stopped first, whatever happened.

A device behind NAT is one that can dial out and cannot be dialled: here it either binds
nowhere ([node] bind = "") or listens on an address its hub has no route to, which is
what the hub sees of a device behind NAT, without a packet filter the kernel may lack.

Run: tests/netns_test.py build/stemma
"""
import os
import subprocess
import sys
import types
import unittest

import mesh_test
from mesh_test import Mesh, Node, rebind, sql

SKIPPED = 77  # ctest's SKIP_RETURN_CODE for this test (tests/tests.cmake)
TASKS = mesh_test.TASKS
NAMES = "SELECT group_concat(name, ',') FROM (SELECT name FROM lists ORDER BY id)"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def namespaces_work():
    """Whether this machine lets us make a namespace (root, a kernel with netns)."""
    name = f"stm-probe-{os.getpid()}"
    try:
        ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError):
        return False
    ip("netns", "del", name)
    return True


class Hosts:
    """Network namespaces standing for hosts, and the cables between them."""

    def __init__(self):
        self.names = []
        self.cables = 0

    def host(self, short):
        name = f"stm-{os.getpid()}-{short}"
        ip("netns", "add", name)
        self.names.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def cable(self, a, a_cidr, b, b_cidr):
        """A veth pair from host a to host b, each end with its address (CIDR)."""
        self.cables += 1
        ea, eb = f"stma{self.cables}", f"stmb{self.cables}"
        ip("link", "add", ea, "netns", a, "type", "veth", "peer", "name", eb, "netns", b)
        for ns, dev, cidr in ((a, ea, a_cidr), (b, eb, b_cidr)):
            ip("-n", ns, "addr", "add", cidr, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")

    def delete(self):
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.names = []


class HostNode(Node):
    """A node on a host: its process runs in the host's namespace. Its control socket is a
    file, which every namespace reaches, so reports are asked from here."""

    def __init__(self, mesh, name, host, bind, peers=(), tofu=True):
        self.host = host
        super().__init__(mesh, name, TASKS, 4, peers=peers, tofu=tofu)
        rebind(self, bind)

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.host, mesh_test.STEMMA, "node",
                                      "--dir", self.dir], stderr=self.logf,
                                     stdout=subprocess.DEVNULL)
        self.mesh.procs.append(self)
        return self


def at(node, endpoint):
    """node as a peer list names it: its key, at the endpoint the lister dials."""
    return types.SimpleNamespace(key=node.key, endpoint=endpoint)


class Hosted(Mesh):
    def setUp(self):
        super().setUp()
        self.hosts = Hosts()

    def tearDown(self):
        try:
            super().tearDown()  # the nodes stop before their namespaces go
        finally:
            self.hosts.delete()

    def holds(self, nodes, names):
        for n in nodes:
            self.wait(f"{n.name} to hold {names}", lambda n=n: sql(n.db, NAMES) == names,
                      timeout=30)


class TwoHosts(Hosted):
    def test_a_wildcard_bind_on_two_hosts(self):
        # Both bind every interface and advertise nothing. a lists b at b's address; b
        # knows nothing of a but its key (trust on first use): it answers a on the
        # connection a opened, so rows written on each side reach the other.
        ha, hb = self.hosts.host("a"), self.hosts.host("b")
        self.hosts.cable(ha, "10.77.0.1/24", hb, "10.77.0.2/24")
        b = HostNode(self, "b", hb, "tcp://0.0.0.0:7420")
        a = HostNode(self, "a", ha, "tcp://0.0.0.0:7420", peers=[at(b, "tcp://10.77.0.2:7420")])
        a.start()
        b.start()
        sql(a.db, "INSERT INTO lists (id, name) VALUES ('la', 'from a')")
        sql(b.db, "INSERT INTO lists (id, name) VALUES ('lb', 'from b')")
        self.holds((a, b), "from a,from b")
        self.assertEqual(a.peer(b)["state"], "connected")
        self.assertEqual(b.peer(a)["state"], "connected")
        self.assertEqual(b.peer(a)["endpoint"], "")
        self.assertEqual(b.peer(a)["dialled_in_from"], "10.77.0.1")
        for n in (a, b):
            for p in n.report()["peers"]:
                self.assertNotIn("0.0.0.0", p["endpoint"], f"{n.name} dials {p['endpoint']}")


class BehindNat(Hosted):
    def test_devices_that_cannot_be_dialled_sync_through_the_hub(self):
        # hub binds every interface; d1 and d2 are each on a link of their own to it, and
        # neither can be dialled: d1 binds nowhere, d2 listens on an address the hub has
        # no route to (and advertises it). Each syncs both ways with the hub, and each
        # reaches the other through it.
        hh, h1, h2 = self.hosts.host("hub"), self.hosts.host("d1"), self.hosts.host("d2")
        self.hosts.cable(hh, "10.77.1.1/24", h1, "10.77.1.2/24")
        self.hosts.cable(hh, "10.77.2.1/24", h2, "10.77.2.2/24")
        ip("-n", h2, "addr", "add", "192.168.77.2/32", "dev", "lo")
        hub = HostNode(self, "hub", hh, "tcp://0.0.0.0:7420")
        d1 = HostNode(self, "d1", h1, "", peers=[at(hub, "tcp://10.77.1.1:7420")])
        d2 = HostNode(self, "d2", h2, "tcp://192.168.77.2:7420",
                      peers=[at(hub, "tcp://10.77.2.1:7420")])
        for n in (hub, d1, d2):
            n.start()
        sql(hub.db, "INSERT INTO lists (id, name) VALUES ('lh', 'from hub')")
        sql(d1.db, "INSERT INTO lists (id, name) VALUES ('l1', 'from d1')")
        sql(d2.db, "INSERT INTO lists (id, name) VALUES ('l2', 'from d2')")
        self.holds((hub, d1, d2), "from d1,from d2,from hub")
        p1, p2 = hub.peer(d1), hub.peer(d2)
        self.assertEqual((p1["endpoint"], p1["dialled_in_from"], p1["state"]),
                         ("", "10.77.1.2", "connected"))
        self.assertEqual((p2["endpoint"], p2["dialled_in_from"], p2["state"]),
                         ("tcp://192.168.77.2:7420", "10.77.2.2", "connected"))
        # Later writes go on flowing both ways through the one connection each opened.
        sql(d2.db, "UPDATE lists SET name = 'from d2, later' WHERE id = 'l2'")
        self.holds((hub, d1, d2), "from d1,from d2, later,from hub")


if __name__ == "__main__":
    mesh_test.STEMMA = os.path.abspath(sys.argv.pop(1))
    if not namespaces_work():
        print("netns: network namespaces cannot be created here (needs root and ip netns): "
              "skipped")
        sys.exit(SKIPPED)
    unittest.main(verbosity=2)
