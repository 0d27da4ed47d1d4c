"""Speak HTTP/1.1 over a raw socket for the HTTP process tests: exact bytes out, responses parsed in."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class Wire:
    """One client connection; every read has a hard timeout."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        return data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self._buf:
            self._buf += self._more()
        before, _, self._buf = self._buf.partition(marker)
        return before

    def _take(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._buf += self._more()
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def read_response(self, method: str = "GET") -> Response:
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                parts.append(self._take(size))
                self._take(2)
            self._until(b"\r\n")  # no trailers from our apps
            body = b"".join(parts)
        else:
            body = self.read_to_eof()
        return Response(status, headers, body, head)

    def request(self, method: str = "GET", target: str = "/", body: bytes = b"",
                headers: str = "") -> Response:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        self.send(f"{method} {target} HTTP/1.1\r\nHost: test\r\n{length}{headers}\r\n".encode() + body)
        return self.read_response(method)

    def read_to_eof(self) -> bytes:
        data, self._buf = self._buf, b""
        while chunk := self.sock.recv(65536):
            data += chunk
        return data

    def is_closed_by_server(self) -> bool:
        """True once the server has closed its side (EOF or reset) with nothing left to read."""
        try:
            return self.read_to_eof() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
