#!/usr/bin/python3
"""Bad input at every trust boundary, end to end: what a running node, or a command,
answers to each kind (docs/hardening.md, "Bad input", names the test behind each row).

Over the mesh a raw pyzmq client plays a peer: it speaks the protocol of
docs/protocol.md (encoded here, independently of the C codec) and breaks it on purpose.
Every test checks the answer (a log line, an error, a parked operation), the counter in
`stemma stats`, and that the node keeps serving. Files a user or another machine hands
over (node.toml, keys, known_peers, migration directories, bundles) are damaged the same
way, and the command must say what is wrong in one line and exit 2, never hang or crash.

Run by ctest as `python3 tests/badinput_test.py PATH/TO/stemma` from the source root,
with Debian's python3 (python3-zmq). It reuses mesh_test.py's nodes.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh_test as mt  # noqa: E402  (Node, Mesh, sql, free_port)

try:
    import zmq
    from zmq.utils import z85
except ImportError:  # pragma: no cover - scripts/install-deps installs python3-zmq
    zmq = None

STEMMA = None
TASKS = os.path.abspath("schemas/tasks")
SQLITE3 = shutil.which("sqlite3")
MAX62 = 1 << 62

# ---- MessagePack, written out by hand (spec.md), so the C codec is not its own judge ----


class Raw(bytes):
    """Bytes put into a message as they are (already MessagePack)."""


def pack(v):
    if isinstance(v, Raw):
        return bytes(v)
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(pack(k) + pack(x)
                                                              for k, x in v.items())
    raise TypeError(v)


HELLO, REFUSE, OPS, ACK, PING, BYE, RECEIVED, VECTOR = 1, 2, 3, 4, 5, 6, 7, 8


WIRE = BUNDLE = None  # the binary's protocol and bundle format versions (main)


def message(kind, body, version=None):
    version = WIRE if version is None else version
    return b"STMW" + bytes([version, kind]) + (body if isinstance(body, bytes) else pack(body))


def batch(ops, origins, versions, tables, columns):
    return pack({"origins": origins, "versions": versions, "tables": tables,
                 "columns": columns, "ops": ops})


def bundle(frames, count):
    out = b"STMB" + bytes([BUNDLE, 0, 0, 0])
    for f in frames:
        out += struct.pack(">I", len(f)) + f
    out += struct.pack(">I", 0) + struct.pack(">Q", count)
    return out + hashlib.blake2b(out, digest_size=32).digest()  # BLAKE2b-256, no key


def decode_map(data):
    """Enough of a MessagePack reader for the top map of a message the node sends: the
    keys and, for small uints and bools, their values."""
    out, i = {}, 0
    c = data[i]
    if 0x80 <= c <= 0x8f:
        n, i = c & 0x0f, 1
    elif c == 0xde:
        n, i = struct.unpack(">H", data[1:3])[0], 3
    else:
        n, i = struct.unpack(">I", data[1:5])[0], 5
    for _ in range(n):
        klen = data[i] & 0x1f
        key = data[i + 1:i + 1 + klen].decode()
        i += 1 + klen
        out[key] = data[i]
        break  # the first key is all the tests look at
    return out


# ---- a peer played by hand ----


class FakePeer:
    """A peer in a test's hands: an inbox (ROUTER) for what the node sends it, a DEALER
    to the node's inbox. Insecure, it names itself by routing id as stemma does ("N" and
    its id in hex); with keys it is a CURVE client."""

    def __init__(self, target, node_id=None, curve_server=None, keypair=None):
        self.ctx = zmq.Context()
        self.drops = None
        self.inbox = self.ctx.socket(zmq.ROUTER)
        self.inbox.setsockopt(zmq.LINGER, 0)
        port = self.inbox.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.out = self.ctx.socket(zmq.DEALER)
        self.out.setsockopt(zmq.LINGER, 2000)
        if keypair:
            public, secret = keypair
            self.id = z85.decode(public)
            self.out.curve_serverkey = curve_server.encode()
            self.out.curve_publickey = public
            self.out.curve_secretkey = secret
            self.inbox.curve_server = True
            self.inbox.curve_secretkey = secret
        else:
            self.id = node_id or os.urandom(32)
            self.out.setsockopt(zmq.ROUTING_ID, b"N" + self.id.hex().encode())
        # Watched from before it connects: a handshake the node refuses ends at once.
        self.drops = self.out.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.out.connect(target)

    def dropped_by_node(self, timeout=20.0):
        """Waits until the node closes the connection: the known point at which it has
        read what it refuses (a handshake, a message too large). False if it never does."""
        return bool(self.drops.poll(int(timeout * 1000)))

    def send(self, frame):
        """Queues frame; False when it cannot even be queued (a refused key's connection
        is gone, and a DEALER with no connection would wait for one)."""
        try:
            self.out.send(frame, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def hello(self, lineage, families=None, node=None, **extra):
        body = {"node": node or self.id, "endpoint": self.endpoint, "schema_set": "fake",
                "lineage": lineage, "vector": [], "reply": False}
        if families is not None:
            body["families"] = families
        body.update(extra)
        self.send(message(HELLO, body))

    def ops(self, seq, batch_bytes):
        self.send(message(OPS, {"seq": seq, "batch": batch_bytes}))

    def expect(self, kind, timeout=10.0):
        """The body of the next message of that type the node sends; None on timeout."""
        end = time.time() + timeout
        while time.time() < end:
            if self.inbox.poll(100):
                frames = self.inbox.recv_multipart()
                data = frames[-1]
                if len(data) >= 6 and data[:4] == b"STMW" and data[5] == kind:
                    return data[6:]
        return None

    def close(self):
        self.out.disable_monitor()
        self.drops.close(0)
        self.out.close(0)
        self.inbox.close(0)
        self.ctx.term()


# ---- what the node says ----


def stats(node):
    """`stemma stats` as {"dropped": {kind: n}, "parked": {reason: n}, line: value}."""
    p = subprocess.run([STEMMA, "stats", "--dir", node.dir], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"stats {node.name}: {p.stderr}")
    out = {"dropped": {}, "parked": {}}
    for line in p.stdout.splitlines():
        if line.startswith("dropped "):
            _, kind, n = line.split(" ")
            out["dropped"][kind] = int(n)
        elif line.startswith("parked "):
            _, n, reason = line.split(" ", 2)
            out["parked"][reason] = int(n)
        else:
            key, _, value = line.rpartition(" ")
            out[key] = value
    return out


def lineage_ids(db):
    p = subprocess.run([STEMMA, "history", "--db", db, "--format", "json"], capture_output=True,
                       text=True, timeout=30)
    return [bytes.fromhex(v["id"]) for v in json.loads(p.stdout)["versions"]]


def node_id(db):
    return bytes.fromhex(mt.sql(db, "SELECT hex(node_id) FROM stemma_local"))


def version_id(db):
    return bytes.fromhex(mt.sql(db, "SELECT hex(version_id) FROM stemma_local"))


def op(seq, table, pk, column, affinity, value, hlc=None, origin=0):
    """One operation of a batch whose lists are [origin], [version], tables, columns."""
    return [origin, seq, hlc if hlc is not None else (int(time.time() * 1000) << 16), 0, table,
            pk, column, affinity if affinity is None else ord(affinity), value]


class Base(mt.Mesh):
    """Node a (tasks v4) and its real peer b, and a fake peer that has said HELLO to a."""

    insecure = True

    def setUp(self):
        super().setUp()
        mt.STEMMA = STEMMA
        self.b = mt.Node(self, "b", TASKS, 4, insecure=self.insecure, tofu=not self.insecure)
        self.a = mt.Node(self, "a", TASKS, 4, peers=[self.b], insecure=self.insecure,
                         tofu=not self.insecure)
        self.a.start()
        self.b.start()
        self.wait("a and b to connect",
                  lambda: (self.a.peer(self.b) or {}).get("state") == "connected")
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.close()
        super().tearDown()

    def fake(self, **kw):
        f = FakePeer(self.a.endpoint, **kw)
        self.fakes.append(f)
        return f

    def connected_fake(self):
        """A fake peer at a's own lineage, met and judged: its OPS are applied."""
        f = self.fake()
        f.hello(lineage_ids(self.a.db))
        self.assertIsNotNone(f.expect(HELLO), "a did not answer the fake's HELLO")
        self.wait("a to connect the fake",
                  lambda: any(p["id"] and p["state"] == "connected" and p["endpoint"] == f.endpoint
                              for p in self.a.report()["peers"]))
        return f

    def still_serving(self, tag):
        """a answers reports and still syncs with b."""
        self.assertEqual(self.a.report()["node"]["id"], self.a.key)
        mt.sql(self.b.db, f"INSERT INTO lists (id, name) VALUES ('{tag}', 'after {tag}')")
        self.wait(f"a to get b's write after {tag}",
                  lambda: mt.sql(self.a.db, f"SELECT name FROM lists WHERE id = '{tag}'")
                  == f"after {tag}")

    def dropped(self, **want):
        """Waits until a's dropped counters are exactly want (the others 0)."""
        kinds = ["not-stemma", "protocol-version", "hello", "refuse", "ops", "batch", "ack",
                 "impostor", "unknown-sender", "untrusted", "beacon", "received", "parts",
                 "vector"]
        expect = {k: want.get(k.replace("-", "_"), 0) for k in kinds}
        self.wait(f"dropped counters {expect}", lambda: stats(self.a)["dropped"] == expect)
        return expect


