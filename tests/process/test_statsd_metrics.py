"""A real server sends gunicorn's statsd metrics to a real UDP socket held by the test."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def collector() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def _collect(sock: socket.socket, until: dict[str, int], timeout: float = 10) -> list[str]:
    """Metrics (one per line) received until each name in `until` was seen that many times.

    A worker sends a request's metrics just after its response, so they may arrive after the
    client has its answer, and after later requests' metrics: count, do not just look once.
    """
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lines += sock.recv(65536).decode().split("\n")
        except TimeoutError:
            pass
        if all(sum(line.startswith(name) for line in lines) >= count for name, count in until.items()):
            return lines
    raise AssertionError(f"not all of {until} received; got {lines}")


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_requests_workers_and_log_lines_are_measured(start_server, collector: socket.socket,
                                                     worker: str) -> None:
    host, port = collector.getsockname()
    server = start_server("testapps:route", "-k", worker, "--workers", "2",
                          "--statsd-host", f"{host}:{port}",
                          "--statsd-prefix", "shop", "--dogstatsd-tags", "env:test")
    for path in ("/a", "/b", "/boom"):
        server.get(path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:  # refused: 400
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n")
        sock.recv(64)
    lines = _collect(collector, {"shop.gunicorn.workers:2|g": 1, "shop.gunicorn.request.status.500": 1,
                                 "shop.gunicorn.log.exception": 1, "shop.gunicorn.log.warning": 1,
                                 "shop.gunicorn.requests:": 3, "shop.gunicorn.request.duration:": 3})
    assert all(line.endswith("|#env:test") for line in lines), lines
    requests = [line for line in lines if line.startswith("shop.gunicorn.requests:")]
    assert requests == ["shop.gunicorn.requests:1|c|@1.0|#env:test"] * 3  # the 400 ran no request
    assert lines.count("shop.gunicorn.request.status.200:1|c|@1.0|#env:test") == 2
    durations = [line for line in lines if line.startswith("shop.gunicorn.request.duration:")]
    assert len(durations) == 3
    assert all(float(line.split(":")[1].split("|")[0]) >= 0 for line in durations)
    assert "shop.gunicorn.workers:2|g|#env:test" in lines
