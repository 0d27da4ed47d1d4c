"""What every worker does: boot (privileges, signals, app), beat, and exit with a meaningful code.

Signals in a worker: TERM retires (docs/SIGNALS.md: no kept-alive client loses a request) then
exits 0; INT and QUIT exit now (the worker_int hook runs); ABRT is the master's "you missed your
heartbeat" (worker_abort, exit 1); USR1 reopens log files; HUP is ignored, because `systemctl
kill -s HUP` signals the whole cgroup and must not kill workers. The master's death shows up as
EOF on the life pipe.
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import random
import selectors
import signal
import socket
import sys
import time
from typing import Any

from unitcorn.accesslog import format_access
from unitcorn.app import AppLoadError, load_configured_app
from unitcorn.hooks import call_hook
from unitcorn.http.options import ParseOptions
from unitcorn.http.parser import Limits
from unitcorn.loggerclass import log_access
from unitcorn.logs import (
    ACCESS_LOGGER,
    ERROR_LOGGER,
    access_enabled,
    custom_logger,
    reopen_logs,
    set_log_context,
)
from unitcorn.process.exit_codes import APP_LOAD_ERROR, WORKER_BOOT_ERROR
from unitcorn.process.heartbeat import HeartbeatPen
from unitcorn.process.signals import SignalQueue
from unitcorn.proctitle import set_title
from unitcorn.settings.callables import no_op
from unitcorn.settings.tls import is_tls
from unitcorn.settings.values import Settings
from unitcorn.sockets import explicit_umask
from unitcorn.statsd import StatsdClient
from unitcorn.statsd import client_for as statsd_client_for
from unitcorn.workers.hook_objects import HeartbeatFile, HookApp, HookRequest, HookResponse
from unitcorn.wsgi import Connection, WSGIOptions


class QuickExit(BaseException):
    """INT or QUIT: leave whatever we are doing now."""


class Aborted(BaseException):
    """ABRT from the master after a missed heartbeat."""


def _raise_quick_exit(signum: int, frame: Any) -> None:
    raise QuickExit()


def _raise_aborted(signum: int, frame: Any) -> None:
    raise Aborted()


class Worker:
    """Base worker. Subclasses implement `serve()`; the attributes mirror gunicorn's for hooks."""

    def __init__(
        self,
        *,
        age: int,
        ppid: int,
        listeners: list[Any],
        settings: Settings,
        app: Any,
        heartbeat: HeartbeatPen,
        boot_fd: int,
        life_fd: int,
        generation: int,
    ) -> None:
        self.age = age
        self.ppid = ppid
        self.listeners = listeners
        self.cfg = settings
        self.wsgi = app
        # gunicorn's names and values, for hooks: `timeout` is how often the worker must beat
        # (half the master's timeout), `tmp` its heartbeat, `app` the application object.
        self.sockets = listeners
        self.timeout = settings.timeout / 2.0
        self.tmp = HeartbeatFile(self.notify)
        self.app = HookApp(self)
        self.aborted = False
        self.heartbeat = heartbeat
        self.boot_fd = boot_fd
        self.life_fd = life_fd
        self.generation = generation
        self.pid: int | None = None
        self.log = logging.getLogger(ERROR_LOGGER)
        self.access_log = logging.getLogger(ACCESS_LOGGER)
        self.alive = True
        self.booted = False
        self.nr = 0
        self.max_requests = sys.maxsize
        self.signals: SignalQueue | None = None
        self.statsd: StatsdClient | None = None
        self.logger = custom_logger()  # --logger-class: it writes the access lines
        self.saved_signal_mask: Any = None

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    def run(self) -> int:
        """Boot and serve; return the exit status for the master to classify."""
        try:
            self.init_process()
        except AppLoadError as exc:
            self.log.error("app failed to load pid=%d: %s", os.getpid(), exc)
            return APP_LOAD_ERROR
        except (QuickExit, Aborted):
            return 0
        except SystemExit as exc:  # sys.exit() in post_worker_init: a boot failure like gunicorn's
            self.log.error("worker exited during boot pid=%d code=%s", os.getpid(), exc.code)
            return exc.code if isinstance(exc.code, int) else WORKER_BOOT_ERROR
        except Exception:
            self.log.exception("worker failed to boot pid=%d", os.getpid())
            return WORKER_BOOT_ERROR
        try:
            self.serve()
        except QuickExit:
            self.alive = False
            call_hook(self.cfg, "worker_int", self)
        except Aborted:
            self.alive = False
            self.aborted = True
            call_hook(self.cfg, "worker_abort", self)
            return 1
        return 0

    def init_process(self) -> None:
        set_title(f"worker [{self.cfg.proc_name or self.cfg.app_uri or 'unitcorn'}]")
        set_log_context(UNITCORN_WORKER_PID=os.getpid(), UNITCORN_GENERATION=self.generation)
        self._install_signals()
        self._drop_privileges()
        if self.wsgi is None:
            self.wsgi = load_configured_app(self.cfg)
        if self.cfg.max_requests > 0:
            self.max_requests = self.cfg.max_requests + random.randint(0, self.cfg.max_requests_jitter)
        self.options = wsgi_options(self.cfg)
        self.statsd = statsd_client_for(self.cfg)
        self.prepare_to_serve()
        # gunicorn lets post_worker_init fail the boot; we keep that: exit 3.
        self.cfg.post_worker_init(self)
        self.booted = True
        self.notify()
        os.write(self.boot_fd, f"{os.getpid()}\n".encode())

    def prepare_to_serve(self) -> None:
        """The worker class's own start-up, before it reports booted; raising fails the boot."""

    def _install_signals(self) -> None:
        self.signals = SignalQueue((signal.SIGTERM, signal.SIGUSR1))
        signal.signal(signal.SIGINT, _raise_quick_exit)
        signal.signal(signal.SIGQUIT, _raise_quick_exit)
        signal.signal(signal.SIGABRT, _raise_aborted)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)
        signal.signal(signal.SIGTTIN, signal.SIG_IGN)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        # The master forked us with its signals blocked (see fork_with_signals_blocked): now
        # that our own handlers are in place, let whatever is pending in.
        if self.saved_signal_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.saved_signal_mask)

    def _drop_privileges(self) -> None:
        if self.cfg.group is not None:
            if self.cfg.initgroups and self.cfg.user is not None:
                # gunicorn's --initgroups: the user's supplementary groups from /etc/group.
                os.initgroups(pwd.getpwuid(self.cfg.user).pw_name, self.cfg.group)
            else:
                os.setgroups([self.cfg.group])
            os.setgid(self.cfg.group)
        if self.cfg.user is not None:
            os.setuid(self.cfg.user)
        # Only an explicit --umask: otherwise keep the one we were started with (a unit's UMask=).
        umask = explicit_umask(self.cfg)
        if umask is not None:
            os.umask(umask)

    def notify(self) -> None:
        """Beat: tell the master we are alive (a memory write, no syscall)."""
        self.heartbeat.beat(time.monotonic(), self.nr)

    def handle_signals(self) -> None:
        """Act on the signals recorded since the last call (called from the worker's loop)."""
        assert self.signals is not None
        for signum in self.signals.drain():
            if signum == signal.SIGTERM:
                self.alive = False
            elif signum == signal.SIGUSR1:
                reopen_logs()

    def register_control(self, selector: selectors.BaseSelector) -> None:
        """Wake the loop on our signals and on the master's death."""
        assert self.signals is not None
        selector.register(self.signals, selectors.EVENT_READ, self.handle_signals)
        selector.register(self.life_fd, selectors.EVENT_READ, self.master_died)

    def master_died(self) -> None:
        if self.alive:
            self.log.warning("master died; worker exiting pid=%d", os.getpid())
        self.alive = False

    @property
    def beat_interval(self) -> float:
        return self.cfg.timeout / 2 if self.cfg.timeout > 0 else 1.0

    def is_retiring_for_max_requests(self) -> bool:
        if self.nr < self.max_requests:
            return False
        self.log.info("autorestarting worker after max requests pid=%d served=%d", os.getpid(), self.nr)
        return True

    def open_connection(
        self,
        sock: Any,
        client_addr: Any,
        server_addr: Any,
        may_keep_alive: Any,
        notify: Any,
    ) -> Connection:
        """A Connection for an accepted client, wired to this worker's hooks and heartbeat."""
        on_request, on_response = self.connection_callbacks(client_addr)
        return Connection(
            sock,
            client_addr,
            server_addr,
            self.wsgi,
            self.options,
            sys.stderr,
            on_request=on_request,
            on_response=on_response,
            may_keep_alive=may_keep_alive,
            notify=notify,
            notify_interval=self.beat_interval,
        )

    def connection_callbacks(self, peer: Any = None) -> tuple[Any, Any]:
        """(on_request, on_response) for a Connection to `peer`, without the work nobody asked for.

        With no request hook (nor a --logger-class) there is nothing to call before a request,
        and no gunicorn-style request object is ever built; with neither a post_request hook,
        an access log nor statsd, after a request only the request count moves.
        """
        cfg = self.cfg
        if cfg.pre_request is not no_op or cfg.post_request is not no_op or self.logger is not None:
            hooks = RequestHooks(self, peer)
            return (None if cfg.pre_request is no_op else hooks.before), hooks.after
        if access_enabled() or self.statsd is not None:
            return None, self.on_response
        return None, self.count_request

    def count_request(self, *_details: Any) -> None:
        """Count one served request (the whole of on_response when nothing else wants it)."""
        self.nr += 1

    def on_response(
        self,
        request: Any,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        length: int,
        duration: float,
        hook_request: HookRequest | None = None,
        hook_response: HookResponse | None = None,
    ) -> None:
        """Count the request, write its access log line, send its statsd metrics.

        With a --logger-class, its access() writes the line, from gunicorn's request and
        response objects (RequestHooks builds them).
        """
        self.count_request()
        if self.statsd is not None:
            self.statsd.request(status, duration)
        if self.logger is not None:
            try:
                if hook_request is None:
                    hook_request = HookRequest(request, environ, None, self.cfg)
                if hook_response is None:
                    hook_response = HookResponse(hook_request, status, headers, length)
                log_access(self.logger, hook_response, hook_request, environ, duration)
            except Exception:
                self.log.exception("access log line failed logger_class=%s", self.cfg.logger_class)
        elif access_enabled():
            try:
                line = format_access(
                    self.cfg.access_log_format, environ, status, headers, length, duration, os.getpid()
                )
                # Fields for journald (ignored by plain handlers): one entry, queryable.
                self.access_log.info(line, extra={
                    "HTTP_METHOD": environ.get("REQUEST_METHOD", ""),
                    "HTTP_PATH": environ.get("PATH_INFO", ""),
                    "HTTP_STATUS": status.split(" ", 1)[0],
                    "HTTP_DURATION_USEC": int(duration * 1_000_000),
                })
            except Exception:
                self.log.exception("access log line failed")

    def serve(self) -> None:
        raise NotImplementedError


