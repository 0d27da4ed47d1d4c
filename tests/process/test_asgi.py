"""The asgi worker on a real server: HTTP/1.1, lifespan, the closing rules, a Starlette app.

Every test runs on both event loops: asyncio's and uvloop's (skipped when uvloop is not
installed; the test extra installs it).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import requests
from harness import get_through_small_window, is_alive, wait_for
from http_wire import Wire
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.timeout(60)

ASGI = ("-k", "asgi")


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which loop the servers of this test run on (through the environment, as an operator's
    UNITCORN_CMD_ARGS would: every start_server() of the test inherits it)."""
    if request.param == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (pip install 'unitcorn[uvloop]')")
    monkeypatch.setenv("UNITCORN_CMD_ARGS", f"--asgi-loop {request.param}")
    return request.param


def test_the_worker_runs_the_loop_asked_for(start_server, event_loop_kind: str) -> None:
    server = start_server("asgiapps:echo", *ASGI)
    (worker,) = server.workers()
    server.wait_for_log(rf"asgi worker pid={worker} loop={event_loop_kind}\b")


def test_keep_alive_pipelining_chunked_and_head(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI)
    with Wire(server.port) as wire:
        first = wire.request("POST", "/echo", b"hello")
        assert (first.status, first.body, first.closes) == (200, b"hello", False)
        wire.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        streamed = wire.read_response()
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert streamed.body == b"one,two,three"
        assert wire.read_response().body == b"abcde"
        head = wire.request("HEAD", "/echo")
        assert head.status == 200 and head.body == b""


def test_expect_100_continue(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI)
    with Wire(server.port) as wire:
        wire.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert wire.read_response().status == 100
        wire.send(b"body")
        assert wire.read_response().body == b"body"


def test_bad_request_is_refused_and_closed(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI)
    with Wire(server.port) as wire:
        wire.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        answer = wire.read_response()
        assert (answer.status, answer.closes) == (400, True)
        assert wire.is_closed_by_server()


def test_lifespan_state_reaches_requests_and_shutdown_runs_on_term(start_server, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown"
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1",
                          env={"ASGI_SHUTDOWN_MARKER": str(marker)})
    (worker,) = server.workers()
    assert server.get("/state") == (200, json.dumps({"started_by": worker}))
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert marker.read_text() == f"shutdown {worker}\n"


def test_a_failed_lifespan_startup_is_a_boot_failure(start_server) -> None:
    server = start_server("asgiapps:failing_startup", *ASGI, ready=False)
    assert server.wait_exit() == 3
    assert "lifespan startup failed: no database" in server.log()


def test_an_app_without_lifespan_is_served(start_server) -> None:
    server = start_server("asgiapps:no_lifespan", *ASGI)
    assert server.get("/") == (200, "plain")


def test_lifespan_on_makes_an_app_without_it_a_boot_failure(start_server) -> None:
    server = start_server("asgiapps:no_lifespan", *ASGI, "--asgi-lifespan", "on", ready=False)
    assert server.wait_exit() == 3
    assert "the app does not support the lifespan protocol (asgi_lifespan = on)" in server.log()


def test_lifespan_off_never_runs_it(start_server, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown"
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--asgi-lifespan", "off",
                          env={"ASGI_SHUTDOWN_MARKER": str(marker)})
    assert server.get("/state") == (200, "{}")  # startup never set it
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not marker.exists()