@unittest.skipUnless(SQLITE3 and zmq, "needs the sqlite3 shell and python3-zmq")
class MeshMessages(Base):
    def test_malformed_messages_are_dropped_and_counted_by_kind(self):
        f = self.fake()
        # Not stemma's at all: too short, another magic, a control request sent to the
        # mesh endpoint instead of the control socket.
        for frame in [b"", b"STM", b"garbage!", b"stats", b"report json"]:
            f.send(frame)
        # Another protocol version: an older one, and a future one whatever its type.
        f.send(message(HELLO, {"node": f.id}, version=WIRE - 1))
        f.send(message(77, b"\x80", version=255))
        # Not a HELLO, from a sender that is not a peer.
        f.send(message(OPS, {"seq": 1, "batch": b""}))
        f.send(message(PING, {}))
        # HELLOs that break the rules: no lineage, cut short, a map claiming 4G keys, a
        # body that is not a map.
        f.send(message(HELLO, {"node": f.id, "endpoint": f.endpoint, "vector": []}))
        f.send(message(HELLO, {"node": f.id})[:9])
        f.send(message(HELLO, b"\xdf\xff\xff\xff\xff"))
        f.send(message(HELLO, b"\x93\x01\x02\x03"))
        self.dropped(not_stemma=5, protocol_version=2, unknown_sender=2, hello=4)
        logs = self.a.logs()
        self.assertIn("wrong magic", logs)
        self.assertIn("protocol-version", logs)
        self.assertIn("a HELLO lacks node, endpoint, lineage or vector", logs)
        # The same sender, once a peer, with broken REFUSE, OPS, batch and ACK.
        g = self.connected_fake()
        # A type this version does not know (a later version's), and extra frames after a
        # message: ignored, not counted (the exact counts below, reached only once what
        # follows on the same connection is handled, hold them to it).
        g.send(message(77, {"future": 1}))
        g.out.send_multipart([message(PING, {}), b"second frame", b"third"])
        g.send(message(REFUSE, b"\x91\xa1x"))                 # not a map
        g.send(message(OPS, {"seq": 1}))                       # no batch
        g.send(message(OPS, {"seq": "one", "batch": b""}))     # seq not a number
        g.ops(2, b"\x85garbage")                               # a batch that is not one
        g.ops(3, pack({"ops": [[0, 1]]}))                      # an op of two fields
        g.send(message(ACK, {"seq": 1}))                       # no vector
        g.send(message(ACK, {"seq": 1, "vector": [[b"\x01" * 31, 1]]}))  # a 31-byte id
        self.dropped(not_stemma=5, protocol_version=2, unknown_sender=2, hello=4, refuse=1,
                     ops=2, batch=2, ack=2)
        self.assertEqual(stats(self.a)["malformed messages"], "18")
        self.still_serving("l-malformed")

    def test_hellos_past_the_limits_are_dropped(self):
        f = self.fake()
        ids = lineage_ids(self.a.db)
        one_id = lambda i: i.to_bytes(32, "big")  # noqa: E731
        col = lambda name: [name, ord("T"), 0, 0]  # noqa: E731
        # A lineage of 100,001 versions: one past the limit (3.4 MB).
        f.hello([one_id(i + 1) for i in range(100001)])
        # Millions of entries declared in five bytes, with nothing behind them.
        f.hello(Raw(b"\xdd\x00\x98\x96\x80"))
        # A table of 2,001 columns, one past SQLite's own limit.
        f.hello(ids, families=[["t", [one_id(1)], [col(f"c{i}") for i in range(2001)]]])
        # A family with more heads than the lineage has versions, and one with none.
        f.hello(ids, families=[["t", [one_id(i) for i in range(5)], [col("c")]]])
        f.hello(ids, families=[["t", [], [col("c")] * 1]])
        # One table twice (names differ in case only); one column twice.
        f.hello(ids, families=[["t", [one_id(1)], [col("c")]], ["T", [one_id(1)], [col("c")]]])
        f.hello(ids, families=[["t", [one_id(1)], [col("c"), col("C")]]])
        # Text that would forge a log line, or drive a terminal.
        f.hello(ids, endpoint="tcp://127.0.0.1:1\n2026-01-01T00:00:00.000Z info  started x")
        f.hello(ids, families=[["t\x1b[2J", [one_id(1)], [col("c")]]])
        # An absurd minimum version, an affinity SQLite does not have.
        f.hello(ids, min_supported_version=2 ** 40)
        f.hello(ids, families=[["t", [one_id(1)], [["c", ord("X"), 0, 0]]]])
        self.dropped(hello=11)
        logs = self.a.logs()
        for said in ["its lineage is not an array of at most 100000 ids",
                     "HELLO's lineage is malformed",
                     "a family's columns are not an array of at most 2000",
                     "heads are not an array of 1 id to as many as its lineage has versions",
                     "a family name comes twice", "a column name comes twice",
                     "HELLO's endpoint is malformed", "no control character",
                     "HELLO's min_supported_version is malformed",
                     "affinity is not one of T N I R B"]:
            self.assertIn(said, logs)
        self.assertNotIn("\n2026-01-01T00:00:00.000Z info  started x", logs)
        self.assertEqual([p for p in self.a.report()["peers"] if p["endpoint"] == f.endpoint], [])
        self.still_serving("l-limits")

    def test_peer_lists_cannot_make_the_node_meet_without_end(self):
        """A peer list is another node's claim, and each peer met takes a socket: a node
        meets peers from peer lists until it knows 1,000 (libzmq allows 1,023 sockets)."""
        g = self.connected_fake()
        for batch_of in range(2):
            peers = [[os.urandom(32), f"ipc://{self.tmp}/{batch_of}-{i}.sock"]
                     for i in range(1024)]
            g.hello(lineage_ids(self.a.db), peers=peers, reply=True)
        self.wait("a to stop learning", lambda: "the rest are not met" in self.a.logs())
        self.assertEqual(len(self.a.report()["peers"]), 1000)
        self.still_serving("l-peers")

    def test_oversized_message_drops_only_its_connection(self):
        f = self.fake()
        # libzmq refuses it before stemma sees it (ZMQ_MAXMSGSIZE): the connection is
        # dropped, and no counter moves.
        f.send(b"STMW" + bytes([WIRE, HELLO]) + b"\x00" * (64 * 1024 * 1024))  # one byte past the limit
        self.assertTrue(f.dropped_by_node(), "a did not drop the connection")
        self.dropped()
        self.still_serving("l-oversized")


