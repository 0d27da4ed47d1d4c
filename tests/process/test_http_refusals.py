"""Bad requests get the right 4xx/5xx and a closed connection; slow clients are cut off."""

from __future__ import annotations

import threading

import pytest
from http_wire import Wire

pytestmark = pytest.mark.timeout(60)

BAD_REQUESTS = [
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
    (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: t\n\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
]


def test_bad_requests_are_refused_and_closed(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", *worker_args)
    for raw, status in BAD_REQUESTS:
        with Wire(server.port) as wire:
            wire.send(raw)
            answer = wire.read_response()
            assert (answer.status, answer.closes) == (status, True), raw[:60]
            assert wire.is_closed_by_server(), raw[:60]
    # A good request on an earlier good connection is unaffected by the refusals.
    with Wire(server.port) as wire:
        assert wire.request().status == 200


def test_bad_request_after_a_good_one_on_the_same_connection(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", *worker_args)
    with Wire(server.port) as wire:
        assert wire.request().status == 200
        wire.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
        assert wire.read_response().status == 400
        assert wire.is_closed_by_server()


def _trickle(wire: Wire, stop: threading.Event) -> None:
    """A slowloris: a started head, then one more header byte every 0.2 s, never the end."""
    try:
        wire.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        while not stop.wait(0.2):
            wire.send(b"X")
    except OSError:
        pass  # cut off: what we are waiting for


def test_a_slow_head_is_cut_off_with_408(start_server, worker_args) -> None:
    """The head must be complete within --header-timeout, however often bytes trickle in.

    --timeout is the worker heartbeat, not a client deadline: a long one changes nothing here.
    """
    server = start_server("httpapps:echo", "--timeout", "300", "--header-timeout", "2", "--workers", "1",
                          *worker_args)
    stop = threading.Event()
    with Wire(server.port, timeout=20) as slow:
        thread = threading.Thread(target=_trickle, args=(slow, stop), daemon=True)
        thread.start()
        try:
            answer = slow.read_response()
        finally:
            stop.set()
            thread.join(timeout=5)
        assert (answer.status, answer.closes) == (408, True)
    with Wire(server.port) as wire:  # and the worker serves again
        assert wire.request().status == 200


def test_others_are_served_while_a_slowloris_holds_a_connection(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--header-timeout", "2", "--workers", "1", *worker_args)
    with Wire(server.port, timeout=20) as slow:
        slow.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Partial: ")
        for _ in range(5):  # one worker, one app thread, and still nobody waits for the slow client
            with Wire(server.port, timeout=5) as wire:
                assert wire.request("POST", "/echo", b"quick").body == b"quick"
        answer = slow.read_response()
        assert (answer.status, answer.closes) == (408, True)
        assert slow.is_closed_by_server()
