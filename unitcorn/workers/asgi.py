"""The asgi worker: one event loop (uvloop's or asyncio's) serves ASGI 3 apps (FastAPI, Starlette, Django).

The same master contract as the WSGI workers: it boots (the app's lifespan startup runs before
the worker reports booted; `lifespan.startup.failed` is a boot failure, exit 3), beats from a
timer in its loop — so a loop blocked by the app is a late heartbeat, aborted and replaced —,
and retires on TERM or after max_requests without costing a kept-alive client its next request:
it stops accepting, answers what arrives with `Connection: close`, lets idle connections run out
their keep-alive interval, runs the lifespan shutdown and exits.  The HTTP side is
`unitcorn.asgi.http`, over the same sans-IO parser as the WSGI workers.

The loop is uvloop's when it is installed (`asgi_loop = auto`, the default) or demanded
(`uvloop`), else asyncio's. Signals work the same on both, which is why they are not the base
worker's: uvloop takes the process's wakeup fd while it runs, so the base worker's signal queue
would hear nothing. TERM and USR1 are the loop's signal handlers (`add_signal_handler`); INT, QUIT
and ABRT raise where the main thread is — in the loop's wait, or in app code that blocks the loop
(a missed heartbeat's ABRT) — as a SystemExit, the one exception both loops let out of a task or
a callback.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
from typing import Any, NoReturn

from unitcorn.asgi.http import HTTPConnection, ServerState
from unitcorn.asgi.lifespan import Lifespan
from unitcorn.logs import access_enabled, reopen_logs
from unitcorn.settings.callables import no_op
from unitcorn.settings.tls import server_context
from unitcorn.workers.base import (
    ACCEPT_BATCH,
    ACCEPT_PAUSE,
    Aborted,
    QuickExit,
    Worker,
    accept_clients,
)


def new_event_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """The loop `asgi_loop` asks for, and its name: uvloop's when it is installed (`auto`) or
    demanded (`uvloop`; the setting has checked that it is installed), else asyncio's."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


class _LoopExit(SystemExit):
    """INT, QUIT or ABRT on its way out of the loop; serve() raises `then` in its place."""

    def __init__(self, then: type[BaseException]) -> None:
        super().__init__()
        self.then = then