@unittest.skipUnless(SQLITE3 and zmq, "needs the sqlite3 shell and python3-zmq")
class VectorMessages(Base):
    """Vector deltas (docs/protocol.md, "Vector deltas") from a peer played by hand."""

    def delta_fake(self):
        """A connected fake peer that lists vdelta.v1, its vector empty and whole."""
        f = self.fake()
        f.hello(lineage_ids(self.a.db), vdigest=bytes(16),
                capabilities=["ops.v1", "parts.v1", "vdelta.v1"])
        self.assertIsNotNone(f.expect(HELLO), "a did not answer the fake's HELLO")
        self.wait("a to connect the fake",
                  lambda: any(p["state"] == "connected" and p["endpoint"] == f.endpoint
                              for p in self.a.report()["peers"]))
        return f

    def test_malformed_vectors_are_dropped_and_counted(self):
        f = self.delta_fake()
        for body in [{},                                        # neither vector nor vneed
                     {"vbase": bytes(16)},                      # a base without a vector
                     {"vector": [], "vdigest": b"short"},       # a digest of 5 bytes
                     {"vector": "not an array"},
                     {"vector": [[bytes(32), 1], [bytes(32), 2]]},  # an origin twice
                     {"vneed": 1}]:                             # not a bool
            f.send(message(VECTOR, body))
        # An ACK whose base is not a digest is an ACK dropped, as any malformed ACK.
        f.send(message(ACK, {"seq": 1, "vector": [], "vbase": b"x"}))
        self.dropped(vector=6, ack=1)
        self.assertIn("not a digest of 16 bytes", self.a.logs())
        self.still_serving("after-vectors")

    def test_an_older_peer_of_more_origins_than_one_message_carries_is_met(self):
        # An older stemma sends its whole vector whatever its length: 100,001 entries,
        # which a node refused (the HELLO dropped), partitioning the mesh for good. The
        # first 100,000 are kept, the rest dropped and counted.
        f = self.fake()
        vector = Raw(b"\xdd" + struct.pack(">I", 100001) + b"".join(
            b"\x92\xc4\x20" + struct.pack(">QQQQ", 0, 0, 0, i) + b"\x01"
            for i in range(1, 100002)))
        f.hello(lineage_ids(self.a.db), vector=vector)
        self.assertIsNotNone(f.expect(HELLO), "a did not answer the HELLO of 100,001 entries")
        self.wait("a to count what it cut", lambda: self.a.report()["node"]["vector_entries_cut"] == 1)
        self.assertIn("more than 100000 entries in one message", self.a.logs())
        self.dropped()

    def test_a_delta_over_another_copy_is_asked_for_whole(self):
        f = self.delta_fake()
        # Its vector as a delta over a copy a does not hold: a takes the entry (it is the
        # peer's), and asks for the whole vector, with a VECTOR of vneed.
        origin = os.urandom(32)
        f.send(message(VECTOR, {"vector": [[origin, 3]], "vbase": b"\x01" * 16,
                                "vdigest": b"\x02" * 16}))
        answer = f.expect(VECTOR)
        self.assertIsNotNone(answer, "a did not ask for the whole vector")
        self.assertEqual(list(decode_map(answer)), ["vneed"])
        # Asked for its own whole vector, a sends it.
        f.send(message(VECTOR, {"vneed": True}))
        answer = f.expect(VECTOR)
        self.assertIsNotNone(answer, "a did not send its whole vector")
        self.assertEqual(list(decode_map(answer)), ["vector"])
        self.dropped()
        self.still_serving("after-vneed")


