"""ASGI apps for the asgi worker's process tests: a raw ASGI 3 app and a Starlette one."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path


async def _read_body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _reply(send, body: bytes, status: int = 200, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def echo(scope, receive, send):
    """/echo: the body back; /stream: three chunks; /state: the lifespan state; /refuse: 413
    without reading the body; /big?BYTES; /pauses?SECONDS&BYTES&COUNT; /block?SECONDS blocks
    the loop (a stuck app); anything else: the worker's pid. Lifespan: startup sets state, shutdown writes
    $ASGI_SHUTDOWN_MARKER."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_by"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            else:
                marker = os.environ.get("ASGI_SHUTDOWN_MARKER")
                if marker:
                    Path(marker).write_text(f"shutdown {os.getpid()}\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/echo":
        await _reply(send, await _read_body(receive))
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/scope":
        await _reply(send, json.dumps({"scheme": scope["scheme"], "client": scope["client"]}).encode())
    elif path == "/nap":
        await asyncio.sleep(float(scope["query_string"].split(b"&")[0]))  # others run meanwhile
        await _reply(send, b"rested")
    elif path == "/state":
        await _reply(send, json.dumps(scope["state"]).encode())
    elif path == "/refuse":
        await _reply(send, b"too large", 413)
    elif path == "/big":
        size = int(scope["query_string"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        block = b"x" * 65536
        for sent in range(0, size, 65536):
            await send({"type": "http.response.body", "body": block[: min(65536, size - sent)],
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/pauses":  # SECONDS&BYTES&COUNT: COUNT blocks, the app thinking before each
        seconds, size, count = (float(part) for part in scope["query_string"].split(b"&"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(int(size * count)).encode())]})
        for _ in range(int(count)):
            await asyncio.sleep(seconds)
            await send({"type": "http.response.body", "body": b"x" * int(size), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/block":
        import time
        time.sleep(float(scope["query_string"]))  # blocks the event loop, as a buggy app would
        await _reply(send, b"unblocked")
    else:
        await _reply(send, str(os.getpid()).encode())


async def ignores_disconnect(scope, receive, send):
    """Reads the request, hears http.disconnect, then waits on regardless: writes
    $ASGI_MARKER_DIR/told when told, /cancelled when the server cancels it (no lifespan)."""
    assert scope["type"] == "http"
    markers = Path(os.environ["ASGI_MARKER_DIR"])
    await _read_body(receive)
    (markers / "reading").write_text("")
    while (await receive())["type"] != "http.disconnect":
        pass
    (markers / "told").write_text("")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        (markers / "cancelled").write_text("")
        raise


async def failing_startup(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


async def no_lifespan(scope, receive, send):
    """A plain app that refuses the lifespan scope, as many do: served anyway."""
    assert scope["type"] == "http"
    await _reply(send, b"plain")


def _starlette_app():
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    done = []

    async def items(request):
        payload = await request.json()
        return JSONResponse({"received": payload, "client": request.client.host},
                            background=BackgroundTask(done.append, payload))

    async def background(request):
        return JSONResponse({"done": done})

    async def numbers(request):
        async def generate():
            for number in range(5):
                yield f"{number}\n".encode()
                await asyncio.sleep(0)
        return StreamingResponse(generate(), media_type="text/plain")

    return Starlette(routes=[Route("/items", items, methods=["POST"]),
                             Route("/background", background), Route("/numbers", numbers)])


starlette = _starlette_app()


async def websocket_echo(scope, receive, send):
    """WebSocket echo (text and bytes); "close" closes with 4000; a subprotocol is echoed;
    the path /refuse closes before accepting (HTTP 403). HTTP requests get the pid."""
    if scope["type"] == "lifespan":
        return await echo(scope, receive, send)
    if scope["type"] == "http":
        return await _reply(send, str(os.getpid()).encode())
    message = await receive()
    assert message["type"] == "websocket.connect"
    if scope["path"] == "/refuse":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept",
                "subprotocol": scope["subprotocols"][0] if scope["subprotocols"] else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            marker = os.environ.get("WS_DISCONNECT_MARKER")
            if marker:
                with open(marker, "a") as out:
                    out.write(f"{message['code']}\n")
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000})
            return
        if message.get("text") == "pid":
            await send({"type": "websocket.send", "text": str(os.getpid())})
        elif message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
