"""Load for the asgi system test, run inside the container until a stop file appears.

    python3 asgi_load.py PORT EVENTS_FILE STOP_FILE

HTTP: two threads, each on one connection that it reuses for as long as the server keeps it
open (a new one only after a `Connection: close` answer). A request that fails is counted and
never retried, so a request lost to a reload or an upgrade shows. WebSockets: SOCKETS
connections, each echoing a numbered message every PACE seconds. When the server closes one,
the close (its code, the worker that held it) is recorded and the socket reconnects, as a
client told 1012 "service restart" should — landing on the new generation.

What happens is appended to EVENTS_FILE, one JSON object a line, as it happens (so the test can
wait for it): {"event": "http-started"} after the first answers, {"event": "open", "ws": N,
"pid": WORKER} and {"event": "close", "ws": N, "pid": WORKER, "code": CODE, "at": MONOTONIC}.
At the end a JSON summary goes to stdout. Only the standard library and `websockets` (10.4 on
bookworm, 15 on trixie: the API used here is common to both).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import sys
import threading
import time
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

HTTP_THREADS = 2
SOCKETS = 4
PACE = 0.05  # seconds between a WebSocket's echoes
ANSWERS_BEFORE_STARTED = 10


class Recorder:
    def __init__(self, events_path: str) -> None:
        self.lock = threading.Lock()
        self.events = open(events_path, "a")  # noqa: SIM115 (open for the whole run)
        self.http: dict[str, Any] = {"ok": 0, "connections": 0, "failures": [], "pids": []}
        self.websockets: dict[str, Any] = {"echoes": 0, "opens": 0, "failures": []}

    def event(self, **fields: Any) -> None:
        with self.lock:
            self.events.write(json.dumps(fields) + "\n")
            self.events.flush()

    def http_answer(self, fresh: bool, status: int, body: str) -> None:
        with self.lock:
            self.http["connections"] += fresh
            if status != 200:
                self.http["failures"].append(f"status {status}")
                return
            self.http["ok"] += 1
            if body not in self.http["pids"]:
                self.http["pids"].append(body)
            started = self.http["ok"] == ANSWERS_BEFORE_STARTED
        if started:
            self.event(event="http-started")

    def http_failure(self, exc: BaseException) -> None:
        with self.lock:
            self.http["failures"].append(repr(exc))


def http_load(port: int, stop: str, recorder: Recorder) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    while not os.path.exists(stop):
        fresh = connection.sock is None  # http.client closed it after a Connection: close
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read().decode()
        except Exception as exc:  # lost: counted, not retried
            connection.close()
            recorder.http_failure(exc)
            continue
        recorder.http_answer(fresh, response.status, body)
    connection.close()


async def hold_websocket(index: int, uri: str, stop: str, recorder: Recorder) -> None:
    counter = 0
    while not os.path.exists(stop):
        pid = None
        try:
            async with websockets.connect(uri, open_timeout=10, close_timeout=5) as ws:
                await ws.send("pid")
                pid = int(await asyncio.wait_for(ws.recv(), 10))
                recorder.websockets["opens"] += 1
                recorder.event(event="open", ws=index, pid=pid)
                while not os.path.exists(stop):
                    counter += 1
                    await ws.send(str(counter))
                    echoed = await asyncio.wait_for(ws.recv(), 10)
                    if echoed != str(counter):
                        recorder.websockets["failures"].append(f"sent {counter}, got {echoed!r}")
                    recorder.websockets["echoes"] += 1
                    await asyncio.sleep(PACE)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            recorder.event(event="close", ws=index, pid=pid, code=code, at=time.monotonic())
        except Exception as exc:
            recorder.websockets["failures"].append(f"ws {index}: {exc!r}")
            recorder.event(event="failure", ws=index, pid=pid, error=repr(exc))
            return  # a socket that could not connect or echo is not tried again


async def hold_websockets(port: int, stop: str, recorder: Recorder) -> None:
    uri = f"ws://127.0.0.1:{port}/ws"
    await asyncio.gather(*(hold_websocket(n, uri, stop, recorder) for n in range(SOCKETS)))


def main(port: int, events_path: str, stop: str) -> None:
    recorder = Recorder(events_path)
    threads = [threading.Thread(target=http_load, args=(port, stop, recorder))
               for _ in range(HTTP_THREADS)]
    for thread in threads:
        thread.start()
    asyncio.run(hold_websockets(port, stop, recorder))
    for thread in threads:
        thread.join()
    print(json.dumps({"http": recorder.http, "websockets": recorder.websockets}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