@unittest.skipUnless(SQLITE3 and zmq, "needs the sqlite3 shell and python3-zmq")
class MeshOperations(Base):
    def send_batch(self, f, seq, ops, tables, columns, origin=None):
        f.ops(seq, batch(ops, [origin or f.id], [version_id(self.a.db)], tables, columns))

    def test_batches_in_parts_and_stand_ins_from_a_peer(self):
        # A batch sent in parts (docs/protocol.md, "OPS"): each part answered with a
        # RECEIVED, the whole applied and acknowledged once its last part is in.
        f = self.connected_fake()
        whole = batch([op(1, 0, "lp", 0, "T", "lp"), op(2, 0, "lp", 1, "T", "in parts")],
                      [f.id], [version_id(self.a.db)], ["lists"], ["id", "name"])
        cut = len(whole) // 2
        for k, piece in enumerate([whole[:cut], whole[cut:]]):
            f.send(message(OPS, {"seq": 1, "part": k, "parts": 2, "bytes": len(whole),
                                 "batch": piece}))
            got = f.expect(RECEIVED)
            self.assertIsNotNone(got, f"a did not answer part {k}")
        self.assertIsNotNone(f.expect(ACK), "a did not acknowledge the batch in parts")
        self.assertEqual(mt.sql(self.a.db, "SELECT name FROM lists WHERE id = 'lp'"), "in parts")
        # Parts that cannot be put together: one of no batch being received, one out of
        # order (after part 0 of another): dropped, counted, never acknowledged.
        def part(seq, k, parts, total, piece):
            return message(OPS, {"seq": seq, "part": k, "parts": parts, "bytes": total,
                                 "batch": piece})
        f.send(part(2, 1, 2, len(whole), whole[cut:]))
        f.send(part(3, 0, 3, len(whole), whole[:10]))
        f.send(part(3, 2, 3, len(whole), whole[20:]))
        # Parts that break the rules: one part of one, a batch over 256 MiB announced.
        f.send(part(4, 0, 1, len(whole), whole))
        f.send(part(5, 0, 2, 256 * 1024 * 1024 + 1, whole[:cut]))
        # A RECEIVED without its bytes.
        f.send(message(RECEIVED, {"seq": 1}))
        self.dropped(ops=2, parts=3, received=1)
        self.assertIn("a part came out of order", self.a.logs())
        # A stand-in (a row change its sender withheld, too large to travel): held as
        # withheld, said, counted, and the operations after it applied.
        standin = pack({"origins": [f.id], "versions": [version_id(self.a.db)],
                        "tables": ["lists"], "columns": ["id", "name"],
                        "ops": [op(5, 0, "after", 0, "T", "after"),
                                op(6, 0, "after", 1, "T", "after the stand-in")],
                        "withheld": [[0, 3, 2, int(time.time() * 1000) << 16, 0, 0, "huge",
                                      300_000_000]]})
        f.ops(6, standin)
        self.assertIsNotNone(f.expect(ACK))
        self.assertEqual(mt.sql(self.a.db, "SELECT count(*) FROM lists WHERE id = 'after'"), "1")
        self.assertEqual(self.a.report()["node"]["withheld"], 2)
        self.assertIn("table lists, key 'huge'", self.a.logs())
        self.still_serving("l-parts")

    def test_hostile_identifiers_are_parked_and_never_run(self):
        f = self.connected_fake()
        before = mt.sql(self.a.db, "SELECT group_concat(name) FROM sqlite_schema")
        drop = 'x"; DROP TABLE lists; --'
        self.send_batch(f, 1, [op(1, 0, "l1", 0, "T", "evil"),           # unknown table
                               op(2, 1, "l1", 1, "T", "evil"),           # unknown column
                               op(3, 1, "l1'); DROP TABLE lists; --", None, None, None)],
                        tables=[drop, "lists"], columns=["name\" = 1; DROP TABLE tasks; --",
                                                         "name'); DELETE FROM lists; --"])
        self.assertIsNotNone(f.expect(ACK), "a did not acknowledge the batch")
        self.assertEqual(mt.sql(self.a.db, "SELECT group_concat(name) FROM sqlite_schema"), before)
        parked = stats(self.a)["parked"]
        self.assertEqual(parked.get("table not in this database, or not synced here"), 1)
        self.assertEqual(parked.get("column not in this database"), 1)
        # The names are kept as they came, to travel on: parked, never dropped.
        self.assertEqual(mt.sql(self.a.db, "SELECT count(*) FROM stemma_oplog WHERE tbl = "
                                "'x\"; DROP TABLE lists; --'"), "1")
        # The delete of a row whose key is SQL: nothing matched, nothing ran.
        self.assertEqual(mt.sql(self.a.db, "SELECT count(*) FROM lists"), "0")
        self.still_serving("l-hostile")

    def test_values_of_the_wrong_type(self):
        f = self.connected_fake()
        t = int(time.time() * 1000) << 16
        ops = [
            # A whole row, for the cells below to land in.
            op(1, 0, "l1", 0, "T", "l1", hlc=t), op(2, 0, "l1", 1, "T", "home", hlc=t),
            # The writer's affinity differs from this column's: parked, with the types.
            op(3, 0, "l1", 1, "I", 5, hlc=t + 1),
            # NULL into NOT NULL: the constraint refuses it, parked with SQLite's words.
            op(4, 0, "l2", 0, "T", "l2", hlc=t + 2), op(5, 0, "l2", 1, "T", None, hlc=t + 2),
            # An integer into a TEXT column: applied as SQLite applies a local write (the
            # column's affinity makes it text), the same on every replica.
            op(6, 0, "l3", 0, "T", "l3", hlc=t + 3), op(7, 0, "l3", 1, "T", 42, hlc=t + 3),
        ]
        self.send_batch(f, 1, ops, ["lists"], ["id", "name"])
        self.assertIsNotNone(f.expect(ACK))
        parked = stats(self.a)["parked"]
        self.assertEqual(parked.get("type conflict: TEXT here, I at the writer"), 1)
        self.assertEqual(parked.get("NOT NULL constraint failed: lists.name"), 2)
        self.assertEqual(mt.sql(self.a.db, "SELECT name, typeof(name) FROM lists WHERE id = 'l3'"),
                         "42|text")
        self.assertEqual(mt.sql(self.a.db, "SELECT name FROM lists WHERE id = 'l1'"), "home")
        # A value MessagePack has but SQLite does not (a map, a bool): the batch is
        # malformed, nothing of it applied, and it is not acknowledged.
        self.send_batch(f, 2, [op(8, 0, "l4", 0, "T", "l4"), op(9, 0, "l4", 1, "T", True)],
                        ["lists"], ["id", "name"])
        self.send_batch(f, 3, [op(10, 0, "l5", 0, "T", {"a": 1})], ["lists"], ["id"])
        self.dropped(batch=2)
        self.assertEqual(mt.sql(self.a.db, "SELECT count(*) FROM lists WHERE id IN ('l4', 'l5')"),
                         "0")
        self.still_serving("l-types")

    def test_absurd_sequence_numbers_and_clocks_are_refused(self):
        f = self.connected_fake()
        me = node_id(self.a.db)
        # Past 2^62 (docs/protocol.md): a's own origin at the top of the range would have
        # left its application unable to write; a clock there overflowed a's clock.
        self.send_batch(f, 1, [op(2 ** 63 - 1, 0, "l1", 0, "T", "l1")], ["lists"], ["id"],
                        origin=me)
        self.send_batch(f, 2, [op(MAX62 + 1, 0, "l1", 0, "T", "l1")], ["lists"], ["id"])
        self.send_batch(f, 3, [op(1, 0, "l1", 0, "T", "l1", hlc=2 ** 63 - 1)], ["lists"], ["id"])
        self.send_batch(f, 4, [op(0, 0, "l1", 0, "T", "l1")], ["lists"], ["id"])
        self.dropped(batch=4)
        self.assertIn("seq or hlc is out of range", self.a.logs())
        # At the limit it is taken: a's own sequence moves there, and a still writes.
        self.send_batch(f, 5, [op(MAX62, 0, "l9", 0, "T", "l9"), op(MAX62 - 1, 0, "l9", 1, "T",
                                                                   "x")], ["lists"], ["id", "name"],
                        origin=me)
        self.assertIsNotNone(f.expect(ACK))
        mt.sql(self.a.db, "INSERT INTO lists (id, name) VALUES ('mine', 'still writes')")
        self.assertEqual(mt.sql(self.a.db, "SELECT typeof(seq) || ' ' || typeof(hlc) FROM "
                                "stemma_local"), "integer integer")
        self.still_serving("l-absurd")


