"""Bad input at the socket: mutated requests (hypothesis), slowloris clients, oversized heads
and bodies — against a live server. No worker may crash or restart; every reply is a sequence of
well-formed HTTP responses or a clean close.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from torture_config import HAS_GTHREAD, WORKER_CLASSES
from torture_load import LoadGenerator
from torture_proc import rss_kib, wait_until

CORPUS = Path(__file__).resolve().parents[1] / "unit" / "http_cases"
SEEDS = sorted(p.read_bytes() for p in CORPUS.glob("*/*.http"))
INTERESTING = [b"\r\n", b"\n", b"\r", b"\0", b" ", b"\t", b":", b"0", b"f", b"-", b"\xff",
               b"99999999999999999999", b"chunked", b"Content-Length: ", b"Transfer-Encoding: ",
               b"\r\n\r\n", b"HTTP/1.1", b"Expect: 100-continue\r\n", b"%", b"%00", b"/../"]

STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5]\d\d) [^\r\n]*\r\n")
FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*")


class NotHTTP(AssertionError):
    pass


def parse_responses(data: bytes) -> list[int]:
    """Statuses of the responses in `data`; NotHTTP if any byte is not part of a valid one.

    HEAD answers carry a Content-Length but no body; a response followed directly by the next
    status line (or by the end) is taken to be one."""
    statuses: list[int] = []
    pos = 0
    while pos < len(data):
        match = STATUS_LINE.match(data, pos)
        if match is None:
            raise NotHTTP(f"no status line at {pos}: {data[pos:pos + 80]!r}")
        status = int(match.group(1))
        end = data.find(b"\r\n\r\n", match.start())
        if end < 0:
            raise NotHTTP(f"unterminated head: {data[pos:pos + 200]!r}")
        headers: dict[bytes, bytes] = {}
        for line in data[match.end():end].split(b"\r\n") if end > match.end() else []:
            field = FIELD.fullmatch(line)
            if field is None:
                raise NotHTTP(f"bad header line {line!r}")
            headers[field.group(1).lower()] = field.group(2)
        pos = end + 4
        statuses.append(status)
        if status < 200 or status in (204, 304):
            continue
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            pos = _skip_chunks(data, pos)
        elif b"content-length" in headers:
            length = int(headers[b"content-length"])
            if pos == len(data) or (STATUS_LINE.match(data, pos) and length
                                    and not STATUS_LINE.match(data, pos + length)
                                    and pos + length != len(data)):
                continue  # HEAD
            if len(data) - pos < length:
                raise NotHTTP(f"body cut short: {length} announced, {len(data) - pos} sent")
            pos += length
        else:
            pos = len(data)  # delimited by the close
    return statuses


def _skip_chunks(data: bytes, pos: int) -> int:
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise NotHTTP("unterminated chunk size")
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = data.find(b"\r\n\r\n", pos - 2)
            if end < 0:
                raise NotHTTP("unterminated trailer")
            return end + 4
        pos += size + 2


def exchange(address, payload: bytes, timeout: float = 8) -> tuple[bytes, str]:
    """Send `payload`, half-close, read to the end. Returns (reply, how it ended)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking everything
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            return reply, "reset"
        except TimeoutError:
            return reply, "timeout"
    return reply, "eof"


