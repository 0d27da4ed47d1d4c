"""WebSockets for the asgi worker: an upgraded connection's frames ⇄ ASGI websocket events.

The frames are wsproto's (a well-kept sans-IO WebSocket library, as our HTTP parser is for
HTTP): it parses and builds frames, answers pings and runs permessage-deflate.  This module does
the opening handshake from the request our parser already read (RFC 6455 §4.2), enforces a
message size limit (wsproto has none), pings the client, and closes with 1012 ("service
restart") when the worker retires, so clients reconnect to the new generation.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from wsproto import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import ProtocolError, generate_accept_token

from unitcorn.http.parser import Request
from unitcorn.logs import ERROR_LOGGER

log = logging.getLogger(ERROR_LOGGER)

# Frames a client sends before the app accepted are held up to this (or the message limit).
_MAX_EARLY = 16 << 20
PING_INTERVAL = 20.0  # seconds between our pings; no pong by the next one: close 1011
_BAD_HEADER = re.compile(r"[\r\n\x00]")


def is_websocket_upgrade(request: Request) -> bool:
    """RFC 6455 §4.2.1: a GET asking to upgrade to websocket, version 13, with a key."""
    if request.method != "GET" or request.version != (1, 1):
        return False
    fields = {name: value for name, value in request.headers}
    connection = {token.strip().lower() for token in fields.get("CONNECTION", "").split(",")}
    return (fields.get("UPGRADE", "").lower() == "websocket" and "upgrade" in connection
            and fields.get("SEC-WEBSOCKET-VERSION") == "13" and bool(fields.get("SEC-WEBSOCKET-KEY")))


def _deflate_offer(header: str) -> tuple[PerMessageDeflate | None, str]:
    for offer in header.split(","):
        if offer.split(";", 1)[0].strip().lower() == "permessage-deflate":
            extension = PerMessageDeflate()
            parameters = extension.accept(offer.strip())
            if isinstance(parameters, str):
                return extension, "; ".join(filter(None, ("permessage-deflate", parameters)))
    return None, ""


class WebSocketSession:
    """The ASGI side of one WebSocket: receive/send for the app, frames for the transport."""

    def __init__(self, request: Request, write: Callable[[bytes], None], close: Callable[[], None],
                 refuse: Callable[[int, str], None], max_message: int) -> None:
        self._request = request
        self._max_message = max_message or None  # websocket_max_message_size; 0: no limit
        self._max_early = min(max_message or _MAX_EARLY, _MAX_EARLY)
        self._write = write
        self._close_transport = close
        self._refuse = refuse
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._events.put_nowait({"type": "websocket.connect"})
        self._ws: Connection | None = None
        self._fragments: list[bytes | str] = []
        self._fragment_size = 0
        self._is_closed = False
        self._awaiting_pong = False
        self._ping: asyncio.TimerHandle | None = None
        self._pending = b""  # frames that came before the app accepted

    @property
    def is_accepted(self) -> bool:
        return self._ws is not None

    # -- from the client -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._ws is None:
            self._pending += data[: self._max_early - len(self._pending)]
            return
        self._ws.receive_data(data)
        try:
            for event in self._ws.events():
                self._handle(event)
        except ProtocolError as exc:
            log.info("websocket protocol error: %s", exc)
            self._send_close(1002, "protocol error")

    def connection_lost(self) -> None:
        if not self._is_closed:
            self._is_closed = True
            self._events.put_nowait({"type": "websocket.disconnect", "code": 1006})
        if self._ping is not None:
            self._ping.cancel()

    def _handle(self, event: Any) -> None:
        if isinstance(event, Message):
            self._fragment_size += len(event.data)
            if self._max_message is not None and self._fragment_size > self._max_message:
                self._send_close(1009, "message too big")
                return
            self._fragments.append(event.data)
            if event.message_finished:
                key = "text" if isinstance(event, TextMessage) else "bytes"
                data: Any = "".join(self._fragments) if key == "text" else b"".join(self._fragments)  # type: ignore[arg-type]
                self._fragments, self._fragment_size = [], 0
                self._events.put_nowait({"type": "websocket.receive", key: data})
        elif isinstance(event, Ping):
            self._write(self._ws.send(event.response()))  # type: ignore[union-attr]
        elif isinstance(event, CloseConnection):
            if not self._is_closed:
                self._is_closed = True
                self._write(self._ws.send(event.response()))  # type: ignore[union-attr]
                self._events.put_nowait({"type": "websocket.disconnect", "code": event.code})
            self._close_transport()
        else:  # a Pong
            self._awaiting_pong = False

    # -- the app's side --------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        return await self._events.get()

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self._is_closed:
            return
        if kind == "websocket.accept" and self._ws is None:
            self._accept(message)
        elif kind == "websocket.close" and self._ws is None:
            self._is_closed = True
            self._refuse(403, "WebSocket connection refused by the application")
        elif kind == "websocket.send" and self._ws is not None:
            text = message.get("text")
            event = TextMessage(text) if text is not None else BytesMessage(message.get("bytes") or b"")
            self._write(self._ws.send(event))
        elif kind == "websocket.close":
            self._send_close(int(message.get("code", 1000)), str(message.get("reason") or ""))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _accept(self, message: dict[str, Any]) -> None:
        fields = {name: value for name, value in self._request.headers}
        extension, extension_header = _deflate_offer(fields.get("SEC-WEBSOCKET-EXTENSIONS", ""))
        token = generate_accept_token(fields["SEC-WEBSOCKET-KEY"].encode()).decode()
        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Accept: {token}"]
        if message.get("subprotocol"):
            lines.append(f"Sec-WebSocket-Protocol: {message['subprotocol']}")
        if extension_header:
            lines.append(f"Sec-WebSocket-Extensions: {extension_header}")
        for name, value in message.get("headers", []):
            line = f"{name.decode('latin-1')}: {value.decode('latin-1')}"
            if _BAD_HEADER.search(line):
                raise ValueError("control character in a WebSocket response header")
            lines.append(line)
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self._ws = Connection(ConnectionType.SERVER, extensions=[extension] if extension else None)
        self._schedule_ping()
        pending, self._pending = self._pending, b""
        if pending:
            self.data_received(pending)

    def close_for_restart(self) -> None:
        """The worker retires: 1012 tells the client to reconnect (to the new generation)."""
        if self._ws is not None:
            self._send_close(1012, "service restart")
        else:
            self._close_transport()

    def close_normally(self) -> None:
        """The app returned without closing: as uvicorn does, close with 1000."""
        self._send_close(1000, "")

    def close_for_error(self) -> None:
        self._send_close(1011, "internal error")

    def _send_close(self, code: int, reason: str) -> None:
        if self._is_closed or self._ws is None:
            return
        self._is_closed = True
        try:
            self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        except Exception:  # wsproto refuses a close in a state that does not allow one
            pass
        self._events.put_nowait({"type": "websocket.disconnect", "code": code})
        self._close_transport()

    def _schedule_ping(self) -> None:
        self._ping = asyncio.get_running_loop().call_later(PING_INTERVAL, self._send_ping)

    def _send_ping(self) -> None:
        if self._is_closed or self._ws is None:
            return
        if self._awaiting_pong:
            self._send_close(1011, "no pong")
            return
        self._awaiting_pong = True
        self._write(self._ws.send(Ping()))
        self._schedule_ping()
