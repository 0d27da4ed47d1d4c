"""The gthread worker: one epoll loop owns accept and idle connections; a thread pool runs the app.

How a request travels, and why:
- The main thread accepts, and reads request heads (and bodies up to 64 KiB) without ever
  blocking (`Connection.receive_nowait`): a client sending its request slowly holds a buffer in
  the loop, never a thread, and is dropped (408) when its head or body deadline passes.
- A connection with a complete head goes to a pool thread, which answers it and every request the
  client pipelined behind it.  Connections sit in epoll with EPOLLONESHOT, so the thread that
  finished re-arms a kept-alive connection itself (epoll_ctl is thread-safe): handing it back to
  the loop is one system call, with no queue, no wake-up and no second thread hop.
- With `--threads 1` there is no pool: a pool of one thread runs one request at a time just like
  the loop would, only with two thread switches per request.  The loop answers the request
  itself, then goes back to its other connections: that is the sync worker.

Connections are counted against `worker_connections`; at the limit the listeners leave the epoll
set until one closes.  Every client has deadlines (head, body, send) apart from the heartbeat
`timeout`.  TERM (or max_requests) retires the worker without costing a kept-alive client its
next request: see `_drain`.  A close while the client may still be sending lingers (see
`Connection.needs_lingering_close`).  What the loop knows of each connection (its deadline,
which of them runs, whether it ever carried a request) is kept in a `Client` record here, not
in the Connection, which only knows HTTP.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from unitcorn.tls import TLSSocket, server_tls
from unitcorn.workers.base import ACCEPT_BATCH, ACCEPT_PAUSE, Worker, accept_clients, tune_listener
from unitcorn.wsgi import Connection

_IN = select.EPOLLIN
_ONESHOT = select.EPOLLIN | select.EPOLLONESHOT
_EXCLUSIVE = select.EPOLLIN | select.EPOLLEXCLUSIVE
_SILENT_CLIENT_GRACE = 1.0  # a draining worker waits at least this for a new client's first bytes
# A lingering close (see Connection.needs_lingering_close) reads and drops the client's bytes
# for at most this long, so that our last response is read before the connection goes.
_LINGER_TIMEOUT = 2.0
_BUSY = math.inf  # a connection's deadline while a pool thread owns it: never swept
_SWEEP_INTERVAL = 0.5  # idle and slow-head deadlines are checked this often (seconds)
_MAX_EVENTS = 256


class Client:
    """The loop's record of one connection: when it gives up on it, and why."""

    __slots__ = ("conn", "deadline", "phase", "has_carried_request", "is_lingering", "handshake")

    def __init__(self, conn: Connection, deadline: float) -> None:
        self.conn = conn
        # When the sweep drops the connection (_BUSY while a pool thread owns it), and which of
        # the client's deadlines that is: "idle" (keep-alive, or a new client's first bytes),
        # "head" or "body".
        self.deadline = deadline
        self.phase = "idle"
        # A retiring worker gives a connection that never carried a request a short grace for
        # its first bytes, not the keep-alive interval.
        self.has_carried_request = False
        self.is_lingering = False  # shut for sending; read until the client's EOF, then closed
        self.handshake: TLSSocket | None = None  # the TLS socket, until its handshake is done


