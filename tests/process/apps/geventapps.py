"""A WSGI app for the gevent worker's tests: it waits the way gevent apps do."""

from __future__ import annotations

import os
import time


def app(environ, start_response):
    """/sleep?SECONDS: time.sleep (patched: other greenlets run meanwhile); /patched: whether
    socket was monkey-patched before this app was imported; anything else: the pid."""
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"]))
        body = b"slept"
    elif path == "/patched":
        body = str(PATCHED_AT_IMPORT).encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _socket_is_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


PATCHED_AT_IMPORT = _socket_is_patched()
