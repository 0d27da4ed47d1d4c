"""ClientSocket's send deadline counts only the time the worker waits on the client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from unitcorn.wsgi.socket_io import ClientSocket, ClientTimedOut

pytestmark = pytest.mark.timeout(30)

SEND_TIMEOUT = 0.5
BLOCK = 1 << 20  # far more than the small send buffer below


@contextmanager
def client_pair(reads: bool) -> Iterator[tuple[ClientSocket, list[int]]]:
    """Our end with a small send buffer, and a peer that reads everything (or nothing)."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    received = [0]

    def read_all() -> None:
        while data := theirs.recv(1 << 16):
            received[0] += len(data)

    reader = threading.Thread(target=read_all, daemon=True)
    if reads:
        reader.start()
    try:
        yield ClientSocket(ours, send_timeout=SEND_TIMEOUT), received
    finally:
        ours.close()
        if reads:
            reader.join(10)
        theirs.close()


def test_an_app_slower_than_the_send_timeout_still_gets_its_response_out() -> None:
    with client_pair(reads=True) as (client, _received):
        client.start_sending()
        time.sleep(2 * SEND_TIMEOUT)  # the app thinks; the client is not to blame
        client.send(b"x" * BLOCK)
        time.sleep(2 * SEND_TIMEOUT)  # and again, between two blocks of a streamed body
        client.send(b"y" * BLOCK)


def test_a_client_that_takes_nothing_is_timed_out_at_the_send_timeout() -> None:
    with client_pair(reads=False) as (client, _received):
        client.start_sending()
        started = time.monotonic()
        with pytest.raises(ClientTimedOut):
            client.send(b"x" * BLOCK)
        assert SEND_TIMEOUT <= time.monotonic() - started < 5 * SEND_TIMEOUT