@unittest.skipUnless(SQLITE3 and zmq, "needs the sqlite3 shell and python3-zmq")
class Curve(Base):
    insecure = False

    def setUp(self):
        super().setUp()
        # a trusts b and whoever it meets first (tofu); these tests need a node that
        # trusts no stranger: c, with b's key only.
        self.c = mt.Node(self, "c", TASKS, 4, trust=[self.b.key])
        self.c.start()
        self.wait("c to answer", lambda: self.c.report()["node"]["id"] == self.c.key)

    def test_an_untrusted_key_cannot_handshake_or_send_one_operation(self):
        public, secret = zmq.curve_keypair()
        f = FakePeer(self.c.endpoint, curve_server=self.c.key, keypair=(public, secret))
        self.fakes.append(f)
        f.hello(lineage_ids(self.c.db))
        f.ops(1, batch([op(1, 0, "l1", 0, "T", "l1"), op(2, 0, "l1", 1, "T", "intruder")],
                       [f.id], [version_id(self.c.db)], ["lists"], ["id", "name"]))
        # Refused at the handshake: the connection is closed before any message of it is
        # read, and the client does not connect again.
        self.wait("c to refuse the key", lambda: int(stats(self.c)["refused keys"]) >= 1)
        self.assertIsNone(f.expect(HELLO, timeout=1), "c answered an untrusted key")
        st = stats(self.c)
        self.assertEqual(set(st["dropped"].values()), {0}, "a message got past the handshake")
        self.assertEqual(mt.sql(self.c.db, "SELECT count(*) FROM lists"), "0")
        self.assertEqual(self.c.report()["peers"], [])
        # Said with where it came from and what lets it in.
        [line] = {l.split(" ", 2)[2] for l in self.c.logs().splitlines() if "key-refused" in l}
        key = public.decode()
        self.assertIn(f"a connection from 127.0.0.1 with key {key}: not trusted; to let it "
                      f"in: stemma trust add '{key}' --dir {self.c.dir}", line)

    def test_a_plain_client_cannot_reach_a_curve_node(self):
        f = FakePeer(self.c.endpoint)  # no CURVE at all
        self.fakes.append(f)
        f.hello(lineage_ids(self.c.db))
        # c drops the connection at the handshake, the HELLO unread.
        self.assertTrue(f.dropped_by_node(), "c did not drop the connection")
        st = stats(self.c)
        self.assertEqual(set(st["dropped"].values()), {0})
        self.assertEqual(self.c.report()["peers"], [])

    def test_a_hello_naming_another_node_than_its_key_is_dropped(self):
        public, secret = zmq.curve_keypair()
        # c trusts this key: it may connect, but not claim to be b.
        self.c.stop()
        self.c.init(trust=[self.b.key, public.decode()], force=True)
        self.c.start()
        self.wait("c to answer", lambda: self.c.report()["node"]["id"] == self.c.key)
        f = FakePeer(self.c.endpoint, curve_server=self.c.key, keypair=(public, secret))
        self.fakes.append(f)
        f.hello(lineage_ids(self.c.db), node=z85.decode(self.b.key.encode()))
        self.wait("c to drop the impostor", lambda: stats(self.c)["dropped"]["impostor"] == 1)
        self.assertIn("impostor", self.c.logs())
        self.assertEqual(self.c.report()["peers"], [])

    def test_the_control_socket_is_private_and_off_the_mesh(self):
        sock = os.path.join(self.c.dir, "control.sock")
        st = os.stat(sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.getuid())
        # A control request sent to the mesh endpoint is not answered: it is not a
        # stemma message (and a stranger's key does not even get that far).
        before = stats(self.a)["dropped"]["not-stemma"]
        f = FakePeer(self.a.endpoint, curve_server=self.a.key, keypair=zmq.curve_keypair())
        self.fakes.append(f)
        f.send(b"report json")
        self.wait("a to drop the request", lambda: stats(self.a)["dropped"]["not-stemma"]
                  == before + 1)
        self.assertIsNone(f.expect(HELLO, timeout=0.5))


