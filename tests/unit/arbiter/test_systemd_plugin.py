"""The systemd plug-in's message sequences, captured on a real AF_UNIX datagram socket.

The plug-in gets read-only status snapshots and explicit events (no master, no processes), so
each lifecycle — start, reload, failed reload, upgrade from either side, stop — is a table.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from unitcorn.arbiter.lifecycle import MasterStatus
from unitcorn.arbiter.systemd_plugin import EXTENSION, SystemdLifecycle
from unitcorn.systemd.notify import Notifier

pytestmark = pytest.mark.timeout(10)

STATUS = MasterStatus(
    own_pid=100, generation=1, desired_workers=2, booted_workers=2, worker_pids=(101, 102),
    requests_served=0, is_ready=True, is_stopping=False, is_reloading=False, new_master_pid=0,
    exit_code=0, listeners=(), settings=None,
)
STARTING = replace(STATUS, is_ready=False, booted_workers=1)
LINE = "workers 2/2 booted, generation 1, 0 requests served, last reload never"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        yield sock, path


def received(sock: socket.socket) -> list[str]:
    """Every datagram sent so far (sending is synchronous: they are all queued already)."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def plugin(path: str, *, is_upgrade: bool = False, watchdog: float | None = None) -> SystemdLifecycle:
    return SystemdLifecycle(Notifier(path), watchdog_every=watchdog, is_upgrade=is_upgrade)


def test_a_start(receiver) -> None:
    sock, path = receiver
    systemd = plugin(path)
    systemd.status_changed(STARTING)  # a worker booted: the start progresses
    systemd.ready(STATUS)
    systemd.status_changed(STATUS)
    assert received(sock) == [
        f"EXTEND_TIMEOUT_USEC={int(EXTENSION * 1_000_000)}",
        "STATUS=workers 1/2 booted, generation 1, 0 requests served, last reload never",
        f"READY=1\nSTATUS={LINE}",
        f"STATUS={LINE}",
    ]


@pytest.mark.parametrize(("ok", "last"), [(True, "ok at "), (False, "FAILED at ")])
def test_a_reload_ends_ready_either_way(receiver, ok: bool, last: str) -> None:
    """After a failed reload the old generation serves: READY=1 all the same."""
    sock, path = receiver
    systemd = plugin(path)
    systemd.reload_started(STATUS)
    systemd.reload_finished(replace(STATUS, generation=2), ok, "" if ok else "configuration: bad\nmore")
    reloading, ready = received(sock)
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", reloading)
    assert ready.startswith("READY=1\nSTATUS=workers 2/2 booted, generation 2, 0 requests served, "
                            f"last reload {last}")
    assert ready.endswith("" if ok else ": configuration: bad")


def test_the_old_master_hands_over_then_says_nothing(receiver) -> None:
    sock, path = receiver
    systemd = plugin(path, watchdog=5.0)
    systemd.tick(STATUS, now=0.0 + 10**9)  # the first watchdog ping is due at once
    systemd.upgrade_started(STATUS, 555)
    systemd.upgrade_ready(STATUS, 555)
    systemd.upgrade_finished(STATUS, True, "new master pid=555 serves; old master retiring")
    systemd.stopping(replace(STATUS, is_stopping=True))
    systemd.tick(STATUS, now=2.0 * 10**9)
    systemd.finished(replace(STATUS, exit_code=0))
    messages = received(sock)
    assert messages[0] == "WATCHDOG=1"
    assert re.fullmatch(r"MAINPID=555(\nMAINPIDFDID=\d+)?\nREADY=1", messages[1])
    assert len(messages) == 2  # silent from then on: under NotifyAccess=main it would be rejected


def test_a_new_master_is_silent_until_it_becomes_main(receiver) -> None:
    sock, path = receiver
    systemd = plugin(path, is_upgrade=True)
    systemd.status_changed(STARTING)
    systemd.ready(STATUS)
    assert received(sock) == []
    systemd.became_main(STATUS)
    systemd.became_main(STATUS)  # the old master's exit after its "main": nothing more
    assert received(sock) == [f"STATUS={LINE}"]


def test_a_stop_asks_for_time_while_workers_remain(receiver) -> None:
    sock, path = receiver
    systemd = plugin(path)
    stopping = replace(STATUS, is_stopping=True)
    systemd.stopping(stopping)
    deadline = systemd.next_deadline()
    assert deadline is not None
    systemd.tick(stopping, now=deadline)
    systemd.tick(replace(stopping, worker_pids=()), now=deadline + EXTENSION)
    systemd.finished(replace(stopping, worker_pids=(), exit_code=4))
    assert received(sock) == [
        "STOPPING=1\nSTATUS=stopping",
        f"EXTEND_TIMEOUT_USEC={int(EXTENSION * 1_000_000)}",
        "EXIT_STATUS=4\nSTATUS=halted: the app failed to load (exit status 4)",
    ]


def test_the_new_masters_environment(receiver) -> None:
    _, path = receiver
    assert plugin(path, watchdog=5.0).new_master_environment(777) == {
        "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "777",
    }
    assert plugin(path).completes_upgrades() is True
    assert SystemdLifecycle(Notifier(None), None, is_upgrade=False).completes_upgrades() is False
