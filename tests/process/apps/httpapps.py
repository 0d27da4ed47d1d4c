"""WSGI apps for the HTTP process tests; each is also served through wsgiref.validate."""

from __future__ import annotations

import os
import time
from pathlib import Path
from wsgiref.validate import validator


def _reply(start_response, body: bytes, status: str = "200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, start_response):
    """/echo: the request body back; /lines: its lines counted via readline and iteration;
    /stream: three chunks from a generator (chunked framing); /sleep?SECONDS&MARKER: writes the
    file MARKER (the request is in flight), then sleeps; /refuse: 413 without reading the body;
    /big?BYTES: that many bytes in 64 KiB blocks; /pauses?SECONDS&BYTES&COUNT: COUNT blocks of
    BYTES, the app thinking for SECONDS before each; anything else: the worker's pid."""
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"]
    if path == "/echo":
        parts = []
        while part := body.read(65536):  # wsgi.input_terminated: read to the end, chunked too
            parts.append(part)
        return _reply(start_response, b"".join(parts))
    if path == "/lines":
        first = body.readline()
        rest = list(body)
        return _reply(start_response, b"%d %d %d" % (len(first), len(rest), sum(map(len, rest))))
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (part for part in (b"one,", b"two,", b"three"))
    if path == "/sleep":
        seconds, marker = environ["QUERY_STRING"].split("&", 1)
        Path(marker).write_text("in flight")
        time.sleep(float(seconds))
        return _reply(start_response, b"slept")
    if path == "/refuse":
        return _reply(start_response, b"too large", "413 Content Too Large")
    if path == "/big":
        size = int(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        block = b"x" * 65536
        return (block[: min(65536, size - sent)] for sent in range(0, size, 65536))
    if path == "/pauses":
        seconds, size, count = environ["QUERY_STRING"].split("&")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(int(size) * int(count)))])
        return _thinking_blocks(float(seconds), int(size), int(count))
    return _reply(start_response, str(os.getpid()).encode())


def _thinking_blocks(seconds: float, size: int, count: int):
    for _ in range(count):
        time.sleep(seconds)
        yield b"x" * size


validated_echo = validator(echo)