@unittest.skipUnless(zmq, "needs python3-zmq")
class OutgoingConnection(mt.Mesh):
    def test_a_peer_cannot_fill_the_node_through_its_own_connection(self):
        """What the other end sends on the connection a node opens to a peer (its
        DEALER) is read, as a peer answers there when it cannot be dialled; but libzmq
        queues what arrives before the node reads it. 20 messages of 60 MiB from a peer
        (any endpoint a peer list names will do) once held 1.2 GB in the node; a DEALER
        now queues at most 4 messages of at most 64 MiB, and the node reads them (and
        drops these, which are no stemma messages)."""
        mt.STEMMA = STEMMA
        ctx = zmq.Context()
        evil = ctx.socket(zmq.ROUTER)
        evil.setsockopt(zmq.LINGER, 0)
        port = evil.bind_to_random_port("tcp://127.0.0.1")
        try:
            peer = type("Endpoint", (), {"endpoint": f"tcp://127.0.0.1:{port}", "key": None})
            # Under AddressSanitizer, freed memory waits in a quarantine (256 MB by
            # default) before it is reused, which is not the node's: a small one here.
            saved = os.environ.get("ASAN_OPTIONS")
            os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=16"
            try:
                a = mt.Node(self, "a", TASKS, 4, peers=[peer], insecure=True).start()
            finally:
                if saved is None:
                    del os.environ["ASAN_OPTIONS"]
                else:
                    os.environ["ASAN_OPTIONS"] = saved
            self.assertTrue(evil.poll(20000), "the node never said HELLO")
            rid = evil.recv_multipart()[0]
            big = b"x" * (60 * 1024 * 1024)

            for _ in range(20):
                evil.send_multipart([rid, big])
            # The node reads them (they are no stemma messages: dropped and counted),
            # and libzmq held at most a few for it at a time.
            self.wait("a to read what came on its DEALER",
                      lambda: stats(a)["dropped"]["not-stemma"] >= 5, timeout=60)
            with open(f"/proc/{a.proc.pid}/status") as f:
                peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
            self.assertLess(peak, 400 * 1024, f"the node peaked at {peak} kB")
            self.assertEqual(a.report()["node"]["id"], a.key)
        finally:
            evil.close(0)
            ctx.term()


