"""Tell systemd about state changes through the sd_notify(3) socket.

Messages are ``KEY=value`` lines in one datagram to the AF_UNIX socket named by ``NOTIFY_SOCKET``
(a path, or ``@name`` for the abstract namespace). Everything here is a no-op when that variable
is absent, so the same code runs under systemd and outside it.

Why not the ``sdnotify`` package for plain sends: it reads ``NOTIFY_SOCKET`` from ``os.environ``
when constructed (we remove it from there, and a re-exec'd master is handed the path explicitly),
it swallows every error so a caller cannot learn that a message was lost, it encodes as Latin-1
(a ``STATUS=`` with other characters is silently dropped), and it cannot pass descriptors.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Mapping, MutableMapping

log = logging.getLogger("unitcorn.systemd")

# sd_notify(3): an FDNAME= may hold ASCII characters except control characters and ":", at most
# 255 of them; systemd silently ignores one that does not, so we refuse it loudly instead.
_FDNAME = re.compile(r"[\x20-\x39\x3b-\x7e]{1,255}")
_FIELD = re.compile(r"[A-Z][A-Z0-9_]*")


class Notifier:
    """Sends sd_notify messages; a no-op when there is no NOTIFY_SOCKET."""

    def __init__(self, socket_path: str | None, timeout: float = 1.0) -> None:
        """Notify through ``socket_path`` (a path or ``@abstract``); None or "" disables.

        ``timeout`` bounds each send: a datagram send blocks while systemd's receive queue is
        full, and the master's loop must never wedge on it (a late WATCHDOG=1 is better than a
        loop that can no longer send any).
        """
        self._path = socket_path or None
        self._address = _socket_address(self._path)
        self._timeout = timeout

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, unset: bool = True
    ) -> Notifier:
        """Build from ``NOTIFY_SOCKET`` and, with ``unset``, remove it from ``environ``.

        Removing it keeps workers and the application from ever talking to systemd in our name.
        """
        if environ is None:
            environ = os.environ
        path = environ.pop("NOTIFY_SOCKET", None) if unset else environ.get("NOTIFY_SOCKET")
        return cls(path)

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to send to."""
        return self._address is not None

    @property
    def socket_path(self) -> str | None:
        """The ``NOTIFY_SOCKET`` value, for handing on to a re-exec'd master."""
        return self._path

    def send(self, **fields: str | int) -> bool:
        """Send ``fields`` as one message; False when disabled or not delivered.

        Raises ValueError for a field name systemd would not recognise or a value holding a
        newline (it would forge another field).
        """
        return self._send(_encode(fields), [])

    def ready(self, status: str | None = None) -> bool:
        """Startup or reload finished: READY=1, with a STATUS= line when given."""
        return self.send(READY=1, **_status(status))

    def reloading(self) -> bool:
        """A reload started: RELOADING=1 with the CLOCK_MONOTONIC time in microseconds.

        Type=notify-reload (systemd >= 253) only accepts a RELOADING=1 whose MONOTONIC_USEC is
        not older than the reload signal it sent; without it a reload can hang.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(RELOADING=1, MONOTONIC_USEC=now_usec)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown started: STOPPING=1, with a STATUS= line when given."""
        return self.send(STOPPING=1, **_status(status))

    def exit_status(self, code: int, status: str | None = None) -> bool:
        """The process is about to exit with ``code``: EXIT_STATUS= (systemd >= 254 knows the field,
        older ones ignore it), with a STATUS= line when given."""
        return self.send(EXIT_STATUS=code, **_status(status))

    def status(self, text: str) -> bool:
        """Replace the one-line status shown by ``systemctl status``."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """Keep-alive ping for WatchdogSec=."""
        return self.send(WATCHDOG=1)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the current start/stop/reload timeout fires."""
        if seconds < 0:
            raise ValueError(f"extend_timeout needs a duration >= 0, got {seconds}")
        return self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def main_pid(self, pid: int, ready: bool = True, pidfd_id: int | None = None) -> bool:
        """Hand the main-process role to ``pid`` (and report it ready, by default).

        With ``pidfd_id`` (see `pidfd_id`), MAINPIDFDID= names the process beyond its pid:
        systemd >= 257 refuses the change when ``pid`` has meanwhile become another process;
        older ones ignore the field.
        """
        fields: dict[str, str | int] = {"MAINPID": pid}
        if pidfd_id is not None:
            fields["MAINPIDFDID"] = pidfd_id
        if ready:
            fields["READY"] = 1
        return self.send(**fields)

    def store_fds(self, fds: list[int], name: str) -> bool:
        """Keep ``fds`` in systemd's fd store under ``name`` (needs FileDescriptorStoreMax=).

        They come back through LISTEN_FDS/LISTEN_FDNAMES on the next start of the service.
        """
        if not fds:
            raise ValueError("store_fds needs at least one descriptor")
        return self._send(_encode({"FDSTORE": 1, "FDNAME": _checked_fdname(name)}), fds)

    def remove_stored_fds(self, name: str) -> bool:
        """Drop (and let systemd close) the descriptors stored under ``name``."""
        return self.send(FDSTOREREMOVE=1, FDNAME=_checked_fdname(name))

    def _send(self, message: bytes, fds: list[int]) -> bool:
        if self._address is None:
            return False
        # A fresh socket per message, as sd_notify(3) does: nothing stays open to leak into
        # forked workers, and a receiving socket re-created by systemd is picked up next time.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self._timeout)
                # Connected, so that the timeout waits on systemd's queue rather than our own.
                sock.connect(self._address)
                if fds:
                    socket.send_fds(sock, [message], fds)
                else:
                    sock.send(message)
        except OSError as error:
            log.debug("notify failed socket=%s error=%r message=%r", self._path, error, message)
            return False
        return True


