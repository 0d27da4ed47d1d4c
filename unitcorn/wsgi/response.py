"""One WSGI response in progress: start_response, write(), the app's iterable, a sendfile'd file.

How the body is framed (Content-Length kept, chunks, nothing for HEAD/204/304) is the business of
the sans-IO writers in `http/response.py`; this module decides when the head goes out and how the
bytes reach the socket with the fewest system calls.
"""

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from unitcorn.http.parser import Request
from unitcorn.http.response import BodyWriter, LengthWriter, NoBodyWriter, body_writer, frame_response

from .environ import FileWrapper
from .input import Input
from .socket_io import JOIN_LIMIT, ClientSocket

_MSG_MORE = getattr(socket, "MSG_MORE", 0)


class Response:
    """One response in progress: start_response, write(), and writing the app's iterable."""

    def __init__(
        self,
        client: ClientSocket,
        request: Request,
        keep_alive: bool,
        server_software: str,
        may_keep_alive: Callable[[], bool] | None,
        uses_sendfile: bool,
        body: Input,
    ) -> None:
        self._client = client
        self._request = request
        self._server_software = server_software
        self._may_keep_alive = may_keep_alive
        self._uses_sendfile = uses_sendfile
        self.body = body
        self.status: str | None = None
        self.headers: list[tuple[str, str]] | None = None
        self.head_sent = False
        # What the response may promise; the framing, or a body that does not end as its head
        # said, can only take it away.
        self.keep_alive = keep_alive
        self._writer: BodyWriter | None = None

    @property
    def sent(self) -> int:
        """Body bytes sent (for the access log)."""
        writer = self._writer
        return 0 if writer is None else writer.sent

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    # PEP 3333: too late to change the response; let the error end it.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The write() callable of PEP 3333 (also used for each block of the iterable)."""
        if not self.head_sent:
            if not data:
                return  # PEP 3333: headers wait for the first non-empty block
            head = self._frame()
            assert self._writer is not None
            self._client.send_buffers([head, self._writer.write(data)])
            return
        if data:
            assert self._writer is not None
            if out := self._writer.write(data):
                self._client.send(out)

    def write_result(self, result: Iterable[bytes]) -> None:
        if isinstance(result, FileWrapper) and self._send_file(result):
            return
        if isinstance(result, list | tuple) and not self.head_sent and self._send_list(result):
            return
        for data in result:
            self.write(data)
        self._finish()

    def _send_list(self, result: list | tuple) -> bool:
        """A body known in full: give it a Content-Length and send it with the head at once."""
        if self.status is None:
            raise AssertionError("application returned without calling start_response")
        if len(result) == 1 and type(result[0]) is bytes:  # the usual [body]
            block = result[0]
            head = self._frame(len(block))
            assert self._writer is not None
            writer = self._writer
            assert writer is not None
            data = writer.write(block)
            if len(head) + len(data) <= JOIN_LIMIT:
                self._client.send(head + data if data else head)
            else:
                self._client.send_buffers([head, data])
            writer.end()  # a length, or no body: the end adds no bytes
            if writer.ends_connection:
                self.keep_alive = False
            return True
        if not all(type(block) is bytes for block in result):
            return False
        head = self._frame(sum(map(len, result)))
        write = self._writer.write  # type: ignore[union-attr]
        self._client.send_buffers([head, *(write(block) for block in result)])
        self._finish()
        return True

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a real file with os.sendfile; False to fall back to iterating it."""
        if not self._uses_sendfile:
            return False
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if self.head_sent or self.status is None or size < 0:
            return False
        head = self._frame(size)
        writer = self._writer
        if isinstance(writer, NoBodyWriter):
            self._client.send(head)
            return True
        if not isinstance(writer, LengthWriter):
            return False  # cannot happen once a length is set; keep the generic path honest
        count = min(writer.left, size)
        self._client.send(head, _MSG_MORE if count else 0)
        writer.count(self._client.sendfile(fd, offset, count))
        writer.end()
        if writer.ends_connection:
            self.keep_alive = False  # a file shorter than announced: the client waits for more
        return True

    def _frame(self, known_length: int | None = None) -> bytes:
        if self.status is None or self.headers is None:
            raise AssertionError("write() before start_response")
        keep_alive = self.keep_alive
        if keep_alive:
            check = self._may_keep_alive
            if check is not None and not check():
                keep_alive = False
            if self.body.awaits_continue:
                keep_alive = False  # the client holds back a body nobody asked for: we will close
        request = self._request
        head, framing = frame_response(
            request.method,
            request.version,
            self.status,
            self.headers,
            keep_alive,
            self._server_software,
            known_length,
        )
        self._writer = body_writer(framing)
        self.keep_alive = framing.keep_alive
        self.head_sent = True
        return head

    def _finish(self) -> None:
        if not self.head_sent:
            # The body was empty; saying so with a length keeps even HTTP/1.0 alive.
            self._client.send(self._frame(0))
        writer = self._writer
        assert writer is not None
        if tail := writer.end():
            self._client.send(tail)
        if writer.ends_connection:
            self.keep_alive = False
