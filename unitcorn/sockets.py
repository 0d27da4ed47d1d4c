"""Open the listening sockets named by ``bind``, or adopt ones inherited from systemd or an old master."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import stat
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field

from unitcorn.binds import Bind
from unitcorn.lognames import ERROR_LOGGER
from unitcorn.settings.values import Settings

log = logging.getLogger(ERROR_LOGGER)

# A re-exec'd master learns its inherited (non-systemd) listeners from this variable.
INHERITED_FDS_VAR = "UNITCORN_FD"
# FDNAME prefix of the sockets we keep in systemd's fd store: on a restart they come back among
# LISTEN_FDS, and must be told apart from sockets of a .socket unit.
STORED_PREFIX = "ucstore-"


def fd_store_name(address: str) -> str:
    """An FDNAME for a listener: printable ASCII without ':' (systemd's separator), ≤ 255."""
    return (STORED_PREFIX + re.sub(r"[^A-Za-z0-9._/@=+-]", "_", address))[:255]


class BindError(Exception):
    """A listening socket could not be created."""


@dataclass
class Listener:
    """One listening socket and where it came from."""

    sock: socket.socket
    bind: Bind
    # Sockets systemd passed us belong to systemd: never unlink their path at shutdown.
    is_from_systemd: bool = False
    name: str = ""
    address_key: tuple = field(default=())

    @property
    def is_from_socket_unit(self) -> bool:
        """Passed by a .socket unit (not one we stored ourselves): systemd decides it is served."""
        return self.is_from_systemd and not self.name.startswith(STORED_PREFIX)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self, unlink: bool = True) -> None:
        """Close; remove a unix socket's file too, unless systemd or an heir still needs it."""
        path = self.bind.path if self.bind.kind == "unix" else ""
        self.sock.close()
        if unlink and path and not self.is_from_systemd:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def __str__(self) -> str:
        return str(self.bind)


def address_key_of_socket(sock: socket.socket) -> tuple:
    """(family, address) of a bound socket, comparable with `address_key_of_bind`."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        path = name.decode() if isinstance(name, bytes) else name
        return ("unix", os.path.abspath(path) if path else path)
    return ("inet", name[0], name[1])


def address_key_of_bind(bind: Bind) -> tuple:
    if bind.kind == "unix":
        return ("unix", os.path.abspath(bind.path))
    if bind.kind == "fd":
        return ("fd", bind.fd)
    host = _resolve_host(bind.host, bind.port)
    return ("inet", host, bind.port)


def _resolve_host(host: str, port: int) -> str:
    try:
        info = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return host
    return str(info[0][4][0])


def open_listeners(
    binds: Sequence[Bind],
    backlog: int,
    reuse_port: bool = False,
    inherited: Iterable[Listener] = (),
    owner: tuple[int | None, int | None] = (None, None),
    umask: int | None = None,
) -> list[Listener]:
    """Return one listener per bind, reusing an inherited socket with the same address.

    Sockets systemd activated that no bind asks for are served too (the unit's .socket says
    they should be), each logged. Other unclaimed inherited sockets are left out: the caller
    closes them (a reload dropped that bind, or an upgrade's new configuration did).
    """
    spare = {listener.address_key: listener for listener in inherited}
    has_activated = any(listener.is_from_socket_unit for listener in spare.values())
    by_fd = {listener.fileno(): listener for listener in spare.values()}
    listeners: list[Listener] = []
    for bind in binds:
        key = address_key_of_bind(bind)
        if bind.kind == "fd" and bind.fd in by_fd:
            # `fd://N` after an upgrade or reload: the socket we already hold under that number.
            key = by_fd[bind.fd].address_key
        if key in spare:
            listeners.append(spare.pop(key))
        elif bind.kind == "fd":
            listeners.append(adopt_fd(bind.fd, bind))
        else:
            if has_activated:
                log.info("no activated socket for bind; binding it ourselves address=%s", bind)
            listeners.append(create_listener(bind, backlog, reuse_port, owner, umask))
    for listener in spare.values():
        if listener.is_from_socket_unit:
            log.info("serving activated socket with no bind address=%s name=%s", listener, listener.name)
            listeners.append(listener)
    return listeners


def adopt_fd(fd: int, bind: Bind | None = None, *, name: str = "", is_from_systemd: bool = False) -> Listener:
    """Wrap an already-listening inherited descriptor."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"bind fd://{fd}: not a socket ({exc.strerror})") from exc
    sock.set_inheritable(False)
    key = address_key_of_socket(sock)
    if bind is None or bind.kind == "fd":
        bind = _bind_for_key(key, fd)
    return Listener(sock, bind, is_from_systemd=is_from_systemd, name=name, address_key=key)


def _bind_for_key(key: tuple, fd: int) -> Bind:
    if key[0] == "unix":
        return Bind(kind="unix", path=key[1])
    if key[0] == "inet":
        return Bind(kind="tcp", host=key[1], port=key[2])
    return Bind(kind="fd", fd=fd)


def create_listener(
    bind: Bind,
    backlog: int,
    reuse_port: bool,
    owner: tuple[int | None, int | None] = (None, None),
    umask: int | None = None,
) -> Listener:
    if bind.kind == "unix":
        sock = _create_unix(bind.path, owner, umask)
    else:
        sock = _create_tcp(bind, reuse_port)
    sock.listen(backlog)
    return Listener(sock, bind, address_key=address_key_of_bind(bind))


def _create_tcp(bind: Bind, reuse_port: bool) -> socket.socket:
    try:
        info = socket.getaddrinfo(
            bind.host or None, bind.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(f"bind {bind}: cannot resolve host ({exc.strerror})") from exc
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BindError(f"bind {bind}: {exc.strerror}") from exc
    return sock


def _create_unix(path: str, owner: tuple[int | None, int | None], umask: int | None) -> socket.socket:
    """The socket file's mode is 0777 minus `umask` (the process umask when None)."""
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous_umask = os.umask(umask) if umask is not None else None
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise BindError(f"bind unix:{path}: {exc.strerror}") from exc
    finally:
        if previous_umask is not None:
            os.umask(previous_umask)
    uid, gid = owner
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    """Unlink a socket file nobody listens on any more; refuse to steal a live one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(f"bind unix:{path}: exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise BindError(f"bind unix:{path}: {exc.strerror}") from exc
    finally:
        probe.close()
    raise BindError(f"bind unix:{path}: another server is listening there")


def inherited_from_environment(environ: MutableMapping[str, str]) -> list[Listener]:
    """Adopt the listeners an old master passed on in UNITCORN_FD (and forget the variable)."""
    value = environ.pop(INHERITED_FDS_VAR, "")
    listeners = []
    for item in filter(None, value.split(",")):
        listeners.append(adopt_fd(int(item)))
    return listeners


def inherited_from_systemd(environ: MutableMapping[str, str]) -> list[Listener]:
    """Adopt sockets passed by systemd socket activation (LISTEN_FDS for our pid)."""
    from unitcorn.systemd.activation import listen_fds

    return [
        adopt_fd(item.fd, name=item.name, is_from_systemd=True)
        for item in listen_fds(environ)
    ]


def explicit_umask(settings: Settings) -> int | None:
    """The --umask the operator set, or None to keep the process's own (a unit's UMask=)."""
    return None if settings.origin("umask") == "default" else settings.umask
