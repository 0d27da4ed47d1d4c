"""wsgi.input: the request body as a read-only file, decoded, never read past its end."""

from collections.abc import Iterator
from typing import Protocol

from unitcorn.http.parser import Request

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BodySource(Protocol):
    """Where the body comes from (the Connection) and where "100 Continue" goes."""

    def read_body(self, max_bytes: int) -> bytes: ...

    def send_interim(self, data: bytes) -> None: ...


class HeadSent(Protocol):
    head_sent: bool


class Input:
    """wsgi.input: the request body, decoded, never read past its end."""

    def __init__(self, source: BodySource, request: Request) -> None:
        self._source = source
        self._buf = b""
        self.is_done = not (request.is_chunked or request.content_length)
        # The client waits for "100 Continue" before sending a body the app has not asked for.
        self.awaits_continue = request.expects_continue and not self.is_done
        self.continue_sent = False
        self.response: HeadSent | None = None  # set by the Connection, to know if the head is out

    def _fill(self, max_bytes: int) -> bytes:
        """More body bytes (at most max_bytes, -1 = what is there); b"" at the end."""
        if self.is_done:
            return b""
        if self.awaits_continue:
            # RFC 9110 §10.1.1: the client holds its body until told to go on; say so only now
            # that the app wants it, and never after the final response has started.
            self.awaits_continue = False
            if self.response is None or not self.response.head_sent:
                self._source.send_interim(_CONTINUE)
                self.continue_sent = True
        data = self._source.read_body(max_bytes)
        if not data:
            self.is_done = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buf]
            self._buf = b""
            while data := self._fill(-1):
                parts.append(data)
            return b"".join(parts)
        if not self._buf and size:
            data = self._fill(size)
            while data and len(data) < size:
                more = self._fill(size - len(data))
                if not more:
                    break
                data += more
            return data
        while len(self._buf) < size:
            data = self._fill(size - len(self._buf))
            if not data:
                break
            self._buf += data
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def readline(self, limit: int | None = -1) -> bytes:
        if limit is None:
            limit = -1
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            if 0 <= limit <= len(self._buf):
                end = limit
                break
            start = len(self._buf)
            data = self._fill(-1 if limit < 0 else max(limit - len(self._buf), 1))
            if not data:
                end = len(self._buf)
                break
            self._buf += data
        if 0 <= limit < end:
            end = limit
        line, self._buf = self._buf[:end], self._buf[end:]
        return line

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line