class RequestHooks:
    """pre_request and post_request for one connection, called with gunicorn's objects.

    A connection answers one request at a time, so the request object pre_request saw (and
    perhaps wrote its own attributes on) is kept here for post_request.
    """

    __slots__ = ("worker", "peer", "request")

    def __init__(self, worker: Worker, peer: Any) -> None:
        self.worker = worker
        self.peer = peer
        self.request: HookRequest | None = None

    def _request_for(self, request: Any, environ: dict[str, Any]) -> HookRequest:
        if self.request is None or self.request.source is not request:
            self.request = HookRequest(request, environ, self.peer, self.worker.cfg)
        return self.request

    def before(self, request: Any, environ: dict[str, Any]) -> None:
        call_hook(self.worker.cfg, "pre_request", self.worker, self._request_for(request, environ))

    def after(
        self,
        request: Any,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        length: int,
        duration: float,
    ) -> None:
        worker = self.worker
        if worker.cfg.post_request is no_op and worker.logger is None:
            self.request = None
            worker.on_response(request, environ, status, headers, length, duration)
            return
        req = self._request_for(request, environ)
        self.request = None
        response = HookResponse(req, status, headers, length)
        worker.on_response(request, environ, status, headers, length, duration, req, response)
        call_hook(worker.cfg, "post_request", worker, req, environ, response)


