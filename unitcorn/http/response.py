"""Frame a response for the wire: status line, headers, and how the body is delimited.

Pure: no sockets.  The WSGI layer asks `frame_response` once per response, then passes every
block of the app's body through the writer `body_writer(framing)` gives, and sends what it
returns: the writers, not the caller, enforce Content-Length, chunk framing and bodiless
responses (the split h11 makes between its connection and its writers).
"""

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

from .grammar import TOKEN

LAST_CHUNK = b"0\r\n\r\n"

_STATUS = re.compile(r"([1-9][0-9][0-9]) [\t -~\x80-\xff]*")
_TOKEN = re.compile(TOKEN)
# Controls other than HTAB, CR and LF; CR and LF are checked by counting (see _check_values).
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# RFC 9110 §7.6.1: connection-specific fields are the server's business, never the app's.
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"))

# What a header name means to framing; filled lazily so each distinct name is checked once.
_PLAIN, _LENGTH, _DATE, _SERVER = range(4)
_name_kinds: dict[str, int] = {}
_MAX_CACHED_NAMES = 1000  # apps with generated header names must not grow the cache forever

_status_codes: dict[str, int] = {}

# Finished heads: (bytes before the Date line, has a Date line, bytes after it, Framing).
_heads: dict[tuple, tuple[bytes, bool, bytes, "Framing"]] = {}
_MAX_CACHED_HEADS = 256


@dataclass(frozen=True, slots=True)
class Framing:
    """How the body of a framed response is delimited."""

    mode: str  # "length" | "chunked" | "close" | "none"
    length: int | None  # the Content-Length in "length" mode, else None
    keep_alive: bool


def frame_response(
    request_method: str,
    request_version: tuple[int, int],
    status: str,
    headers: list[tuple[str, str]],
    keep_alive: bool,
    server: str = "unitcorn",
    known_length: int | None = None,
) -> tuple[bytes, Framing]:
    """Return the response head and its Framing; ValueError for anything the app got wrong.

    `known_length` is the body size when the server knows it (a list body): it becomes the
    Content-Length unless the app gave one.  Apps answer with the same few heads over and over,
    so a head is built and checked once and then reused with only its Date line replaced.
    """
    try:
        key = (request_method == "HEAD", request_version, status, tuple(headers), keep_alive, server,
               known_length)
        cached = _heads.get(key)
    except TypeError:  # unhashable items from the app: build it every time
        before, has_date, after, framing = _frame(
            request_method, request_version, status, headers, keep_alive, server, known_length
        )
        return (before + _date_bytes() + after if has_date else before), framing
    if cached is None:
        before, has_date, after, framing = _frame(
            request_method, request_version, status, headers, keep_alive, server, known_length
        )
        if len(_heads) >= _MAX_CACHED_HEADS:
            _heads.clear()
        _heads[key] = cached = (before, has_date, after, framing)
    before, has_date, after, framing = cached
    head = before + _date_bytes() + after if has_date else before
    return head, framing  # frozen: one Framing serves every response with this head


def _frame(
    request_method: str,
    request_version: tuple[int, int],
    status: str,
    headers: list[tuple[str, str]],
    keep_alive: bool,
    server: str,
    known_length: int | None,
) -> tuple[bytes, bool, bytes, Framing]:
    """Build and check a head: (bytes before our Date line, whether we add one, bytes after, Framing)."""
    code = _status_codes.get(status) or _status_code(status)
    # RFC 9110 §6.4.1: these responses never carry content, whatever the app says.
    no_content = code < 200 or code == 204 or code == 304 or request_method == "HEAD"
    length: int | None = None
    has_date = has_server = False
    lines = [f"HTTP/1.1 {status}\r\n"]
    for name, value in headers:
        kind = _name_kinds.get(name)
        if kind is None:
            kind = _classify(name)
        if kind:
            if kind == _LENGTH:
                if code < 200 or code == 204:
                    continue  # RFC 9110 §8.6: MUST NOT be sent with 1xx or 204
                length = _app_length(value, length)
            elif kind == _DATE:
                has_date = True
            else:
                has_server = True
        lines.append(f"{name}: {value}\r\n")
    if length is None and known_length is not None and not (code < 200 or code == 204):
        lines.append(f"Content-Length: {known_length}\r\n")
        length = known_length
    date_at = -1
    if not has_date:
        date_at = len(lines)
        lines.append(_date_line())
    if not has_server and server:
        lines.append(f"Server: {server}\r\n")

    if no_content:
        framing = Framing("none", None, keep_alive)
    elif length is not None:
        framing = Framing("length", length, keep_alive)
    elif request_version >= (1, 1):
        lines.append("Transfer-Encoding: chunked\r\n")
        framing = Framing("chunked", None, keep_alive)
    else:
        # HTTP/1.0 has no chunked coding: the end of the body is the end of the connection.
        framing = Framing("close", None, False)
    if not framing.keep_alive:
        lines.append("Connection: close\r\n")
    elif request_version < (1, 1):
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    # Every line must end in exactly one CRLF: a CR or LF inside a value would split it.
    if head.count("\n") != len(lines) or head.count("\r") != len(lines) or _BAD_VALUE_CHAR.search(head):
        raise ValueError("control character in a response header")
    if date_at < 0:
        return head.encode("latin-1"), False, b"", framing
    before = "".join(lines[:date_at]).encode("latin-1")
    after = "".join(lines[date_at + 1 :]).encode("latin-1")
    return before, True, after, framing


