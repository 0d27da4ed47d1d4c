"""Serve one client connection: read requests off the socket, run the WSGI app, write responses.

The HTTP rules live in `unitcorn.http` (sans-IO); this module only moves bytes between the socket
and the parser/framer and implements PEP 3333 around them.  The socket is switched to
non-blocking mode once: every recv/send is tried first and `poll` is used only when it would
block, which keeps the common case at one system call and gives real deadlines.
"""

import logging
import os
import select
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from .http.errors import HTTPError
from .http.options import DEFAULT_OPTIONS, ParseOptions
from .http.parser import Limits, ProxyHeader, Request, RequestParser
from .http.peers import AllowList
from .http.response import LAST_CHUNK, Framing, encode_chunk, error_response, frame_response
from .ratelimit import refusal_lines

log = logging.getLogger("unitcorn.error")

_RECV_SIZE = 65536
# After the response, at most this much unread request body is read and dropped to keep the
# connection; a larger remainder costs less to abandon with the connection.
_DRAIN_LIMIT = 1 << 20
# A lingering close reads and drops at most this much before it closes anyway.
_LINGER_LIMIT = 32 << 20
# A request body up to this size is gathered by the worker's loop before the app runs, so that
# a client sending it slowly holds a buffer, not the app's thread (or a sync worker's loop).
_PREFETCH_LIMIT = 1 << 16
# Below this, buffers are joined into one send; above, sendmsg() avoids the copy.
_JOIN_LIMIT = 1 << 16
_MAX_BUFFERS = 512  # per sendmsg(); Linux refuses more than IOV_MAX (1024)
_MSG_MORE = getattr(socket, "MSG_MORE", 0)
# A response must get at least this many bytes into the client every send_timeout seconds.
_SEND_PROGRESS = 1 << 16
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class WSGIOptions:
    """What a Connection needs to know from the settings."""

    limits: Limits
    keepalive: float  # seconds a connection may stay idle between requests (0 = no keep-alive)
    forwarded_allow_ips: frozenset[str]  # peers whose secure scheme/forwarder headers count
    script_name: str = ""
    url_scheme: str = "http"
    server_software: str = "unitcorn"
    head_timeout: float = 30.0  # a head, once begun, must arrive whole within this
    body_timeout: float = 60.0  # a request body must arrive whole within this after its head
    send_timeout: float = 30.0  # a response must move _SEND_PROGRESS bytes within this
    multithread: bool = False  # wsgi.multithread: True under the threaded worker
    sendfile: bool = True  # a FileWrapper of a real file goes out with os.sendfile
    parse: ParseOptions = DEFAULT_OPTIONS  # gunicorn's parser knobs, header policy, PROXY mode
    proxy_allow_ips: frozenset[str] = field(default=frozenset({"127.0.0.1", "::1"}))

    # Built once per worker; asked once per connection.
    @cached_property
    def forwarded_peers(self) -> AllowList:
        return AllowList(self.forwarded_allow_ips)

    @cached_property
    def proxy_peers(self) -> AllowList:
        return AllowList(self.proxy_allow_ips)


class ClientDisconnected(OSError):
    """The client went away, or stalled past a deadline, in the middle of a request."""


class ClientTimedOut(ClientDisconnected):
    """The client stalled past a deadline: the worker drops it and serves others."""


class BodyTimedOut(ClientTimedOut):
    """The request body did not arrive within body_timeout: the client is told 408."""


