"""WSGI apps the torture suite (tests/torture) serves."""

from __future__ import annotations

import json
import os
import signal
import time


def _reply(start_response, body: bytes, status: str = "200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def deaf_hang(environ, start_response):
    """Never answers and ignores the master's SIGABRT: only SIGKILL ends this worker."""
    signal.signal(signal.SIGABRT, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def echo(environ, start_response):
    """Reads the whole body (except for /unread); answers with its length and the worker's pid."""
    body = b"" if environ["PATH_INFO"] == "/unread" else environ["wsgi.input"].read()
    return _reply(start_response, f"{len(body)} {os.getpid()}".encode())


def identity(environ, start_response):
    """What the process is and what it sees: uids, the environment, and a file it creates
    (in the directory named by the TORTURE_DIR variable) with its mode."""
    path = os.path.join(os.environ.get("TORTURE_DIR", "/tmp"), f"created-by-{os.getpid()}")
    with open(path, "w") as stream:
        stream.write("x")
    info = {
        "pid": os.getpid(),
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
        "groups": os.getgroups(),
        "environ": dict(os.environ),
        "file": path,
        "file_mode": oct(os.stat(path).st_mode & 0o777),
    }
    os.unlink(path)
    return _reply(start_response, json.dumps(info).encode())


def mirror(environ, start_response):
    """The request body back, unchanged, with the worker's pid in `X-Pid` (proxy tests)."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body))), ("X-Pid", str(os.getpid()))])
    return [body]


async def mirror_asgi(scope, receive, send):
    """ASGI twin of `mirror`: the request body back with the worker's pid in `X-Pid`."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": body})