def _mutate(data: bytes, rng: random.Random, steps: int) -> bytes:
    buffer = bytearray(data)
    for _ in range(steps):
        operation = rng.randrange(7)
        at = rng.randrange(len(buffer) + 1)
        if operation == 0 and buffer:
            buffer[min(at, len(buffer) - 1)] = rng.randrange(256)
        elif operation == 1:
            buffer[at:at] = rng.choice(INTERESTING)
        elif operation == 2:
            del buffer[at:at + rng.randrange(1, 16)]
        elif operation == 3:
            span = buffer[at:at + rng.randrange(1, 64)]
            buffer[at:at] = span * rng.randrange(1, 4)
        elif operation == 4:
            buffer[at:at] = rng.choice(SEEDS)  # splice: pipelining, smuggling shapes
        elif operation == 5:
            buffer = buffer[:at]
        else:
            buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    return bytes(buffer)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_fuzzed_requests_never_crash_a_worker(start_torture, worker_class, sizes, figures) -> None:
    server = start_torture("tortureapps:echo", "--workers", "2", "--timeout", "10",
                           "--keep-alive", "1", worker_class=worker_class)
    workers = server.current_workers()
    stats = {"examples": 0, "statuses": {}, "clean_close": 0}

    @settings(max_examples=40, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(base=st.sampled_from(SEEDS), steps=st.integers(0, 6), rng=st.randoms(use_true_random=False))
    def one(base: bytes, steps: int, rng: random.Random) -> None:
        payload = _mutate(base, rng, steps)
        reply, ended = exchange(server.address, payload)
        assert ended != "timeout", f"no answer and no close within 8s to {payload!r}"
        try:
            statuses = parse_responses(reply)
        except NotHTTP as exc:
            raise AssertionError(f"{exc}\nrequest: {payload!r}\nreply: {reply!r}") from None
        # A reset is tolerated only after a complete reply (unread request bytes at close).
        assert ended == "eof" or statuses, f"reset with no answer to {payload!r}"
        stats["examples"] += 1
        if not statuses:
            stats["clean_close"] += 1
        for status in statuses:
            stats["statuses"][status] = stats["statuses"].get(status, 0) + 1

    started = time.monotonic()
    batch = 0
    while time.monotonic() - started < sizes.fuzz_seconds:
        seed(batch)(one)()
        batch += 1
    figures["examples"] = stats["examples"]
    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["statuses"] = dict(sorted(stats["statuses"].items()))
    figures["clean_closes"] = stats["clean_close"]
    assert server.current_workers() == workers, "a worker was replaced during fuzzing"
    log = server.log()
    assert "worker exited" not in log and "Traceback" not in log, log[-3000:]


# ---- oversized --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_oversized_heads_and_bodies_are_refused(start_torture, worker_class, figures) -> None:
    server = start_torture("tortureapps:echo", "--workers", "1", worker_class=worker_class)
    worker = server.current_workers()[0]
    cases = {
        "request line 5000": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        "field 9000": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        "101 fields": (b"GET / HTTP/1.1\r\nHost: x\r\n"
                       + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", 431),
        "head 1 MB": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Y: z\r\n" * 150000 + b"\r\n", 431),
        "length 10^30": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 30
                         + b"\r\n\r\n", 400),
        "chunk size 2^128": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + b"f" * 32 + b"\r\n", 400),
    }
    results = {}
    for name, (payload, expected) in cases.items():
        reply, ended = exchange(server.address, payload)
        statuses = parse_responses(reply)
        results[name] = statuses[0] if statuses else ended
        assert statuses == [expected], (name, reply[:200], ended)
    figures["refusals"] = results
    # A 50 MB body the app never reads: answered; the server drains at most 1 MB to keep the
    # connection, then closes lingering (reading at most 32 MiB more) — never all 50; memory flat.
    rss_before = rss_kib(worker)
    body = 50 * 1024 * 1024
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body)
        sent = 0
        chunk = b"x" * 65536
        try:
            while sent < body:
                sent += sock.send(chunk)
        except OSError:
            pass  # the server answered and closed: what we want
        reply = b""
        try:
            while part := sock.recv(65536):
                reply += part
        except OSError:
            pass
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    figures["unread_body_mb_sent_before_close"] = round(sent / 2**20, 1)
    figures["worker_rss_growth_kib"] = rss_kib(worker) - rss_before
    assert sent < body, "the server read a 50 MB body nobody wanted"
    assert rss_kib(worker) - rss_before < 8192
    assert server.current_workers() == [worker]


# ---- slowloris ------------------------------------------------------------------------------


class Slowloris:
    """Clients that send a request head one byte at a time and never finish it."""

    def __init__(self, address, count: int, interval: float = 0.2) -> None:
        self.address, self.count, self.interval = address, count, interval
        self.socks: list[socket.socket] = []
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        for _ in range(self.count):
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            self.socks.append(sock)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # pacing the attack, not synchronising
            for sock in list(self.socks):
                try:
                    sock.send(b"X")
                except OSError:
                    self.closed_by_server += 1
                    self.socks.remove(sock)
                    sock.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


@pytest.mark.timeout(60)
@pytest.mark.skipif(not HAS_GTHREAD, reason="unitcorn.workers.gthread is not importable yet "
                    "(being written)")
def test_slowloris_does_not_starve_gthread(start_torture, sizes, figures) -> None:
    server = start_torture("testapps:route", "--workers", "1", "--timeout", "30",
                           worker_class="gthread")
    worker = server.current_workers()
    with Slowloris(server.address, sizes.slowloris_clients) as attack:
        with LoadGenerator(server.address, threads=4) as load:
            deadline = time.monotonic() + 3
            wait_until(lambda: time.monotonic() > deadline, 5, "3 s of load under attack")
            report = load.stop()
        figures["slow_clients"] = sizes.slowloris_clients
        figures["slow_clients_closed_by_server"] = attack.closed_by_server
    figures.update(report.summary())
    assert report.failures == [], report.failures[:10]
    assert report.max_latency() < 1.0
    assert report.worst_second() > 50
    assert server.current_workers() == worker


@pytest.mark.timeout(60)
def test_slowloris_does_not_hold_a_sync_worker(start_torture, figures) -> None:
    """The sync worker runs the app one request at a time, but its loop owns the connections:
    a client dribbling its head holds a buffer, not the worker, and others are served at once.
    A head that does not arrive within --header-timeout gets 408 — and the worker is never
    taken for a hung one."""
    server = start_torture("testapps:route", "--workers", "1", "--timeout", "2",
                           "--header-timeout", "2", worker_class="sync")
    worker = server.current_workers()
    with socket.create_connection(server.address, timeout=10) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        waiting = threading.Thread(target=lambda: results.append(
            (server.get("/", timeout=10), time.monotonic() - started)))
        results: list = []
        waiting.start()
        reply = b""
        slow.setblocking(False)
        while time.monotonic() - started < 8:
            try:
                slow.send(b"X")
                chunk = slow.recv(65536)
                if not chunk:
                    break
                reply += chunk
            except BlockingIOError:
                pass
            except OSError:
                break
            time.sleep(0.2)  # pacing the attack
        held = time.monotonic() - started
        waiting.join(timeout=10)
    figures["slow_client_cut_off_after_seconds"] = round(held, 2)
    figures["slow_client_reply"] = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:100]
    (answer, answered_after), = results
    figures["other_client_answered_after_seconds"] = round(answered_after, 2)
    assert answer[0] == 200
    assert answered_after < 1.5, "the other client waited for the slow one"
    assert held < 4
    assert "WORKER TIMEOUT" not in server.log()
    assert server.current_workers() == worker
