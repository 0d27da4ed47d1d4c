"""The control socket: `unitcorn ctl` asks the master over a unix socket, one JSON line each way.

A socket rather than pidfile + signals because a signal cannot carry an answer: `ctl reload
--wait` must learn whether the new generation came up, and why not, to fail `systemctl reload`.
The master handles each request in its own loop; requests that take time (reload, upgrade) are
answered when the lifecycle event that ends them arrives.

Whoever can connect can stop the server (the socket is 0600), yet nothing a client sends or
fails to send may crash or wedge the master (issue 11): a request is one line of at most
MAX_REQUEST bytes holding one flat JSON object; at most MAX_CLIENTS connections wait to send
one, each for IDLE_TIMEOUT at most (a deadline the loop's select honours through
`next_deadline`/`tick`, no thread); a failing handler is answered as an error and logged; and when
the master is out of descriptors, accepting pauses instead of spinning or raising.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.lifecycle import Lifecycle, MasterRequests, MasterStatus

log = logging.getLogger("unitcorn.error")

MAX_REQUEST = 4096
# Connections that have not sent their request yet; beyond this the longest-waiting one is
# closed, so a crowd of silent clients can neither exhaust descriptors nor lock ctl out.
MAX_CLIENTS = 16
# Requests waiting for an outcome (reload --wait, upgrade); more are refused.
MAX_WAITERS = 16
# Seconds a connection may take to send its request line.
IDLE_TIMEOUT = 10.0
# Seconds accepting pauses after accept() failed for want of descriptors or memory.
ACCEPT_PAUSE = 1.0
# accept/socketpair/pipe failures that mean "out of resources now", not "bug".
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line → a flat dict of scalars; ValueError says what is wrong.

    Nesting is refused before json parses anything: json recurses per level, and a line of
    2,000 `[` raised RecursionError inside the master's loop.
    """
    if len(line) > MAX_REQUEST:
        raise ValueError(f"request longer than {MAX_REQUEST} bytes")
    outside_strings = _JSON_STRING.sub(b'""', line)
    if b"[" in outside_strings or outside_strings.count(b"{") > 1:
        raise ValueError("a request is one flat JSON object")
    request = json.loads(line)
    if not isinstance(request, dict):
        raise ValueError("a request is one flat JSON object")
    return request


def status_report(status: MasterStatus) -> dict[str, object]:
    """`ctl status`'s answer: the master's status as flat JSON scalars."""
    return {
        "pid": status.own_pid,
        "workers": f"{status.booted_workers}/{status.desired_workers} booted",
        "worker_pids": " ".join(str(p) for p in sorted(status.worker_pids)),
        "generation": status.generation,
        "reloading": status.is_reloading,
        "requests_served": status.requests_served,
        "listeners": " ".join(str(lst) for lst in status.listeners),
        "upgrade_child": status.new_master_pid or "-",
    }


@dataclass
class _Client:
    sock: socket.socket
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)


@dataclass
class _Waiter:
    client: _Client
    # Reload results to let pass first: a reload asked for during another one runs after it.
    results_to_skip: int = 0