@unittest.skipUnless(zmq, "needs python3-zmq")
class ControlEndpoint(mt.Mesh):
    def test_a_control_endpoint_the_mesh_could_reach_is_refused(self):
        mt.STEMMA = STEMMA
        a = mt.Node(self, "a", TASKS, 4)
        toml = os.path.join(a.dir, "node.toml")
        with open(toml) as f:
            text = f.read()
        port = mt.free_port()
        for control in [f"tcp://0.0.0.0:{port}", f"tcp://*:{port}", f"tcp://10.1.2.3:{port}"]:
            with open(toml, "w") as f:
                f.write(text.replace(f'control = "ipc://{a.dir}/control.sock"',
                                     f'control = "{control}"'))
            p = subprocess.run([STEMMA, "node", "--dir", a.dir], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("must be ipc:// or loopback TCP", p.stderr)

    def test_the_control_socket_is_0600_whatever_the_umask(self):
        mt.STEMMA = STEMMA
        a = mt.Node(self, "a", TASKS, 4)
        a.logf = open(a.log, "a")
        a.proc = subprocess.Popen([STEMMA, "node", "--dir", a.dir], stderr=a.logf,
                                  stdout=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0))
        self.procs.append(a)
        sock = os.path.join(a.dir, "control.sock")
        self.wait("the control socket", lambda: os.path.exists(sock))
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)


# ---- files a user or another machine hands over ----


