"""Send the error and access logs to syslog (--log-syslog), as gunicorn's logger does."""

from __future__ import annotations

import logging
import logging.handlers
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings/convert.py imports this module: at run time that would be a circle
    from unitcorn.settings.values import Settings

# gunicorn's glogging.SYSLOG_FACILITIES.
FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6, "mail": 2,
    "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8, "local0": 16, "local1": 17,
    "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

DEFAULT_PORT = 514

Address = tuple["socket.SocketKind | None", "tuple[str, int] | str"]


def parse_address(text: str) -> Address:
    """gunicorn's syslog_addr: `unix://PATH[#dgram|#stream]`, `udp://HOST[:PORT]`, `tcp://HOST[:PORT]`.

    Returns (socket type, address) for SysLogHandler; a unix socket without `#type` gets None,
    which makes SysLogHandler try a datagram socket, then a stream one. Raises ValueError.
    """
    if text.startswith("unix://"):
        path, _, kind = text[len("unix://"):].partition("#")
        if not path:
            raise ValueError("the unix socket path is empty")
        if kind not in ("", "dgram", "stream"):
            raise ValueError(f"unknown socket type {kind!r} (dgram or stream)")
        return ({"dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}.get(kind), path)
    for scheme, kind_of_socket in (("udp://", socket.SOCK_DGRAM), ("tcp://", socket.SOCK_STREAM)):
        if text.startswith(scheme):
            return (kind_of_socket, _host_port(text[len(scheme):]))
    raise ValueError("must start with unix://, udp:// or tcp://")


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return (host.lower() or "localhost", DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} is not a port number")
    return (host.lower() or "localhost", int(port_text))


def syslog_handler(settings: Settings, role: str,
                   handler_class: type[logging.handlers.SysLogHandler] = logging.handlers.SysLogHandler,
                   ) -> logging.Handler:
    """A SysLogHandler for the `role` log ("error" or "access"), formatted like gunicorn's:
    `gunicorn.PREFIX.ROLE: [PID] MESSAGE`.

    A unix socket that is not there yet is not an error (SysLogHandler connects again on each
    record, as openlog(3) does); a host that does not resolve is (OSError).
    """
    prefix = settings.syslog_prefix or str(settings.proc_name or settings.app_uri or "unitcorn")
    prefix = prefix.replace(":", ".").replace("%", "%%")  # the prefix goes into a format string
    kind, address = parse_address(settings.syslog_addr)
    handler = handler_class(
        address=address, facility=FACILITIES[settings.syslog_facility], socktype=kind
    )
    handler.setFormatter(logging.Formatter(f"gunicorn.{prefix}.{role}: [%(process)d] %(message)s"))
    return handler
