"""The PROXY protocol header (HAProxy's, v1 text and v2 binary) a front-end sends before the
first request, saying whose connection it relays.  Sans-IO: bytes in, a ProxyHeader out.

gunicorn's rules (proxy_protocol = off/v1/v2/auto): the header is optional, and only looked for
at the very start of a connection; an address is checked to be one (inet_pton); a v2 PROXY
command must carry TCP.  Where the spec is clearer than gunicorn, the spec wins: "PROXY UNKNOWN"
(v1) is accepted and means "use the socket's own addresses", as LOCAL and AF_UNSPEC do in v2.
"""

import socket
import struct
from dataclasses import dataclass

from .errors import HTTPError

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the spec's longest v1 line, CRLF included
_V2_HEAD = 16  # signature, version/command, family/transport, address length
_V2_ADDRESSES = {0x1: (socket.AF_INET, 4, "TCP4"), 0x2: (socket.AF_INET6, 16, "TCP6")}
_V1_FAMILIES = {"TCP4": socket.AF_INET, "TCP6": socket.AF_INET6}
_STREAM = 0x1


@dataclass(frozen=True)
class ProxyHeader:
    """What the front-end said. The addresses are None when it said "use the socket's own"
    (v1 UNKNOWN, v2 LOCAL or AF_UNSPEC)."""

    protocol: str  # TCP4, TCP6, UNKNOWN, LOCAL or UNSPEC: what PROXY_PROTOCOL says in environ
    client_addr: str | None = None
    client_port: int | None = None
    proxy_addr: str | None = None  # the address the client connected to, on the front-end
    proxy_port: int | None = None


NEED_MORE = "more"  # returned by parse_proxy_header while the bytes cannot decide yet


def parse_proxy_header(
    buf: bytes, pos: int, mode: str, is_allowed: bool, is_eof: bool
) -> tuple[ProxyHeader | None, int] | str:
    """Look for a PROXY header at buf[pos:]; mode is v1, v2 or auto.

    Returns (header, end) with the header consumed; (None, pos) if there is none (the bytes are
    the request itself); or NEED_MORE.  Raises HTTPError: 403 for a header from a peer not
    `is_allowed` (proxy_allow_ips), 400 for a malformed one.
    """
    data = buf[pos : pos + len(V2_SIGNATURE)]
    if mode != "v1":
        if data == V2_SIGNATURE:
            _check_allowed(is_allowed)
            return _parse_v2(buf, pos)
        if V2_SIGNATURE.startswith(data) and not is_eof:
            return NEED_MORE
    if mode != "v2":
        if data.startswith(V1_PREFIX):
            _check_allowed(is_allowed)
            return _parse_v1(buf, pos, is_eof)
        if V1_PREFIX.startswith(data) and not is_eof:
            return NEED_MORE
    return None, pos


def _check_allowed(is_allowed: bool) -> None:
    if not is_allowed:  # gunicorn's ForbiddenProxyRequest
        raise HTTPError(403, "PROXY header from a peer not in proxy_allow_ips")


def _parse_v1(buf: bytes, pos: int, is_eof: bool) -> tuple[ProxyHeader, int] | str:
    # "PROXY" SP proto SP src-addr SP dst-addr SP src-port SP dst-port CRLF
    end = buf.find(b"\r\n", pos, pos + V1_MAX)
    if end < 0:
        if len(buf) - pos >= V1_MAX or is_eof:
            raise HTTPError(400, "invalid PROXY line")
        return NEED_MORE
    try:
        line = buf[pos:end].decode("ascii")
    except UnicodeDecodeError:
        raise HTTPError(400, "invalid PROXY line") from None
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        # The front-end cannot tell (e.g. its client came over a unix socket); the rest of the
        # line is to be ignored.
        return ProxyHeader("UNKNOWN"), end + 2
    if len(parts) != 6 or parts[1] not in _V1_FAMILIES:
        raise HTTPError(400, "invalid PROXY line")
    _, protocol, client, proxy, client_port, proxy_port = parts
    family = _V1_FAMILIES[protocol]
    for address in (client, proxy):
        try:
            socket.inet_pton(family, address)
        except OSError:
            raise HTTPError(400, "invalid address in PROXY line") from None
    header = ProxyHeader(protocol, client, _port(client_port), proxy, _port(proxy_port))
    return header, end + 2


def _port(text: str) -> int:
    # The spec: a decimal number 0..65535 without leading zeros (gunicorn's int() took more).
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or text != str(int(text)):
        raise HTTPError(400, "invalid port in PROXY line")
    port = int(text)
    if port > 65535:
        raise HTTPError(400, "invalid port in PROXY line")
    return port


def _parse_v2(buf: bytes, pos: int) -> tuple[ProxyHeader, int] | str:
    if len(buf) - pos < _V2_HEAD:
        return NEED_MORE
    version_command, family_transport, length = struct.unpack_from(">BBH", buf, pos + 12)
    if version_command >> 4 != 2:
        raise HTTPError(400, "unsupported PROXY header version")
    command = version_command & 0xF
    if command > 1:
        raise HTTPError(400, "unsupported PROXY header command")
    end = pos + _V2_HEAD + length
    if len(buf) < end:
        return NEED_MORE
    if command == 0:  # LOCAL: the front-end's own connection (a health check)
        return ProxyHeader("LOCAL"), end
    family = family_transport >> 4
    if family == 0:  # AF_UNSPEC: unknown addresses; the block is to be ignored
        return ProxyHeader("UNSPEC"), end
    if family not in _V2_ADDRESSES:
        raise HTTPError(400, "unsupported address family in PROXY header")
    if family_transport & 0xF != _STREAM:
        raise HTTPError(400, "PROXY header for a transport other than TCP")
    af, size, protocol = _V2_ADDRESSES[family]
    if length < 2 * size + 4:
        raise HTTPError(400, "PROXY header too short for its addresses")
    start = pos + _V2_HEAD
    client = socket.inet_ntop(af, buf[start : start + size])
    proxy = socket.inet_ntop(af, buf[start + size : start + 2 * size])
    client_port, proxy_port = struct.unpack_from(">HH", buf, start + 2 * size)
    # Any TLVs after the addresses (ALPN, SSL details...) are skipped.
    return ProxyHeader(protocol, client, client_port, proxy, proxy_port), end
