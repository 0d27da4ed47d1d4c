"""64 keep-alive clients against 2 workers: nobody starves, every request is answered."""

from __future__ import annotations

import threading

import pytest
from http_wire import Wire

pytestmark = pytest.mark.timeout(90)

CLIENTS = 64
REQUESTS_EACH = 5


class Client:
    """Keeps its connection alive as long as the server allows, like a browser or urllib3.

    A server may close an idle kept-alive connection at any moment (a keep-alive timeout; a sync
    worker handing itself to a queued client).  If that close wins the race with our next
    request, we see EOF or a reset before any byte of a response: RFC 9112 §9.3.1 lets a client
    retry an idempotent request then, and that is the only retry allowed here.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.wire: Wire | None = None
        self.retries = 0

    def get(self) -> int:
        for _ in range(3):
            reused = self.wire is not None
            if self.wire is None:
                self.wire = Wire(self.port, timeout=20)
            try:
                answer = self.wire.request()
            except (EOFError, ConnectionResetError, BrokenPipeError):
                self.wire.close()
                self.wire = None
                if not reused:
                    raise  # a fresh connection must be answered
                self.retries += 1
                continue
            if answer.closes:
                self.wire.close()
                self.wire = None
            return answer.status
        raise AssertionError("a reused connection was closed three times in a row")


@pytest.mark.parametrize("worker_args", [("-k", "sync"), ("-k", "gthread", "--threads", "4"),
                                         ("-k", "gthread")], ids=["sync", "gthread-4", "gthread-1"])
def test_64_keep_alive_clients_against_2_workers(start_server, worker_args) -> None:
    server = start_server("httpapps:echo", "--workers", "2", *worker_args)
    statuses: list[int] = []
    failures: list[str] = []
    retries: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def run() -> None:
        client = Client(server.port)
        try:
            start.wait(timeout=30)
            got = [client.get() for _ in range(REQUESTS_EACH)]
        except Exception as exc:  # every failure counts: timeouts, resets, anything
            with lock:
                failures.append(repr(exc))
            return
        finally:
            if client.wire is not None:
                client.wire.close()
        with lock:
            statuses.extend(got)
            retries.append(client.retries)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert statuses == [200] * (CLIENTS * REQUESTS_EACH)
    # Retries are the rare lost race, not the way the server works.
    assert sum(retries) <= CLIENTS * REQUESTS_EACH // 10
