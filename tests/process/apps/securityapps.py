"""Apps that look at what a worker was handed: its descriptors, and what it can do with them."""

from __future__ import annotations

import json
import os


def descriptors(environ, start_response):
    """Answers with this worker's pid, every open descriptor ({"fd": readlink target}) and the
    inodes of the TCP sockets that exist right now."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            pass  # the descriptor listdir itself used, already closed again
    # TCP sockets now, while this request's connection still exists (the test's view comes later).
    tcp = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            tcp += [int(row.split()[9]) for row in list(rows)[1:]]
    body = json.dumps({"pid": os.getpid(), "fds": found, "tcp": tcp}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
