#!/usr/bin/python3
"""A TCP proxy on loopback that loses data on purpose, for tests/fault_test.py.

    lossy_proxy.py LISTEN_PORT TARGET_PORT STATUS_FILE [--seed N]

Forwards every connection made to 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT,
byte for byte, until it gets SIGUSR1; from then on, until SIGUSR2, it is a bad network:

- each connection may carry only a random number of bytes (0 to 256 KiB, each way
  counted together); the chunk that crosses that budget is forwarded only up to it,
  the rest of it is thrown away, and both sides are closed: the connection is cut in
  the middle of a message, and what was in flight is lost;
- now and then (one chunk in ten) the proxy stalls every connection for 0.2 to 0.8 s.

TCP cannot lose one message and deliver the next: ZeroMQ's stream (ZMTP, encrypted by
CURVE) would be broken from there on. So losing messages means what it means on a real
network: connections that die with bytes in flight, reconnections, and stalls. What was
lost has to come again from the nodes themselves (unacknowledged batches are sent
again), which is what the tests check.

After every cut and stall it writes STATUS_FILE (JSON, replaced whole): connections,
cuts, dropped_bytes, stalls, bytes forwarded. SIGTERM stops it.
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


class Proxy:
    def __init__(self, listen_port, target_port, status_file, seed):
        self.target = ("127.0.0.1", target_port)
        self.status_file = status_file
        self.rng = random.Random(seed)
        self.lossy = False
        self.stopping = False
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.stats = {"connections": 0, "cuts": 0, "dropped_bytes": 0, "stalls": 0,
                      "forwarded_bytes": 0}
        self.write_status()

    def write_status(self):
        tmp = self.status_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(self.stats, lossy=self.lossy), f)
        os.replace(tmp, self.status_file)

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
        pair = {"budget": self.rng.randint(0, 256 * 1024), "ends": (client, server)}
        self.sel.register(client, selectors.EVENT_READ, (pair, server))
        self.sel.register(server, selectors.EVENT_READ, (pair, client))

    def close(self, pair):
        for s in pair["ends"]:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def forward(self, src, pair, dst):
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
                self.send_all(dst, data[:keep])
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
        if not self.send_all(dst, data):
            self.close(pair)

    def send_all(self, dst, data):
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
            view = view[n:]
        return True

    def run(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.2):
                if key.data is None:
                    self.accept()
                else:
                    pair, dst = key.data
                    if key.fileobj.fileno() >= 0 and dst.fileno() >= 0:
                        self.forward(key.fileobj, pair, dst)
        self.write_status()


def main():
    args = sys.argv[1:]
    seed = 1
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    proxy = Proxy(int(args[0]), int(args[1]), args[2], seed)

    def lossy(on):
        def handler(signum, frame):
            proxy.lossy = on
            proxy.write_status()
        return handler

    def stop(signum, frame):
        proxy.stopping = True

    signal.signal(signal.SIGUSR1, lossy(True))
    signal.signal(signal.SIGUSR2, lossy(False))
    signal.signal(signal.SIGTERM, stop)
    proxy.run()


if __name__ == "__main__":
    main()