def wsgi_options(settings: Settings) -> WSGIOptions:
    tls = is_tls(settings)
    return WSGIOptions(
        limits=Limits(
            request_line=settings.limit_request_line,
            fields=settings.limit_request_fields,
            field_size=settings.limit_request_field_size,
        ),
        keepalive=float(settings.keepalive),
        forwarded_allow_ips=frozenset(settings.forwarded_allow_ips),
        script_name=settings.root_path or "",
        url_scheme="https" if tls else "http",
        head_timeout=float(settings.header_timeout),
        body_timeout=float(settings.body_timeout),
        send_timeout=float(settings.send_timeout),
        sendfile=settings.sendfile and not tls,  # os.sendfile would bypass TLS
        parse=ParseOptions(
            permit_obsolete_folding=settings.permit_obsolete_folding,
            strip_header_spaces=settings.strip_header_spaces,
            permit_unconventional_http_method=settings.permit_unconventional_http_method,
            permit_unconventional_http_version=settings.permit_unconventional_http_version,
            casefold_http_method=settings.casefold_http_method,
            header_map=settings.header_map,
            secure_scheme_headers=dict(settings.secure_scheme_headers),
            forwarder_headers=frozenset(settings.forwarder_headers),
            proxy_protocol=settings.proxy_protocol,
        ),
        proxy_allow_ips=frozenset(settings.proxy_allow_ips),
    )


# Clients accepted per wake-up: a few, then back to the loop, so that a busy worker leaves the
# rest of the queue to an idle one instead of hoarding every connection.
ACCEPT_BATCH = 4
# Errors after which accept() would fail again at once: pause accepting instead of spinning.
_ACCEPT_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_PAUSE = 0.5  # seconds


def accept_clients(
    listener: socket.socket, limit: int
) -> tuple[list[tuple[socket.socket, Any]], OSError | None]:
    """Up to `limit` clients queued on a non-blocking listener; and, if accepting must pause
    (out of descriptors or memory), the error saying why."""
    accepted: list[tuple[socket.socket, Any]] = []
    while len(accepted) < limit:
        try:
            accepted.append(listener.accept())
        except (BlockingIOError, InterruptedError):
            break
        except ConnectionAbortedError:
            continue
        except OSError as exc:
            if exc.errno not in _ACCEPT_EXHAUSTED:
                raise
            return accepted, exc
    return accepted, None


def tune_listener(sock: socket.socket) -> None:
    """Non-blocking, and TCP_NODELAY: accepted sockets inherit it (Linux), one syscall saved each."""
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
