"""The FastAPI app the asgi system test serves: `/` answers the worker's pid (so a client can
tell the generations apart), `/ws` echoes WebSocket text, answering "pid" with the worker's pid.

It uses only what FastAPI 0.92 (bookworm) and 0.115 (trixie) both have.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def index() -> str:
    return str(os.getpid())


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(str(os.getpid()) if text == "pid" else text)
    except WebSocketDisconnect:
        pass
