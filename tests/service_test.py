#!/usr/bin/python3
"""`stemma node` under a Type=notify systemd unit (packaging/stemma@.service): it says
READY=1 once its sockets are bound (its control socket answers then) and STOPPING=1 as
it stops, as a datagram to the socket $NOTIFY_SOCKET names, a path or an abstract name
('@'); without the variable it sends nothing and runs the same.

Run by ctest as `python3 tests/service_test.py PATH/TO/stemma` from the source root."""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh_test  # noqa: E402
from mesh_test import Node, TASKS  # noqa: E402


class Notify(mesh_test.Mesh):
    def run_notified(self, address, env_value):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(address)
        listener.settimeout(30)  # only matters when it is broken
        a = Node(self, "a", TASKS, 2)
        os.environ["NOTIFY_SOCKET"] = env_value
        try:
            a.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        ready = listener.recv(4096).decode()
        self.assertEqual(ready.splitlines()[0], "READY=1", ready)
        # Ready means serving: the control socket answers at once.
        self.assertEqual(a.report()["node"]["id"], a.key)
        a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(listener.recv(4096).decode(), "STOPPING=1")
        self.assertEqual(a.proc.wait(timeout=30), 0)

    def test_ready_and_stopping_on_a_path(self):
        path = os.path.join(self.tmp, "notify.sock")
        self.run_notified(path, path)

    def test_ready_and_stopping_on_an_abstract_name(self):
        name = f"stemma-test-notify-{os.getpid()}"
        self.run_notified("\0" + name, "@" + name)


if __name__ == "__main__":
    mesh_test.STEMMA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
