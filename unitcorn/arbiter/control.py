"""The control socket: `unitcorn ctl` asks the master over a unix socket, one JSON line each way.

A socket rather than pidfile + signals because a signal cannot carry an answer: `ctl reload
--wait` must learn whether the new generation came up, and why not, to fail `systemctl reload`.
The master handles each request in its own loop; requests that take time (reload, upgrade) are
answered when the lifecycle event that ends them arrives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
from dataclasses import dataclass, field
from typing import Any

from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.lifecycle import Lifecycle

log = logging.getLogger("unitcorn.error")

MAX_REQUEST = 4096


@dataclass
class _Client:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


@dataclass
class _Waiter:
    client: _Client
    # Reload results to let pass first: a reload asked for during another one runs after it.
    results_to_skip: int = 0


class ControlServer(Lifecycle):
    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self._inode = 0
        self._selector: selectors.BaseSelector | None = None
        self._reload_waiters: list[_Waiter] = []
        self._upgrade_waiters: list[_Client] = []

    def open(self, selector: selectors.BaseSelector, master: Any) -> None:
        """Bind beside the final path and rename over it: an old master's socket is replaced
        atomically, and ctl never finds the path missing."""
        temporary = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # owner only: ctl can stop and upgrade the server
        try:
            sock.bind(temporary)
        finally:
            os.umask(old_umask)
        sock.listen(16)
        sock.setblocking(False)
        os.replace(temporary, self.path)
        self._inode = os.stat(self.path).st_ino
        self.sock = sock
        self._selector = selector
        self._master = master
        selector.register(sock, selectors.EVENT_READ, self._accept)
        log.info("control socket ready path=%s", self.path)

    def close(self, unlink: bool = True) -> None:
        """Stop listening; remove the path unless a new master is taking it over (`unlink`)."""
        if self.sock is None:
            return
        assert self._selector is not None
        for client in [w.client for w in self._reload_waiters] + self._upgrade_waiters:
            self._reply(client, ok=False, message="the master is exiting")
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self.sock)
        self.sock.close()
        self.sock = None
        if not unlink:
            return  # the new master renames its socket over the path: never a missing path
        # Remove the path only if it is still ours.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    def _accept(self) -> None:
        assert self.sock is not None and self._selector is not None
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        client = _Client(conn)
        self._selector.register(conn, selectors.EVENT_READ, lambda: self._read(client))

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buffer += data
        if b"\n" not in client.buffer:
            if len(client.buffer) > MAX_REQUEST:
                self._reply(client, ok=False, message="request too long")
            return
        assert self._selector is not None
        self._selector.unregister(client.sock)
        line = bytes(client.buffer).split(b"\n", 1)[0]
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self._reply(client, ok=False, message=f"bad request: {exc}")
            return
        self._handle(client, request)

    def _handle(self, client: _Client, request: dict[str, Any]) -> None:
        master = self._master
        command = request.get("command")
        if command == "status":
            self._reply(client, ok=True, message="running", status=master.status())
        elif command == "reload":
            log.info("reload requested over the control socket")
            if request.get("wait"):
                self._reload_waiters.append(_Waiter(client, 1 if master.is_reloading else 0))
                master.handle_command(Command.RELOAD)
            else:
                master.handle_command(Command.RELOAD)
                self._reply(client, ok=True, message="reload started")
        elif command == "scale":
            workers = request.get("workers")
            if not isinstance(workers, int) or workers < 1:
                self._reply(client, ok=False, message=f"scale: workers must be ≥ 1, got {workers!r}")
                return
            master.set_worker_count(workers)
            self._reply(client, ok=True, message=f"workers={workers}")
        elif command == "upgrade":
            self._upgrade_waiters.append(client)
            refusal = master.upgrader.reexec(complete_automatically=True)
            if refusal:
                self._upgrade_waiters.remove(client)
                self._reply(client, ok=False, message=f"upgrade refused: {refusal}")
        else:
            self._reply(client, ok=False, message=f"unknown command {command!r}")

    def _reply(self, client: _Client, ok: bool, message: str, **extra: Any) -> None:
        payload = json.dumps({"ok": ok, "message": message, **extra}).encode() + b"\n"
        with contextlib.suppress(OSError):
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)  # a ctl that stopped reading must not wedge the master
            client.sock.sendall(payload)
        self._drop(client)

    def _drop(self, client: _Client) -> None:
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()

    # ---- lifecycle events that answer waiting requests ----------------------------------

    def reload_finished(self, master: Any, ok: bool, reason: str) -> None:
        waiting = []
        for waiter in self._reload_waiters:
            if waiter.results_to_skip:
                waiter.results_to_skip -= 1
                waiting.append(waiter)
                continue
            message = f"reload complete generation={master.generation}" if ok else reason
            self._reply(waiter.client, ok=ok, message=message)
        self._reload_waiters = waiting

    def upgrade_finished(self, master: Any, ok: bool, reason: str) -> None:
        for client in self._upgrade_waiters:
            self._reply(client, ok=ok, message=reason)
        self._upgrade_waiters = []
