#!/usr/bin/python3
"""A TCP proxy on loopback for tests/fault_test.py and tests/mesh_test.py: it can hold
a stream at a known point, and lose data on purpose.

    lossy_proxy.py LISTEN_PORT TARGET_PORT STATUS_FILE [--seed N] [--hold-after BYTES]
                   [--lossy]

Forwards every connection made to 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT, byte
for byte. It reads commands from its standard input, one a line, and stops when that
ends (so it never outlives the test that started it) or at SIGTERM:

    allow N     forward N more bytes toward the target (summed over all connections),
                then hold: read nothing more from the connecting side until told
    open        forward without limit again (what is held goes first)
    lossy on    be a bad network, as below, until
    lossy off

--hold-after BYTES starts it with `allow BYTES` in force; --lossy with `lossy on`.

**Holding** freezes a stream at a known point whatever the speed of the machine: the
target gets exactly what the first N bytes carried, and nothing after them, however
long the test takes to look. The chunk that crosses the limit is cut there and its rest
kept; that connection is then not read from at all, so its sender's buffers fill and it
waits, as behind a stalled network. The target's answers (the CURVE handshake's replies)
still pass. `held_bytes` in the status says how much waits in the proxy: above 0, the
sender had more to send than the target got, so the stream was caught part way. A
connection whose target end closes is closed with what it held (the sender reconnects
and sends again what was never acknowledged, as after any lost connection).

**Lossy**, it is a bad network:

- each connection may carry only a random number of bytes (0 to 256 KiB, each way
  counted together, from when it is lossy); the chunk that crosses that budget is
  forwarded only up to it, the rest of it is thrown away, and both sides are closed:
  the connection is cut in the middle of a message, and what was in flight is lost;
- now and then (one chunk in ten) the proxy stalls every connection for 0.2 to 0.8 s.

TCP cannot lose one message and deliver the next: ZeroMQ's stream (ZMTP, encrypted by
CURVE) would be broken from there on. So losing messages means what it means on a real
network: connections that die with bytes in flight, reconnections, and stalls. What was
lost has to come again from the nodes themselves (unacknowledged batches are sent
again), which is what the tests check.

STATUS_FILE (JSON, replaced whole) is written at start, after every command (`commands`
counts them, so a test knows when one took effect), when a connection starts to hold,
after every cut and stall, and every 0.2 s or so: connections, cuts, dropped_bytes, stalls,
forwarded_bytes (both ways), to_target_bytes, held_bytes, limit (bytes still allowed,
null when open) and lossy.
"""
import json
import os
import random
import selectors
import signal
import socket
import sys
import time

CHUNK = 64 * 1024
LOSSY_BUDGET = 256 * 1024


