"""Parse one bind string (gunicorn's ``-b`` syntax) into a Bind value."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

# gunicorn binds a bare HOST (no port) on 8000; so do we.
DEFAULT_PORT = 8000
# gunicorn binds ":8000" (empty host) on every IPv4 address; we spell that out.
ANY_IPV4 = "0.0.0.0"


@dataclass(frozen=True)
class Bind:
    """One listening address: a TCP host and port, a unix socket path, or an inherited fd."""

    kind: Literal["tcp", "unix", "fd"]
    host: str = ""  # tcp only, without brackets: "127.0.0.1", "::1", "localhost"
    port: int = 0  # tcp only
    path: str = ""  # unix only
    fd: int = -1  # fd only

    @property
    def is_ipv6(self) -> bool:
        return self.kind == "tcp" and ":" in self.host

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"{host}:{self.port}"


def parse_bind(text: str) -> Bind:
    """Parse HOST:PORT, [v6]:PORT, HOST, unix:PATH, unix://PATH, fd://N or tcp://HOST:PORT.

    Raises ValueError whose message says what is wrong with the text (TypeError if not text).
    """
    if not isinstance(text, str):
        raise TypeError(f"must be a string, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError("is empty")
    if text.startswith("unix:"):
        return _parse_unix(text)
    if text.startswith("fd://"):
        return _parse_fd(text[len("fd://"):])
    return _parse_tcp(text.removeprefix("tcp://"))


def _parse_unix(text: str) -> Bind:
    # gunicorn accepts both unix:PATH and unix://PATH; "unix:///run/x" means /run/x.
    path = text[len("unix://"):] if text.startswith("unix://") else text[len("unix:"):]
    if not path:
        raise ValueError("unix socket path is empty")
    if "\0" in path:
        raise ValueError("unix socket path contains a NUL byte")
    return Bind(kind="unix", path=path)


def _parse_fd(number: str) -> Bind:
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"fd://{number}: {number!r} is not a file descriptor number")
    return Bind(kind="fd", fd=int(number))


def _parse_tcp(text: str) -> Bind:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("missing ']' after IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected ':PORT' after ']', found {rest!r}")
        port_text = rest[1:] if rest else ""
        _check_ipv6(host)
    elif text.count(":") > 1:
        raise ValueError("an IPv6 address needs brackets, e.g. [::1]:8000")
    else:
        host, _, port_text = text.partition(":")
        host = host or ANY_IPV4
    if not host:
        raise ValueError("host is empty")
    return Bind(kind="tcp", host=host.lower(), port=_parse_port(port_text, text))


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv6 address") from None


def _parse_port(port_text: str, whole: str) -> int:
    if port_text == "" and not whole.endswith(":"):
        return DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    return port
