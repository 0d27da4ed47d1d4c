"""Send gunicorn's statsd metrics (--statsd-host): fire-and-forget datagrams that never block or raise.

The metrics and their names are gunicorn's (gunicorn/instrument/statsd.py), so dashboards built
for gunicorn keep working:

- `gunicorn.requests` (counter), `gunicorn.request.duration` (timer, ms) and
  `gunicorn.request.status.NNN` (counter): from each worker, for each request; sent together,
  one datagram per request (statsd and dogstatsd read one metric per line);
- `gunicorn.workers` (gauge): from the master, when the number of workers changes
  (unitcorn.arbiter.statsd_plugin);
- `gunicorn.log.critical`, `.error`, `.warning`, `.exception` (counters): for each error log
  record of that level, in the process that logged it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from typing import TYPE_CHECKING

from unitcorn.lognames import ERROR_LOGGER

if TYPE_CHECKING:  # settings/convert.py imports this module: at run time that would be a circle
    from unitcorn.settings.values import Settings

DEFAULT_PORT = 8125

# After a failed send (nobody listening: ECONNREFUSED; a full socket buffer) the failure is
# logged at most this often.
_FAILURE_REPORT_INTERVAL = 60.0

log = logging.getLogger(ERROR_LOGGER)


def parse_address(text: str) -> tuple[str, int] | str:
    """gunicorn's statsd_host syntax: `unix://PATH` (or `unix:PATH`) or `HOST[:PORT]`, port 8125.

    Returns gunicorn's form: (host, port), or the socket's path. Raises ValueError.
    """
    text = text.strip()
    if text.startswith("unix:"):
        path = text[len("unix://"):] if text.startswith("unix://") else text[len("unix:"):]
        if not path:
            raise ValueError("the unix socket path is empty")
        return path
    text = text.removeprefix("udp://")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") > 1:
        raise ValueError("an IPv6 address needs brackets, e.g. [::1]:8125")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError("the host is empty (HOST:PORT or unix://PATH)")
    if not port_text:
        return host.lower(), DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} is not a port number")
    return host.lower(), int(port_text)


def normalize_prefix(prefix: str) -> str:
    """gunicorn's rule: a non-empty prefix ends with exactly one dot."""
    return re.sub(r"^(.+[^.]+)\.*$", "\\g<1>.", prefix)


class StatsdClient:
    """One process's statsd socket. Each method sends one datagram, or silently does nothing.

    The socket is opened in the process that sends (a worker opens its own after the fork):
    non-blocking, so a slow or absent collector costs a failed system call, never a wait.
    """

    def __init__(self, address: tuple[str, int] | str, prefix: str = "", tags: str = "") -> None:
        self.address = address
        self.prefix = normalize_prefix(prefix)
        self.suffix = f"|#{tags}" if tags else ""
        self.sock: socket.socket | None = None
        self.pid = 0
        self.next_failure_report = 0.0

    def _socket(self) -> socket.socket | None:
        if self.pid == os.getpid():
            return self.sock
        self.pid = os.getpid()  # one attempt per process: a name that does not resolve stays so
        self.sock = None
        try:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            else:
                family, _, _, _, sockaddr = socket.getaddrinfo(*self.address, type=socket.SOCK_DGRAM)[0]
                sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(self.address if isinstance(self.address, str) else sockaddr)
        except OSError as exc:
            log.warning("statsd disabled in this process address=%s error=%s", self.address, exc)
            return None
        self.sock = sock
        return sock

    def send(self, *metrics: str) -> None:
        """Send metrics (`name:value|type`) in one datagram, prefixed and tagged."""
        try:
            sock = self._socket()
            if sock is None:
                return
            data = "\n".join(f"{self.prefix}{metric}{self.suffix}" for metric in metrics)
            sock.send(data.encode("ascii", "replace"))
        except Exception as exc:  # noqa: BLE001 - metrics must never break what they measure
            now = time.monotonic()
            if now >= self.next_failure_report:
                self.next_failure_report = now + _FAILURE_REPORT_INTERVAL
                log.warning("statsd send failed address=%s error=%s (reported once a minute)",
                            self.address, exc)

    # gunicorn's Statsd methods, same wire formats.
    def gauge(self, name: str, value: float) -> None:
        self.send(f"{name}:{value}|g")

    def increment(self, name: str, value: float = 1, sampling_rate: float = 1.0) -> None:
        self.send(f"{name}:{value}|c|@{sampling_rate}")

    def decrement(self, name: str, value: float = 1, sampling_rate: float = 1.0) -> None:
        self.send(f"{name}:-{value}|c|@{sampling_rate}")

    def timer(self, name: str, value: float) -> None:
        self.send(f"{name}:{value}|ms")

    def histogram(self, name: str, value: float) -> None:
        self.send(f"{name}:{value}|h")

    def request(self, status: str, duration: float) -> None:
        """One served request: its duration, the request count, the count for its status."""
        code = status.split(" ", 1)[0]
        self.send(
            f"gunicorn.request.duration:{duration * 1000.0}|ms",
            "gunicorn.requests:1|c|@1.0",
            f"gunicorn.request.status.{code}:1|c|@1.0",
        )

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def client_for(settings: Settings) -> StatsdClient | None:
    """The client the settings ask for, or None without --statsd-host."""
    address = settings.statsd_host
    if address is None:
        return None
    return StatsdClient(address, settings.statsd_prefix, settings.dogstatsd_tags)


class StatsdLogHandler(logging.Handler):
    """Counts error-log records as gunicorn does: gunicorn.log.warning, .error, .critical,
    .exception (an error logged with a traceback counts as an exception, not an error)."""

    def __init__(self, client: StatsdClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def close(self) -> None:
        self.client.close()
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.CRITICAL:
            kind = "critical"
        elif record.levelno >= logging.ERROR:
            kind = "exception" if record.exc_info else "error"
        else:
            kind = "warning"
        self.client.increment(f"gunicorn.log.{kind}", 1)
