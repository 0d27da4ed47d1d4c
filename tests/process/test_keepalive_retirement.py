"""A retiring worker never closes a kept-alive connection under a client's next request.

Whatever ends a worker — HUP, TTOU, max_requests, TERM — it stops accepting, and then answers
the next request on each kept-alive connection (saying `Connection: close`) or closes the
connection once it sat idle for the whole keep-alive interval. A client that sends its next
request on the connection after the worker began to retire gets an answer, not an EOF.
"""

from __future__ import annotations

import signal
import time

import pytest
from http_wire import Wire

pytestmark = pytest.mark.timeout(60)

KEEP_ALIVE = ("--keep-alive", "10")  # longer than any test waits: idle never closes a connection

def served_by(wire: Wire) -> int:
    """One request on the connection: the pid of the worker that answered, kept alive."""
    answer = wire.request()
    assert (answer.status, answer.closes) == (200, False)
    return int(answer.body)


def assert_answered_then_closed(wire: Wire, pid: int) -> None:
    answer = wire.request()
    assert (answer.status, int(answer.body), answer.closes) == (200, pid, True)
    assert wire.is_closed_by_server()


def test_hup(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--workers", "1", *KEEP_ALIVE, *worker_args)
    with Wire(server.port) as wire:
        old = served_by(wire)
        server.signal(signal.SIGHUP)
        server.wait_for_log(rf"worker retiring pid={old}\b")
        assert_answered_then_closed(wire, old)
    server.wait_for_workers(lambda pids: old not in pids and len(pids) == 1, "old worker gone")


def test_ttou(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--workers", "2", *KEEP_ALIVE, *worker_args)
    wires: dict[int, Wire] = {}
    try:
        while len(wires) < 2:  # a kept-alive connection to each worker
            wire = Wire(server.port)
            pid = served_by(wire)
            if pid in wires:
                wire.close()
            else:
                wires[pid] = wire
        server.signal(signal.SIGTTOU)
        retiring = int(server.wait_for_log(r"worker retiring pid=(\d+)")[0].group(1))
        assert_answered_then_closed(wires[retiring], retiring)
        (staying,) = set(wires) - {retiring}
        assert served_by(wires[staying]) == staying
    finally:
        for wire in wires.values():
            wire.close()


def test_max_requests(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--workers", "1", "--max-requests", "2", *KEEP_ALIVE, *worker_args)
    with Wire(server.port) as wire:
        pid = served_by(wire)
        assert served_by(wire) == pid
        server.wait_for_log(rf"worker retiring pid={pid}\b")
        assert_answered_then_closed(wire, pid)


def test_term(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--workers", "1", *KEEP_ALIVE, *worker_args)
    with Wire(server.port) as wire:
        pid = served_by(wire)
        server.signal(signal.SIGTERM)
        server.wait_for_log(rf"worker retiring pid={pid}\b")
        assert_answered_then_closed(wire, pid)
    assert server.wait_exit() == 0


def test_an_idle_connection_is_closed_after_keepalive_when_retiring(start_server) -> None:
    server = start_server("httpapps:echo", "--workers", "1", "--keep-alive", "1")
    with Wire(server.port) as wire:
        pid = served_by(wire)
        server.signal(signal.SIGTERM)
        server.wait_for_log(rf"worker retiring pid={pid}\b")
        assert wire.is_closed_by_server()  # no request came: closed once idle for 1 s
    assert server.wait_exit() == 0


def test_a_connection_that_never_carried_a_request_is_closed_soon_when_retiring(
    start_server, worker_args
) -> None:
    """Its client loses nothing by the close: after a short grace, not the header timeout."""
    server = start_server("httpapps:echo", "--workers", "1", "--keep-alive", "1",
                          "--header-timeout", "60", *worker_args)
    # Connected first, so accepted before the other one is answered (the backlog is FIFO).
    with Wire(server.port, timeout=20) as silent, Wire(server.port) as used:
        pid = served_by(used)
        server.signal(signal.SIGTERM)
        server.wait_for_log(rf"worker retiring pid={pid}\b")
        started = time.monotonic()
        assert silent.is_closed_by_server()
        assert time.monotonic() - started < 15  # the header timeout (60 s) did not hold it
        assert used.is_closed_by_server()
    assert server.wait_exit() == 0