def pidfd_id(pid: int) -> int | None:
    """The pidfd inode ID of ``pid`` (what MAINPIDFDID= carries), or None where there is none.

    On a kernel with pidfs (Linux >= 6.9) every process's pidfd has an inode number of its own,
    unique for the boot, which fstat() returns on 64-bit systems (sd_pidfd_get_inode_id(3)).
    Older kernels give every pidfd the same anonymous inode: that is no ID, so None. A 32-bit
    st_ino could repeat, so None there too.
    """
    if sys.maxsize <= 2**32:
        return None
    try:
        target = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone, not permitted, or no pidfd_open at all
        return None
    try:
        own = os.pidfd_open(os.getpid())
        try:
            inode, own_inode = os.fstat(target).st_ino, os.fstat(own).st_ino
        finally:
            os.close(own)
    except OSError:
        return None
    finally:
        os.close(target)
    if pid != os.getpid() and inode == own_inode:
        return None  # one shared anonymous inode: not pidfs
    return inode


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.

    None when the watchdog is off, the values are malformed, or WATCHDOG_PID names another
    process (the variables are inherited; only the process systemd meant may ping).
    """
    if environ is None:
        environ = os.environ
    if pid is None:
        pid = os.getpid()
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
        watchdog_pid = environ.get("WATCHDOG_PID")
        if watchdog_pid is not None and int(watchdog_pid) != pid:
            return None
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


def _socket_address(path: str | None) -> str | None:
    """The address to connect to; None for no (or an unsupported) notification socket."""
    if path is None:
        return None
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    # systemd >= 254 also accepts vsock: addresses, which only matter inside VMs.
    log.debug("notify disabled: unsupported NOTIFY_SOCKET=%r", path)
    return None


def _status(status: str | None) -> dict[str, str | int]:
    return {} if status is None else {"STATUS": status}


def _encode(fields: Mapping[str, str | int]) -> bytes:
    lines = []
    for key, value in fields.items():
        # bool is an int, but "READY=True" would mean nothing to systemd.
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if not _FIELD.fullmatch(key):
            raise ValueError(f"not an sd_notify field name: {key!r}")
        if "\n" in text:
            raise ValueError(f"newline in sd_notify field {key}: {text!r}")
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode()


def _checked_fdname(name: str) -> str:
    if not _FDNAME.fullmatch(name):
        raise ValueError(f"not a valid FDNAME (printable ASCII without ':', 1-255): {name!r}")
    return name
