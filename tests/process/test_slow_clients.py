"""Slow clients cannot hold a worker, and a refused upload still receives its answer.

--timeout is the worker heartbeat; a client gets --header-timeout for its head, --body-timeout
for its whole body and must accept 64 KiB of a response every --send-timeout seconds.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests
from harness import get_through_small_window
from http_wire import Wire

pytestmark = pytest.mark.timeout(90)

BIG = 256 << 20  # a response no socket buffer can hold


@contextmanager
def trickling_upload(port: int, length: int = 1_000_000) -> Iterator[Wire]:
    """A client that sent a head announcing `length` bytes of body, then sends a byte every 0.2 s."""
    stop = threading.Event()
    wire = Wire(port, timeout=30)
    wire.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length)

    def trickle() -> None:
        try:
            while not stop.wait(0.2):
                wire.send(b"x")
        except OSError:
            pass  # cut off: what the test waits for

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield wire
    finally:
        stop.set()
        thread.join(timeout=5)
        wire.close()


@contextmanager
def stalled_reader(port: int) -> Iterator[socket.socket]:
    """A client that asks for a huge response and never reads a byte of it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /big?{BIG} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    try:
        yield sock
    finally:
        sock.close()


def received_until_closed(sock: socket.socket) -> int:
    """Read what the server sent until it closed the connection; the byte count."""
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


def test_a_trickling_upload_is_cut_off_with_408(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--body-timeout", "2", "--timeout", "300", "--workers", "1",
                          *worker_args)
    started = time.monotonic()
    with trickling_upload(server.port) as slow:
        answer = slow.read_response()
    assert (answer.status, answer.closes) == (408, True)
    assert time.monotonic() - started < 10  # the body deadline, not the 300 s heartbeat
    assert 'status=408 reason="request body not received in time"' in server.log()
    with Wire(server.port) as wire:
        assert wire.request("POST", "/echo", b"next").body == b"next"


def test_a_small_body_on_its_way_holds_no_worker(start_server, worker_args) -> None:
    """A body up to 64 KiB is gathered by the loop: the app (one worker, one thread) serves others."""
    server = start_server("httpapps:echo", "--body-timeout", "30", "--workers", "1", *worker_args)
    with trickling_upload(server.port, length=1000) as slow:
        slow.send(b"x")  # the body has begun
        for _ in range(3):
            with Wire(server.port, timeout=5) as wire:
                assert wire.request("POST", "/echo", b"quick").body == b"quick"
        slow.send(b"y" * 998)
        answer = slow.read_response()
        assert answer.status == 200 and len(answer.body) == 1000


def test_a_client_that_does_not_read_is_dropped(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--send-timeout", "2", "--timeout", "300", "--workers", "1",
                          *worker_args)
    with stalled_reader(server.port) as slow:
        with Wire(server.port, timeout=30) as wire:  # one worker: answered once the reader is dropped
            assert wire.request("POST", "/echo", b"next").body == b"next"
        server.wait_for_log("response send timed out", timeout=30)
        assert received_until_closed(slow) < BIG


def test_the_apps_own_time_is_not_the_clients_send_time(start_server, worker_args) -> None:
    """A view that thinks longer than --send-timeout before (and between) blocks bigger than any
    socket buffer: a client reading at full speed, through a small receive window, gets every
    byte. (The deadline counts only the time the worker waits on the client.)"""
    server = start_server("httpapps:echo", "--send-timeout", "1", "--timeout", "30", "--workers", "1",
                          *worker_args)
    block = 4 << 20
    head, body = get_through_small_window(server.port, f"/pauses?1.5&{block}&2")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == 2 * block


def test_slow_clients_on_every_sync_worker_delay_others_by_at_most_two_deadlines(start_server) -> None:
    """Two trickling uploaders and two stalled readers against -k sync -w 2 (deadlines 2 s)."""
    deadline = 2.0
    server = start_server("httpapps:echo", "-k", "sync", "--workers", "2", "--timeout", "300",
                          "--body-timeout", "2", "--send-timeout", "2")
    with ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(trickling_upload(server.port))
            stack.enter_context(stalled_reader(server.port))
        started = time.monotonic()
        with Wire(server.port, timeout=30) as wire:
            assert wire.request("POST", "/echo", b"normal").body == b"normal"
        waited = time.monotonic() - started
    # Each worker serves at most one slow client per deadline before it comes to ours.
    assert waited <= 2 * deadline + 0.5, f"a normal client waited {waited:.1f} s"


def test_a_refused_upload_still_receives_its_answer(start_server, worker_args, tmp_path) -> None:
    """The app answers 413 without reading a 10 MiB body the client is still sending.

    requests sends the whole body before it reads anything: had the server closed with the
    body unread, the kernel would reset the connection and the client would see an error.
    curl reads the early answer while it sends.
    """
    server = start_server("httpapps:echo", "--workers", "1", *worker_args)
    url = f"http://127.0.0.1:{server.port}/refuse"
    body = b"u" * (10 << 20)
    for _ in range(3):
        with requests.Session() as session:
            assert session.post(url, data=body, timeout=30).status_code == 413
        # http.client gives up on a reset while it sends: the body must be read, not refused.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("POST", "/refuse", body)
            assert connection.getresponse().status == 413
        finally:
            connection.close()
    upload = tmp_path / "upload.bin"
    upload.write_bytes(body)
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
         "--data-binary", f"@{upload}", url],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "413", "")
