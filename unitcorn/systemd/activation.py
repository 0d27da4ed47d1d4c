"""Adopt the listening sockets systemd passes in (socket activation and the fd store).

The contract, from sd_listen_fds(3): systemd passes ``LISTEN_FDS`` descriptors starting at fd 3,
sets ``LISTEN_PID`` to the pid they are meant for and ``LISTEN_FDNAMES`` to a colon-separated name
per descriptor (the socket unit's name, its ``FileDescriptorName=``, or the ``FDNAME=`` given to the
fd store). Sockets from the fd store come after those of socket units.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass

SD_LISTEN_FDS_START = 3

_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")

# sd_listen_fds_with_names(3) names descriptors "unknown" when LISTEN_FDNAMES is absent.
_UNKNOWN_NAME = "unknown"


@dataclass(frozen=True)
class InheritedSocket:
    """One descriptor passed in by systemd, with the name it was given."""

    fd: int
    name: str


def listen_fds(
    environ: MutableMapping[str, str] | None = None,
    pid: int | None = None,
    unset_environment: bool = True,
) -> list[InheritedSocket]:
    """Return the descriptors systemd passed to this process, marked close-on-exec.

    Descriptors are adopted only when ``LISTEN_PID`` is ``pid`` (default: ours): the variables
    are inherited by children, and a child that adopted its parent's fds would serve sockets
    meant for someone else. With ``unset_environment`` the three variables are removed whatever
    the outcome, so nothing we start later sees them.

    Malformed values (non-numbers, a name count that differs from ``LISTEN_FDS``, a descriptor
    that is not open) give an empty list, silently, as sd_listen_fds(3) gives an error: systemd
    always sets the variables consistently, so a malformed set was made by something else and
    adopting arbitrary fd numbers from it would be worse than binding afresh. The caller already
    logs each bind it serves without an activated socket, which is where the operator notices.
    """
    if environ is None:
        environ = os.environ
    if pid is None:
        pid = os.getpid()
    values = {name: environ.get(name) for name in _VARIABLES}
    if unset_environment:
        for name in _VARIABLES:
            # os.environ's pop also calls unsetenv(), so children we exec do not inherit them.
            environ.pop(name, None)

    count = _parse_count(values["LISTEN_PID"], values["LISTEN_FDS"], pid)
    if count == 0:
        return []
    names = _parse_names(values["LISTEN_FDNAMES"], count)
    if names is None:
        return []

    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
    try:
        for fd in fds:
            # systemd hands them over inheritable; we decide ourselves which child gets which.
            os.set_inheritable(fd, False)
    except OSError:
        return []
    return [InheritedSocket(fd, name) for fd, name in zip(fds, names, strict=True)]


def _parse_count(listen_pid: str | None, listen_fds: str | None, pid: int) -> int:
    """Number of descriptors meant for ``pid``; 0 when none are, or the values are malformed."""
    if listen_pid is None or listen_fds is None:
        return 0
    try:
        if int(listen_pid) != pid:
            return 0
        count = int(listen_fds)
    except ValueError:
        return 0
    return max(count, 0)


def _parse_names(listen_fdnames: str | None, count: int) -> list[str] | None:
    """One name per descriptor, ``unknown`` when unnamed; None when the count does not match."""
    # An empty value carries no names at all, like an absent one (not one empty name).
    if not listen_fdnames:
        return [_UNKNOWN_NAME] * count
    # Empty names between colons are kept: systemd does not coalesce separators.
    names = listen_fdnames.split(":")
    return names if len(names) == count else None


def socket_address_key(fd: int) -> tuple:
    """``(family, address)`` of the socket on ``fd``, comparable with ``address_key`` of a bind.

    Raises OSError (ENOTSOCK, EBADF) when ``fd`` is not an open socket.
    """
    sock = socket.socket(fileno=fd)
    try:
        return address_key(sock.family, sock.getsockname())
    finally:
        # detach() so that dropping the wrapper does not close a descriptor we do not own.
        sock.detach()


def address_key(family: int, address: object) -> tuple:
    """Normalise a socket address as returned by ``getsockname`` for ``family``.

    AF_UNIX: the path as a string, ``@name`` for the abstract namespace (systemd's own spelling
    in ``ListenStream=``), ``""`` for an unnamed socket. AF_INET/AF_INET6: ``(host, port)``,
    dropping IPv6 flow information and scope id. Note that a bare ``ListenStream=8000`` gives
    an AF_INET6 socket on ``("::", 8000)``. Other families keep their address unchanged.
    """
    family = socket.AddressFamily(family)
    if family == socket.AF_UNIX:
        if isinstance(address, bytes):
            # Python returns abstract addresses as bytes starting with NUL.
            if address.startswith(b"\0"):
                return (family, "@" + os.fsdecode(address[1:]))
            return (family, os.fsdecode(address))
        return (family, address or "")
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host, port = address[0], address[1]
        return (family, (host, port))
    return (family, address)
