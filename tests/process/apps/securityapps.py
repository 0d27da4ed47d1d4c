"""Apps for the security process tests: what a worker was handed (its descriptors, the notify
socket) and what the server set from a hostile request (the peer address)."""

from __future__ import annotations

import json
import os
import socket


def peer(environ, start_response):
    """Answers with "REMOTE_ADDR REMOTE_PORT wsgi.url_scheme" as the server set them."""
    body = " ".join(
        (environ.get("REMOTE_ADDR", "-"), environ.get("REMOTE_PORT", "-"), environ["wsgi.url_scheme"])
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


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


def forge_notify(environ, start_response):
    """Tries, from a worker, to speak for the service: MAINPID=<this worker>, READY=1 and a forged
    STATUS= to the notify socket named in /proc/self/environ (the exec-time environment, which
    still has NOTIFY_SOCKET though the master removed it from os.environ)."""
    with open("/proc/self/environ", "rb") as snapshot:
        variables = dict(
            item.split(b"=", 1) for item in snapshot.read().split(b"\0") if b"=" in item
        )
    path = variables.get(b"NOTIFY_SOCKET", b"").decode()
    sent = False
    if path:
        address = "\0" + path[1:] if path.startswith("@") else path
        message = f"MAINPID={os.getpid()}\nREADY=1\nSTATUS=forged by worker {os.getpid()}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
            sent = True
    body = json.dumps({
        "pid": os.getpid(),
        "in_os_environ": "NOTIFY_SOCKET" in os.environ,
        "in_proc_environ": bool(path),
        "sent": sent,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