class LengthWriter:
    """A body of exactly `length` bytes (Content-Length).

    Bytes past the length are dropped: they must never pose as the next response on a
    kept-alive connection.  Too many or too few bytes cannot be undone once the head is out, so
    the writer does not raise; it says the message can only end with the connection.
    """

    __slots__ = ("left", "sent", "ends_connection")

    def __init__(self, length: int) -> None:
        self.left = length  # bytes the head promised and the body has not yet carried
        self.sent = 0  # body bytes handed out to send
        self.ends_connection = False

    def write(self, data: bytes) -> bytes:
        if len(data) > self.left:
            data = data[: self.left]
            self.ends_connection = True
        self.left -= len(data)
        self.sent += len(data)
        return data

    def count(self, size: int) -> None:
        """`size` body bytes went out by other means (os.sendfile); at most `left`."""
        self.left -= size
        self.sent += size

    def end(self) -> bytes:
        if self.left:
            self.ends_connection = True  # fewer bytes than announced: only closing ends the message
        return b""


class ChunkedWriter:
    """A body in chunks (RFC 9112 §7.1); the last chunk ends it."""

    __slots__ = ("sent", "ends_connection")

    def __init__(self) -> None:
        self.sent = 0
        self.ends_connection = False

    def write(self, data: bytes) -> bytes:
        self.sent += len(data)
        return encode_chunk(data)

    def end(self) -> bytes:
        return LAST_CHUNK


class CloseWriter:
    """An HTTP/1.0 body without a length: it ends where the connection does."""

    __slots__ = ("sent", "ends_connection")

    def __init__(self) -> None:
        self.sent = 0
        self.ends_connection = True

    def write(self, data: bytes) -> bytes:
        self.sent += len(data)
        return data

    def end(self) -> bytes:
        return b""


class NoBodyWriter:
    """HEAD, 1xx, 204 and 304 (RFC 9110 §6.4.1): whatever the app writes, nothing is sent."""

    __slots__ = ("sent", "ends_connection")

    def __init__(self) -> None:
        self.sent = 0
        self.ends_connection = False

    def write(self, data: bytes) -> bytes:
        return b""

    def end(self) -> bytes:
        return b""


BodyWriter = LengthWriter | ChunkedWriter | CloseWriter | NoBodyWriter


def body_writer(framing: Framing) -> BodyWriter:
    """The writer for a body framed as `framing` says."""
    mode = framing.mode
    if mode == "length":
        return LengthWriter(framing.length or 0)
    if mode == "chunked":
        return ChunkedWriter()
    if mode == "none":
        return NoBodyWriter()
    return CloseWriter()


def encode_chunk(data: bytes) -> bytes:
    """Frame `data` as one chunk; empty data gives b"" (an empty chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def error_response(status: int, reason: str) -> bytes:
    """A complete, close-delimited plain-text reply for a request the server refuses."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = reason.encode("utf-8", "replace") + b"\n"
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        f"{_date_line()}"
        "Server: unitcorn\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _status_code(status: str) -> int:
    match = _STATUS.fullmatch(status) if isinstance(status, str) else None
    if match is None:
        raise ValueError(f"invalid status {status!r}")
    code = int(match.group(1))
    if len(_status_codes) < _MAX_CACHED_NAMES:
        _status_codes[status] = code
    return code


def _classify(name: str) -> int:
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name {name!r}")
    lower = name.lower()
    if lower in _HOP_BY_HOP or lower.startswith("proxy-"):
        raise ValueError(f"hop-by-hop header {name!r} is not the application's to send")
    kind = {"content-length": _LENGTH, "date": _DATE, "server": _SERVER}.get(lower, _PLAIN)
    if len(_name_kinds) < _MAX_CACHED_NAMES:
        _name_kinds[name] = kind
    return kind


def _app_length(value: str, previous: int | None) -> int:
    value = value.strip(" \t")
    if not (value.isdigit() and value.isascii()):
        raise ValueError(f"invalid Content-Length {value!r}")
    length = int(value)
    if previous is not None and previous != length:
        raise ValueError("conflicting Content-Length headers")
    return length


_date_second = -1
_date_value = b""


def _date_bytes() -> bytes:
    """The Date header line (RFC 9110 §6.6.1), formatted at most once per second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = f"Date: {formatdate(now, usegmt=True)}\r\n".encode("latin-1")
        _date_second = now
    return _date_value


def _date_line() -> str:
    return _date_bytes().decode("latin-1")
