"""Fixtures for every unit test."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from unitcorn.ratelimit import refusal_lines


@pytest.fixture(autouse=True)
def fresh_refusal_budget() -> Iterator[None]:
    """Each test starts with the whole per-second budget of refusal log lines."""
    refusal_lines.window_end = float("-inf")
    refusal_lines.used = refusal_lines.dropped = 0
    yield


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    """A real UDP socket on loopback, for what statsd and syslog send."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()
