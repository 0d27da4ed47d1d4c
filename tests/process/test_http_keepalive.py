"""HTTP/1.1 on a real server, every worker class: keep-alive, pipelining, bodies, HEAD, 100-continue.

Every app here runs through wsgiref.validate, so a PEP 3333 slip on our side fails the request
(500) and shows up in the logs.
"""

from __future__ import annotations

import pytest
from harness import WORKER_CLASSES
from http_wire import Wire

pytestmark = pytest.mark.timeout(60)

@pytest.fixture(params=list(WORKER_CLASSES), ids=list(WORKER_CLASSES))
def server(request, start_server):
    server = start_server("httpapps:validated_echo", *WORKER_CLASSES[request.param])
    yield server
    # Nothing the validator or the server complained about.
    assert "application error" not in server.log()
    assert "Warning" not in server.output_path.read_text(errors="replace")


def test_keep_alive_serves_two_requests_on_one_connection(server) -> None:
    with Wire(server.port) as wire:
        first = wire.request()
        second = wire.request()
    assert first.status == second.status == 200
    assert not first.closes and not second.closes
    assert first.body == second.body  # the same worker pid: the same connection


def test_pipelined_requests_are_answered_in_order(server) -> None:
    with Wire(server.port) as wire:
        wire.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst"
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nthird"
        )
        answers = [wire.read_response() for _ in range(3)]
        assert [a.body for a in answers] == [b"first", b"one,two,three", b"third"]
        assert answers[1].headers["transfer-encoding"] == "chunked"
        assert wire.request("POST", "/echo", b"after").body == b"after"


def test_chunked_upload_is_decoded(server) -> None:
    with Wire(server.port) as wire:
        wire.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        )
        assert wire.read_response().body == b"hello, world"
        assert wire.request().status == 200  # still usable afterwards


def test_large_chunked_upload_read_by_lines(server) -> None:
    lines = [b"line %d\n" % n for n in range(5000)]
    data = b"".join(lines)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000])
                      for i in range(0, len(data), 1000))
    with Wire(server.port) as wire:
        wire.send(b"POST /lines HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunks + b"0\r\n\r\n")
        answer = wire.read_response()
    assert answer.body == b"%d %d %d" % (len(lines[0]), len(lines) - 1, len(data) - len(lines[0]))


def test_expect_100_continue_when_the_app_reads_the_body(server) -> None:
    with Wire(server.port) as wire:
        wire.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = wire.read_response()
        assert interim.status == 100
        wire.send(b"body")
        final = wire.read_response()
        assert (final.status, final.body) == (200, b"body")
        assert wire.request().status == 200


def test_no_100_continue_when_the_app_ignores_the_body(server) -> None:
    with Wire(server.port) as wire:
        wire.send(b"POST /pid HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        final = wire.read_response()
        # The body never came, so the connection cannot be reused: the server says so.
        assert final.status == 200 and final.closes
        assert wire.is_closed_by_server()


def test_head_has_headers_but_no_body(server) -> None:
    with Wire(server.port) as wire:
        get = wire.request("GET", "/echo", b"12345")
        head = wire.request("HEAD", "/echo", b"12345")
        assert head.status == 200 and head.body == b""
        assert head.headers["content-length"] == get.headers["content-length"] == "5"
        # No stray body bytes: the next response parses cleanly on the same connection.
        assert wire.request("POST", "/echo", b"next").body == b"next"


def test_http10_closes_unless_asked_to_keep_alive(server) -> None:
    with Wire(server.port) as wire:
        wire.send(b"GET / HTTP/1.0\r\n\r\n")
        assert wire.read_response().closes
        assert wire.is_closed_by_server()
    with Wire(server.port) as wire:
        wire.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = wire.read_response()
        assert answer.headers["connection"].lower() == "keep-alive"
        wire.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert wire.read_response().status == 200
