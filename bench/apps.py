"""The apps the benchmark serves: WSGI (unitcorn and gunicorn) and their ASGI twins (unitcorn's
asgi worker and uvicorn), each doing the same work."""

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


async def _answer(send, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def hello_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await _answer(send, _HELLO, b"text/plain")


async def big_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await _answer(send, _BIG, b"application/octet-stream")


async def echo_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    await _answer(send, b"".join(chunks), b"application/octet-stream")
