"""The gthread worker's own promises: graceful drain, max_requests, the connection limit."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from harness import wait_for
from http_wire import Response, Wire

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_term_drains_in_flight_requests_and_closes_idle_connections(
    start_server, tmp_path: Path, threads: str
) -> None:
    server = start_server("httpapps:echo", "-k", "gthread", "--threads", threads, "--workers", "1",
                          "--graceful-timeout", "20")
    marker = tmp_path / "in-flight"
    answers: dict[str, Response] = {}
    with Wire(server.port, timeout=20) as busy, Wire(server.port, timeout=20) as idle:
        assert idle.request().status == 200  # now idle, kept alive
        busy.send(f"GET /sleep?1.5&{marker} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        reader = threading.Thread(target=lambda: answers.update(busy=busy.read_response()))
        reader.start()
        wait_for(marker.exists, 10, "the slow request to be in flight")
        server.signal(signal.SIGTERM)
        if threads != "1":
            # The loop is free while the app sleeps: the idle connection is closed at once.
            assert idle.is_closed_by_server()
        reader.join(timeout=20)
        assert idle.is_closed_by_server()
        assert answers["busy"].status == 200 and answers["busy"].body == b"slept"
        if threads != "1":
            # The loop saw TERM before the app finished, so the response promises no keep-alive.
            # (With one thread the loop runs the app itself and sees TERM only afterwards.)
            assert answers["busy"].closes
        assert busy.is_closed_by_server()
    assert server.wait_exit() == 0
    assert "code=0" in server.log()


def test_max_requests_replaces_the_worker(start_server) -> None:
    server = start_server("httpapps:echo", "-k", "gthread", "--threads", "2", "--workers", "1",
                          "--max-requests", "3")
    pids = []
    for _ in range(3):
        with Wire(server.port) as wire:
            pids.append(wire.request().body)
    assert len(set(pids)) == 1
    server.wait_for_log(r"autorestarting worker after max requests")

    def new_pid() -> bytes | None:
        with Wire(server.port) as wire:
            pid = wire.request().body
        return pid if pid != pids[0] else None

    wait_for(new_pid, 15, "a replacement worker")


@pytest.mark.parametrize("threads", ["1", "2"])
def test_connection_limit_defers_accepting_until_one_closes(start_server, threads: str) -> None:
    server = start_server("httpapps:echo", "-k", "gthread", "--threads", threads, "--workers", "1",
                          "--worker-connections", "2", "--keep-alive", "30")
    first, second = Wire(server.port), Wire(server.port)
    try:
        assert first.request().status == second.request().status == 200
        with Wire(server.port, timeout=20) as third:
            third.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            first.close()  # a slot frees up: the third client is accepted and answered
            assert third.read_response().status == 200
        assert second.request().status == 200
    finally:
        first.close()
        second.close()


def test_idle_keep_alive_connection_is_closed_after_keepalive(start_server) -> None:
    server = start_server("httpapps:echo", "-k", "gthread", "--threads", "2", "--keep-alive", "1")
    with Wire(server.port, timeout=10) as wire:
        assert wire.request().status == 200
        assert wire.is_closed_by_server()  # within the 10 s read timeout, without a 408