class ThreadWorker(Worker):
    def serve(self) -> None:
        self._pooled = self.pool_size() > 1
        if self._pooled:  # PEP 3333: the app may run in several threads at once
            self.options = replace(self.options, multithread=True)
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        self._clients: dict[int, Client] = {}
        self._lock = threading.Lock()  # guards _open, _busy and nr between threads
        self._open = 0
        self._busy = 0
        self._accepting = False
        self._resume_accepting_at = 0.0
        self._max_connections = max(1, self.cfg.worker_connections)
        self._keepalive = self.options.keepalive
        self._head_timeout = self.options.head_timeout
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._wants_wake = False  # the loop waits for threads: a closing thread must wake it
        self._threads: list[threading.Thread] = []
        self._tasks: queue.SimpleQueue[Client | None] = queue.SimpleQueue()
        self._tls = server_tls(self.cfg)  # None: plain HTTP
        try:
            self._watch(self.signals, self.handle_signals)
            self._watch(self.life_fd, self.master_died)
            self._watch(self._wake_reader, self._drain_wakeups)
            self._listeners = []
            for listener in self.listeners:
                tune_listener(listener.sock)
                # Server address per listener, looked up once instead of once per connection.
                self._listeners.append((listener.sock, listener.sock.getsockname()))
            self._start_accepting()
            if self._pooled:
                self._start_pool(self.pool_size())
            self._loop()
            self._drain()
            self._stop_pool()
        finally:
            # On INT/QUIT we get here with threads maybe still in the app: they are daemons,
            # and the process ends with os._exit, so nobody waits for them.
            for client in list(self._clients.values()):
                client.conn.close()
            self._epoll.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def pool_size(self) -> int:
        """Threads that run the app; 1 runs it in the loop itself."""
        return int(self.cfg.threads)

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        poll = self._epoll.poll
        handlers = self._handlers
        clients = self._clients
        on_readable = self._on_readable
        next_sweep = time.monotonic() + _SWEEP_INTERVAL
        timeout = min(self.beat_interval, _SWEEP_INTERVAL)
        while self.alive and self.nr < self.max_requests:
            self.notify()
            for fd, _ in poll(timeout, _MAX_EVENTS):
                client = clients.get(fd)
                if client is not None:
                    on_readable(client)
                else:
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler()
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + _SWEEP_INTERVAL
                self._sweep(now)
        if self.alive:
            self.is_retiring_for_max_requests()  # logs why we leave
            self.alive = False

    def _watch(self, fileobj: Any, handler: Callable[[], None], events: int = _IN) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self._handlers[fd] = handler
        self._epoll.register(fd, events)

    # -- accepting -----------------------------------------------------------------------------

    def _start_accepting(self) -> None:
        if self._accepting or not self.alive:
            return
        self._accepting = True
        self._wants_wake = False
        for sock, server_addr in self._listeners:
            # EPOLLEXCLUSIVE: a new client wakes one waiting worker, not all of them, and the
            # worker that is idle is the one waiting — connections spread over the workers.
            self._watch(sock, functools.partial(self._accept, sock, server_addr), _EXCLUSIVE)

    def _stop_accepting(self) -> None:
        if not self._accepting:
            return
        self._accepting = False
        for sock, _ in self._listeners:
            fd = sock.fileno()
            self._handlers.pop(fd, None)
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def _accept(self, listener: socket.socket, server_addr: Any) -> None:
        """Accept a few clients queued on `listener`, up to the connection limit."""
        room = self._max_connections - self._open
        if room <= 0:
            self._stop_accepting()
            self._wants_wake = True  # a thread closing a connection brings us back
            return
        accepted, exhausted = accept_clients(listener, min(ACCEPT_BATCH, room))
        if exhausted is not None:
            self.log.error("accept failed; pausing pid=%d: %s", os.getpid(), exhausted)
            self._stop_accepting()
            self._resume_accepting_at = time.monotonic() + ACCEPT_PAUSE
        for plain, client_addr in accepted:
            sock: Any = plain
            if self._tls is not None:
                try:
                    sock = self._tls.wrap(plain)
                except OSError:  # reset before we got to it
                    plain.close()
                    continue
            # Without a pool the loop itself waits on a slow body or a slow reader: it beats.
            notify = None if self._pooled else self.notify
            conn = self.open_connection(sock, client_addr, server_addr, self._may_keep_alive, notify)
            with self._lock:
                self._open += 1
            fd = conn.fileno()
            client = self._clients[fd] = Client(conn, time.monotonic() + self._head_timeout)
            if self._tls is not None:
                client.handshake = sock
            self._epoll.register(fd, _ONESHOT if self._pooled else _IN)

    def count_request(self, *_details: Any) -> None:
        with self._lock:  # pool threads finish requests at the same time
            self.nr += 1

    def _may_keep_alive(self) -> bool:
        return self.alive and self.nr < self.max_requests

    # -- a readable connection -----------------------------------------------------------------

    def _on_readable(self, client: Client) -> None:
        if client.handshake is not None:
            self._continue_handshake(client)
        elif client.is_lingering:
            self._linger(client)
        elif self._pooled:
            self._dispatch(client)
        else:
            self._serve_here(client)

    def _serve_here(self, client: Client) -> None:
        """No pool: answer the ready request(s) in the loop, then go back to the others."""
        conn = client.conn
        if not conn.receive_nowait():
            self._still_receiving(client)
            return
        if conn.has_head:
            client.has_carried_request = True
        try:
            while True:
                self.notify()
                # A response that promised keep-alive keeps the connection even if we are
                # retiring now: the client may already be sending its next request.
                if not conn.handle_request():
                    break
                if not conn.has_buffered_request:
                    self._wait_for_next_request(client)
                    return
        except OSError:
            pass  # the client went away
        self._close_or_linger(client)

    def _continue_handshake(self, client: Client) -> None:
        """One step of a TLS handshake, in the loop: never a thread's (or the loop's) wait.

        Bounded like a request head: the connection's deadline (header_timeout) runs from
        accept, and the sweep drops a client that has not finished by then.
        """
        assert client.handshake is not None
        fd = client.conn.fileno()
        try:
            wanted = client.handshake.handshake_step()
        except OSError as exc:  # not TLS at all, no common cipher, no client certificate...
            self.log.debug("tls handshake failed fd=%d: %s", fd, exc)
            self._close(client)
            return
        oneshot = select.EPOLLONESHOT if self._pooled else 0
        if wanted:
            events = select.EPOLLOUT if wanted == select.POLLOUT else select.EPOLLIN
            self._epoll.modify(fd, events | oneshot)
            return
        client.handshake = None
        if not self._pooled:  # level-triggered: stop waiting for EPOLLOUT, if it did
            self._epoll.modify(fd, _IN)
        # The request may have come with the handshake's last flight. (Pooled: the fd is
        # disarmed now; _dispatch re-arms it, or a pool thread will.)
        self._on_readable(client)

    def _dispatch(self, client: Client) -> None:
        """Give a connection with a complete head to a pool thread (EPOLLONESHOT disarmed it).

        Also while draining: a request that arrived is answered (with "Connection: close").
        """
        conn = client.conn
        if not conn.receive_nowait():
            self._still_receiving(client)
            self._rearm(conn)
            return
        if conn.has_head:
            client.has_carried_request = True
        client.deadline = _BUSY
        with self._lock:
            self._busy += 1
        self._tasks.put(client)

    def _wait_for_next_request(self, client: Client) -> None:
        client.phase = "idle"
        client.deadline = time.monotonic() + self._keepalive

    def _still_receiving(self, client: Client) -> None:
        """Part of a request came: from now its head, then its body, must arrive in time."""
        phase = "body" if client.conn.has_head else "head"
        if client.deadline < _BUSY and client.phase != phase:
            client.phase = phase
            timeout = self.options.body_timeout if phase == "body" else self._head_timeout
            client.deadline = time.monotonic() + timeout
    def _rearm(self, conn: Connection) -> None:
        try:
            self._epoll.modify(conn.fileno(), _ONESHOT)
        except (OSError, ValueError):  # closed meanwhile (a drain, a sweep)
            pass

    # -- the pool ------------------------------------------------------------------------------

    def _start_pool(self, size: int) -> None:
        for number in range(size):
            thread = threading.Thread(target=self._pool_thread, name=f"unitcorn-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_pool(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join(timeout=1)
        self._threads = []

    def _pool_thread(self) -> None:
        get = self._tasks.get
        while (client := get()) is not None:
            try:
                self._answer(client)
            except Exception:  # never lose a pool thread
                self.log.exception("connection handling failed pid=%d", os.getpid())

    def _answer(self, client: Client) -> None:
        """In a pool thread: answer the ready request and any pipelined after it, then hand back."""
        conn = client.conn
        keep = False
        try:
            while conn.handle_request():  # kept alive as promised, even if we retire now
                if not conn.has_buffered_request:
                    keep = True
                    break
        except OSError:
            pass  # the client went away
        if keep:
            self._wait_for_next_request(client)
            with self._lock:
                self._busy -= 1
            self._rearm(conn)  # from here on the loop owns it again
            return
        if conn.needs_lingering_close:
            self._start_lingering(client)
            with self._lock:
                self._busy -= 1
            self._rearm(conn)  # the loop reads what the client still sends, then closes
            return
        self._clients.pop(conn.fileno(), None)  # before close(): the fd number may be reused
        conn.close()
        with self._lock:
            self._busy -= 1
            self._open -= 1
        if self._wants_wake or not self._may_keep_alive():
            self._wake()

    # -- closing, sweeping, waking -------------------------------------------------------------

    def _start_lingering(self, client: Client) -> None:
        client.conn.shut_sending()
        client.deadline = time.monotonic() + _LINGER_TIMEOUT
        client.is_lingering = True

    def _linger(self, client: Client) -> None:
        """Drop what a lingering client sent; close at its EOF (or at the sweep's deadline)."""
        if client.conn.discard_input():
            if self._pooled:
                self._rearm(client.conn)
        else:
            self._close(client)

    def _close_or_linger(self, client: Client) -> None:
        """Close a connection the loop owns, lingering first if the client may still be sending."""
        if client.conn.needs_lingering_close:
            self._start_lingering(client)
        else:
            self._close(client)

    def _close(self, client: Client) -> None:
        """Close a connection the loop owns (not in a thread's hands)."""
        conn = client.conn
        self._clients.pop(conn.fileno(), None)
        conn.close()  # closing also removes it from the epoll set
        with self._lock:
            self._open -= 1
        if not self._accepting and self.alive:
            self._maybe_resume()

    def _maybe_resume(self) -> None:
        if self._open < self._max_connections and time.monotonic() >= self._resume_accepting_at:
            self._start_accepting()

    def _sweep(self, now: float) -> None:
        """Drop connections idle past keepalive, and clients too slow to send their head (408)."""
        for client in list(self._clients.values()):
            if client.deadline <= now:
                if client.is_lingering:
                    self._close(client)
                else:
                    client.conn.time_out()
                    self._close_or_linger(client)
        if not self._accepting and self.alive:
            self._maybe_resume()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b".")
        except OSError:  # full (the loop is awake anyway) or closed (we are exiting)
            pass

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except OSError:
            pass
        if not self._accepting and self.alive:
            self._maybe_resume()

    # -- stopping ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Stop accepting, then close each connection only when the client cannot lose a request.

        A client may send its next request on a kept-alive connection at any moment, and a
        request that meets a close is lost (a proxy never retries a POST). So a connection is
        closed only (a) after a response that said `Connection: close` — every response from
        now on does —, (b) once it has sat idle for the whole keep-alive interval, as any time,
        or (c) when the master's graceful timeout ends and it kills us. A connection accepted
        but never used gets at least _SILENT_CLIENT_GRACE for its first bytes.
        """
        self._stop_accepting()
        self.log.info("worker retiring pid=%d connections=%d", os.getpid(), len(self._clients))
        self._wants_wake = True
        fresh_give_up_at = time.monotonic() + max(self._keepalive, _SILENT_CLIENT_GRACE)
        next_sweep = 0.0
        while True:
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + _SWEEP_INTERVAL
                self._sweep(now)
                if now >= fresh_give_up_at:
                    for client in list(self._clients.values()):
                        if client.deadline < _BUSY and not (
                            client.has_carried_request or client.conn.has_partial_request
                        ):
                            self._close(client)
            if not self._clients and self._busy == 0:
                return
            self.notify()
            for fd, _ in self._epoll.poll(min(self.beat_interval, _SWEEP_INTERVAL), _MAX_EVENTS):
                ready = self._clients.get(fd)
                if ready is not None:
                    self._on_readable(ready)
                elif (handler := self._handlers.get(fd)) is not None:
                    handler()
