"""WSGI apps the process tests serve."""

from __future__ import annotations

import os
import time


def _reply(start_response, body: bytes, status: str = "200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def pid(environ, start_response):
    """Answers with the worker's pid, so tests can tell generations apart."""
    return _reply(start_response, str(os.getpid()).encode())


def slow(environ, start_response):
    """Sleeps for ?SECONDS before answering (an in-flight request for graceful stops)."""
    seconds = float(environ.get("QUERY_STRING") or "1")
    time.sleep(seconds)
    return _reply(start_response, f"slept {seconds} in {os.getpid()}".encode())


def env(environ, start_response):
    """Answers with the value of the process environment variable named by the query."""
    name = environ.get("QUERY_STRING", "")
    return _reply(start_response, os.environ.get(name, "<unset>").encode())


def boom(environ, start_response):
    """Raises, so the server logs a traceback and answers 500."""
    raise RuntimeError("boom from the test app")


def route(environ, start_response):
    """/slow?N, /env?NAME, /boom, anything else: the pid."""
    path = environ["PATH_INFO"]
    if path == "/boom":
        return boom(environ, start_response)
    if path == "/slow":
        return slow(environ, start_response)
    if path == "/env":
        return env(environ, start_response)
    return pid(environ, start_response)


def hang(environ, start_response):
    """Never answers (a stuck worker for the timeout test)."""
    while True:
        time.sleep(3600)


async def route_asgi(scope, receive, send):
    """ASGI twin of `route` for the torture storms: the pid (lifespan accepted, nothing to do)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