class Proxy:
    def __init__(self, listen_port, target_port, status_file, seed, limit, lossy):
        self.target = ("127.0.0.1", target_port)
        self.status_file = status_file
        self.rng = random.Random(seed)
        self.lossy = lossy
        self.limit = limit  # bytes still allowed toward the target; None: no limit
        self.stopping = False
        self.pairs = []  # every open connection, in the order accepted
        self.commands = 0
        self.command_buf = b""
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        os.set_blocking(sys.stdin.fileno(), False)
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "command")
        self.stats = {"connections": 0, "cuts": 0, "dropped_bytes": 0, "stalls": 0,
                      "forwarded_bytes": 0, "to_target_bytes": 0}
        self.write_status()

    def write_status(self):
        held = sum(len(p["pending"]) for p in self.pairs)
        tmp = self.status_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(self.stats, held_bytes=held, limit=self.limit, lossy=self.lossy,
                           commands=self.commands), f)
        os.replace(tmp, self.status_file)

    # ---- commands ----

    def read_commands(self):
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except BlockingIOError:
            return
        if not data:
            self.stopping = True
            return
        self.command_buf += data
        while b"\n" in self.command_buf:
            line, self.command_buf = self.command_buf.split(b"\n", 1)
            self.command(line.decode().split())

    def command(self, words):
        if words[:1] == ["allow"] and len(words) == 2:
            self.limit = int(words[1])
        elif words == ["open"]:
            self.limit = None
        elif words == ["lossy", "on"]:
            self.lossy = True
        elif words == ["lossy", "off"]:
            self.lossy = False
        else:
            print(f"lossy_proxy: unknown command {' '.join(words)!r}", file=sys.stderr)
        self.release()
        self.commands += 1
        self.write_status()

    # ---- connections ----

    def accept(self):
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        server = socket.socket()
        try:
            server.settimeout(2)
            server.connect(self.target)
        except OSError:
            client.close()
            server.close()
            return
        self.stats["connections"] += 1
        client.setblocking(False)
        server.setblocking(False)
        pair = {"budget": self.rng.randint(0, LOSSY_BUDGET), "client": client,
                "server": server, "pending": b"", "open": True}
        self.pairs.append(pair)
        self.sel.register(client, selectors.EVENT_READ, pair)
        self.sel.register(server, selectors.EVENT_READ, pair)

    def close(self, pair):
        if not pair["open"]:
            return
        pair["open"] = False
        self.pairs.remove(pair)
        for s in (pair["client"], pair["server"]):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def forward(self, src, pair):
        to_target = src is pair["client"]
        dst = pair["server"] if to_target else pair["client"]
        try:
            data = src.recv(CHUNK)
        except OSError:
            data = b""
        if not data:
            self.close(pair)
            return
        if self.lossy:
            if len(data) > pair["budget"]:
                keep = pair["budget"]
                self.send_all(dst, data[:keep], to_target)
                self.stats["cuts"] += 1
                self.stats["dropped_bytes"] += len(data) - keep
                self.close(pair)
                self.write_status()
                return
            pair["budget"] -= len(data)
            if self.rng.random() < 0.1:
                self.stats["stalls"] += 1
                self.write_status()
                time.sleep(self.rng.uniform(0.2, 0.8))
        if to_target:
            pair["pending"] = data
            self.flush(pair)
            if pair["open"] and pair["pending"]:
                # Held: stop reading this connection until allowed (release()).
                self.sel.unregister(src)
                self.write_status()
        elif not self.send_all(dst, data, False):
            self.close(pair)

    def flush(self, pair):
        """Sends what pair holds toward the target, as far as the limit allows."""
        n = len(pair["pending"])
        if self.limit is not None:
            n = min(n, self.limit)
            self.limit -= n
        data, pair["pending"] = pair["pending"][:n], pair["pending"][n:]
        if data and not self.send_all(pair["server"], data, True):
            self.close(pair)

    def release(self):
        """After the limit was raised: what is held goes first, then reading resumes."""
        for pair in list(self.pairs):
            if not pair["pending"]:
                continue
            self.flush(pair)
            if pair["open"] and not pair["pending"]:
                self.sel.register(pair["client"], selectors.EVENT_READ, pair)

    def send_all(self, dst, data, to_target):
        view = memoryview(data)
        while view:
            try:
                n = dst.send(view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return False
            self.stats["forwarded_bytes"] += n
            if to_target:
                self.stats["to_target_bytes"] += n
            view = view[n:]
        return True

    def run(self):
        written = time.monotonic()
        while not self.stopping:
            if time.monotonic() > written + 0.2:
                self.write_status()
                written = time.monotonic()
            for key, _ in self.sel.select(timeout=0.2):
                if key.data == "accept":
                    self.accept()
                elif key.data == "command":
                    self.read_commands()
                elif key.data["open"]:
                    self.forward(key.fileobj, key.data)
        self.write_status()


def main():
    args = sys.argv[1:]
    options = {"--seed": 1, "--hold-after": None}
    for name in options:
        if name in args:
            i = args.index(name)
            options[name] = int(args[i + 1])
            del args[i:i + 2]
    lossy = "--lossy" in args
    if lossy:
        args.remove("--lossy")
    if len(args) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    proxy = Proxy(int(args[0]), int(args[1]), args[2], options["--seed"],
                  options["--hold-after"], lossy)

    def stop(signum, frame):
        proxy.stopping = True

    signal.signal(signal.SIGTERM, stop)
    proxy.run()


if __name__ == "__main__":
    main()
