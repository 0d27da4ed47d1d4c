"""`-k uvicorn.workers.UvicornWorker` under a real systemd, 252 and 257 (issue 13's "done when").

A FastAPI app with WebSockets goes through `systemctl start`, `systemctl reload`, a USR2 upgrade
and `systemctl stop` while HTTP load runs on kept-alive connections (a client that never
retries) and WebSockets are held open. Asserted: no HTTP request fails; a WebSocket on a
retiring worker keeps echoing until the graceful timeout nears, then gets close 1012 ("service
restart") and reconnects to the new generation; and what systemd saw (MainPID, states, jobs,
the journal), down to no process left after the stop.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from systemd_container import REPO_MOUNT, SHARED_MOUNT, Container
from test_systemd_contract import (
    config,
    index_of,
    is_alive,
    job_done,
    messages,
    service,
    show,
    status,
)

pytestmark = pytest.mark.timeout(180)

# A unit and a port for each event loop (the trees have Debian's python3-uvloop).
UNITS = {"asyncio": ("uc-asgi", 9120), "uvloop": ("uc-asgi-uvloop", 9121)}
GRACEFUL_TIMEOUT = 5  # a retiring worker closes its WebSockets 1 s before this ends
APPS = f"{REPO_MOUNT}/tests/system/apps"


def unit_exec(name: str) -> str:
    """The command line of a gunicorn deployment of a FastAPI app, unchanged but the program."""
    return f"""\
        Environment=PYTHONPATH={REPO_MOUNT}:{APPS}
        ExecStart=
        ExecStart=/usr/bin/python3 -m unitcorn -k uvicorn.workers.UvicornWorker \\
            -c /etc/unitcorn/{name}.conf.py fastapi_ws:app
    """


class AsgiLoad:
    """apps/asgi_load.py running in the container; its events are read as they happen."""

    def __init__(self, ct: Container, name: str, port: int) -> None:
        self.ct = ct
        self.port = port
        self.stop_file = f"{SHARED_MOUNT}/{name}.stop"
        self.events_file = f"{SHARED_MOUNT}/{name}.events"
        for path in (self.stop_file, self.events_file):
            ct.host_path(path).unlink(missing_ok=True)
        self.result: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            done = self.ct.run("python3", f"{APPS}/asgi_load.py", str(self.port), self.events_file,
                               self.stop_file, timeout=170)
            self.result = json.loads(done.stdout)
        except BaseException as exc:  # surfaced by events() and stop()
            self._error = exc

    def events(self, kind: str) -> list[dict[str, Any]]:
        if self._error:
            raise self._error
        path = self.ct.host_path(self.events_file)
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines if line.strip()]
        failures = [event for event in found if event["event"] == "failure"]
        assert not failures, failures
        return [event for event in found if event["event"] == kind]

    def wait_for(self, kind: str, count: int, what: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The first `count` events of `kind`, once there are that many."""
        return self.ct.wait_for(lambda: self.events(kind)[:count] if len(self.events(kind)) >= count
                                else None, timeout, what)

    def open_on(self, workers: set[str]) -> dict[int, str]:
        """Which worker each WebSocket is on now, if all are on `workers` (else empty)."""
        latest = {event["ws"]: str(event["pid"]) for event in self.events("open")}
        return latest if latest and set(latest.values()) <= workers else {}

    def stop(self) -> dict[str, Any]:
        self.ct.host_path(self.stop_file).touch()
        self._thread.join(timeout=60)
        if self._error:
            raise self._error
        assert self.result, "the load client reported nothing"
        return self.result


@contextmanager
def asgi_load(ct: Container, name: str, port: int) -> Iterator[AsgiLoad]:
    client = AsgiLoad(ct, name, port)
    try:
        client.wait_for("http-started", 1, "the first HTTP answers")
        client.wait_for("open", 4, "four WebSockets open")
        yield client
    finally:
        if not client.result:
            client.stop()


def workers(ct: Container, name: str) -> set[str]:
    """The current master's workers (during a reload, the retiring ones too)."""
    return set(status(ct, name)["worker_pids"].split())


def assert_closed_for_restart(ct: Container, name: str, closes: list[dict[str, Any]],
                              retiring: set[str]) -> None:
    """Each WebSocket of the retiring workers got 1012, and only as the graceful timeout neared."""
    assert {event["code"] for event in closes} == {1012}, closes
    assert {str(event["pid"]) for event in closes} <= retiring, (closes, retiring)
    entries = ct.journal(name)
    for event in closes:
        # The client and journald read the same CLOCK_MONOTONIC (the container has no time
        # namespace): the socket kept echoing from the worker's retirement until 1 s before its
        # graceful timeout ended.
        retired = entries[index_of(entries, f"worker retiring pid={event['pid']} ")]
        held = event["at"] - int(retired["__MONOTONIC_TIMESTAMP"]) / 1e6
        assert GRACEFUL_TIMEOUT - 1.3 < held < GRACEFUL_TIMEOUT, (event, held)


