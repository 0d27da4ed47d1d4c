"""EXIT_STATUS=: the master says which halting status it is about to exit with (3, 4, 78).

The plug-in lives in unitcorn/arbiter/systemd_plugin.py; its message is captured here on a real
AF_UNIX datagram socket, beside the notifier's own tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from unitcorn.arbiter.systemd_plugin import HALT_REASONS, SystemdLifecycle
from unitcorn.systemd.notify import Notifier

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.2)
        yield sock, path


def received(sock: socket.socket) -> list[bytes]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096))
        except TimeoutError:
            return messages


@pytest.mark.parametrize("code", [3, 4, 78])
def test_a_halting_exit_is_announced_with_its_status(receiver, code: int):
    sock, path = receiver
    plugin = SystemdLifecycle(Notifier(path), watchdog_every=None, is_upgrade=False)
    plugin.finished(SimpleNamespace(exit_code=code))
    expected = f"EXIT_STATUS={code}\nSTATUS={HALT_REASONS[code]}".encode()
    assert received(sock) == [expected]


@pytest.mark.parametrize("code", [0, 1])
def test_other_exits_say_nothing(receiver, code: int):
    sock, path = receiver
    SystemdLifecycle(Notifier(path), None, is_upgrade=False).finished(SimpleNamespace(exit_code=code))
    assert received(sock) == []


def test_a_new_master_not_yet_main_stays_silent(receiver):
    # Under NotifyAccess=main systemd would reject (and log) anything it sent.
    sock, path = receiver
    SystemdLifecycle(Notifier(path), None, is_upgrade=True).exiting(78)
    assert received(sock) == []


def test_the_reasons_name_their_status():
    assert sorted(HALT_REASONS) == [3, 4, 78]
    assert all(f"exit status {code})" in text for code, text in HALT_REASONS.items())