class Files(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-badinput-")
        self.db = os.path.join(self.tmp, "app.db")
        self.dir = os.path.join(self.tmp, "node")
        self.run_ok("init", "--dir", self.dir, "--db", self.db, "--schemas", TASKS, "--migrate",
                    "--bind", f"tcp://127.0.0.1:{mt.free_port()}")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_ok(self, *args):
        p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
        return p.stdout

    def fails(self, *args, contains, status=2, **kw):
        """The command exits with status and one line on stderr holding each fragment,
        within 30 seconds (a hang is a failure), without a sanitizer report."""
        p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=30, **kw)
        self.assertEqual(p.returncode, status, f"{args}: {p.stdout}{p.stderr}")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for fragment in ([contains] if isinstance(contains, str) else contains):
            self.assertIn(fragment, lines[0])
        return lines[0]

    def node_fails(self, contains):
        return self.fails("node", "--dir", self.dir, contains=contains)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, data, mode=None):
        with open(self.path(name), "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(self.path(name), mode)

    def test_a_corrupted_node_toml(self):
        with open(self.path("node.toml"), "rb") as f:
            good = f.read()
        security_line = good.split(b"\n").index(b"[security]") + 1
        cases = [
            (b"\x00\x01\x02garbage", "node.toml:1:1:"),
            (good[:good.index(b"schemas = ") + 14], "node.toml:"),           # cut in a string
            (good.replace(b"window = 4", b"window = \"four\""), "sync.window"),
            (good.replace(b"window = 4", b"window = 99999999999999999999"), "node.toml:"),
            (good.replace(b"heartbeat_ms = 1000", b"heartbeat_ms = -5"), "timing.heartbeat_ms"),
            (good.replace(b"[sync]", b"[sync]\n[sync]"), "node.toml:"),       # a table twice
            (good + b"\n\xff\xfe not utf-8\n", "node.toml:"),
            # A misspelt name is refused at its line, with the name it most likely meant.
            (good.replace(b"[security]", b"[securty]"),
             f"node.toml:{security_line}: unknown section [securty]; did you mean [security]?"),
            (good.replace(b"heartbeat_ms =", b"heartbeat ="),
             "unknown key timing.heartbeat; did you mean timing.heartbeat_ms?"),
        ]
        for data, said in cases:
            with self.subTest(said=said, data=data[-40:]):
                self.write("node.toml", data)
                self.node_fails([said])
        os.unlink(self.path("node.toml"))
        os.mkfifo(self.path("node.toml"))
        self.node_fails(["node.toml: not a regular file"])

    def test_damaged_key_files(self):
        with open(self.path("node.key"), "rb") as f:
            key = f.read()
        with open(self.path("node.pub"), "rb") as f:
            pub = f.read()
        self.write("node.key", key[:20], 0o600)
        self.node_fails(["node.key"])
        self.write("node.key", b"\x00" * 40 + b"\n", 0o600)
        self.node_fails(["node.key: holds a NUL byte"])
        self.write("node.key", key, 0o644)
        self.node_fails(["node.key: permissions 0644 are too open", "chmod 600"])
        self.write("node.key", key, 0o600)
        self.write("node.pub", pub[:-6] + b"00000\n")
        self.node_fails(["node.pub", "not the public key of"])
        os.unlink(self.path("node.pub"))
        os.mkfifo(self.path("node.pub"))
        self.node_fails(["node.pub: not a regular file"])

    def test_a_damaged_known_peers(self):
        self.write("known_peers", b"# keys\n" + b"A" * 40 + b"\nnot a key at all\n")
        self.node_fails(["known_peers:3: not a key"])
        self.write("known_peers", b"\x00" * 5000)
        self.node_fails(["known_peers:1: holds a NUL byte"])

    def test_an_unreadable_or_strange_migration_directory(self):
        schemas = os.path.join(self.tmp, "schemas")
        shutil.copytree(TASKS, schemas)
        os.chmod(self.tmp, 0o755)
        os.chmod(schemas, 0)
        # Permission bits do not stop root: be nobody for this command.
        as_other = (lambda: (os.setgid(65534), os.setuid(65534))) if os.geteuid() == 0 else None
        self.fails("history", "--schemas", schemas, preexec_fn=as_other,
                   contains=[schemas, "Permission denied"])
        os.chmod(schemas, 0o755)
        # A FIFO named like a migration: opening it would wait for a writer forever.
        os.mkfifo(os.path.join(schemas, "005_never.sql"))
        self.fails("history", "--schemas", schemas, contains="005_never.sql: not a regular file")
        os.unlink(os.path.join(schemas, "005_never.sql"))
        # A directory, and a file past the size limit, named like migrations.
        os.mkdir(os.path.join(schemas, "005_dir.sql"))
        self.fails("history", "--schemas", schemas, contains="005_dir.sql: not a regular file")
        os.rmdir(os.path.join(schemas, "005_dir.sql"))
        with open(os.path.join(schemas, "005_huge.sql"), "wb") as f:
            f.truncate(16 * 1024 * 1024 + 1)
        self.fails("history", "--schemas", schemas, contains="more than the limit")
        os.unlink(os.path.join(schemas, "005_huge.sql"))
        # A migration number past the limit.
        with open(os.path.join(schemas, "100001_far.sql"), "w") as f:
            f.write("SELECT 1;")
        self.fails("history", "--schemas", schemas, contains="not a migration file name")
        os.unlink(os.path.join(schemas, "100001_far.sql"))
        # The node, pointed at a directory that is gone.
        shutil.rmtree(schemas)
        with open(self.path("node.toml")) as f:
            text = f.read()
        with open(self.path("node.toml"), "w") as f:
            f.write(text.replace(f'schemas = "{TASKS}"', f'schemas = "{schemas}"'))
        self.node_fails([schemas])

    def test_absurd_numbers_on_the_command_line(self):
        db = os.path.join(self.tmp, "other.db")
        for to in ["99999999999999999999", "-1", "100001", "0x10", "3 ", ""]:
            self.fails("migrate", "--db", db, "--schemas", TASKS, "--to", to,
                       contains="--to must be a version number")
        self.fails("migrate", "--db", db, "--schemas", TASKS, "--to", "5",
                   contains="there is no version 5")
        self.assertFalse(os.path.exists(db))
        for port in ["0", "65536", "99999999999", "-1"]:
            self.fails("init", "--dir", os.path.join(self.tmp, "n2"), "--db", db, "--schemas",
                       TASKS, "--bind", f"tcp://127.0.0.1:{port}", contains="--bind:")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "n2")))

    @unittest.skipUnless(SQLITE3, "needs the sqlite3 shell")
    def test_bundles_with_absurd_numbers_and_hostile_names(self):
        me = node_id(self.db)
        ver = version_id(self.db)
        out = os.path.join(self.tmp, "x.stmb")

        def apply(ops, tables, columns, origin=me):
            with open(out, "wb") as f:
                f.write(bundle([batch(ops, [origin], [ver], tables, columns)], len(ops)))
            return subprocess.run([STEMMA, "apply", "--db", self.db, out], capture_output=True,
                                  text=True, timeout=60)

        # Past 2^62: the bundle is damaged, and nothing of it is applied.
        for bad in [op(2 ** 63 - 1, 0, "l1", 0, "T", "l1"),
                    op(1, 0, "l1", 0, "T", "l1", hlc=2 ** 63 - 1)]:
            p = apply([bad], ["lists"], ["id"])
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("seq or hlc is out of range", p.stderr)
        self.assertEqual(mt.sql(self.db, "SELECT count(*) FROM stemma_oplog"), "0")
        # At the limit, for this database's own origin: taken, and the application
        # still writes afterwards (at 2^63 - 1 every later write failed).
        p = apply([op(MAX62, 0, "l1", 0, "T", "l1"), op(MAX62 - 1, 0, "l1", 1, "T", "x")],
                  ["lists"], ["id", "name"])
        self.assertEqual(p.returncode, 0, p.stderr)
        mt.sql(self.db, "INSERT INTO lists (id, name) VALUES ('l2', 'mine')")
        self.assertEqual(mt.sql(self.db, "SELECT typeof(seq) FROM stemma_local"), "integer")
        # Hostile names: parked, never run; the warning shows control characters escaped.
        p = apply([op(1, 0, "r1", 0, "T", "v"), op(2, 1, "r1", 1, "T", "v")],
                  ['t"; DROP TABLE lists; --\n\x1b[2J', "lists"], ["c", "c'); DROP TABLE tasks; --"],
                  origin=b"\x42" * 32)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("parked 2", p.stdout)
        self.assertIn("\\x0a\\x1b[2J", p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        self.assertEqual(mt.sql(self.db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                "('lists', 'tasks')"), "2")


if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    mt.STEMMA = STEMMA
    BUNDLE, WIRE = mt.formats()
    unittest.main(verbosity=1)
