"""Set up the error and access logs, and reopen their files on USR1."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable
from logging.handlers import SysLogHandler
from typing import Any, TextIO

from unitcorn.logconfig import ForwardHandler, LogConfig, read_log_config
from unitcorn.loggerclass import BUILT_IN, LoggerClassError, build_logger
from unitcorn.lognames import (
    ACCESS_LOGGER,
    ERROR_LOGGER,
    GUNICORN_ACCESS_LOGGER,
    GUNICORN_ERROR_LOGGER,
    SERVER_LOGGERS,
)
from unitcorn.settings.errors import ConfigError
from unitcorn.settings.values import Settings
from unitcorn.statsd import StatsdLogHandler
from unitcorn.statsd import client_for as statsd_client_for
from unitcorn.syslog import syslog_handler

LINE_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


# Fields every journal entry of this process carries (UNITCORN_WORKER_PID, UNITCORN_GENERATION).
_context: dict[str, object] = {}


def set_log_context(**fields: object) -> None:
    _context.update(fields)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# A handler that cannot write (a full disk) says so at most this often, with the lines it lost.
FAILURE_REPORT_INTERVAL = 10.0


class FailureReport:
    """Reports records a handler could not write: the first at once, then at most once per
    `interval`, counting what was lost meanwhile. logging's own `handleError` prints a traceback
    per record: a busy server on a full disk wrote 23 MB of them to stderr in 10 s.

    The report goes to stderr (where logging's tracebacks went), written directly: through a
    logger it could land in the very handler that is failing.
    """

    def __init__(self, target: str, interval: float = FAILURE_REPORT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None) -> None:
        self.target = target
        self.interval = interval
        self.clock = clock
        self.stream = stream
        self.lost = 0
        self.last_error = ""
        self.next_report = float("-inf")

    def failed(self, error: BaseException | None) -> None:
        """One record was lost to `error`; report now if the interval allows."""
        self.lost += 1
        self.last_error = _describe(error)
        now = self.clock()
        if now >= self.next_report:
            self.next_report = now + self.interval
            self.report()

    def report(self) -> None:
        """Say what was lost since the last report (nothing if nothing was)."""
        if not self.lost:
            return
        line = (f"log write failed pid={os.getpid()} path={self.target} error={self.last_error} "
                f"lines_lost={self.lost} next_report_in={self.interval:g}s\n")
        self.lost = 0
        stream = self.stream or sys.stderr
        try:
            stream.write(line)
            stream.flush()
        except Exception:  # noqa: BLE001 - stderr is on the full disk too: nothing left to tell
            pass


def _describe(error: BaseException | None) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}" if error is not None else "unknown"


class _ReportsFailures:
    """Mixin for the handlers unitcorn installs: throttled reports instead of a traceback each."""

    failures: FailureReport

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failures.failed(sys.exc_info()[1])


class StreamHandler(_ReportsFailures, logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.failures = FailureReport(f"<{getattr(stream, 'name', 'stream')}>")


class ReopenableFileHandler(_ReportsFailures, logging.StreamHandler):  # type: ignore[type-arg]
    """A file handler that can reopen its path after logrotate moved the file away."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        super().__init__(self._open())
        self.failures = FailureReport(self.path)

    def _open(self) -> TextIO:
        return open(self.path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")

    def reopen(self) -> None:
        """Swap in a fresh stream; on failure keep writing to the old one and say why."""
        try:
            stream = self._open()
        except OSError as exc:
            logging.getLogger(ERROR_LOGGER).error(
                "log reopen failed path=%s error=%s", self.path, exc.strerror
            )
            return
        self.acquire()
        try:
            old, self.stream = self.stream, stream
        finally:
            self.release()
        _close_quietly(old)

    def close(self) -> None:
        self.failures.report()  # lines lost since the last report
        self.acquire()
        try:
            if self.stream and not self.stream.closed:
                _close_quietly(self.stream)
        finally:
            self.release()
        super().close()


def _close_quietly(stream: TextIO) -> None:
    """Close a log file whose last lines may not have been written (a full disk): closing
    flushes them again, and that ENOSPC must not kill a worker or the master over a log line."""
    try:
        stream.close()
    except OSError as exc:
        logging.getLogger(ERROR_LOGGER).error("log lines lost closing a log file error=%s", exc.strerror)


class SyslogHandler(_ReportsFailures, SysLogHandler):
    """SysLogHandler whose failures (syslog down) are reported now and then, not per record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = FailureReport(f"syslog {self.address}")


def _handler_for(target: str, default_stream: TextIO) -> logging.Handler:
    if target == "-":
        return StreamHandler(default_stream)
    return ReopenableFileHandler(target)


def _journal_handler() -> logging.Handler | None:
    """Log natively to journald when our stderr is the journal and systemd-python is present."""
    from unitcorn.systemd import journal

    if not journal.stderr_is_journal():
        return None
    if journal.journal_available():

        class JournalHandler(_ReportsFailures, journal.JournalHandler):
            failures = FailureReport("journal")

        handler: logging.Handler = JournalHandler()
        handler.addFilter(_ContextFilter())
        return handler
    handler = StreamHandler(sys.stderr)
    handler.setFormatter(journal.PriorityPrefixFormatter("%(message)s"))
    return handler


def configure_logging(settings: Settings) -> None:
    """(Re)build both loggers from settings; called at start and again after a reload.

    With an operator logging config (--log-config, logconfig_dict, --log-config-json) it is
    applied first, as gunicorn does; see unitcorn.logconfig for how gunicorn's logger names
    map onto ours. With a --logger-class, that class sets up gunicorn's loggers and ours
    forward to them. Raises ConfigError for a config that cannot be read or applied; one that
    fails half-way leaves the built-in logging of the same settings in place, so that the
    error, and what follows, is still written.
    """
    plan = read_log_config(settings)  # before anything is torn down: a bad file changes nothing
    close_logging()
    try:
        _install(settings, plan, with_operator_config=True)
    except ConfigError:
        close_logging()
        _install(settings, None, with_operator_config=False)
        raise


def _install(settings: Settings, plan: LogConfig | None, with_operator_config: bool) -> None:
    global _custom_logger
    _custom_logger = None
    if with_operator_config and settings.logger_class not in BUILT_IN:
        try:  # its setup() applies the logging config, as gunicorn's Logger does
            _custom_logger = build_logger(settings)
        except LoggerClassError as exc:
            raise ConfigError("logger_class", settings.logger_class,
                              settings.origin("logger_class"), str(exc)) from None
        configured = frozenset({GUNICORN_ERROR_LOGGER, GUNICORN_ACCESS_LOGGER})
    elif plan is not None:
        plan.apply()
        configured = plan.loggers
    else:
        configured = frozenset()
    forwards = bool(configured) or plan is not None
    error_level = LEVELS.get(str(settings.loglevel).lower(), logging.INFO)
    for ours, theirs, level, make_handler in (
        (ERROR_LOGGER, GUNICORN_ERROR_LOGGER, error_level, _error_handler),
        (ACCESS_LOGGER, GUNICORN_ACCESS_LOGGER, logging.INFO, _access_handler),
    ):
        handlers = [] if theirs in configured else make_handler(settings)
        if theirs not in configured:
            # gunicorn's own logger, set up as gunicorn sets it up: apps copy its handlers
            # and level (`logging.getLogger("gunicorn.error").handlers`) to log like the server.
            _set(logging.getLogger(theirs), level, handlers)
        if ours in configured:
            logging.getLogger(ours).disabled = False  # the operator's config says the rest
        elif not forwards:
            _set(logging.getLogger(ours), level, handlers)
        else:
            target = logging.getLogger(theirs)
            _set(logging.getLogger(ours), target.getEffectiveLevel(), [ForwardHandler(target)])
    statsd = statsd_client_for(settings)
    if statsd is not None:  # gunicorn.log.warning, .error…: counted in the process that logs
        logging.getLogger(ERROR_LOGGER).addHandler(StatsdLogHandler(statsd))
    if settings.capture_output and settings.errorlog != "-" and _custom_logger is None:
        capture_output(settings.errorlog)


# The --logger-class instance, built in the master; workers inherit it.
_custom_logger: Any = None


def custom_logger() -> Any:
    """The operator's gunicorn-style logger (--logger-class), or None for unitcorn's logging."""
    return _custom_logger


def _set(logger: logging.Logger, level: int, handlers: list[logging.Handler]) -> None:
    logger.propagate = False
    logger.disabled = False  # a dictConfig with disable_existing_loggers must not silence us
    logger.setLevel(level)
    for handler in handlers:
        logger.addHandler(handler)


def _error_handler(settings: Settings) -> list[logging.Handler]:
    handler = _journal_handler() if settings.errorlog == "-" else None
    if handler is None:
        handler = _handler_for(settings.errorlog, sys.stderr)
        handler.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    return [handler, *_syslog_handlers(settings, "error")]


def _access_handler(settings: Settings) -> list[logging.Handler]:
    handlers = []
    if settings.accesslog:
        handler = _journal_handler() if settings.accesslog == "-" else None
        if handler is None:
            handler = _handler_for(settings.accesslog, sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
        handlers.append(handler)
    if not settings.disable_redirect_access_to_syslog:
        handlers += _syslog_handlers(settings, "access")
    return handlers


def _syslog_handlers(settings: Settings, role: str) -> list[logging.Handler]:
    """--log-syslog: both logs also go to syslog (the access log unless told not to)."""
    if not settings.syslog:
        return []
    try:
        return [syslog_handler(settings, role, SyslogHandler)]
    except OSError as exc:
        source = settings.origin("syslog_addr")
        raise ConfigError("syslog_addr", settings.syslog_addr, source, f"cannot connect: {exc}") from None


def capture_output(path: str) -> None:
    """Send the app's print()s and stray stderr to the error log file, as gunicorn does."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _server_handlers() -> list[logging.Handler]:
    """The handlers of unitcorn's and gunicorn's loggers, each once."""
    found: dict[int, logging.Handler] = {}
    for name in SERVER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            found.setdefault(id(handler), handler)
    return list(found.values())


def reopen_logs() -> None:
    """USR1: reopen the log files (after logrotate), ours and, as gunicorn does, the
    FileHandlers an operator's logging config put on the server's loggers."""
    for handler in _server_handlers():
        if isinstance(handler, ReopenableFileHandler):
            handler.reopen()
        elif isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                if handler.stream:
                    _close_quietly(handler.stream)
                handler.stream = handler._open()
            except OSError as exc:
                logging.getLogger(ERROR_LOGGER).error(
                    "log reopen failed path=%s error=%s", handler.baseFilename, exc.strerror
                )
            finally:
                handler.release()


def close_logging() -> None:
    handlers = _server_handlers()
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    for handler in handlers:
        # All of them: a logging config's FileHandlers too (a file object each, per reload).
        # Closing a StreamHandler leaves its stream (stderr) open.
        handler.close()


def access_enabled() -> bool:
    return bool(logging.getLogger(ACCESS_LOGGER).handlers)


def log_descriptors(candidates: Iterable[int]) -> set[int]:
    """The descriptors logging writes to, which a forked worker must keep open.

    Every handler of every logger counts (an app's or a config file's FileHandler too), and so
    does journald's socket among `candidates`: libsystemd opens it on the first entry and keeps
    its number forever; closed and reused, the next entry would go to whatever took the number.
    """
    found: set[int] = set()
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            for name in ("stream", "socket", "sock"):  # StreamHandler, SysLogHandler, SocketHandler
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    fd = getattr(handler, name).fileno()
                    if fd >= 0:
                        found.add(fd)
    found.update(fd for fd in candidates if _is_unnamed_datagram_socket(fd))
    return found


def _is_unnamed_datagram_socket(fd: int) -> bool:
    """libsystemd's journal socket is the only AF_UNIX datagram socket neither bound nor
    connected that a master holds (sd_notify messages use a socket each, closed at once). Such a
    socket can only send to paths the worker could reach with a socket of its own: keeping it
    hands the worker nothing."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return False
    except OSError:
        return False
    sock = socket.socket(fileno=fd)
    try:
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_DGRAM or sock.getsockname():
            return False
        try:
            sock.getpeername()
        except OSError:
            return True
        return False
    finally:
        sock.detach()  # the descriptor is not ours to close