class AsgiWorker(Worker):
    _retired: asyncio.Future[None] | None = None

    def prepare_to_serve(self) -> None:
        self._loop, loop_name = new_event_loop(self.cfg.asgi_loop)
        asyncio.set_event_loop(self._loop)
        self._listen_for_signals()
        self.log.info("asgi worker pid=%d loop=%s", os.getpid(), loop_name)
        self._lifespan = Lifespan(self.wsgi, self.cfg.asgi_lifespan)
        self._run_until_complete(self._lifespan.startup())

    def _listen_for_signals(self) -> None:
        for signum, then in ((signal.SIGINT, QuickExit), (signal.SIGQUIT, QuickExit),
                             (signal.SIGABRT, Aborted)):
            signal.signal(signum, functools.partial(self._exit_now, then))
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            self._loop.add_signal_handler(signum, self._on_signal, signum)

    def _exit_now(self, then: type[BaseException], signum: int, frame: Any) -> NoReturn:
        """INT, QUIT, ABRT. Outside the loop (between its runs at boot) the base worker's own
        exception is what run() expects; inside, only a SystemExit gets out."""
        if self._loop.is_running():
            raise _LoopExit(then)
        raise then()

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGUSR1:
            reopen_logs()
        else:  # TERM
            self._retire()

    def _run_until_complete(self, work: Any) -> None:
        try:
            self._loop.run_until_complete(work)
        except _LoopExit as leaving:
            raise leaving.then() from None

    def serve(self) -> None:
        try:
            self._run_until_complete(self._serve())
        finally:  # INT/QUIT, or the graceful end: whatever is still open goes now
            state = getattr(self, "_state", None)
            for connection in list(state.connections if state else ()):
                connection.abort()
            self._loop.close()
            # Closing the loop put TERM and USR1 back to their defaults: a late TERM must not
            # kill a worker that is already leaving (its exit status would say "killed").
            for signum in (signal.SIGTERM, signal.SIGUSR1):
                signal.signal(signum, signal.SIG_IGN)

    async def _serve(self) -> None:
        loop = self._loop
        self._state = state = ServerState(
            app=self.wsgi,
            options=self.options,
            lifespan_state=self._lifespan.state,
            callbacks_for=self._callbacks_for,
            wants_environ=access_enabled() or self.cfg.pre_request is not no_op
            or self.cfg.post_request is not no_op or self.logger is not None,
            # Just before the master's graceful timeout ends: a close the client can act on.
            websocket_close_delay=max(0.0, self.cfg.graceful_timeout - 1.0),
            disconnect_grace=float(self.cfg.asgi_disconnect_grace_period),
            websocket_max_message=self.cfg.websocket_max_message_size,
            on_connection_closed=self._maybe_resume_accepting,
        )
        self._is_accepting = False
        self._tls = server_context(self.cfg)  # None: plain HTTP
        self._handshakes: set[asyncio.Task[None]] = set()  # TLS clients not yet connected
        self._retired = loop.create_future()
        # A TERM or USR1 that came before the loop's handlers were in place (or, with uvloop,
        # while the loop was not running: it hands the wakeup fd back then) is in the base
        # worker's queue.
        self.handle_signals()
        if not self.alive:  # TERM during boot (or the lifespan startup)
            self._retire()
        loop.add_reader(self.life_fd, self.master_died)
        self._beat()
        self._start_accepting()
        await self._retired
        self.log.info("worker retiring pid=%d connections=%d", os.getpid(), len(state.connections))
        state.is_retiring = True
        self._stop_accepting()
        for connection in list(state.connections):
            connection.retire()
        # A TLS client still in its handshake has sent no request: it loses nothing if we stop
        # waiting for it after the grace an unused connection gets, not at header_timeout.
        loop.call_later(max(self.options.keepalive, 1.0), self._cancel_handshakes)
        # Clients accepted but not yet handed to asyncio retire as they arrive (connection_made).
        state.connection_gone()
        await state.all_closed.wait()
        await self._lifespan.shutdown()

    # -- accepting -------------------------------------------------------------------------

    def _start_accepting(self) -> None:
        if not self.alive or self._is_accepting:
            return
        self._is_accepting = True
        for listener in self.listeners:
            listener.sock.setblocking(False)
            self._loop.add_reader(listener.sock.fileno(), self._accept, listener.sock)

    def _stop_accepting(self) -> None:
        if not self._is_accepting:
            return
        self._is_accepting = False
        for listener in self.listeners:
            self._loop.remove_reader(listener.sock.fileno())

    def _accept(self, listener: socket.socket) -> None:
        """A few clients, not asyncio's own server: that accepts its whole backlog at once, and
        one worker would hold every connection."""
        room = self.cfg.worker_connections - len(self._state.connections) - self._state.connecting
        if room <= 0:
            self._stop_accepting()  # worker_connections: the next close brings us back
            return
        accepted, exhausted = accept_clients(listener, min(ACCEPT_BATCH, room))
        if exhausted is not None:
            self.log.error("accept failed; pausing pid=%d: %s", os.getpid(), exhausted)
            self._stop_accepting()
            self._loop.call_later(ACCEPT_PAUSE, self._start_accepting)
        for sock, _address in accepted:
            sock.setblocking(False)
            self._state.connecting += 1
            task = self._loop.create_task(self._connect(sock))
            if self._tls is not None:
                self._handshakes.add(task)
                task.add_done_callback(self._handshakes.discard)

    async def _connect(self, sock: socket.socket) -> None:
        try:
            if self._tls is None:
                await self._loop.connect_accepted_socket(lambda: HTTPConnection(self._state), sock)
            else:
                # asyncio's own TLS: the handshake runs in the loop, bounded like a request head.
                await self._loop.connect_accepted_socket(
                    lambda: HTTPConnection(self._state), sock, ssl=self._tls,
                    ssl_handshake_timeout=float(self.cfg.header_timeout),
                )
        except OSError:
            sock.close()  # gone before we got to it
        finally:
            self._state.connecting -= 1
            self._state.connection_gone()

    def _cancel_handshakes(self) -> None:
        for task in list(self._handshakes):
            task.cancel()  # asyncio closes the transport; _connect's finally counts it gone

    def _maybe_resume_accepting(self) -> None:
        if not self._state.is_retiring:
            self._start_accepting()

    def _callbacks_for(self, peer: Any) -> tuple[Any, Any]:
        """A connection's hooks, wrapped to retire once max_requests is reached."""
        on_request, on_response = self.connection_callbacks(peer)

        def after_response(*details: Any) -> None:
            on_response(*details)
            if self.nr >= self.max_requests and self.alive:
                self.is_retiring_for_max_requests()  # logs why we leave
                self._retire()
        return on_request, after_response

    def _beat(self) -> None:
        self.notify()
        self._loop.call_later(self.beat_interval, self._beat)

    def master_died(self) -> None:
        super().master_died()
        self._retire()

    def _retire(self) -> None:
        """Stop serving gracefully; before _serve() has begun, it retires as soon as it does."""
        self.alive = False
        if self._retired is not None and not self._retired.done():
            self._retired.set_result(None)
