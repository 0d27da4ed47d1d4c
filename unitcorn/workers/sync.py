"""The sync worker: one connection at a time, keep-alive only while nobody else is waiting.

gunicorn's sync worker never keeps a connection open. Keeping one open is much faster for
clients that reuse connections, but a sync worker idling on a kept-alive connection cannot
accept anyone else — so while waiting for a client's next request we also watch the listening
sockets, and give the worker up to a queued client the moment one is waiting.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from typing import Any

from unitcorn.workers.base import Worker
from unitcorn.wsgi import Connection


class SyncWorker(Worker):
    def serve(self) -> None:
        for listener in self.listeners:
            listener.sock.setblocking(False)
        self._listener_socks = [listener.sock for listener in self.listeners]
        by_sock = {listener.sock: listener for listener in self.listeners}
        # One select() over a short list: cheaper per wait than keeping an epoll set in sync.
        self._control = [self.signals, self.life_fd]
        watched = [*self._listener_socks, *self._control]
        while self.alive and not self.is_retiring_for_max_requests():
            self.notify()
            readable, _, _ = select.select(watched, [], [], self.beat_interval)
            for ready in readable:
                if ready in by_sock:
                    if self.alive:
                        self._accept_all(by_sock[ready])
                else:
                    self._handle_control(ready)

    def _handle_control(self, ready: Any) -> None:
        if ready is self.signals:
            self.handle_signals()
        else:
            self.master_died()

    def _accept_all(self, listener: Any) -> None:
        """Serve every client already queued on this listener before selecting again."""
        while self.alive and self.nr < self.max_requests:
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            self._serve_connection(sock, address, listener)

    def _serve_connection(self, sock: socket.socket, address: Any, listener: Any) -> None:
        sock.setblocking(True)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(
            sock,
            address,
            listener.sock.getsockname(),
            self.wsgi,
            self.options,
            sys.stderr,
            on_request=self.on_request,
            on_response=self.on_response,
        )
        try:
            while self.alive:
                self.notify()
                if not connection.handle_request() or self.nr >= self.max_requests:
                    return
                if not connection.has_buffered_request and not self._next_request_arrives(connection):
                    return
        except OSError:
            return  # the client went away; nothing to answer
        finally:
            connection.close()

    def _next_request_arrives(self, connection: Connection) -> bool:
        """Wait up to `keepalive` for the client's next request, unless another client queues."""
        if self.options.keepalive <= 0:
            return False
        deadline = time.monotonic() + self.options.keepalive
        watched = [connection, *self._listener_socks, *self._control]
        while self.alive:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select(watched, [], [], min(remaining, self.beat_interval))
            self.notify()
            for ready in readable:
                if ready is connection:
                    return True
                if ready in self._listener_socks:
                    return False  # a client is queued: it gets this worker now
                self._handle_control(ready)
        return False