class FileWrapper:
    """wsgi.file_wrapper: iterates blocks, and lets the server sendfile() a real file instead."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read, size = self.filelike.read, self.blksize
        while block := read(size):
            yield block


OnRequest = Callable[[Request, dict], None]
OnResponse = Callable[[Request, dict, str, list, int, float], None]


class Connection:
    """One client connection: reads requests, runs the app, writes responses (blocking)."""

    def __init__(
        self,
        sock: socket.socket,
        client_addr: Any,
        server_addr: Any,
        app: Callable,
        options: WSGIOptions,
        errors_stream: Any,
        on_request: OnRequest | None = None,
        on_response: OnResponse | None = None,
        may_keep_alive: Callable[[], bool] | None = None,
        notify: Callable[[], None] | None = None,
        notify_interval: float = 1.0,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        # A TLS socket (unitcorn.tls) has no sendmsg: every byte must go through OpenSSL.
        self._joins_buffers = not hasattr(sock, "sendmsg")
        self._fd = sock.fileno()
        self._app = app
        self._options = options
        self._body_deadline = 0.0  # set when a request's head has been read
        self._send_deadline = 0.0  # pushed back each time _SEND_PROGRESS bytes went out
        self._send_credit = 0
        self._on_request = on_request
        self._on_response = on_response
        parse = options.parse
        # The socket peer decides, as in gunicorn, even when a PROXY header names another client.
        self._parser = RequestParser(
            options.limits,
            parse,
            is_trusted=options.forwarded_peers.allows(client_addr),
            is_proxy_allowed=parse.proxy_protocol != "off" and options.proxy_peers.allows(client_addr),
        )
        # The PROXY header, if any, is read with the first request; its addresses go into
        # every environ of this connection from then on.
        self._awaits_proxy_header = parse.proxy_protocol != "off"
        self._eof = False
        self._ready: Request | None = None  # a head found by receive_nowait(), not yet handled
        self._script_name = options.script_name.rstrip("/")
        self._base_environ = _base_environ(client_addr, server_addr, options, errors_stream)
        self._unix_server = not isinstance(server_addr, tuple)
        self.allows_keep_alive = options.keepalive > 0
        # Asked when a response head is framed: False makes it announce "Connection: close"
        # (a sync worker with clients queued, a worker draining).
        self.may_keep_alive = may_keep_alive
        # Called at least every notify_interval while waiting on the client: waiting on a slow
        # client within the read timeout is work, not a stuck worker (the master's heartbeat).
        self._notify = notify
        self._notify_interval = notify_interval
        self.server_software = options.server_software
        # The worker's bookkeeping: when the loop drops this connection, and which of the
        # client's deadlines that is.
        self.deadline = 0.0
        self.phase = "idle"  # or "head"/"body": which of the client's deadlines runs
        # Requests this connection has begun to answer: a retiring worker gives a connection
        # that never carried one a short grace for its first bytes, not the keep-alive interval.
        self.requests_started = 0
        # True once the client may still be sending bytes we will never read (an error was
        # answered, a body was left unread): closing now would make the kernel answer those
        # bytes with a reset, which can destroy our response before the client reads it.
        self.needs_lingering_close = False
        self._discarded = 0

    @property
    def has_buffered_request(self) -> bool:
        """True when a pipelined request is already buffered (no need to wait for readability)."""
        return self._parser.has_buffered_data

    @property
    def has_partial_request(self) -> bool:
        """True when part of a request head is buffered (the client is in the middle of one)."""
        return not self._parser.is_idle

    def fileno(self) -> int:
        return self._fd

    def receive_nowait(self) -> bool:
        """Take what the socket holds without waiting; True when `handle_request()` has work now.

        That is: a complete head (kept for handle_request) with its body too, unless that is
        larger than _PREFETCH_LIMIT; a malformed head to refuse; or the client's EOF.  A
        selector loop calls this on readability so that no thread waits on a client that sends
        its request slowly.
        """
        try:
            data = self._sock.recv(_RECV_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._eof = True
            self._parser.feed(data)
            return True
        self._parser.feed(data)
        request = self._ready
        if request is None:
            try:
                request = self._ready = self._parser.next_request()
            except HTTPError:
                return True  # the parser keeps the error: handle_request() answers it
            if request is None:
                return False
        if request.is_chunked or request.expects_continue:
            return True  # a chunked body's end is found by reading it; 100-continue waits for us
        return self._parser.unread_bytes >= min(request.content_length or 0, _PREFETCH_LIMIT)

    @property
    def has_head(self) -> bool:
        """A complete head is here, its body (or the first _PREFETCH_LIMIT of it) not yet."""
        return self._ready is not None

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def time_out(self) -> None:
        """The worker stops waiting: a client in the middle of its request is told so (408)."""
        if not self._parser.is_idle and not self._eof:
            part = "body" if self.has_head else "head"
            self._send_error(408, f"request {part} not received in time")

    @property
    def uses_sendfile(self) -> bool:
        return self._options.sendfile

    def wait_for_request(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client's next request to begin (for a worker that gives
        each connection its own thread of control, as gevent's does); False when it did not."""
        if self._parser.has_buffered_data or self._eof:
            return True
        try:
            self._wait(select.POLLIN, time.monotonic() + timeout)
        except ClientTimedOut:
            return False
        return True

    def shut_sending(self) -> None:
        """Start a lingering close: say we are done sending, keep reading until the client's EOF."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def discard_input(self) -> bool:
        """Read and drop what the client sent (a lingering close); False when it is time to close.

        That is at the client's EOF, or once _LINGER_LIMIT bytes were dropped: past that, a
        client still sending is not one we owe a clean close.
        """
        try:
            while data := self._sock.recv(_RECV_SIZE):
                self._discarded += len(data)
                if self._discarded > _LINGER_LIMIT:
                    return False
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False

    # -- one request ---------------------------------------------------------------------------

    def handle_request(self) -> bool:
        """Read one request, run the app, write the response; True if the connection may be reused."""
        try:
            request = self._read_head()
        except HTTPError as exc:
            self._send_error(exc.status, exc.reason)
            return False
        except ClientDisconnected:
            if not self._parser.is_idle and not self._eof:
                self._send_error(408, "request head not received in time")
            return False
        if request is None:
            return False
        self.requests_started += 1
        return self._respond(request)

    def _read_head(self) -> Request | None:
        request = self._ready
        if request is not None:
            self._ready = None
            return request
        parser = self._parser
        request = parser.next_request()
        deadline = 0.0
        while request is None:
            if self._eof:
                return None
            if not deadline:
                deadline = time.monotonic() + self._options.head_timeout
            self._receive(deadline)
            request = parser.next_request()
        return request

    def _respond(self, request: Request) -> bool:
        started = time.monotonic()
        options = self._options
        self._body_deadline = started + options.body_timeout
        self._send_deadline = started + options.send_timeout
        self._send_credit = 0
        environ = self._environ(request)
        body = Input(self, request)
        environ["wsgi.input"] = body
        response = _Response(self, request)
        body.response = response
        response.body = body
        keep_alive = False
        try:
            if self._on_request is not None:
                self._on_request(request, environ)
            result = self._app(environ, response.start_response)
            try:
                response.write_result(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            keep_alive = response.keep_alive and self._finish_body(request, body)
        except BodyTimedOut:
            if not response.head_sent:
                response.status = "408 Request Timeout"
                self._send_error(408, "request body not received in time")
        except ClientTimedOut as exc:  # reading the body has its own error: this is a send
            log.info("response send timed out peer=%s: %s", self._base_environ["REMOTE_ADDR"], exc)
        except ClientDisconnected:
            pass
        except HTTPError as exc:  # a malformed body, met while the app read it
            if not response.head_sent:
                response.status = f"{exc.status} {exc.reason}"
                self._send_error(exc.status, exc.reason)
        except Exception:
            log.exception("application error method=%s target=%r", request.method, request.target)
            if not response.head_sent:
                response.status = "500 Internal Server Error"
                self._send_error(500, "Internal Server Error")
        if self._on_response is not None:
            try:
                self._on_response(
                    request,
                    environ,
                    response.status or "500 Internal Server Error",
                    response.headers or [],
                    response.sent,
                    time.monotonic() - started,
                )
            except Exception:
                log.exception("on_response hook failed")
        if not keep_alive and not body.is_done:
            self.needs_lingering_close = True
        # After the client's EOF only requests it already sent may still be answered.
        return keep_alive and (not self._eof or self._parser.has_buffered_data)

    def _finish_body(self, request: Request, body: "Input") -> bool:
        """Drop the unread rest of the request body; False if the connection must close instead."""
        if body.is_done:
            return True
        if request.expects_continue and not body.continue_sent:
            # The client is waiting for 100 before it sends the body; it may never come.
            return False
        dropped = 0
        while dropped <= _DRAIN_LIMIT:
            data = self.read_body(_RECV_SIZE)
            if not data:
                return True
            dropped += len(data)
        return False

    # -- environ -------------------------------------------------------------------------------

    def _environ(self, request: Request) -> dict:
        if self._awaits_proxy_header:
            self._awaits_proxy_header = False
            proxy = self._parser.proxy
            if proxy is not None:
                self._base_environ.update(_proxy_environ(proxy))
        environ = self._base_environ.copy()
        environ["REQUEST_METHOD"] = request.method
        environ["QUERY_STRING"] = request.query
        environ["RAW_URI"] = request.target
        if request.version == (1, 1):
            environ["SERVER_PROTOCOL"] = "HTTP/1.1"
        elif request.version == (1, 0):
            environ["SERVER_PROTOCOL"] = "HTTP/1.0"
        else:  # permit_unconventional_http_version
            environ["SERVER_PROTOCOL"] = "HTTP/{}.{}".format(*request.version)

        for name, value in request.headers:
            key = _ENVIRON_KEYS.get(name) or _environ_key(name)
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
        if request.is_chunked:
            environ.pop("CONTENT_LENGTH", None)
        if request.target[0] != "/" and "://" in request.target:
            # RFC 9112 §3.2.2: with an absolute-form target, its authority replaces Host.
            environ["HTTP_HOST"] = urlsplit(request.target).netloc
        if request.scheme is not None:  # said by a trusted front-end (secure_scheme_headers)
            environ["wsgi.url_scheme"] = request.scheme
        if self._unix_server:
            _server_from_host(environ)

        script_name = self._script_name
        if "HTTP_SCRIPT_NAME" in environ:
            # gunicorn: a SCRIPT_NAME field that passed the header policy (a trusted front-end's
            # forwarder_headers, or header_map = dangerous) replaces the mount point.
            for name, value in request.headers:
                if name == "SCRIPT_NAME":
                    script_name = value.rstrip("/")
            environ["SCRIPT_NAME"] = script_name
        path = request.path
        if "%" in path:
            # PEP 3333: PATH_INFO holds the decoded bytes, each byte one latin-1 character.
            path = unquote_to_bytes(path).decode("latin-1")
        if script_name and path.startswith(script_name):
            rest = path[len(script_name) :]
            if not rest or rest[0] == "/":
                path = rest
        environ["PATH_INFO"] = path
        return environ

    # -- socket IO -----------------------------------------------------------------------------

    def _receive(self, deadline: float) -> None:
        """Feed the parser with what the socket has, waiting until `deadline` at most."""
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
                break
            except BlockingIOError:
                self._wait(select.POLLIN, deadline)
            except OSError:  # reset by peer and the like: the same as a close
                data = b""
                break
        if not data:
            self._eof = True
        self._parser.feed(data)

    def read_body(self, max_bytes: int) -> bytes:
        """Block until some request body is available; b"" at its end (for Input)."""
        parser = self._parser
        data = parser.read_body(max_bytes)
        while data is None:
            if self._eof:
                raise ClientDisconnected("client closed the connection during the body")
            try:
                self._receive(self._body_deadline)
            except ClientDisconnected as exc:
                raise BodyTimedOut(f"body not received within {self._options.body_timeout:g} s") from exc
            data = parser.read_body(max_bytes)
        return data

    def send(self, data: bytes | memoryview, flags: int = 0) -> None:
        """Send all of `data`; ClientDisconnected if the client is gone or stalls too long."""
        sock = self._sock
        while True:
            try:
                sent = sock.send(data, flags)
            except BlockingIOError:
                self._wait(select.POLLOUT, self._send_deadline)
                continue
            except OSError as exc:
                raise ClientDisconnected(f"send failed: {exc}") from exc
            self._count_sent(sent)
            if sent == len(data):
                return
            data = memoryview(data)[sent:]

    def _count_sent(self, sent: int) -> None:
        """A client that keeps accepting bytes keeps its send deadline moving; a slow one does not."""
        self._send_credit += sent
        if self._send_credit >= _SEND_PROGRESS:
            self._send_credit = 0
            self._send_deadline = time.monotonic() + self._options.send_timeout

    def send_buffers(self, buffers: list[bytes]) -> None:
        """Send several buffers in order with as few system calls as possible (no copying)."""
        if len(buffers) > _MAX_BUFFERS:
            for start in range(0, len(buffers), _MAX_BUFFERS):
                self.send_buffers(buffers[start : start + _MAX_BUFFERS])
            return
        total = sum(map(len, buffers))
        if total <= _JOIN_LIMIT or self._joins_buffers:
            self.send(b"".join(buffers))
            return
        try:
            sent = self._sock.sendmsg(buffers)  # scatter/gather: one call, no join
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientDisconnected(f"send failed: {exc}") from exc
        self._count_sent(sent)
        if sent == total:
            return
        for buffer in buffers:
            if sent >= len(buffer):
                sent -= len(buffer)
                continue
            self.send(memoryview(buffer)[sent:] if sent else buffer)
            sent = 0

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send `count` bytes of file `fd` from `offset` with os.sendfile; return bytes sent."""
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(self._fd, fd, offset + sent, count - sent)
            except BlockingIOError:
                self._wait(select.POLLOUT, self._send_deadline)
                continue
            except OSError as exc:
                raise ClientDisconnected(f"sendfile failed: {exc}") from exc
            if n == 0:  # the file is shorter than announced
                break
            sent += n
            self._count_sent(n)
        return sent

    def _wait(self, event: int, deadline: float) -> None:
        timeout = deadline - time.monotonic()
        if timeout > 0:
            poller = select.poll()
            poller.register(self._fd, event)
            notify = self._notify
            while timeout > 0:
                if notify is None:
                    ready = poller.poll(timeout * 1000)
                else:
                    ready = poller.poll(min(timeout, self._notify_interval) * 1000)
                    notify()
                if ready:
                    return
                timeout = deadline - time.monotonic()
        raise ClientTimedOut("client timed out")

    def _send_error(self, status: int, reason: str) -> None:
        # The client may still be sending (a body we refuse, a head we stopped reading): the
        # worker closes this connection lingering, so the reply is not lost to a reset.
        self.needs_lingering_close = True
        self._send_deadline = time.monotonic() + self._options.send_timeout
        # A 500 was logged with its traceback already.  A line per refused request, up to
        # REFUSALS_PER_SECOND, then one saying how many were not written (a flood of garbage
        # must not become a flood of log lines).
        dropped = refusal_lines.take() if status != 500 else None
        if dropped is not None:
            if dropped:
                log.warning("invalid requests not logged count=%d limit=%d/s", dropped, refusal_lines.burst)
            # The reason is the parser's own short text, never request bytes; quoted and capped
            # all the same, so a line can never be forged.
            text = reason[:120].encode("unicode_escape").decode("ascii").replace('"', '\\"')
            peer = self._base_environ.get("REMOTE_ADDR", "")
            log.warning('invalid request peer=%s status=%d reason="%s"', peer, status, text)
        try:
            self.send(error_response(status, reason))
        except OSError:
            pass


