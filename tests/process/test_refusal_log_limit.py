"""A flood of invalid requests writes a bounded number of warning lines, and counts the rest."""

from __future__ import annotations

import re
import socket
import time

from unitcorn.ratelimit import REFUSALS_PER_SECOND

FLOOD = 300


def _refused(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n")
        return sock.recv(64)


def test_a_flood_of_invalid_requests_is_logged_within_the_budget(start_server) -> None:
    server = start_server("testapps:route", "--workers", "1")
    started = time.monotonic()
    for _ in range(FLOOD):
        assert _refused(server.port).startswith(b"HTTP/1.1 400")
    elapsed = time.monotonic() - started
    time.sleep(1.1)  # a new window: the next refusal first reports what was dropped
    assert _refused(server.port).startswith(b"HTTP/1.1 400")
    server.wait_for_log(r"invalid requests not logged count=\d+")
    log = server.log()
    written = re.findall(r"\[WARNING\] invalid request peer=127\.0\.0\.1 status=400 "
                         r'reason="Content-Length list"', log)
    dropped = [int(n) for n in re.findall(r"\[WARNING\] invalid requests not logged count=(\d+) "
                                          rf"limit={REFUSALS_PER_SECOND}/s", log)]
    windows = int(elapsed) + 2
    assert len(written) <= REFUSALS_PER_SECOND * windows
    assert len(written) + sum(dropped) == FLOOD + 1  # every refusal written or counted
