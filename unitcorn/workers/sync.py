"""The sync worker: one connection at a time, keep-alive only while nobody else is waiting.

gunicorn's sync worker never keeps a connection open. Keeping one open is much faster for
clients that reuse connections, but a sync worker idling on a kept-alive connection cannot
accept anyone else. So:
- when a response head is framed and a client is already queued on a listener, the response
  says `Connection: close` — the client knows not to reuse it, and nobody waits for us;
- while waiting for a kept-alive client's next request we also watch the listeners, and give
  the worker up to a queued client the moment one is waiting (closing the idle connection; a
  client that sent a request just then sees the close before any response, which HTTP lets it
  retry, as it would after any keep-alive timeout).
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from unitcorn.workers.base import Worker, tune_listener
from unitcorn.wsgi import Connection

_IN = select.POLLIN


class SyncWorker(Worker):
    def serve(self) -> None:
        for listener in self.listeners:
            tune_listener(listener.sock)
        self._listener_fds = {listener.sock.fileno() for listener in self.listeners}
        self._control = {self.signals.fileno() if self.signals else -1, self.life_fd}
        # poll() objects keep their fd list in user space: registering costs no system call.
        self._queued = select.poll()  # listeners only: "is a client waiting?"
        self._watched = select.poll()  # listeners and control (and the kept-alive connection)
        for fd in self._listener_fds:
            self._queued.register(fd, _IN)
            self._watched.register(fd, _IN)
        for fd in self._control:
            if fd >= 0:
                self._watched.register(fd, _IN)
        listeners = [(listener.sock, listener.sock.getsockname()) for listener in self.listeners]
        by_fd = {sock.fileno(): (sock, address) for sock, address in listeners}
        timeout_ms = self.beat_interval * 1000
        while self.alive and not self.is_retiring_for_max_requests():
            self.notify()
            for fd, _ in self._watched.poll(timeout_ms):
                if fd in by_fd:
                    if self.alive:
                        self._accept_all(*by_fd[fd])
                else:
                    self._handle_control(fd)

    def _handle_control(self, fd: int) -> None:
        if fd == self.life_fd:
            self.master_died()
        else:
            self.handle_signals()

    def _nobody_waits(self) -> bool:
        """No client is queued on a listener (one poll with zero timeout)."""
        return self.alive and not self._queued.poll(0)

    def _accept_all(self, listener: socket.socket, server_addr: Any) -> None:
        """Serve every client already queued on this listener before polling again."""
        while self.alive and self.nr < self.max_requests:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            self._serve_connection(sock, address, server_addr)

    def _serve_connection(self, sock: socket.socket, address: Any, server_addr: Any) -> None:
        connection = self.open_connection(sock, address, server_addr, self._nobody_waits, self.notify)
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
        deadline = time.monotonic() + self.options.keepalive
        fd = connection.fileno()
        watched = self._watched
        watched.register(fd, _IN)
        try:
            while self.alive:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return connection.receive_nowait()
                ready = watched.poll(min(remaining, self.beat_interval) * 1000)
                self.notify()
                fds = [ready_fd for ready_fd, _ in ready]
                if fd in fds:
                    return True
                for ready_fd in fds:
                    if ready_fd in self._listener_fds:
                        # A client is queued: it gets this worker now — unless this client's
                        # next request is already here (closing would drop it unanswered).
                        return connection.receive_nowait()
                    self._handle_control(ready_fd)
            return False
        finally:
            watched.unregister(fd)

