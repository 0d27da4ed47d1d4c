"""Connection over a real socketpair: the app runs in a server thread, the test is the client."""

import io
import logging
import os
import select
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from unitcorn.http.options import ParseOptions
from unitcorn.http.parser import Limits
from unitcorn.wsgi import Connection, WSGIOptions

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning"),
]

OPTIONS = WSGIOptions(limits=Limits(), keepalive=5.0, forwarded_allow_ips=frozenset({"10.0.0.1"}))
CLIENT = ("192.0.2.7", 40000)
SERVER = ("127.0.0.1", 8000)
IO_TIMEOUT = 5.0


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


class Client:
    """The test's end of the socketpair, with a buffer so pipelined responses can be split."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        data, _, self.buf = self.buf.partition(marker)
        return data + marker

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_response(self, bodiless: bool = False) -> Response:
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        _, code, reason = lines[0].split(" ", 2)
        headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        response = Response(int(code), reason, headers, b"", head)  # type: ignore[arg-type]
        if bodiless or response.status in (204, 304) or response.status < 200:
            return response
        if response.header("Transfer-Encoding") == "chunked":
            parts = []
            while size := int(self.read_until(b"\r\n")[:-2], 16):
                parts.append(self.read_exact(size))
                assert self.read_exact(2) == b"\r\n"
            assert self.read_exact(2) == b"\r\n"
            response.body = b"".join(parts)
        elif response.header("Content-Length") is not None:
            response.body = self.read_exact(int(response.header("Content-Length") or 0))
        else:
            response.body = self.read_all()
        return response

    def read_all(self) -> bytes:
        try:
            while True:
                self._fill()
        except EOFError:
            data, self.buf = self.buf, b""
            return data

    def is_closed(self) -> bool:
        """True if the server closed: EOF (or a reset) before any further byte."""
        try:
            self._fill()
        except (EOFError, ConnectionResetError):
            return True
        return False


@dataclass
class Served:
    """A Connection served in a thread like a worker would, until it says close."""

    conn: Connection
    client: Client
    thread: threading.Thread
    results: list[bool] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    errors: io.StringIO = field(default_factory=io.StringIO)

    def finish(self) -> list[bool]:
        self.client.sock.close()
        self.thread.join(IO_TIMEOUT)
        assert not self.thread.is_alive()
        return self.results


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(
        app: Callable,
        options: WSGIOptions = OPTIONS,
        validate: bool = True,
        client_addr: Any = CLIENT,
        server_addr: Any = SERVER,
        sock_class: type[socket.socket] = socket.socket,
    ) -> Served:
        server_sock, client_sock = socket.socketpair()
        server_sock = sock_class(fileno=server_sock.detach())
        client_sock.settimeout(IO_TIMEOUT)
        errors = io.StringIO()
        served: Served

        def on_request(request: Any, environ: dict) -> None:
            served.calls.append(("request", request.method, environ["PATH_INFO"]))

        def on_response(request, environ, status, headers, length, duration) -> None:  # noqa: ANN001
            served.calls.append(("response", status, length, duration >= 0))

        conn = Connection(
            server_sock,
            client_addr,
            server_addr,
            validator(app) if validate else app,
            options,
            errors,
            on_request,
            on_response,
        )

        def loop() -> None:
            try:
                while True:
                    keep = conn.handle_request()
                    served.results.append(keep)
                    if not keep:
                        return
                    if not conn.has_buffered_request:
                        readable, _, _ = select.select([conn], [], [], IO_TIMEOUT)
                        if not readable:
                            return
            finally:
                conn.close()

        thread = threading.Thread(target=loop, daemon=True)
        served = Served(conn, Client(client_sock), thread, errors=errors)
        thread.start()
        started.append(served)
        return served

    yield start
    for served in started:
        served.client.sock.close()
        served.thread.join(IO_TIMEOUT)


def hello(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello world"]


def hello_sized(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"hello world"]


def read_input(environ: dict, size: int = 7) -> bytes:
    """Read wsgi.input the way wsgiref.validate allows: always with a size."""
    stream = environ["wsgi.input"]
    return b"".join(iter(lambda: stream.read(size), b""))


def echo(environ: dict, start_response: Callable) -> list[bytes]:
    body = read_input(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
TEXT = [("Content-Type", "text/plain")]


# -- basic exchanges -----------------------------------------------------------------------------


def test_get(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(GET)
    response = served.client.read_response()
    assert (response.status, response.body) == (200, b"hello world")
    assert response.header("Server") == "unitcorn" and response.header("Date")
    assert response.header("Connection") is None
    assert served.finish() == [True, False]


def test_environ(serve: Callable[..., Served]) -> None:
    seen: dict = {}

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", TEXT)
        return []

    served = serve(app)
    served.client.send(
        b"GET /a%20b/caf%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\n"
        b"Content-Type: text/plain\r\nX-Many: 1\r\nX-Many: 2\r\nX_Sneaky: 1\r\n"
        b"Cookie: a=1\r\nCookie: b=2\r\n\r\n"
    )
    assert served.client.read_response().status == 200
    served.finish()
    assert seen["REQUEST_METHOD"] == "GET"
    assert seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == "/a b/caf\xc3\xa9"  # PEP 3333: bytes as latin-1
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert seen["RAW_URI"] == "/a%20b/caf%C3%A9?x=1&y=%20"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("192.0.2.7", "40000")
    assert seen["HTTP_HOST"] == "example.com:8080"
    assert seen["CONTENT_TYPE"] == "text/plain"
    assert "CONTENT_LENGTH" not in seen and "HTTP_CONTENT_TYPE" not in seen
    assert seen["HTTP_X_MANY"] == "1,2"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SNEAKY" not in seen  # "_" in a name could pose as "-"
    assert seen["wsgi.version"] == (1, 0)
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["wsgi.multiprocess"] is True and seen["wsgi.run_once"] is False
    assert seen["wsgi.multithread"] is False
    assert seen["wsgi.input_terminated"] is True
    assert callable(seen["wsgi.file_wrapper"])
    assert seen["SERVER_SOFTWARE"] == "unitcorn"


def test_script_name_is_stripped_from_path_info(serve: Callable[..., Served]) -> None:
    seen: list[tuple[str, str]] = []

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen.append((environ["SCRIPT_NAME"], environ["PATH_INFO"]))
        start_response("200 OK", TEXT)
        return []

    options = WSGIOptions(Limits(), 5.0, frozenset(), script_name="/app/")
    served = serve(app, options)
    for target in (b"/app/x", b"/app", b"/apple", b"/other"):
        served.client.send(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target)
        served.client.read_response()
    served.finish()
    assert seen == [("/app", "/x"), ("/app", ""), ("/app", "/apple"), ("/app", "/other")]


def test_keep_alive_two_requests(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    for _ in range(2):
        served.client.send(GET)
        assert served.client.read_response().body == b"hello world"
    assert served.finish() == [True, True, False]


def test_pipelined_requests_are_answered_in_order(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        body = read_input(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode() + b":" + body]

    served = serve(app)
    served.client.send(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    bodies = [served.client.read_response().body for _ in range(4)]
    assert bodies == [b"/1:", b"/2:abc", b"/3:de", b"/4:"]
    assert served.client.is_closed()
    assert served.finish() == [True, True, True, False]


def test_http10_without_keep_alive_closes(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = served.client.read_response()
    assert response.body == b"hello world" and response.header("Connection") == "close"
    assert served.client.is_closed()


def test_http10_keep_alive(serve: Callable[..., Served]) -> None:
    served = serve(hello_sized)
    for _ in range(2):
        served.client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = served.client.read_response()
        assert response.header("Connection") == "keep-alive"
    assert served.finish() == [True, True, False]


def test_keepalive_zero_closes_after_each_response(serve: Callable[..., Served]) -> None:
    served = serve(hello, WSGIOptions(Limits(), 0, frozenset()))
    served.client.send(GET)
    assert served.client.read_response().header("Connection") == "close"
    assert served.client.is_closed()
    assert served.finish() == [False]


def test_streaming_body_is_chunked_on_http11_and_close_delimited_on_http10(
    serve: Callable[..., Served],
) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one "
        yield b""
        yield b"two"

    served = serve(app)
    served.client.send(GET)
    response = served.client.read_response()
    assert response.header("Transfer-Encoding") == "chunked" and response.body == b"one two"
    served.client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = served.client.read_response()
    assert response.header("Transfer-Encoding") is None and response.body == b"one two"
    assert served.finish() == [True, False]


def test_write_callable(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    served = serve(app)
    served.client.send(GET)
    assert served.client.read_response().body == b"written returned"


# -- request bodies ------------------------------------------------------------------------------


def test_chunked_upload(serve: Callable[..., Served]) -> None:
    seen: dict = {}

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen["content_length"] = environ.get("CONTENT_LENGTH")
        return echo(environ, start_response)

    served = serve(app)
    body = os.urandom(100_000)
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 777]), body[i : i + 777]) for i in range(0, len(body), 777)
    )
    served.client.send(
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert served.client.read_response().body == body
    assert seen["content_length"] is None
    assert served.finish() == [True, False]


def test_trailer_fields_never_reach_the_environ(serve: Callable[..., Served]) -> None:
    """Trailers are discarded: one the app could mistake for a header would have skipped every
    check a proxy made on the head."""
    seen: dict = {}

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        body = environ["wsgi.input"].read(100)
        assert environ["wsgi.input"].read(100) == b""  # the trailers were read: the body ended
        seen.update(environ)
        start_response("200 OK", TEXT)
        return [body]

    served = serve(app)
    served.client.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nAuthorization: Basic eA==\r\nContent-Type: x/y\r\n\r\n"
    )
    assert served.client.read_response().body == b"abc"
    served.finish()
    assert "HTTP_X_TRAILER" not in seen and "HTTP_AUTHORIZATION" not in seen
    assert "CONTENT_TYPE" not in seen


def test_input_readline_and_iteration(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(3)
        rest_of_line = stream.readline()
        lines = list(stream)
        start_response("200 OK", TEXT)
        return [repr((first, limited, rest_of_line, lines)).encode()]

    served = serve(app)
    body = b"line one\nabcdef\nx\ny"
    served.client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    expected = (b"line one\n", b"abc", b"def\n", [b"x\n", b"y"])
    assert served.client.read_response().body == repr(expected).encode()


def test_input_read_all_and_readlines_without_validator(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        stream = environ["wsgi.input"]
        head = stream.read(2)
        rest = stream.read()
        start_response("200 OK", TEXT)
        return [head + b"|" + rest + b"|" + stream.read() + b"|" + b"".join(stream.readlines())]

    served = serve(app, validate=False)
    served.client.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert served.client.read_response().body == b"ab|cde||"


def test_unread_body_is_drained_and_the_connection_kept(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
    assert served.client.read_response().status == 200
    served.client.send(GET)
    assert served.client.read_response().body == b"hello world"
    assert served.finish() == [True, True, False]


def test_huge_unread_body_closes_instead_of_draining(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n")
    assert served.client.read_response().status == 200
    sender = threading.Thread(target=_send_quietly, args=(served.client.sock, b"x" * (4 << 20)))
    sender.start()
    sender.join(IO_TIMEOUT)
    assert served.client.is_closed()
    assert served.finish() == [False]


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- 100-continue --------------------------------------------------------------------------------


def test_100_continue_is_sent_when_the_app_reads_the_body(serve: Callable[..., Served]) -> None:
    served = serve(echo)
    served.client.send(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    interim = served.client.read_response()
    assert (interim.status, interim.raw_head) == (100, b"HTTP/1.1 100 Continue\r\n\r\n")
    served.client.send(b"data")
    assert served.client.read_response().body == b"data"
    assert served.finish() == [True, False]


def test_100_continue_is_not_sent_when_the_app_ignores_the_body(
    serve: Callable[..., Served],
) -> None:
    served = serve(hello)
    served.client.send(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    response = served.client.read_response()
    assert response.status == 200
    assert served.client.buf == b""
    # The body was never asked for, so it cannot be skipped: the connection ends.
    assert served.client.is_closed()


# -- bodiless responses --------------------------------------------------------------------------


def test_head_has_no_body(serve: Callable[..., Served]) -> None:
    served = serve(hello_sized)
    served.client.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    response = served.client.read_response(bodiless=True)
    assert response.header("Content-Length") == "11"
    served.client.send(GET)  # the next response follows right after the HEAD's head
    assert served.client.read_response().body == b"hello world"


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_204_and_304_have_no_body(serve: Callable[..., Served], status: str) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        start_response(status, [])
        return []

    served = serve(app)
    served.client.send(GET + GET)
    for _ in range(2):
        response = served.client.read_response(bodiless=True)
        assert response.header("Transfer-Encoding") is None
    assert served.client.buf == b""
    assert served.finish() == [True, True, False]


# -- errors --------------------------------------------------------------------------------------


def test_app_exception_is_500_without_traceback(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR, logger="unitcorn.error"):
        served = serve(app)
        served.client.send(GET)
        response = served.client.read_response()
        assert served.client.is_closed()
        served.finish()
    assert response.status == 500
    assert b"secret" not in response.raw_head + response.body
    assert b"Traceback" not in response.body
    assert any("secret detail" in (record.exc_text or "") for record in caplog.records)
    assert ("response", "500 Internal Server Error", 0, True) in served.calls


def test_each_refused_request_is_logged_once_without_its_bytes(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        raise AssertionError("never called")

    with caplog.at_level(logging.INFO, logger="unitcorn.error"):
        served = serve(app)
        served.client.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\nX-Secret: s3\r\n\r\n")
        assert served.client.read_response().status == 400
        served.finish()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("invalid request")]
    assert lines == ['invalid request peer=192.0.2.7 status=400 reason="Content-Length list"']


def test_exception_after_start_response_is_still_500(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", TEXT)
        raise ValueError("late")
        yield b""  # pragma: no cover

    served = serve(app, validate=False)
    served.client.send(GET)
    assert served.client.read_response().status == 500


def test_exception_mid_body_cuts_the_connection(serve: Callable[..., Served]) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            raise ValueError("mid-body")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict, start_response: Callable) -> Body:
        start_response("200 OK", TEXT)
        return Body()

    served = serve(app, validate=False)
    served.client.send(GET)
    head = served.client.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert served.client.read_all() == b"7\r\npartial\r\n"  # no last chunk: the client sees a cut
    served.finish()
    assert closed == [True]


def test_exc_info_replaces_headers_before_they_are_sent(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("200 OK", [("X-Stale", "1"), *TEXT])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Fresh", "1"), *TEXT], sys.exc_info())
        return [b"sorry"]

    served = serve(app)
    served.client.send(GET)
    response = served.client.read_response()
    assert response.status == 503 and response.header("X-Fresh") == "1"
    assert response.header("X-Stale") is None


def test_exc_info_after_headers_are_sent_reraises(serve: Callable[..., Served]) -> None:
    raised = []

    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", TEXT)
        yield b"started"
        try:
            raise KeyError("late")
        except KeyError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except KeyError:
                raised.append(True)
                raise

    served = serve(app, validate=False)
    served.client.send(GET)
    served.client.read_until(b"\r\n\r\n")
    assert served.client.read_all() == b"7\r\nstarted\r\n"
    served.finish()
    assert raised == [True]


def test_hop_by_hop_header_from_the_app_is_500(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("200 OK", [("Connection", "keep-alive")])
        return [b"x"]

    served = serve(app)
    served.client.send(GET)
    assert served.client.read_response().status == 500


def test_close_is_always_called(serve: Callable[..., Served]) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"ok"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict, start_response: Callable) -> Body:
        start_response("200 OK", TEXT)
        return Body()

    served = serve(app)
    served.client.send(GET)
    assert served.client.read_response().body == b"ok"
    served.finish()
    assert closed == [True]


def test_bad_request_is_400_and_closes(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    )
    response = served.client.read_response()
    assert response.status == 400 and response.header("Connection") == "close"
    assert served.client.is_closed()
    assert served.finish() == [False]
    assert served.calls == []  # the app and the hooks never saw it


def test_bad_chunk_while_the_app_reads_is_400(serve: Callable[..., Served]) -> None:
    served = serve(echo)
    served.client.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert served.client.read_response().status == 400
    assert served.client.is_closed()


def test_slow_head_is_cut_off_with_408(serve: Callable[..., Served]) -> None:
    options = WSGIOptions(Limits(), 5.0, frozenset(), head_timeout=0.2, body_timeout=0.2, send_timeout=0.2)
    served = serve(hello, options)
    served.client.send(b"GET / HTTP/1.1\r\nHost:")
    assert served.client.read_response().status == 408
    assert served.client.is_closed()
    assert served.finish() == [False]


def test_short_body_from_the_app_closes_the_connection(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "10")])
        yield b"short"

    served = serve(app, validate=False)
    served.client.send(GET)
    served.client.read_until(b"\r\n\r\n")
    assert served.client.read_all() == b"short"
    assert served.finish() == [False]


def test_no_body_at_all_where_the_app_announced_one_closes_the_connection(
    serve: Callable[..., Served],
) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        yield from ()

    served = serve(app, validate=False)
    served.client.send(GET + GET)
    assert served.client.read_until(b"\r\n\r\n").count(b"Content-Length: 5") == 1
    assert served.client.read_all() == b""  # never a second response posing as the body
    assert served.finish() == [False]


def test_long_body_from_the_app_is_truncated(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        yield b"toolong"

    served = serve(app, validate=False)
    served.client.send(GET + GET)
    assert served.client.read_response().body == b"too"
    assert served.client.read_all() == b""
    assert served.finish() == [False]


# -- hooks, proxies, peers -----------------------------------------------------------------------


def test_hooks_see_request_and_response(serve: Callable[..., Served]) -> None:
    served = serve(hello)
    served.client.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    served.client.read_response()
    served.finish()
    assert served.calls == [("request", "GET", "/x"), ("response", "200 OK", 11, True)]


def _environ_for(
    serve: Callable[..., Served],
    client_addr: Any,
    headers: bytes,
    options: WSGIOptions = OPTIONS,
    prefix: bytes = b"",
    target: bytes = b"/",
) -> dict:
    seen: dict = {}

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", TEXT)
        return []

    served = serve(app, options, client_addr=client_addr)
    served.client.send(prefix + b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n")
    response = served.client.read_response()
    served.finish()
    if response.status != 200:
        return {"status": response.status}
    return seen


def _scheme_and_remote(serve: Callable[..., Served], client_addr: Any, headers: bytes) -> tuple:
    seen = _environ_for(serve, client_addr, headers)
    return seen["wsgi.url_scheme"], seen["REMOTE_ADDR"], seen["REMOTE_PORT"]


def test_secure_scheme_headers_only_from_allowed_peers(serve: Callable[..., Served]) -> None:
    headers = b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9, 198.51.100.2\r\n"
    assert _scheme_and_remote(serve, ("10.0.0.1", 1), headers) == ("https", "10.0.0.1", "1")
    assert _scheme_and_remote(serve, ("10.0.0.2", 1), headers) == ("http", "10.0.0.2", "1")
    # gunicorn's other defaults, exact values only.
    assert _scheme_and_remote(serve, ("10.0.0.1", 1), b"X-Forwarded-Protocol: ssl\r\n")[0] == "https"
    assert _scheme_and_remote(serve, ("10.0.0.1", 1), b"X-Forwarded-Ssl: on\r\n")[0] == "https"
    assert _scheme_and_remote(serve, ("10.0.0.1", 1), b"X-Forwarded-Ssl: On\r\n")[0] == "http"
    # gunicorn 27 does not read RFC 7239 Forwarded.
    forwarded = b'Forwarded: for=192.0.2.1, for="[2001:db8::1]:4711";proto=https\r\n'
    assert _scheme_and_remote(serve, ("10.0.0.1", 1), forwarded) == ("http", "10.0.0.1", "1")


def test_secure_scheme_headers_disagreeing_are_refused(serve: Callable[..., Served]) -> None:
    headers = b"X-Forwarded-Ssl: on\r\nX-Forwarded-Proto: http\r\n"
    assert _environ_for(serve, ("10.0.0.1", 1), headers) == {"status": 400}
    assert _environ_for(serve, ("10.0.0.2", 1), headers)["wsgi.url_scheme"] == "http"


def test_secure_scheme_header_configured(serve: Callable[..., Served]) -> None:
    """The issue: X-Scheme configured and sent must give https (no redirect loop)."""
    parse = ParseOptions(secure_scheme_headers={"X-SCHEME": "https"})
    options = WSGIOptions(Limits(), 5.0, frozenset({"10.0.0.0/8"}), parse=parse)
    seen = _environ_for(serve, ("10.2.3.4", 1), b"X-Scheme: https\r\n", options)
    assert seen["wsgi.url_scheme"] == "https"
    seen = _environ_for(serve, ("10.2.3.4", 1), b"X-Forwarded-Proto: https\r\n", options)
    assert seen["wsgi.url_scheme"] == "http"  # no longer listed


def test_trusted_http_scheme_overrides_url_scheme(serve: Callable[..., Served]) -> None:
    """gunicorn: a listed header with another value means http, whatever the default."""
    options = WSGIOptions(Limits(), 5.0, frozenset({"*"}), url_scheme="https")
    seen = _environ_for(serve, ("10.9.9.9", 1), b"X-Forwarded-Proto: http\r\n", options)
    assert seen["wsgi.url_scheme"] == "http"
    assert _environ_for(serve, ("10.9.9.9", 1), b"", options)["wsgi.url_scheme"] == "https"


def test_forwarder_headers(serve: Callable[..., Served]) -> None:
    """A trusted front-end's SCRIPT_NAME field is the mount point; PATH_INFO and others stay
    HTTP_ keys (gunicorn 27); from anyone else a name with "_" is dropped."""
    headers = b"Script_Name: /app/\r\nPath_Info: /other\r\nRemote_User: eve\r\n"
    seen = _environ_for(serve, ("10.0.0.1", 1), headers, target=b"/app/page")
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/app", "/page")
    assert seen["HTTP_PATH_INFO"] == "/other"
    assert "HTTP_REMOTE_USER" not in seen and "REMOTE_USER" not in seen
    seen = _environ_for(serve, ("10.0.0.2", 1), headers, target=b"/app/page")
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/app/page")
    assert "HTTP_SCRIPT_NAME" not in seen and "HTTP_PATH_INFO" not in seen
    # A dash is not an underscore: Script-Name is an ordinary header.
    seen = _environ_for(serve, ("10.0.0.1", 1), b"Script-Name: /app\r\n", target=b"/app/page")
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/app/page")


def test_header_map(serve: Callable[..., Served]) -> None:
    headers = b"X-Real: 1\r\nX_Real: 2\r\n"
    assert _environ_for(serve, ("10.0.0.2", 1), headers)["HTTP_X_REAL"] == "1"
    dangerous = WSGIOptions(Limits(), 5.0, frozenset(), parse=ParseOptions(header_map="dangerous"))
    assert _environ_for(serve, ("10.0.0.2", 1), headers, dangerous)["HTTP_X_REAL"] == "1,2"
    refuse = WSGIOptions(Limits(), 5.0, frozenset(), parse=ParseOptions(header_map="refuse"))
    assert _environ_for(serve, ("10.0.0.2", 1), headers, refuse) == {"status": 400}


def test_forwarded_allow_ips_networks_and_star(serve: Callable[..., Served]) -> None:
    header = b"X-Forwarded-Proto: https\r\n"
    networks = WSGIOptions(Limits(), 5.0, frozenset({"192.168.0.0/16", "2001:db8::/32"}))
    def scheme(peer: Any, options: WSGIOptions) -> str:
        return _environ_for(serve, peer, header, options)["wsgi.url_scheme"]

    assert scheme(("192.168.7.1", 1), networks) == "https"
    assert scheme(("2001:db8::5", 1, 0, 0), networks) == "https"
    assert scheme(("::ffff:192.168.7.1", 1, 0, 0), networks) == "https"  # dual-stack socket
    assert scheme(("192.169.0.1", 1), networks) == "http"
    assert scheme(("203.0.113.1", 1), WSGIOptions(Limits(), 5.0, frozenset({"*"}))) == "https"
    # A unix-socket peer is the local front-end: trusted, as in gunicorn.
    assert scheme("", WSGIOptions(Limits(), 5.0, frozenset())) == "https"


PROXY_V1 = b"PROXY TCP4 203.0.113.9 198.51.100.2 56324 443\r\n"


def test_proxy_protocol_sets_remote_addr(serve: Callable[..., Served]) -> None:
    options = WSGIOptions(Limits(), 5.0, frozenset(), parse=ParseOptions(proxy_protocol="auto"),
                          proxy_allow_ips=frozenset({"10.0.0.0/8"}))
    seen = _environ_for(serve, ("10.0.0.1", 7), b"", options, prefix=PROXY_V1)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("203.0.113.9", "56324")
    assert (seen["PROXY_ADDR"], seen["PROXY_PORT"], seen["PROXY_PROTOCOL"]) == ("198.51.100.2", "443", "TCP4")
    local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"  # v2 LOCAL: the socket's own addresses
    seen = _environ_for(serve, ("10.0.0.1", 7), b"", options, prefix=local)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"], seen["PROXY_PROTOCOL"]) == ("10.0.0.1", "7", "LOCAL")
    seen = _environ_for(serve, ("10.0.0.1", 7), b"", options)  # the header is optional
    assert (seen["REMOTE_ADDR"], "PROXY_PROTOCOL" in seen) == ("10.0.0.1", False)
    assert _environ_for(serve, ("192.0.2.1", 7), b"", options, prefix=PROXY_V1) == {"status": 403}
    off = WSGIOptions(Limits(), 5.0, frozenset())
    assert _environ_for(serve, ("10.0.0.1", 7), b"", off, prefix=PROXY_V1) == {"status": 400}


def test_proxy_protocol_addresses_last_for_the_connection(serve: Callable[..., Served]) -> None:
    seen: list[str] = []

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen.append(environ["REMOTE_ADDR"])
        start_response("200 OK", TEXT)
        return []

    options = WSGIOptions(Limits(), 5.0, frozenset(), parse=ParseOptions(proxy_protocol="v1"))
    served = serve(app, options, client_addr=("127.0.0.1", 7))
    served.client.send(PROXY_V1 + GET + GET)
    served.client.read_response()
    served.client.read_response()
    served.finish()
    assert seen == ["203.0.113.9", "203.0.113.9"]


def test_unix_socket_peer(serve: Callable[..., Served]) -> None:
    seen: dict = {}

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", TEXT)
        return []

    served = serve(app, client_addr="", server_addr="/run/app.sock")
    served.client.send(b"GET / HTTP/1.1\r\nHost: example.com:8443\r\n\r\n")
    served.client.read_response()
    served.finish()
    assert seen["REMOTE_ADDR"] == ""
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "8443")


# -- system calls --------------------------------------------------------------------------------


class CountingSocket(socket.socket):
    sends: list[int] = []

    def send(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        CountingSocket.sends.append(len(data))
        return super().send(data, *args)


def test_a_list_body_goes_out_in_one_send(serve: Callable[..., Served]) -> None:
    CountingSocket.sends = []
    # Not validated: the validator hides the list behind an iterator.
    served = serve(hello, validate=False, sock_class=CountingSocket)
    served.client.send(GET)
    response = served.client.read_response()
    served.finish()
    assert len(CountingSocket.sends) == 1
    # A list body gets a Content-Length rather than chunking (PEP 3333 allows it).
    assert response.header("Content-Length") == "11"


def test_head_and_first_chunk_share_one_send(serve: Callable[..., Served]) -> None:
    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", TEXT)
        yield b"first"
        yield b"second"

    CountingSocket.sends = []
    served = serve(app, sock_class=CountingSocket)
    served.client.send(GET)
    assert served.client.read_response().body == b"firstsecond"
    served.finish()
    assert len(CountingSocket.sends) == 3  # head + "first", "second", last chunk


def test_large_bodies_survive_scatter_gather(serve: Callable[..., Served]) -> None:
    big = os.urandom(300_000)
    blocks = [os.urandom(100) for _ in range(2000)]

    def app(environ: dict, start_response: Callable) -> Any:
        start_response("200 OK", TEXT)
        if environ["PATH_INFO"] == "/list":
            return blocks
        return iter([big])

    served = serve(app, validate=False)
    served.client.send(b"GET /list HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    assert served.client.read_response().body == b"".join(blocks)
    assert served.client.read_response().body == big
    assert served.finish() == [True, True, False]


def _file_app(path: Path) -> Callable:
    def app(environ: dict, start_response: Callable) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        handle = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        handle.seek(10)
        return environ["wsgi.file_wrapper"](handle, 4096)

    return app


def test_file_wrapper_uses_sendfile(
    serve: Callable[..., Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.bin"
    content = os.urandom(300_000)
    path.write_bytes(content)
    calls = []
    real_sendfile = os.sendfile

    def spy(*args: Any) -> int:
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    served = serve(_file_app(path), validate=False)
    served.client.send(GET)
    response = served.client.read_response()
    assert response.header("Content-Length") == str(len(content) - 10)
    assert response.body == content[10:]
    served.client.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert served.client.read_response(bodiless=True).header("Content-Length") == "299990"
    assert served.finish() == [True, True, False]
    assert calls and calls[0] == len(content) - 10


def test_no_sendfile_copies_the_file_through_the_process(
    serve: Callable[..., Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-sendfile (for filesystems where sendfile() misbehaves): the same bytes, no sendfile."""
    path = tmp_path / "data.bin"
    content = os.urandom(300_000)
    path.write_bytes(content)

    def refuse(*args: Any) -> int:
        raise AssertionError("sendfile used despite --no-sendfile")

    monkeypatch.setattr(os, "sendfile", refuse)
    served = serve(_file_app(path), options=replace(OPTIONS, sendfile=False), validate=False)
    served.client.send(GET)
    response = served.client.read_response()
    assert response.body == content[10:]
    assert served.finish() == [True, False]


def test_file_wrapper_hidden_by_middleware_is_iterated(serve: Callable[..., Served], tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    content = os.urandom(50_000)
    path.write_bytes(content)
    served = serve(_file_app(path))  # the validator wraps the iterable
    served.client.send(GET)
    assert served.client.read_response().body == content[10:]
