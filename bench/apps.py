"""The WSGI apps the benchmark serves (identical for unitcorn and gunicorn)."""

from __future__ import annotations

_HELLO = b"Hello, World!"
_BIG = b"x" * 65536


def hello(environ, start_response):
    """13 bytes, known length: the request/response machinery and nothing else."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [_HELLO]


def big(environ, start_response):
    """A 64 KiB response body."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "65536")])
    return [_BIG]


def echo(environ, start_response):
    """Reads the whole request body and sends it back."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
