"""Decode a request body framed by Content-Length or by chunked coding, from a byte buffer.

Decoders never own the buffer: `read` gets the buffer and a position and returns the new
position, so bytes after the body (a pipelined request) stay where the parser keeps them.
"""

from .errors import HTTPError
from .grammar import CHUNK_LINE, FIELD_LINE
from .request import Limits

# A chunk-size line (size and extensions) longer than this is refused instead of buffered forever.
MAX_CHUNK_LINE = 4096


class LengthBody:
    """A body of exactly `remaining` bytes (Content-Length framing)."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    @property
    def done(self) -> bool:
        return self.remaining == 0

    def read(self, buf: bytes, pos: int, max_bytes: int, eof: bool) -> tuple[bytes | None, int]:
        """Return (body bytes available now | b"" at the end | None for "need more", new pos)."""
        if self.remaining == 0:
            return b"", pos
        size = min(self.remaining, len(buf) - pos)
        if 0 <= max_bytes < size:
            size = max_bytes
        if size == 0:
            if eof:
                raise HTTPError(400, "connection closed in the middle of the body")
            return None, pos
        self.remaining -= size
        if pos == 0 and size == len(buf):
            return buf, size  # the whole buffer is body: no copy
        return buf[pos : pos + size], pos + size


# Fields refused in a trailer section (see ChunkedBody._add_trailer).
_FORBIDDEN_TRAILERS = frozenset(("CONTENT-LENGTH", "TRANSFER-ENCODING", "HOST"))

# Chunked decoder states
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedBody:
    """A chunked body (RFC 9112 §7.1): extensions validated and ignored, trailers discarded."""

    __slots__ = ("_left", "_limits", "_state", "_trailers")

    def __init__(self, limits: Limits) -> None:
        self._state = _SIZE
        self._left = 0  # bytes left in the current chunk
        self._trailers = 0
        self._limits = limits

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def read(self, buf: bytes, pos: int, max_bytes: int, eof: bool) -> tuple[bytes | None, int]:
        """Return (decoded bytes available now | b"" at the end | None for "need more", new pos)."""
        parts: list[bytes] = []
        want = max_bytes if max_bytes >= 0 else len(buf)
        end = len(buf)
        while want > 0:
            state = self._state
            if state == _DATA:
                size = min(self._left, end - pos, want)
                if size == 0:
                    break
                parts.append(buf[pos : pos + size])
                pos += size
                want -= size
                self._left -= size
                if self._left == 0:
                    self._state = _DATA_END
            elif state == _SIZE:
                line, pos = _take_line(buf, pos, MAX_CHUNK_LINE, "chunk size line too long")
                if line is None:
                    break
                self._start_chunk(line)
            elif state == _DATA_END:
                if end - pos < 2:
                    if buf[pos:] not in (b"", b"\r"):
                        raise HTTPError(400, "missing CRLF after chunk data")
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise HTTPError(400, "missing CRLF after chunk data")
                pos += 2
                self._state = _SIZE
            elif state == _TRAILER:
                field_size = self._limits.field_size
                line, pos = _take_line(buf, pos, field_size, "trailer field too long", 431)
                if line is None:
                    break
                if line:
                    self._add_trailer(line)
                else:
                    self._state = _DONE
                    break
            else:  # _DONE
                break
        if parts:
            return (parts[0] if len(parts) == 1 else b"".join(parts)), pos
        if self._state == _DONE:
            return b"", pos
        if eof:
            raise HTTPError(400, "connection closed in the middle of the body")
        return None, pos

    def _start_chunk(self, line: bytes) -> None:
        match = CHUNK_LINE.fullmatch(line)
        if match is None:
            raise HTTPError(400, "invalid chunk size line")
        self._left = int(match.group(1), 16)
        self._state = _DATA if self._left else _TRAILER

    def _add_trailer(self, line: bytes) -> None:
        self._trailers += 1
        if self._trailers > self._limits.fields:
            raise HTTPError(431, "too many trailer fields")
        match = FIELD_LINE.fullmatch(line.decode("latin-1") + "\r\n")
        if match is None:
            raise HTTPError(400, "invalid trailer field")
        # RFC 9110 §6.5.1: framing and routing fields have no meaning in a trailer.  Trailers are
        # discarded (never merged into the environ), but a proxy in front may merge them: a
        # Content-Length there is a request smuggled past whoever trusts the merged head.
        name = match.group(1).upper()
        if name in _FORBIDDEN_TRAILERS:
            raise HTTPError(400, f"{name.title()} in trailer")


def _take_line(
    buf: bytes, pos: int, limit: int, too_long: str, status: int = 400
) -> tuple[bytes | None, int]:
    """Take one CRLF-terminated line (without its CRLF), or None if it is not all here yet."""
    eol = buf.find(b"\n", pos)
    if eol < 0:
        if limit and len(buf) - pos > limit + 1:  # + 1: the CR may be here already
            raise HTTPError(status, too_long)
        if b"\r" in buf[pos:-1]:
            raise HTTPError(400, "bare CR in chunked framing")
        return None, pos
    if eol == pos or buf[eol - 1] != 13:  # 13 == CR
        raise HTTPError(400, "bare LF in chunked framing")
    if limit and eol - 1 - pos > limit:
        raise HTTPError(status, too_long)
    return buf[pos : eol - 1], eol + 1