def test_a_request_whose_client_left_is_cancelled_after_the_grace(start_server, tmp_path: Path) -> None:
    server = start_server("asgiapps:ignores_disconnect", *ASGI, "--workers", "1",
                          "--asgi-disconnect-grace-period", "2", env={"ASGI_MARKER_DIR": str(tmp_path)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: (tmp_path / "reading").exists(), 10, "the app to read the request")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    wait_for(lambda: (tmp_path / "told").exists(), 10, "http.disconnect")
    assert not (tmp_path / "cancelled").exists()  # told, and given its grace first
    wait_for(lambda: (tmp_path / "cancelled").exists(), 10, "the task to be cancelled")


@pytest.mark.parametrize("name", ["uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker",
                                  "uvicorn.workers.UvicornH11Worker", "gunicorn.workers.gasgi.ASGIWorker"])
def test_gunicorn_configs_naming_an_asgi_worker_get_this_one(start_server, name: str) -> None:
    server = start_server("asgiapps:echo", "-k", name)
    assert "Using worker: asgi" in server.log()
    assert server.get("/echo")[0] == 200


def test_a_retiring_worker_answers_the_next_kept_alive_request_with_close(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--keep-alive", "10")
    with Wire(server.port) as wire:
        old = int(wire.request().body)
        server.signal(signal.SIGHUP)
        server.wait_for_log(rf"worker retiring pid={old}\b")
        answer = wire.request("POST", "/echo", b"late")
        assert (answer.status, answer.body, answer.closes) == (200, b"late", True)
        assert wire.is_closed_by_server()
    server.wait_for_workers(lambda pids: old not in pids and len(pids) == 1, "old worker gone")


def test_a_trickling_upload_gets_408_and_others_are_served(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--body-timeout", "2")
    stop = threading.Event()
    with Wire(server.port, timeout=20) as slow:
        slow.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")

        def trickle() -> None:
            try:
                while not stop.wait(0.2):
                    slow.send(b"x")
            except OSError:
                pass

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            with Wire(server.port, timeout=5) as other:  # the loop is never held by the slow one
                assert other.request("POST", "/echo", b"quick").body == b"quick"
            answer = slow.read_response()
        finally:
            stop.set()
            thread.join(timeout=5)
    assert (answer.status, answer.closes) == (408, True)


def test_a_refused_upload_still_receives_its_answer(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1")
    body = b"u" * (10 << 20)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/refuse", body)
        assert connection.getresponse().status == 413
    finally:
        connection.close()


# Hooks that note which ran, in which worker, for the signal tests.
NOTE_HOOKS = """
def _note(what, worker):
    with open({record!r}, "a") as out:
        out.write(f"{{what}} {{worker.pid}}\\n")
def worker_int(worker):
    _note("worker_int", worker)
def worker_abort(worker):
    _note("worker_abort", worker)
"""


def _noted(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_a_client_that_does_not_read_is_dropped_at_the_send_timeout(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--send-timeout", "1")
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        stalled.settimeout(30)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /big?%d HTTP/1.1\r\nHost: t\r\n\r\n" % (256 << 20))
        server.wait_for_log("response send timed out", timeout=30)
        assert server.get("/echo")[0] == 200  # the worker went on serving meanwhile
        # Dropped, not left to asyncio to flush to a client that reads nothing: the retiring
        # worker holds no connection.
        server.signal(signal.SIGTERM)
        server.wait_for_log(r"worker retiring pid=\d+ connections=0", timeout=10)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while data := stalled.recv(1 << 20):
                received += len(data)
    assert received < 256 << 20


def test_the_apps_own_time_is_not_the_clients_send_time(start_server) -> None:
    """The app thinks longer than --send-timeout before each block; a client reading at full
    speed through a small window gets every byte."""
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--send-timeout", "1")
    block = 1 << 20
    head, body = get_through_small_window(server.port, f"/pauses?1.5&{block}&2")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == 2 * block


def test_a_blocked_event_loop_is_a_late_heartbeat(start_server, tmp_path: Path) -> None:
    """ABRT interrupts the app that blocks the loop: worker_abort runs, exit 1, a replacement."""
    record = tmp_path / "hooks"
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--timeout", "2",
                          config=NOTE_HOOKS.format(record=str(record)))
    (worker,) = server.workers()
    with pytest.raises((requests.ConnectionError, requests.ReadTimeout)):
        requests.get(f"http://127.0.0.1:{server.port}/block?30", timeout=15)
    server.wait_for_log(rf"WORKER TIMEOUT.*{worker}|{worker}.*WORKER TIMEOUT")
    server.wait_for_log(rf"worker exited pid={worker} code=1\b")
    assert _noted(record) == [f"worker_abort {worker}"]
    server.wait_for_workers(lambda pids: len(pids) == 1 and worker not in pids, "a replacement")


def test_signals_to_a_worker(start_server, tmp_path: Path) -> None:
    """HUP is ignored; USR1 reopens the log; TERM retires (lifespan shutdown, exit 0); QUIT and
    INT exit now, idle or with the app blocking the loop (worker_int); ABRT exits 1
    (worker_abort). Each worker the master replaces boots on the same loop."""
    record, marker, access = tmp_path / "hooks", tmp_path / "shutdown", tmp_path / "access.log"
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--access-logfile", str(access),
                          config=NOTE_HOOKS.format(record=str(record)),
                          env={"ASGI_SHUTDOWN_MARKER": str(marker)})

    def replaced(old: int) -> int:
        (new,) = server.wait_for_workers(lambda pids: len(pids) == 1 and old not in pids,
                                         f"a replacement for {old}")
        server.wait_for_log(rf"Booting worker with pid: {new}\b")  # booted: its handlers are set
        return new

    def exits(worker: int, signum: int, code: int) -> int:
        server.signal(signum, worker)
        server.wait_for_log(rf"worker exited pid={worker} code={code}\b")
        return replaced(worker)

    (worker,) = server.workers()
    server.signal(signal.SIGHUP, worker)
    access.rename(tmp_path / "access.log.1")
    server.signal(signal.SIGUSR1, worker)
    wait_for(access.exists, 10, "USR1 to reopen the access log")
    assert server.get("/")[1] == str(worker) and is_alive(worker)

    terminated = worker
    worker = exits(worker, signal.SIGTERM, 0)
    assert marker.read_text() == f"shutdown {terminated}\n"
    quit_idle = worker
    worker = exits(worker, signal.SIGQUIT, 0)

    blocked = threading.Thread(target=_ignore_errors, args=(requests.get, (
        f"http://127.0.0.1:{server.port}/block?10",), {"timeout": 20}))
    blocked.start()
    wait_for(lambda: "nanosleep" in Path(f"/proc/{worker}/wchan").read_text(), 10,
             "the app to block the loop")
    interrupted = worker
    worker = exits(worker, signal.SIGINT, 0)
    blocked.join(timeout=20)

    aborted = worker
    exits(worker, signal.SIGABRT, 1)
    assert _noted(record) == [f"worker_int {quit_idle}", f"worker_int {interrupted}",
                              f"worker_abort {aborted}"]


def test_terms_until_it_is_gone_still_end_in_a_clean_exit(start_server) -> None:
    """TERM after TERM (an impatient operator's `kill` loop) until the worker is gone: it
    retires once and exits 0, never "killed by SIGTERM"."""
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1")
    (worker,) = server.workers()
    while is_alive(worker):
        try:
            os.kill(worker, signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.001)
    server.wait_for_log(rf"worker exited pid={worker} code=0 reason=normal\b")


def _ignore_errors(function, args=(), kwargs=None) -> None:
    try:
        function(*args, **(kwargs or {}))
    except Exception:
        pass


def test_starlette_app_with_httpx(start_server) -> None:
    server = start_server("asgiapps:starlette", *ASGI)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        answer = client.post("/items", json={"name": "widget"})
        assert answer.json() == {"received": {"name": "widget"}, "client": "127.0.0.1"}
        assert client.get("/numbers").text == "0\n1\n2\n3\n4\n"
        assert client.get("/background").json() == {"done": [{"name": "widget"}]}


# ---- WebSockets, driven by the `websockets` client library -------------------------------------


def _ws_url(server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def test_websocket_echo_with_subprotocol_and_compression(start_server) -> None:
    server = start_server("asgiapps:websocket_echo", *ASGI)
    with ws_connect(_ws_url(server), subprotocols=["chat"], open_timeout=10) as ws:
        assert ws.subprotocol == "chat"
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01" * 50_000)
        assert ws.recv(timeout=10) == b"\x00\x01" * 50_000
        ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4000


def test_a_websocket_the_app_refuses_gets_403(start_server) -> None:
    server = start_server("asgiapps:websocket_echo", *ASGI)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(_ws_url(server, "/refuse"), open_timeout=10)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("limit", [None, 1000])
def test_a_message_over_the_limit_closes_with_1009(start_server, limit: int | None) -> None:
    args = () if limit is None else ("--websocket-max-message-size", str(limit))
    server = start_server("asgiapps:websocket_echo", *ASGI, *args)
    limit = limit or 16 << 20  # gunicorn's default
    with ws_connect(_ws_url(server), open_timeout=10, max_size=None) as ws:
        ws.send(b"y" * limit)
        assert ws.recv(timeout=20) == b"y" * limit
        ws.send(b"x" * limit + b"x")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
    assert closed.value.rcvd.code == 1009


def test_a_retiring_worker_closes_websockets_with_1012_and_new_ones_reach_the_new_generation(
    start_server, tmp_path: Path
) -> None:
    marker = tmp_path / "disconnects"
    server = start_server("asgiapps:websocket_echo", *ASGI, "--workers", "1", "--graceful-timeout", "3",
                          env={"WS_DISCONNECT_MARKER": str(marker)})
    with ws_connect(_ws_url(server), open_timeout=10) as ws:
        ws.send("pid")
        old = int(ws.recv(timeout=10))
        server.signal(signal.SIGHUP)
        server.wait_for_log(rf"worker retiring pid={old}\b")
        ws.send("still here")  # the old worker keeps it open until the graceful timeout nears
        assert ws.recv(timeout=10) == "still here"
        with ws_connect(_ws_url(server), open_timeout=10) as fresh:
            fresh.send("pid")
            assert int(fresh.recv(timeout=10)) != old
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1012
    assert "1012" in marker.read_text().splitlines()  # the app saw why (the fresh one: 1000)
    server.wait_for_workers(lambda pids: old not in pids and len(pids) == 1, "old worker gone")


def test_scheme_from_a_trusted_front_end_and_client_from_its_proxy_header(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--proxy-protocol", "v1",
                          "--proxy-allow-from", "127.0.0.1")
    with Wire(server.port) as wire:
        wire.send(b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n")
        answer = wire.request("GET", "/scope", headers="X-Forwarded-Proto: https\r\n")
    assert json.loads(answer.body) == {"scheme": "https", "client": ["203.0.113.7", 51000]}


def test_a_django_asgi_project(start_server) -> None:
    pytest.importorskip("django")
    server = start_server("djangoapps:application", *ASGI)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        answer = client.post("/hello/", content=b"form")
        assert answer.status_code == 200
        body = answer.json()
        assert body.pop("pid") in server.workers()
        assert body == {"method": "POST", "path": "/hello/", "scheme": "http", "body": "form"}
        assert client.get("/count/").text == "0\n1\n2\n"
        assert client.get("/missing/").status_code == 404


def test_worker_connections_bounds_what_one_worker_holds(start_server) -> None:
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "--worker-connections", "2",
                          "--keep-alive", "30")
    first, second = Wire(server.port), Wire(server.port)
    try:
        assert first.request().status == 200 and second.request().status == 200
        with Wire(server.port, timeout=1) as third:  # queued in the backlog, not accepted
            third.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            with pytest.raises(TimeoutError):
                third.read_response()
            first.close()  # room again: the worker accepts the queued client
            third.sock.settimeout(10)
            assert third.read_response().status == 200
    finally:
        first.close()
        second.close()


def test_request_hooks_see_their_own_request_under_concurrency(start_server, tmp_path: Path) -> None:
    """gunicorn-style pre_request/post_request: the object pre_request marked is the one
    post_request gets, for each of many requests in flight on one worker at once."""
    record = tmp_path / "hooks.log"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "def pre_request(worker, req):\n"
        "    req.mark = req.uri\n"
        "def post_request(worker, req, environ, resp):\n"
        f"    with open({str(record)!r}, 'a') as out:\n"
        "        out.write(('same' if req.mark == req.uri else 'mixed') + '\\n')\n"
    )
    server = start_server("asgiapps:echo", *ASGI, "--workers", "1", "-c", str(config))
    with ThreadPoolExecutor(10) as pool:
        urls = [f"http://127.0.0.1:{server.port}/nap?0.3&{n}" for n in range(10)]
        assert {r.text for r in pool.map(lambda u: requests.get(u, timeout=15), urls)} == {"rested"}
    wait_for(lambda: len(record.read_text().split()) == 10 if record.exists() else False, 10,
             "ten post_request lines")
    assert record.read_text().split() == ["same"] * 10