class Input:
    """wsgi.input: the request body, decoded, never read past its end."""

    def __init__(self, connection: Connection, request: Request) -> None:
        self._connection = connection
        self._buf = b""
        self.is_done = not (request.is_chunked or request.content_length)
        self._needs_continue = request.expects_continue and not self.is_done
        self.continue_sent = False
        self.response: _Response | None = None  # set by _Response, to know if the head is out

    @property
    def awaits_continue(self) -> bool:
        """The client waits for "100 Continue" before sending a body the app has not asked for."""
        return self._needs_continue

    def _fill(self, max_bytes: int) -> bytes:
        """More body bytes (at most max_bytes, -1 = what is there); b"" at the end."""
        if self.is_done:
            return b""
        if self._needs_continue:
            # RFC 9110 §10.1.1: the client holds its body until told to go on; say so only now
            # that the app wants it, and never after the final response has started.
            self._needs_continue = False
            if self.response is None or not self.response.head_sent:
                self._connection.send(_CONTINUE)
                self.continue_sent = True
        data = self._connection.read_body(max_bytes)
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


class _Response:
    """One response in progress: start_response, write(), and writing the app's iterable."""

    def __init__(self, connection: Connection, request: Request) -> None:
        self._connection = connection
        self._request = request
        self.status: str | None = None
        self.headers: list[tuple[str, str]] | None = None
        self.head_sent = False
        self.sent = 0  # body bytes sent
        # What the response may promise; the framing can only take it away.
        self.keep_alive = request.keep_alive and connection.allows_keep_alive
        self._framing: Framing | None = None
        self._left = 0  # body bytes still allowed in "length" mode
        self.body: Input | None = None

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
            head = self._frame(self.keep_alive)
            self._connection.send_buffers([head, self._encode(data)])
            return
        if data:
            self._connection.send(self._encode(data))

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
            head = self._frame(self.keep_alive, len(block))
            framing = self._framing
            assert framing is not None
            if framing.mode == "none" or not block:
                self._connection.send(head)
            elif framing.mode == "length" and len(block) <= self._left <= _JOIN_LIMIT - len(head):
                self._left -= len(block)
                self.sent = len(block)
                self._connection.send(head + block)
            else:
                self._connection.send_buffers([head, self._encode(block)])
            self._finish()
            return True
        if not all(type(block) is bytes for block in result):
            return False
        total = sum(map(len, result))
        head = self._frame(self.keep_alive, total)
        if self._framing is not None and self._framing.mode == "none":
            self._connection.send(head)
        else:
            self._connection.send_buffers([head, *(self._encode(block) for block in result)])
        self._finish()
        return True

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a real file with os.sendfile; False to fall back to iterating it."""
        if not self._connection.uses_sendfile:
            return False
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if self.head_sent or self.status is None or size < 0:
            return False
        head = self._frame(self.keep_alive, size)
        framing = self._framing
        assert framing is not None
        if framing.mode == "none":
            self._connection.send(head)
            return True
        if framing.mode != "length":
            return False  # cannot happen once a length is set; keep the generic path honest
        count = min(framing.length or 0, size)
        self._connection.send(head, _MSG_MORE if count else 0)
        self.sent = self._connection.sendfile(fd, offset, count)
        self._left = (framing.length or 0) - self.sent
        if self._left:
            self.keep_alive = False  # the client still waits for bytes that will never come
        return True

    def _frame(self, keep_alive: bool, known_length: int | None = None) -> bytes:
        if self.status is None or self.headers is None:
            raise AssertionError("write() before start_response")
        headers = self.headers
        if keep_alive:
            check = self._connection.may_keep_alive
            if check is not None and not check():
                keep_alive = False
            body = self.body
            if body is not None and body.awaits_continue:
                keep_alive = False  # the client holds back a body nobody asked for: we will close
        request = self._request
        head, framing = frame_response(
            request.method,
            request.version,
            self.status,
            headers,
            keep_alive,
            self._connection.server_software,
            known_length,
        )
        self._framing = framing
        self._left = framing.length or 0
        self.keep_alive = framing.keep_alive
        self.head_sent = True
        return head

    def _encode(self, data: bytes) -> bytes:
        framing = self._framing
        assert framing is not None
        mode = framing.mode
        if mode == "length":
            if len(data) > self._left:
                # More than the app announced: never let extra bytes pose as the next response.
                data = data[: self._left]
                self.keep_alive = False
            self._left -= len(data)
        elif mode == "chunked":
            self.sent += len(data)
            return encode_chunk(data)
        elif mode == "none":
            return b""
        self.sent += len(data)
        return data

    def _finish(self) -> None:
        if not self.head_sent:
            # The body was empty; saying so with a length keeps even HTTP/1.0 alive.
            self._connection.send(self._frame(self.keep_alive, 0))
            return
        framing = self._framing
        assert framing is not None
        if framing.mode == "chunked":
            self._connection.send(LAST_CHUNK)
        elif framing.mode == "length" and self._left:
            self.keep_alive = False  # fewer bytes than announced: only closing ends the message


# -- environ helpers ---------------------------------------------------------------------------

_ENVIRON_KEYS: dict[str, str] = {"CONTENT-TYPE": "CONTENT_TYPE", "CONTENT-LENGTH": "CONTENT_LENGTH"}


def _environ_key(name: str) -> str:
    # A name with "_" reaches here only if header_map (http/head.py) let it through.
    key = "HTTP_" + name.replace("-", "_")
    if len(_ENVIRON_KEYS) < 1000:
        _ENVIRON_KEYS[name] = key
    return key


def _base_environ(client_addr: Any, server_addr: Any, options: WSGIOptions, errors: Any) -> dict:
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": options.url_scheme,
        "wsgi.errors": errors,
        "wsgi.multithread": options.multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": options.server_software,
        "SCRIPT_NAME": options.script_name.rstrip("/"),
    }
    if options.url_scheme == "https":  # TLS terminated here (unitcorn.tls); CGI's spelling too
        environ["HTTPS"] = "on"
    if isinstance(client_addr, tuple):
        environ["REMOTE_ADDR"] = str(client_addr[0])
        environ["REMOTE_PORT"] = str(client_addr[1])
    elif isinstance(client_addr, bytes):
        environ["REMOTE_ADDR"] = client_addr.decode("latin-1")
    else:
        environ["REMOTE_ADDR"] = str(client_addr or "")
    if isinstance(server_addr, tuple):
        environ["SERVER_NAME"] = str(server_addr[0])
        environ["SERVER_PORT"] = str(server_addr[1])
    else:  # unix socket: refined per request from Host
        environ["SERVER_NAME"] = str(server_addr or "")
        environ["SERVER_PORT"] = ""
    return environ


def _server_from_host(environ: dict) -> None:
    """Behind a unix socket the Host header is the only hint of the server's name and port."""
    host = environ.get("HTTP_HOST")
    if not host:
        return
    if host.startswith("["):  # IP-literal
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:]
    else:
        name, _, port = host.partition(":")
    if not port:
        port = "443" if environ["wsgi.url_scheme"] == "https" else "80"
    environ["SERVER_NAME"] = name
    environ["SERVER_PORT"] = port


def _proxy_environ(proxy: ProxyHeader) -> dict[str, str]:
    """What a PROXY header puts in environ (gunicorn's keys): the client it relays becomes
    REMOTE_ADDR/REMOTE_PORT, the address it was reached at PROXY_ADDR/PROXY_PORT."""
    environ = {"PROXY_PROTOCOL": proxy.protocol}
    if proxy.client_addr is not None:  # None: "use the socket's own addresses" (LOCAL, ...)
        environ["REMOTE_ADDR"] = proxy.client_addr
        environ["REMOTE_PORT"] = str(proxy.client_port)
        environ["PROXY_ADDR"] = str(proxy.proxy_addr)
        environ["PROXY_PORT"] = str(proxy.proxy_port)
    return environ
