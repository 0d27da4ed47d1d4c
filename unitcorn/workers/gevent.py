"""The gevent worker: one greenlet per connection, for WSGI apps written for gevent.

gevent's monkey-patching makes the standard library's blocking calls (sockets, `select`,
`time.sleep`, threads) switch greenlets instead of blocking, so an app that waits on the network
serves `worker_connections` clients at once in one process.  It must happen before the app (and
whatever it imports) is loaded, hence at the very start of the worker's boot; with `--preload`
the master imported the app unpatched — as with gunicorn, load gevent apps without it.

Each connection is served by the same `Connection` as the other WSGI workers (its waits go
through the patched `select.poll`), with the same deadlines and closing rules: a connection is
closed after a response that said `Connection: close`, after sitting idle for `keepalive`, or
when the master's graceful timeout ends.  The heartbeat comes from the worker's main greenlet,
so an app that blocks the hub (CPU, an unpatched C call) misses it and is aborted and replaced.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

from unitcorn.hooks import call_hook
from unitcorn.tls import TLSSocket, server_tls
from unitcorn.workers.base import Worker
from unitcorn.wsgi import Connection

# A lingering close (see Connection.needs_lingering_close) drops the client's bytes this long.
_LINGER_TIMEOUT = 2.0
_SILENT_CLIENT_GRACE = 1.0


class GeventWorker(Worker):
    def init_process(self) -> None:
        from gevent import monkey

        monkey.patch_all()
        super().init_process()

    def prepare_to_serve(self) -> None:
        import gevent

        # A Python signal handler may run inside the hub, where an exception would only be
        # printed; gevent runs these in a greenlet of their own instead.
        gevent.signal_handler(signal.SIGINT, self._exit_now, "worker_int", 0)
        gevent.signal_handler(signal.SIGQUIT, self._exit_now, "worker_int", 0)
        gevent.signal_handler(signal.SIGABRT, self._exit_now, "worker_abort", 1)

    def _exit_now(self, hook: str, code: int) -> None:
        self.alive = False
        self.aborted = hook == "worker_abort"
        call_hook(self.cfg, hook, self)
        os._exit(code)

    def serve(self) -> None:
        import gevent
        from gevent import select as cooperative
        from gevent.pool import Pool
        from gevent.server import StreamServer

        self._connections: dict[Connection, Any] = {}  # each with the greenlet serving it
        # Connections still waiting for the first byte of their first request: a retiring
        # worker closes these after a short grace, since they lose nothing by it.
        self._unused: set[Connection] = set()
        self._tls = server_tls(self.cfg)  # None: plain HTTP
        self._handshaking: set[Any] = set()  # greenlets still in a TLS handshake
        pool = Pool(max(1, self.cfg.worker_connections))
        servers = []
        for listener in self.listeners:
            # A gevent socket on (a copy of) the inherited descriptor: accept() yields to the hub.
            sock = socket.socket(fileno=os.dup(listener.sock.fileno()))
            server = StreamServer(sock, self._serve_connection, spawn=pool)
            server.start()
            servers.append(server)
        # A connection that reaches max_requests wakes the main greenlet through this pipe.
        self._wake_reader, self._wake_writer = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        watched = [self.signals.fileno() if self.signals else -1, self.life_fd, self._wake_reader]
        while self.alive and self.nr < self.max_requests:
            self.notify()
            ready, _, _ = cooperative.select(watched, [], [], self.beat_interval)
            if self.life_fd in ready:
                self.master_died()
            elif self.signals is not None and self.signals.fileno() in ready:
                self.handle_signals()
        if self.alive:
            self.is_retiring_for_max_requests()  # logs why we leave
            self.alive = False
        self.log.info("worker retiring pid=%d connections=%d", os.getpid(), len(self._connections))
        for server in servers:
            server.close()  # stop accepting; the greenlets serving connections go on
        unused_until = time.monotonic() + max(self.options.keepalive, _SILENT_CLIENT_GRACE)
        while len(pool):
            self.notify()
            pool.join(timeout=self.beat_interval)
            if time.monotonic() >= unused_until:
                # A connection that never carried a request loses nothing by closing now.
                gevent.killall([greenlet for conn, greenlet in self._connections.items()
                                if conn in self._unused and not conn.has_partial_request]
                               + list(self._handshaking), block=False)

    def _serve_connection(self, sock: Any, client_addr: Any) -> None:
        import gevent

        server_addr = sock.getsockname()
        if self._tls is not None:
            self._handshaking.add(gevent.getcurrent())
            try:
                sock = self._handshake(sock)
            finally:
                self._handshaking.discard(gevent.getcurrent())
            if sock is None:
                return
        connection = self.open_connection(sock, client_addr, server_addr,
                                          self._may_keep_alive, None)
        self._connections[connection] = gevent.getcurrent()
        self._unused.add(connection)
        try:
            # The first bytes start the head's deadline, as under the other workers.
            is_used = connection.wait_for_request(self.options.head_timeout)
            self._unused.discard(connection)
            while is_used and connection.handle_request():
                if self.nr >= self.max_requests:
                    self._wake_main()
                if not connection.wait_for_request(self.options.keepalive):
                    break  # idle for the whole keep-alive interval
        except OSError:
            pass  # the client went away
        finally:
            self._unused.discard(connection)
            self._connections.pop(connection, None)
            self._close(connection)

    def _handshake(self, sock: Any) -> Any:
        """The TLS handshake, in this connection's greenlet (waiting yields to the hub). The
        wrapped socket, or None when the client failed it or took over header_timeout."""
        from gevent import ssl as cooperative_ssl

        assert self._tls is not None
        # gevent's SSLSocket over the master's context: the standard library's cannot wrap a
        # gevent socket once ssl is patched.
        ssl_socket = None
        try:
            ssl_socket = cooperative_ssl.SSLSocket(
                sock=sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=self._tls.suppress_ragged_eofs, _context=self._tls.context,
            )
            ssl_socket.settimeout(self.options.head_timeout)
            ssl_socket.do_handshake()
        except OSError as exc:  # a failed handshake, or the timeout (socket.timeout)
            self.log.debug("tls handshake failed pid=%d: %s", os.getpid(), exc)
            (ssl_socket or sock).close()
            return None
        tls_socket = TLSSocket(ssl_socket)
        tls_socket.is_handshaken = True
        return tls_socket

    def _wake_main(self) -> None:
        """Time to retire: tell the main greenlet (a full pipe already says so)."""
        try:
            os.write(self._wake_writer, b".")
        except BlockingIOError:
            pass

    def _may_keep_alive(self) -> bool:
        return self.alive and self.nr < self.max_requests

    @staticmethod
    def _close(connection: Connection) -> None:
        from gevent.socket import wait_read

        if connection.needs_lingering_close:
            connection.shut_sending()
            deadline = time.monotonic() + _LINGER_TIMEOUT
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    wait_read(connection.fileno(), timeout=remaining)
                except (TimeoutError, OSError):
                    break
                if not connection.discard_input():
                    break
        connection.close()