class ControlServer(Lifecycle):
    def __init__(self, path: str, mode: int = 0o600) -> None:
        self.path = path
        self._mode = mode
        self.sock: socket.socket | None = None
        self._inode = 0
        self._selector: selectors.BaseSelector | None = None
        self._reload_waiters: list[_Waiter] = []
        self._upgrade_waiters: list[_Client] = []
        # Connections still sending their request, oldest first.
        self._clients: list[_Client] = []
        self._accept_paused_until: float | None = None

    def open(self, selector: selectors.BaseSelector, master: MasterRequests) -> None:
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
        if self._mode != 0o600:
            os.chmod(temporary, self._mode)  # control_socket_mode: the group may connect too
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
        self._reload_waiters, self._upgrade_waiters = [], []
        for client in list(self._clients):
            self._drop(client)
        self._accept_paused_until = None
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
        except OSError as exc:
            if exc.errno not in RESOURCE_ERRNOS:
                log.warning("control accept failed reason=%s", exc)
                return
            # The connection stays queued and the socket readable: without a pause the loop
            # would spin on it. Clients queue meanwhile (ctl has its own timeout).
            log.error("control socket: cannot accept, pausing %gs reason=%s", ACCEPT_PAUSE, exc)
            self._selector.unregister(self.sock)
            self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
            return
        conn.setblocking(False)
        if len(self._clients) >= MAX_CLIENTS:
            oldest = self._clients[0]
            log.warning("control socket: too many silent clients; closing the oldest")
            self._reply(oldest, ok=False, message="closed: too many clients waiting to send")
        client = _Client(conn, time.monotonic() + IDLE_TIMEOUT)
        self._clients.append(client)
        self._selector.register(conn, selectors.EVENT_READ, lambda: self._read(client))

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST + 1)
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
                self._reply(client, ok=False, message=f"request longer than {MAX_REQUEST} bytes")
            return
        # One request per connection: from here on the client only waits for its answer.
        self._forget(client)
        line = bytes(client.buffer).split(b"\n", 1)[0]
        try:
            request = parse_request(line)
        except ValueError as exc:
            self._reply(client, ok=False, message=f"bad request: {exc}")
            return
        try:
            self._handle(client, request)
        except Exception as exc:
            # A bug in a handler is this request's failure, never the master's.
            log.exception("control request failed command=%r", request.get("command"))
            self._reload_waiters = [w for w in self._reload_waiters if w.client is not client]
            if client in self._upgrade_waiters:
                self._upgrade_waiters.remove(client)
            self._reply(client, ok=False, message=f"internal error: {exc!r}")

    def _handle(self, client: _Client, request: dict[str, Any]) -> None:
        master = self._master
        command = request.get("command")
        if command in ("reload", "upgrade") and self._waiting() >= MAX_WAITERS:
            self._reply(client, ok=False, message=f"{command}: {MAX_WAITERS} requests already wait")
        elif command == "status":
            report = status_report(master.status_snapshot())
            self._reply(client, ok=True, message="running", status=report)
        elif command == "reload":
            log.info("reload requested over the control socket")
            if request.get("wait"):
                is_reloading = master.status_snapshot().is_reloading
                self._reload_waiters.append(_Waiter(client, 1 if is_reloading else 0))
                master.handle_command(Command.RELOAD)
            else:
                master.handle_command(Command.RELOAD)
                self._reply(client, ok=True, message="reload started")
        elif command == "scale":
            workers = request.get("workers")
            if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
                message = f"scale: workers must be a whole number ≥ 1, got {workers!r}"
                self._reply(client, ok=False, message=message)
                return
            refusal = master.set_worker_count(workers)
            if refusal:
                self._reply(client, ok=False, message=f"scale: {refusal}")
                return
            self._reply(client, ok=True, message=f"workers={workers}")
        elif command == "upgrade":
            self._upgrade_waiters.append(client)
            refusal = master.start_upgrade(complete_automatically=True)
            if refusal:
                self._upgrade_waiters.remove(client)
                self._reply(client, ok=False, message=f"upgrade refused: {refusal}")
        else:
            self._reply(client, ok=False, message=f"unknown command {command!r}")

    def _reply(self, client: _Client, ok: bool, message: str, **extra: Any) -> None:
        payload = json.dumps({"ok": ok, "message": message, **extra}).encode() + b"\n"
        # One non-blocking send: an answer is far smaller than a unix socket's buffer, and a
        # client that stopped reading must not hold the master for even a moment.
        with contextlib.suppress(OSError):
            client.sock.send(payload)
        self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._forget(client)
        client.sock.close()

    def _forget(self, client: _Client) -> None:
        """Stop reading from `client` (it sent its request, or is being closed)."""
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        if client in self._clients:
            self._clients.remove(client)

    def _waiting(self) -> int:
        return len(self._reload_waiters) + len(self._upgrade_waiters)

    # ---- deadlines, folded into the master's select timeout ------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self._clients[:1]]  # oldest first: the nearest
        if self._accept_paused_until is not None:
            deadlines.append(self._accept_paused_until)
        return min(deadlines, default=None)

    def tick(self, status: MasterStatus, now: float) -> None:
        while self._clients and self._clients[0].deadline <= now:
            self._reply(self._clients[0], ok=False,
                        message=f"no request within {IDLE_TIMEOUT:g}s; closed")
        if self._accept_paused_until is not None and now >= self._accept_paused_until:
            self._accept_paused_until = None
            if self.sock is not None and self._selector is not None:
                self._selector.register(self.sock, selectors.EVENT_READ, self._accept)

    # ---- lifecycle events that answer waiting requests ----------------------------------

    def reload_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        waiting = []
        for waiter in self._reload_waiters:
            if waiter.results_to_skip:
                waiter.results_to_skip -= 1
                waiting.append(waiter)
                continue
            message = f"reload complete generation={status.generation}" if ok else reason
            self._reply(waiter.client, ok=ok, message=message)
        self._reload_waiters = waiting

    def upgrade_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        for client in self._upgrade_waiters:
            self._reply(client, ok=ok, message=reason)
        self._upgrade_waiters = []
