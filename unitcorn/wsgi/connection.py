"""Serve one client connection: read request heads, run the PEP 3333 cycle, refuse bad requests.

The HTTP rules live in `unitcorn.http` (sans-IO); the socket's waits and deadlines in
`socket_io`; what the app sees in `environ`, `input` and `response`.  This module ties them
together for one request after another.  What a worker does with the connection between
requests (its deadlines, which phase its loop thinks it is in) is the worker's own business.
"""

import logging
import select
import socket
import time
from collections.abc import Callable
from typing import Any

from unitcorn.http.errors import HTTPError
from unitcorn.http.parser import Request, RequestParser
from unitcorn.http.response import error_response
from unitcorn.ratelimit import refusal_lines

from .environ import base_environ, proxy_environ, request_environ
from .input import Input
from .options import WSGIOptions
from .response import Response
from .socket_io import RECV_SIZE, BodyTimedOut, ClientDisconnected, ClientSocket, ClientTimedOut

log = logging.getLogger("unitcorn.error")

# After the response, at most this much unread request body is read and dropped to keep the
# connection; a larger remainder costs less to abandon with the connection.
_DRAIN_LIMIT = 1 << 20
# A request body up to this size is gathered by the worker's loop before the app runs, so that
# a client sending it slowly holds a buffer, not the app's thread (or a sync worker's loop).
_PREFETCH_LIMIT = 1 << 16

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
        self._client = ClientSocket(sock, options.send_timeout, notify, notify_interval)
        self._fd = sock.fileno()
        self._app = app
        self._options = options
        self._body_deadline = 0.0  # set when a request's head has been read
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
        self._base_environ = base_environ(client_addr, server_addr, options, errors_stream)
        self._unix_server = not isinstance(server_addr, tuple)
        self._allows_keep_alive = options.keepalive > 0
        # Asked when a response head is framed: False makes it announce "Connection: close"
        # (a sync worker with clients queued, a worker draining).
        self._may_keep_alive = may_keep_alive
        # True once the client may still be sending bytes we will never read (an error was
        # answered, a body was left unread): closing now would make the kernel answer those
        # bytes with a reset, which can destroy our response before the client reads it.
        self.needs_lingering_close = False

    @property
    def has_buffered_request(self) -> bool:
        """True when a pipelined request is already buffered (no need to wait for readability)."""
        return self._parser.has_buffered_data

    @property
    def has_partial_request(self) -> bool:
        """True when part of a request head is buffered (the client is in the middle of one)."""
        return not self._parser.is_idle

    @property
    def has_head(self) -> bool:
        """A complete head is here, its body (or the first _PREFETCH_LIMIT of it) not yet."""
        return self._ready is not None

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        self._client.close()

    def shut_sending(self) -> None:
        """Start a lingering close: say we are done sending, keep reading until the client's EOF."""
        self._client.shut_sending()

    def discard_input(self) -> bool:
        """Read and drop what the client sent (a lingering close); False when it is time to close."""
        return self._client.discard_input()

    def receive_nowait(self) -> bool:
        """Take what the socket holds without waiting; True when `handle_request()` has work now.

        That is: a complete head (kept for handle_request) with its body too, unless that is
        larger than _PREFETCH_LIMIT; a malformed head to refuse; or the client's EOF.  A
        selector loop calls this on readability so that no thread waits on a client that sends
        its request slowly.
        """
        data = self._client.recv_nowait()
        if data is None:
            return False
        self._parser.feed(data)
        if not data:
            self._eof = True
            return True
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

    def time_out(self) -> None:
        """The worker stops waiting: a client in the middle of its request is told so (408)."""
        if not self._parser.is_idle and not self._eof:
            part = "body" if self.has_head else "head"
            self._send_error(408, f"request {part} not received in time")

    def wait_for_request(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client's next request to begin (for a worker that gives
        each connection its own thread of control, as gevent's does); False when it did not."""
        if self._parser.has_buffered_data or self._eof:
            return True
        try:
            self._client.wait(select.POLLIN, time.monotonic() + timeout)
        except ClientTimedOut:
            return False
        return True

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
        """The PEP 3333 cycle: environ, the app, its response; what went wrong, told the client."""
        started = time.monotonic()
        options = self._options
        self._body_deadline = started + options.body_timeout
        self._client.start_sending()
        if self._awaits_proxy_header:
            self._take_proxy_header()
        environ = request_environ(self._base_environ, request, self._script_name, self._unix_server)
        body = Input(self, request)
        environ["wsgi.input"] = body
        response = Response(
            self._client,
            request,
            request.keep_alive and self._allows_keep_alive,
            options.server_software,
            self._may_keep_alive,
            options.sendfile,
            body,
        )
        body.response = response
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

    def _finish_body(self, request: Request, body: Input) -> bool:
        """Drop the unread rest of the request body; False if the connection must close instead."""
        if body.is_done:
            return True
        if request.expects_continue and not body.continue_sent:
            # The client is waiting for 100 before it sends the body; it may never come.
            return False
        dropped = 0
        while dropped <= _DRAIN_LIMIT:
            data = self.read_body(RECV_SIZE)
            if not data:
                return True
            dropped += len(data)
        return False

    def _take_proxy_header(self) -> None:
        """The first request came after the PROXY header (if any): its addresses count from now."""
        self._awaits_proxy_header = False
        proxy = self._parser.proxy
        if proxy is not None:
            self._base_environ.update(proxy_environ(proxy))

    # -- the request's bytes -------------------------------------------------------------------

    def _receive(self, deadline: float) -> None:
        """Feed the parser with what the socket has, waiting until `deadline` at most."""
        data = self._client.recv(deadline)
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

    def send_interim(self, data: bytes) -> None:
        """Send an interim response (100 Continue) before the final one."""
        self._client.send(data)

    def _send_error(self, status: int, reason: str) -> None:
        # The client may still be sending (a body we refuse, a head we stopped reading): the
        # worker closes this connection lingering, so the reply is not lost to a reset.
        self.needs_lingering_close = True
        self._client.start_sending()
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
            self._client.send(error_response(status, reason))
        except OSError:
            pass
