"""A closed-loop HTTP load generator on raw sockets that records every request's outcome.

Each client thread sends one request, waits for the whole answer (or a failure), records it, and
sends the next: the offered load adapts to what the server can do, so a stall shows up as lost
throughput and timeouts instead of an ever-growing queue.

Two modes (`MODES`):

- ``retry`` — half the threads open a new connection per request; the other half keep one
  connection alive for as long as the server allows, and retry as browsers do (below).
- ``keepalive`` — every thread keeps its connection alive and never retries, as a reverse proxy
  does with a POST: a request sent on a reused connection that is closed or reset is a failure
  (kind ``reset``, ``fresh`` false). A response that says ``Connection: close`` is no failure:
  the client opens a new connection for its next request. This is the mode that shows what a
  user behind a proxy loses when a server closes a connection the client may reuse.

Outcome kinds: ``ok`` (2xx), ``status`` (any other status), ``refused`` (connect refused or the
backlog was full), ``reset`` (connection reset or closed before the whole answer), ``timeout``,
``bad`` (bytes that are not an HTTP response).

The keep-alive retry rule of the ``retry`` mode (RFC 9112 §9.3.1, what urllib3, browsers and
curl do): a request sent on a *reused* connection that is closed or reset before a single byte of
the answer arrived is sent again, once, on a new connection. The first attempt is recorded as
``retried`` (not a failure): the server may close an idle connection at any moment (RFC 9112
§9.6), and a client cannot tell "closed just before my request arrived" from "closed while idle".
Whether the server had *executed* such a request can be checked afterwards against the access log
(request ids are unique per attempt: ``/?<thread>-<seq>-<attempt>``).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

FAILURE_KINDS = ("status", "refused", "reset", "timeout", "bad")
MODES = ("retry", "keepalive")


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float  # monotonic time the request was sent
    kind: str
    request_id: str
    status: int = 0
    pid: int = 0  # the worker that answered (the app answers with its pid)
    retried_id: str = ""  # set on a retry: the id of the first attempt
    fresh: bool = True  # sent on a new connection
    detail: str = ""
    latency: float = 0.0


class _Closed(Exception):
    """The connection ended; `got_bytes` says whether any of the answer had arrived."""

    def __init__(self, kind: str, got_bytes: bool, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.got_bytes, self.detail = kind, got_bytes, detail


@dataclass
class LoadReport:
    outcomes: list[Outcome]
    started: float
    stopped: float
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.counts = Counter(o.kind for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in FAILURE_KINDS]

    @property
    def retries(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.retried_id]

    @property
    def ok(self) -> int:
        return self.counts["ok"]

    @property
    def seconds(self) -> float:
        return self.stopped - self.started

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def worst_second(self) -> int:
        """The fewest answers in any whole second of the run (a stall shows here)."""
        per_second = Counter(int(o.at - self.started) for o in self.outcomes if o.kind == "ok")
        whole = int(self.seconds)
        return min((per_second.get(s, 0) for s in range(whole)), default=self.ok)

    def max_latency(self) -> float:
        return max((o.latency for o in self.outcomes if o.kind == "ok"), default=0.0)

    def pids(self) -> set[int]:
        return {o.pid for o in self.outcomes if o.pid}

    def lost_on_reused(self) -> list[Outcome]:
        """Failures of requests sent on a kept-alive (reused) connection."""
        return [o for o in self.failures if not o.fresh]

    def summary(self) -> dict[str, object]:
        return {
            "requests": len(self.outcomes),
            "ok": self.ok,
            "failed": len(self.failures),
            "failures_by_kind": dict(Counter(o.kind for o in self.failures)),
            "failed_on_reused_connections": len(self.lost_on_reused()),
            "keepalive_retries": len(self.retries),
            "seconds": round(self.seconds, 2),
            "throughput_rps": round(self.throughput, 1),
            "worst_second_rps": self.worst_second(),
            "max_latency_ms": round(self.max_latency() * 1000, 1),
            "answering_pids": len(self.pids()),
        }


class LoadGenerator:
    """`threads` closed-loop clients against `address` (a (host, port) pair or a unix path),
    in one of `MODES`."""

    def __init__(self, address: tuple[str, int] | str, threads: int = 4, path: str = "/",
                 timeout: float = 10.0, mode: str = "retry") -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.address = address
        self.path = path
        self.timeout = timeout
        self.mode = mode
        self._stop = threading.Event()
        self._results: list[list[Outcome]] = [[] for _ in range(threads)]
        self._ok = [0] * threads  # answers per thread, cheap to read while running
        self._threads = [
            threading.Thread(target=self._client, args=(index,), daemon=True,
                             name=f"load-{index}")
            for index in range(threads)
        ]
        self.started = 0.0
        self.stopped = 0.0

    # ---- running --------------------------------------------------------------------------

    def __enter__(self) -> LoadGenerator:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 15
        while self.count("ok") < 2 * len(self._threads):
            if time.monotonic() > deadline:
                raise TimeoutError(f"load generator got no answers: {self.snapshot()[-5:]}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        if not self._stop.is_set():
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=self.timeout + 5)
                if thread.is_alive():
                    raise AssertionError(f"{thread.name} did not finish")
            self.stopped = time.monotonic()
        return self.report()

    def report(self) -> LoadReport:
        return LoadReport(self.snapshot(), self.started, self.stopped or time.monotonic())

    def snapshot(self) -> list[Outcome]:
        return sorted((o for results in self._results for o in list(results)), key=lambda o: o.at)

    def count(self, kind: str) -> int:
        if kind == "ok":
            return sum(self._ok)
        return sum(1 for results in self._results for o in list(results) if o.kind == kind)

    # ---- one client -----------------------------------------------------------------------

    def _client(self, index: int) -> None:
        keep_alive = self.mode == "keepalive" or index % 2 == 0
        results = self._results[index]
        sock: socket.socket | None = None
        seq = 0
        while not self._stop.is_set():
            seq += 1
            request_id = f"{index}-{seq}-0"
            reused = sock is not None
            outcome, sock = self._attempt(sock, request_id, keep_alive)
            if outcome.kind == "retry":
                results.append(Outcome(outcome.at, "retried", request_id, fresh=False,
                                       detail=outcome.detail))
                retry_id = f"{index}-{seq}-1"
                outcome, sock = self._attempt(None, retry_id, keep_alive)
                if outcome.kind == "retry":  # cannot happen on a fresh connection; be safe
                    outcome = Outcome(outcome.at, "reset", retry_id, detail=outcome.detail)
                outcome = Outcome(outcome.at, outcome.kind, retry_id, outcome.status, outcome.pid,
                                  request_id, True, outcome.detail, outcome.latency)
            elif reused and outcome.fresh:
                outcome = Outcome(outcome.at, outcome.kind, outcome.request_id, outcome.status,
                                  outcome.pid, "", False, outcome.detail, outcome.latency)
            results.append(outcome)
            if outcome.kind == "ok":
                self._ok[index] += 1
        if sock is not None:
            sock.close()

    def _connect(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _attempt(self, sock: socket.socket | None, request_id: str,
                 keep_alive: bool) -> tuple[Outcome, socket.socket | None]:
        """One request; returns its outcome and the connection to reuse (or None)."""
        started = time.monotonic()
        fresh = sock is None
        if sock is None:
            try:
                sock = self._connect()
            except TimeoutError:
                return Outcome(started, "timeout", request_id, detail="connect"), None
            except OSError as exc:
                kind = "refused" if exc.errno in (errno.ECONNREFUSED, errno.EAGAIN,
                                                  errno.ENOENT) else "reset"
                return Outcome(started, kind, request_id, detail=f"connect: {exc}"), None
        connection = "keep-alive" if keep_alive else "close"
        request = (f"GET {self.path}?{request_id} HTTP/1.1\r\nHost: torture\r\n"
                   f"Connection: {connection}\r\n\r\n").encode()
        try:
            sock.sendall(request)
            status, pid, server_keeps = _read_response(sock)
        except _Closed as closed:
            sock.close()
            if self.mode == "retry" and not fresh and not closed.got_bytes and closed.kind == "reset":
                return Outcome(started, "retry", request_id, detail=closed.detail), None
            return Outcome(started, closed.kind, request_id, fresh=fresh,
                           detail=closed.detail), None
        except TimeoutError:
            sock.close()
            return Outcome(started, "timeout", request_id, fresh=fresh, detail="response"), None
        except ValueError as exc:  # a malformed Content-Length
            sock.close()
            return Outcome(started, "bad", request_id, fresh=fresh, detail=str(exc)), None
        except OSError as exc:  # a reset while sending
            sock.close()
            if self.mode == "retry" and not fresh:
                return Outcome(started, "retry", request_id, detail=f"send: {exc}"), None
            return Outcome(started, "reset", request_id, fresh=fresh, detail=f"send: {exc}"), None
        latency = time.monotonic() - started
        kind = "ok" if 200 <= status < 300 else "status"
        if not (keep_alive and server_keeps):
            sock.close()
            sock = None
        return Outcome(started, kind, request_id, status, pid, fresh=fresh,
                       latency=latency), sock


def _read_response(sock: socket.socket) -> tuple[int, int, bool]:
    """Read one whole response (Content-Length framed); return (status, pid in body, keeps)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock, bool(buffer))
        if len(buffer) > 65536:
            raise _Closed("bad", True, "head too long")
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _Closed("bad", True, f"status line {lines[0][:80]!r}")
    status = int(parts[1])
    length = 0
    keeps = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            keeps = b"close" not in value.lower()
    while len(body) < length:
        body += _recv(sock, True)
    body = body[:length]
    pid = int(body) if body.isdigit() else 0
    return status, pid, keeps


def _recv(sock: socket.socket, got_bytes: bool) -> bytes:
    try:
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _Closed("reset", got_bytes, f"recv: {exc}") from exc
    if not data:
        raise _Closed("reset", got_bytes, "EOF")
    return data