@pytest.mark.parametrize("loop", sorted(UNITS))
def test_fastapi_with_websockets_through_start_reload_upgrade_and_stop(container: Container,
                                                                      loop: str) -> None:
    ct = container
    name, port = UNITS[loop]
    conf = config(port, f"graceful_timeout = {GRACEFUL_TIMEOUT}\nproc_name = {name!r}\n"
                        f"asgi_loop = {loop!r}\n")
    with service(ct, name, conf, extra=unit_exec(name)):
        first = show(ct, name)
        assert (first["ActiveState"], first["SubState"]) == ("active", "running"), first
        generation1 = workers(ct, name)
        with asgi_load(ct, name, port) as load:
            assert set(load.open_on(generation1).values()) <= generation1

            # systemctl reload: a new generation, the same main process.
            reload = ct.systemctl("reload", name, check=False, timeout=60)
            assert reload.returncode == 0, reload.stderr
            assert status(ct, name)["generation"] == "2"
            assert show(ct, name) == first
            generation2 = workers(ct, name) - generation1  # the old ones may still be retiring
            assert len(generation2) == 2
            closes = load.wait_for("close", 4, "1012 for the first generation's WebSockets")
            assert_closed_for_restart(ct, name, closes, generation1)
            ct.wait_for(lambda: load.open_on(generation2), 20, "WebSockets on generation 2")

            # A USR2 upgrade: a new master takes over as MainPID.
            ct.systemctl("kill", "-s", "USR2", "--kill-whom=main", name)
            ct.wait_for(lambda: show(ct, name)["MainPID"] != first["MainPID"], 30, "MainPID to move")
            ct.wait_for(lambda: not is_alive(ct, first["MainPID"]), 30, "the old master to exit")
            upgraded = show(ct, name)
            assert (upgraded["ActiveState"], upgraded["SubState"], upgraded["NRestarts"]) == \
                ("active", "running", "0"), upgraded
            generation3 = workers(ct, name)
            assert generation3.isdisjoint(generation2) and len(generation3) == 2
            closes = load.wait_for("close", 8, "1012 for the second generation's WebSockets")[4:]
            assert_closed_for_restart(ct, name, closes, generation2)
            ct.wait_for(lambda: load.open_on(generation3), 20, "WebSockets on the new master's")
            result = load.stop()

        http, ws = result["http"], result["websockets"]
        assert http["failures"] == [], http["failures"][:5]
        # Connections were kept alive: a new one only after a retiring worker's Connection: close.
        assert http["ok"] > 10 * http["connections"], http
        # Each generation served HTTP: a retiring worker's close moved the connections on.
        for generation in (generation1, generation2, generation3):
            assert generation & set(http["pids"]), (http["pids"], generation)
        assert ws["failures"] == [] and ws["opens"] == 12 and ws["echoes"] > 0, ws

        entries = ct.journal(name)
        text = "\n".join(messages(entries))
        assert entries[index_of(entries, "Using worker: asgi")]["_PID"] == first["MainPID"]
        for pid in generation1 | generation2 | generation3:
            assert index_of(entries, f"asgi worker pid={pid} loop={loop}") >= 0
        reloaded = index_of(entries, f"Reloaded {name}.service", **job_done(f"{name}.service", "reload"))
        assert index_of(entries, "reload complete generation=2") < reloaded
        assert "reception only permitted for main PID" not in text

        # systemctl stop: a clean exit, and nothing of the service left running.
        processes = {upgraded["MainPID"], *generation3}
        ct.systemctl("stop", name, timeout=60)
        stopped = show(ct, name)
        assert (stopped["ActiveState"], stopped["Result"], stopped["ExecMainStatus"], stopped["MainPID"]) \
            == ("inactive", "success", "0", "0"), stopped
        assert not [pid for pid in processes if is_alive(ct, pid)]
        assert ct.run("pgrep", "-f", name, check=False).stdout == ""
        entries = ct.journal(name)
        assert index_of(entries, "Shutting down: Master", _PID=upgraded["MainPID"]) < \
            index_of(entries, f"Stopped {name}.service", _PID="1")
        assert "SIGKILL" not in "\n".join(messages(entries))
