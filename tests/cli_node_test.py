#!/usr/bin/python3
"""Command-line tests of stemma init: setting up a node's directory as a user would.

Run by ctest as `python3 tests/cli_node_test.py PATH/TO/stemma` from the source root.
node.toml is read back with tomli (python3-tomli), a TOML parser independent of ours,
and keys are decoded from Z85 here, so that what init prints, what it writes and what
it puts in the database are checked against each other.
"""
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import unittest

try:
    import tomli as toml_reader
except ImportError:  # pragma: no cover - Debian 12 has python3-tomli; 3.11 has tomllib
    import tomllib as toml_reader

STEMMA = None
SCHEMAS = os.path.abspath("schemas/tasks")  # four versions

Z85 = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
       ".-:+=^!/*?&<>()[]{}@%$#")


def z85_decode(text):
    """ZeroMQ RFC 32: every 5 characters are 4 bytes, big-endian, base 85."""
    assert len(text) % 5 == 0, text
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for c in text[i:i + 5]:
            value = value * 85 + Z85.index(c)
        out += value.to_bytes(4, "big")
    return bytes(out)


def z85_encode(data):
    assert len(data) % 4 == 0
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        chunk = []
        for _ in range(5):
            chunk.append(Z85[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


# zmq_curve(7)'s example client key; its Z85 holds an '@' of its own.
PEER_KEY = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"


def run(*args, cwd=None):
    p = subprocess.run([STEMMA, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path) as f:
        return f.read()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-cli-node-")
        self.node = self.path("node")
        self.db = self.path("app.db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def ok(self, *args, cwd=None):
        code, out, err = run(*args, cwd=cwd)
        self.assertEqual(code, 0, f"stemma {' '.join(args)}: exit {code}, stderr {err!r}")
        self.assertEqual(err, "")
        return out

    def fails(self, code_expected, *args, contains=()):
        code, out, err = run(*args)
        self.assertEqual(code, code_expected, f"stemma {' '.join(args)}: stderr {err!r}")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
        self.assertTrue(lines[0].startswith("stemma init: "), lines[0])
        for c in contains:
            self.assertIn(c, lines[0])
        return lines[0], out

    def init(self, *extra, node=None, db=None):
        """Runs stemma init; returns its output and the public key it printed."""
        out = self.ok("init", "--dir", node or self.node, "--db", db or self.db,
                      "--schemas", SCHEMAS, *extra)
        last = out.splitlines()[-1]
        self.assertTrue(last.startswith("public key: "), out)
        key = last[len("public key: "):]
        self.assertEqual(len(key), 40)
        return out, key

    def dir_command_fails(self, cmd, code_expected, *args, contains=()):
        """stemma CMD ARGS --dir NODE fails with code_expected and one line naming CMD."""
        code, out, err = run(cmd, *args, "--dir", self.node)
        self.assertEqual(code, code_expected, f"stemma {cmd} {' '.join(args)}: stderr {err!r}")
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith(f"stemma {cmd}: "), err)
        for c in contains:
            self.assertIn(c, err)
        return err

    def config(self, node=None):
        with open(os.path.join(node or self.node, "node.toml"), "rb") as f:
            return toml_reader.load(f)

    def node_id(self, db=None):
        con = sqlite3.connect(db or self.db)
        try:
            return con.execute("SELECT node_id FROM stemma_local").fetchone()[0]
        finally:
            con.close()


class Usage(Base):
    def test_help(self):
        for flag in ["--help", "-h"]:
            out = self.ok("init", flag)
            self.assertTrue(out.startswith("usage: stemma init --dir NODE_DIR --db FILE "
                                           "--schemas DIR"), out)
            for option in ["--bind", "--peer KEY@ENDPOINT", "--trust KEY", "--insecure",
                           "--trust-on-first-use", "--migrate", "--force"]:
                self.assertIn(option, out)
        self.assertIn("  init ", self.ok("--help"))

    def test_bad_arguments(self):
        d, db = self.node, self.db
        base = ["init", "--dir", d, "--db", db, "--schemas", SCHEMAS]
        self.fails(2, "init", contains=["--dir NODE_DIR, --db FILE and --schemas DIR are "
                                        "required", "--help"])
        self.fails(2, "init", "--dir", d, "--db", db, contains=["are required"])
        self.fails(2, "init", "--dir", "", "--db", db, "--schemas", SCHEMAS,
                   contains=["must not be empty"])
        self.fails(2, "init", "--dir", contains=["option '--dir' needs a value"])
        self.fails(2, *base, "--bogus", contains=["unknown option '--bogus'"])
        self.fails(2, *base, "extra", contains=["unexpected argument 'extra'"])
        self.fails(2, *base, "--bind", "tcp://localhost", contains=["--bind:", "has no port"])
        self.fails(2, *base, "--bind", "http://x:1", contains=["--bind:", "tcp://HOST:PORT"])
        self.fails(2, *base, "--control", "tcp://h:0", contains=["--control:", "port"])
        self.fails(2, *base, "--peer", "tcp://10.0.0.2:7420",
                   contains=["--peer:", "has no key", "--insecure"])
        self.fails(2, *base, "--peer", "short@tcp://10.0.0.2:7420",
                   contains=["--peer:", "is not KEY@ENDPOINT"])
        self.fails(2, *base, "--peer", PEER_KEY[:-1] + "~@tcp://h:1",
                   contains=["--peer:", "not valid Z85"])
        self.fails(2, *base, "--peer", PEER_KEY + "@tcp://h", contains=["has no port"])
        self.fails(2, *base, "--trust", "abc", contains=["--trust: 'abc' is not a key"])
        # Nothing was created by any of them.
        self.assertFalse(os.path.exists(d))
        self.assertFalse(os.path.exists(db))

    def test_schema_set_must_load(self):
        schemas = self.path("schemas")
        os.mkdir(schemas)
        with open(os.path.join(schemas, "001_first.sql"), "w") as f:
            f.write("CREATE TABLE t (id INTEGER PRIMARY KEY);\n")
        with open(os.path.join(schemas, "002_broken.sql"), "w") as f:
            f.write("CREATE TABLE t (id INTEGER PRIMARY KEY);\n")  # t exists already
        line, _ = self.fails(2, "init", "--dir", self.node, "--db", self.db,
                             "--schemas", schemas, contains=["002_broken.sql"])
        self.fails(2, "init", "--dir", self.node, "--db", self.db,
                   "--schemas", self.path("missing"), contains=["missing"])
        self.assertFalse(os.path.exists(self.node))
        self.assertFalse(os.path.exists(self.db))


class Init(Base):
    def test_creates_the_node(self):
        out, key = self.init()
        self.assertIn(f"created {self.node}\n", out)
        self.assertEqual(mode(self.node), 0o700)
        self.assertEqual(mode(self.path("node", "node.key")), 0o600)
        self.assertEqual(mode(self.path("node", "node.pub")), 0o644)
        self.assertEqual(mode(self.path("node", "node.toml")), 0o644)
        self.assertEqual(sorted(os.listdir(self.node)), ["node.key", "node.pub", "node.toml"])
        # The key printed is node.pub's, and the secret is another key of the same form.
        self.assertEqual(read(self.path("node", "node.pub")), key + "\n")
        secret = read(self.path("node", "node.key"))
        self.assertRegex(secret, r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}\n$")
        self.assertNotEqual(secret.strip(), key)
        self.assertEqual(len(z85_decode(key)), 32)
        self.assertNotIn(secret.strip(), out)
        # Without --migrate the database is left alone (it does not exist).
        self.assertFalse(os.path.exists(self.db))
        self.assertIn("not set up for stemma yet", out)
        cfg = self.config()
        self.assertEqual(cfg["node"]["db"], self.db)
        self.assertEqual(cfg["node"]["schemas"], SCHEMAS)
        self.assertEqual(cfg["node"]["bind"], "tcp://127.0.0.1:7420")
        self.assertEqual(cfg["node"]["control"], "ipc://" + self.node + "/control.sock")
        self.assertEqual(cfg["peers"]["addresses"], [])
        self.assertEqual(cfg["security"], {"insecure": False, "trust_on_first_use": False,
                                           "trusted": []})
        self.assertEqual(cfg["policy"], {"same": "full", "ancestor": "full",
                                         "descendant": "full", "divergent": "shared",
                                         "unrelated": "none", "min_supported_version": 0,
                                         "max_version_gap": 0})
        self.assertEqual(cfg["timing"], {"heartbeat_ms": 1000, "peer_timeout_ms": 5000,
                                         "reconnect_min_ms": 100, "reconnect_max_ms": 5000})
        self.assertEqual(cfg["sync"], {"batch_ops": 2000, "window": 4, "vector_deltas": True,
                                       "local_poll_ms": 200,
                                       "busy_timeout_ms": 1000, "max_clock_ahead_ms": 600000})
        # Every setting has a comment above it.
        lines = read(self.path("node", "node.toml")).splitlines()
        for i, line in enumerate(lines):
            if " = " in line and not line.startswith("#"):
                self.assertTrue(lines[i - 1].startswith("#"), f"no comment above {line!r}")

    def test_peers_and_trust(self):
        other = bytes(range(32))
        hexkey = other.hex().upper()
        _, key = self.init("--bind", "tcp://*:7500", "--advertise", "tcp://10.0.0.1:7500",
                           "--peer", PEER_KEY + "@tcp://10.0.0.2:7420",
                           "--peer", bytes(range(1, 33)).hex() + "@ipc:///tmp/peer.sock",
                           "--trust", hexkey, "--trust", PEER_KEY, "--trust-on-first-use")
        cfg = self.config()
        self.assertEqual(cfg["node"]["bind"], "tcp://*:7500")
        self.assertEqual(cfg["node"]["advertise"], "tcp://10.0.0.1:7500")
        # Keys are written in Z85 however they were given.
        z_other = z85_encode(bytes(range(1, 33)))
        self.assertEqual(cfg["peers"]["addresses"], [PEER_KEY + "@tcp://10.0.0.2:7420",
                                                     z_other + "@ipc:///tmp/peer.sock"])
        self.assertEqual(cfg["security"]["trusted"], [PEER_KEY, z_other, z85_encode(other)])
        self.assertTrue(cfg["security"]["trust_on_first_use"])
        self.assertFalse(cfg["security"]["insecure"])

    def test_a_wildcard_bind_without_advertise_is_warned_about(self):
        for bind in ("tcp://*:7500", "tcp://0.0.0.0:7500", "tcp://[::]:7500"):
            shutil.rmtree(self.node, ignore_errors=True)
            code, out, err = run("init", "--dir", self.node, "--db", self.db, "--schemas",
                                 SCHEMAS, "--bind", bind)
            self.assertEqual(code, 0, err)
            self.assertEqual(err, f"stemma init: warning: {bind} is a wildcard address and no "
                                  "--advertise is given: peers will be told no endpoint, so only "
                                  "those that list this node in their [peers] reach it; give "
                                  "--advertise tcp://ADDRESS:PORT with an address they can dial "
                                  "(node.toml: advertise)\n")
            self.assertEqual(self.config()["node"]["advertise"], "")
        # A wildcard cannot be advertised, from the command line or node.toml.
        self.fails(2, "init", "--dir", self.path("w"), "--db", self.db, "--schemas", SCHEMAS,
                   "--advertise", "tcp://0.0.0.0:7500", contains=["--advertise", "wildcard"])
        self.fails(2, "init", "--dir", self.path("w"), "--db", self.db, "--schemas", SCHEMAS,
                   "--advertise", "tcp://*:7500", contains=["--advertise"])
        toml = os.path.join(self.node, "node.toml")
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace('advertise = ""', 'advertise = "tcp://[::]:7500"'))
        code, _, err = run("node", "--dir", self.node)
        self.assertEqual(code, 2, err)
        self.assertIn("node.advertise", err)
        self.assertIn("is a wildcard address", err)

    def test_insecure_peer_without_key(self):
        self.init("--insecure", "--peer", "tcp://10.0.0.2:7420")
        cfg = self.config()
        self.assertTrue(cfg["security"]["insecure"])
        self.assertEqual(cfg["peers"]["addresses"], ["tcp://10.0.0.2:7420"])
        self.assertEqual(cfg["security"]["trusted"], [])

    def test_refuses_a_second_init_and_force_keeps_the_key(self):
        _, key = self.init()
        before = {n: read(self.path("node", n)) for n in os.listdir(self.node)}
        line, out = self.fails(2, "init", "--dir", self.node, "--db", self.db,
                               "--schemas", SCHEMAS, contains=["already exists", "--force"])
        self.assertEqual(out, "")
        self.assertEqual({n: read(self.path("node", n)) for n in os.listdir(self.node)}, before)
        # Only the key there: refused as well.
        os.unlink(self.path("node", "node.toml"))
        self.fails(2, "init", "--dir", self.node, "--db", self.db, "--schemas", SCHEMAS,
                   contains=["node.key already exists"])
        # --force writes node.toml again and keeps the pair.
        out, key2 = self.init("--force", "--bind", "tcp://127.0.0.1:7999")
        self.assertEqual(key2, key)
        self.assertIn("kept", out)
        self.assertEqual(read(self.path("node", "node.key")), before["node.key"])
        self.assertEqual(read(self.path("node", "node.pub")), before["node.pub"])
        self.assertEqual(self.config()["node"]["bind"], "tcp://127.0.0.1:7999")
        self.assertEqual([n for n in os.listdir(self.node) if ".tmp" in n], [])

    def test_force_checks_the_kept_key(self):
        self.init()
        key_path = self.path("node", "node.key")
        os.chmod(key_path, 0o644)
        self.fails(2, "init", "--force", "--dir", self.node, "--db", self.db,
                   "--schemas", SCHEMAS, contains=[key_path, f"chmod 600 {key_path}"])
        os.chmod(key_path, 0o600)
        with open(key_path, "w") as f:
            f.write("not a key\n")
        self.fails(2, "init", "--force", "--dir", self.node, "--db", self.db,
                   "--schemas", SCHEMAS, contains=[key_path, "not a key"])

    def test_migrate_records_the_origin(self):
        out, key = self.init("--migrate")
        self.assertIn("now at version 4", out)
        # The database's writes carry an origin of their own, never the node's key: a
        # fresh database set up with an old key would reuse its (origin, seq) pairs.
        self.assertIn(f"database {self.db}: its writes carry origin {self.node_id().hex()[:12]}\n",
                      out)
        con = sqlite3.connect(self.db)
        try:
            versions = [r[0] for r in con.execute("SELECT version FROM schema_version "
                                                  "ORDER BY version")]
        finally:
            con.close()
        self.assertEqual(versions, [1, 2, 3, 4])
        self.assertNotEqual(self.node_id(), z85_decode(key))

    def test_existing_database_keeps_its_origin(self):
        self.ok("migrate", "--db", self.db, "--schemas", SCHEMAS, "--to", "2", "--no-backup")
        before = self.node_id()
        out, key = self.init()
        self.assertEqual(self.node_id(), before)
        # --migrate on a database already set up: the rest of the way, with a backup.
        out, key2 = self.init("--force", "--migrate")
        self.assertEqual(key2, key)
        self.assertIn("now at version 4", out)
        self.assertTrue(any(n.endswith(".bak") for n in os.listdir(self.tmp)))
        self.assertEqual(self.node_id(), before)

    def test_new_identity_for_an_imaged_device(self):
        out, key = self.init("--migrate")
        origin = self.node_id()
        with open(self.path("node", "node.key")) as f:
            secret = f.read()
        out, key2 = self.init("--new-identity")
        self.assertNotEqual(key2, key)
        self.assertNotEqual(self.node_id(), origin)
        self.assertIn(f"its writes carry origin {self.node_id().hex()[:12]}", out)
        # The old key pair is kept aside, not lost.
        with open(self.path("node", "node.key.old")) as f:
            self.assertEqual(f.read(), secret)
        self.assertTrue(os.path.exists(self.path("node", "node.pub.old")))
        # Only for a node that exists.
        code, out, err = run("init", "--dir", self.path("none"), "--db", self.db,
                             "--schemas", SCHEMAS, "--new-identity")
        self.assertEqual(code, 2)
        self.assertIn("holds no node: --new-identity gives an existing node", err)
        self.assertFalse(os.path.exists(self.path("none")))

    def test_not_a_database(self):
        with open(self.db, "w") as f:
            f.write("this is not SQLite\n" * 100)
        self.fails(2, "init", "--dir", self.node, "--db", self.db, "--schemas", SCHEMAS,
                   contains=[self.db])
        self.assertFalse(os.path.exists(self.path("node", "node.toml")))

    def test_relative_paths_are_made_absolute(self):
        out = self.ok("init", "--dir", "n", "--db", "./data.db", "--schemas", SCHEMAS,
                      cwd=self.tmp)
        cfg = self.config(self.path("n"))
        self.assertEqual(cfg["node"]["db"], self.path("data.db"))
        self.assertEqual(cfg["node"]["control"], "ipc://" + self.path("n", "control.sock"))

    def test_nested_directory_is_created(self):
        node = self.path("a", "b", "node")
        self.init(node=node)
        self.assertEqual(mode(self.path("a")), 0o700)
        self.assertEqual(mode(node), 0o700)
        # A file where the directory should be.
        with open(self.path("file"), "w") as f:
            f.write("x")
        self.fails(2, "init", "--dir", self.path("file"), "--db", self.db, "--schemas", SCHEMAS,
                   contains=["not a directory"])

    def test_long_control_path(self):
        node = self.path("d" * 120)
        self.fails(2, "init", "--dir", node, "--db", self.db, "--schemas", SCHEMAS,
                   contains=["--control ENDPOINT"])
        self.init("--control", "ipc:///tmp/stemma-test-control.sock", node=node)



class Trust(Base):
    """stemma trust on a node that is not running: the files edited directly."""

    def trust(self, *args):
        return self.ok("trust", *args, "--dir", self.node)

    def trust_fails(self, code_expected, *args, contains=()):
        return self.dir_command_fails("trust", code_expected, *args, contains=contains)

    def test_add_list_remove_without_a_running_node(self):
        self.init("--trust", PEER_KEY)
        # A key given in hex, and one whose Z85 starts with '-': the key comes before
        # the options, so it is never taken for one.
        other = bytes(range(32))
        dash = z85_encode((63 * 85 ** 4).to_bytes(4, "big") + bytes(28))
        self.assertTrue(dash.startswith("-"))
        out = self.trust("add", other.hex())
        self.assertIn(f"trusting {z85_encode(other)}", out)
        self.assertIn("no node is running on", out)
        self.assertIn(f"trusting {dash}", self.trust("add", dash))
        self.assertIn("trusted already (known_peers)", self.trust("add", z85_encode(other)))
        self.assertIn("trusted already (node.toml [security] trusted)",
                      self.trust("add", PEER_KEY))
        known = read(self.path("node", "known_peers"))
        self.assertEqual([line for line in known.splitlines() if not line.startswith("#")],
                         [z85_encode(other), dash])
        listed = self.trust("list")
        self.assertIn(f"{PEER_KEY} node.toml [security] trusted\n", listed)
        self.assertIn(f"{dash} known_peers\n", listed)
        self.assertIn("3 keys trusted; trust on first use is off", listed)
        # Removed from known_peers, so not trusted at the next start; node.toml's keys
        # are not the command's to remove.
        out = self.trust("remove", z85_encode(other))
        self.assertIn("no longer trusting", out)
        self.assertIn("no node is running on", out)
        self.assertNotIn(z85_encode(other), read(self.path("node", "known_peers")))
        self.assertNotIn(z85_encode(other), self.trust("list"))
        self.trust_fails(1, "remove", z85_encode(other), contains=["is not trusted"])
        self.trust_fails(1, "remove", PEER_KEY,
                         contains=["node.toml [security] trusted", "edit node.toml"])
        # The node.toml key stays.
        self.assertIn(PEER_KEY, self.trust("list"))

    def test_trust_on_first_use_is_said_when_a_key_is_removed(self):
        self.init("--trust-on-first-use")
        key = z85_encode(bytes(range(32)))
        self.trust("add", key)
        self.assertIn("trusted again when it next connects", self.trust("remove", key))

    def test_usage_and_an_insecure_node(self):
        self.init("--insecure")
        key = z85_encode(bytes(range(32)))
        self.trust_fails(1, "add", key, contains=["insecure"])
        self.trust_fails(2, "add", "nokey", contains=["not a key"])
        self.trust_fails(2, "add", contains=["'--dir' is not a key"])
        code, out, err = run("trust", "add")
        self.assertEqual(code, 2)
        self.assertIn("add needs a KEY", err)
        self.trust_fails(2, "forget", key, contains=["add KEY, remove KEY or list"])
        code, out, err = run("trust", "list")
        self.assertEqual(code, 2)
        self.assertIn("--dir NODE_DIR or --control ENDPOINT", err)
        self.assertIn("usage: stemma trust add KEY", self.ok("trust", "--help"))
        # A directory that is not a node's.
        code, out, err = run("trust", "list", "--dir", self.path("nothing"))
        self.assertNotEqual(code, 0)
        self.assertIn("node.toml", err)


class Peer(Base):
    """stemma peer on a node that is not running: node.toml edited directly."""

    def peer(self, *args):
        return self.ok("peer", *args, "--dir", self.node)

    def peer_fails(self, code_expected, *args, contains=()):
        return self.dir_command_fails("peer", code_expected, *args, contains=contains)

    def test_add_and_remove_without_a_running_node(self):
        self.init("--bind", "tcp://127.0.0.1:7500")
        # A setting changed by hand is kept when the command writes node.toml.
        toml = self.path("node", "node.toml")
        text = re.sub(r"(?m)^heartbeat_ms = \d+$", "heartbeat_ms = 1234", read(toml))
        with open(toml, "w") as f:
            f.write(text)
        spec = PEER_KEY + "@tcp://10.0.0.2:7420"
        out = self.peer("add", spec)
        self.assertIn(f"peer {spec} added to", out)
        self.assertIn("no node is running on", out)
        cfg = self.config()
        self.assertEqual(cfg["peers"]["addresses"], [spec])
        self.assertEqual(cfg["security"]["trusted"], [PEER_KEY])
        # The other settings are kept.
        self.assertEqual(cfg["node"]["bind"], "tcp://127.0.0.1:7500")
        self.assertEqual(cfg["timing"]["heartbeat_ms"], 1234)
        self.peer_fails(1, "add", PEER_KEY + "@tcp://10.0.0.3:7420", contains=["a peer already"])
        self.peer_fails(1, "add", "nokey@tcp://10.0.0.3:7420", contains=["not KEY@ENDPOINT"])
        self.peer_fails(1, "add", "tcp://10.0.0.3:7420", contains=["has no key"])
        # A key in known_peers too stays trusted there, and the command says so.
        with open(self.path("node", "known_peers"), "w") as f:
            f.write(PEER_KEY + "\n")
        out = self.peer("remove", PEER_KEY)
        self.assertIn("removed from", out)
        self.assertIn("still in known_peers", out)
        cfg = self.config()
        self.assertEqual(cfg["peers"]["addresses"], [])
        self.assertEqual(cfg["security"]["trusted"], [])
        self.assertEqual(cfg["timing"]["heartbeat_ms"], 1234)
        self.peer_fails(1, "remove", PEER_KEY, contains=["no peer"])
        code, out, err = run("peer", "list", "--dir", self.node)
        self.assertEqual(code, 2)
        self.assertIn("say add or remove", err)
        self.assertIn("usage: stemma peer add KEY@ENDPOINT", self.ok("peer", "--help"))

    def test_an_insecure_node_names_peers_by_endpoint(self):
        self.init("--insecure")
        self.peer("add", "tcp://10.0.0.3:7420")
        self.assertEqual(self.config()["peers"]["addresses"], ["tcp://10.0.0.3:7420"])
        self.peer("remove", "tcp://10.0.0.3:7420")
        self.assertEqual(self.config()["peers"]["addresses"], [])

if __name__ == "__main__":
    STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
