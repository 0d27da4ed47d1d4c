"""Apps for the TLS process tests: they say what they saw of the connection's scheme."""

from __future__ import annotations

import os


def scheme(environ, start_response):
    """GET: "<wsgi.url_scheme> <HTTPS> <pid>"; POST: the body back; /file: FILE through
    wsgi.file_wrapper (sendfile would bypass TLS)."""
    if environ["PATH_INFO"] == "/file":
        path = environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Length", str(os.path.getsize(path)))])
        return environ["wsgi.file_wrapper"](open(path, "rb"))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        body = environ["wsgi.input"].read(length)
    else:
        body = f"{environ['wsgi.url_scheme']} {environ.get('HTTPS', '-')} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


async def scheme_asgi(scope, receive, send):
    """The ASGI twin of `scheme` (without /file)."""
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
    body = b"".join(chunks) or f"{scope['scheme']} - {os.getpid()}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
