"""sd_notify messages, captured on a real AF_UNIX datagram socket as systemd would receive them."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from unitcorn.systemd import notify
from unitcorn.systemd.notify import Notifier, pidfd_id, watchdog_interval

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's /run/systemd/notify."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


@pytest.fixture
def abstract_receiver() -> Iterator[tuple[socket.socket, str]]:
    name = f"unitcorn-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        yield sock, "@" + name


def test_from_environ_takes_notify_socket_out_of_the_environment(receiver):
    _, path = receiver
    environ = {"NOTIFY_SOCKET": path, "HOME": "/root"}
    notifier = Notifier.from_environ(environ)
    assert notifier.enabled
    assert notifier.socket_path == path
    assert environ == {"HOME": "/root"}


def test_from_environ_can_leave_the_environment_alone(receiver):
    _, path = receiver
    environ = {"NOTIFY_SOCKET": path}
    assert Notifier.from_environ(environ, unset=False).enabled
    assert environ == {"NOTIFY_SOCKET": path}


def test_from_environ_defaults_to_the_process_environment(monkeypatch, receiver):
    _, path = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier.from_environ()
    assert notifier.socket_path == path
    assert "NOTIFY_SOCKET" not in os.environ


Message = Callable[[Notifier], bool]

EXACT_MESSAGES: list[tuple[str, Message, bytes]] = [
    ("ready", lambda n: n.ready(), b"READY=1"),
    ("ready+status", lambda n: n.ready("workers 2/2"), b"READY=1\nSTATUS=workers 2/2"),
    ("stopping", lambda n: n.stopping(), b"STOPPING=1"),
    ("stopping+status", lambda n: n.stopping("draining"), b"STOPPING=1\nSTATUS=draining"),
    ("status", lambda n: n.status("gen 3, 2/2 workers"), b"STATUS=gen 3, 2/2 workers"),
    ("status utf-8", lambda n: n.status("café ✓"), "STATUS=café ✓".encode()),
    ("watchdog", lambda n: n.watchdog(), b"WATCHDOG=1"),
    ("extend_timeout", lambda n: n.extend_timeout(2.5), b"EXTEND_TIMEOUT_USEC=2500000"),
    ("main_pid", lambda n: n.main_pid(4321), b"MAINPID=4321\nREADY=1"),
    ("main_pid only", lambda n: n.main_pid(4321, ready=False), b"MAINPID=4321"),
    ("main_pid+pidfd_id", lambda n: n.main_pid(4321, pidfd_id=98765),
     b"MAINPID=4321\nMAINPIDFDID=98765\nREADY=1"),
    ("exit_status", lambda n: n.exit_status(78), b"EXIT_STATUS=78"),
    ("exit_status+status", lambda n: n.exit_status(3, "halted"), b"EXIT_STATUS=3\nSTATUS=halted"),
    ("remove_stored_fds", lambda n: n.remove_stored_fds("web"), b"FDSTOREREMOVE=1\nFDNAME=web"),
    ("send", lambda n: n.send(STATUS="x", ERRNO=5, READY=True), b"STATUS=x\nERRNO=5\nREADY=1"),
]


@pytest.mark.parametrize(
    ("message", "expected"),
    [case[1:] for case in EXACT_MESSAGES],
    ids=[case[0] for case in EXACT_MESSAGES],
)
def test_exact_datagram(receiver, message: Message, expected: bytes):
    sock, path = receiver
    assert message(Notifier(path)) is True
    assert sock.recv(4096) == expected


def test_abstract_namespace_socket(abstract_receiver):
    sock, name = abstract_receiver
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": name})
    assert notifier.socket_path == name
    assert notifier.ready("up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_reloading_carries_the_monotonic_time(receiver):
    sock, path = receiver
    before = time.monotonic_ns() // 1000
    assert Notifier(path).reloading()
    after = time.monotonic_ns() // 1000
    reloading, stamp = sock.recv(4096).decode().split("\n")
    assert reloading == "RELOADING=1"
    key, value = stamp.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_store_fds_passes_the_real_socket(receiver):
    sock, path = receiver
    with socket.create_server(("127.0.0.1", 0)) as web, socket.socket(socket.AF_UNIX) as admin:
        admin.bind(os.path.join(os.path.dirname(path), "admin"))
        assert Notifier(path).store_fds([web.fileno(), admin.fileno()], "web")
        message, fds, _, _ = socket.recv_fds(sock, 4096, maxfds=4)
        assert message == b"FDSTORE=1\nFDNAME=web"
        assert len(fds) == 2
        for fd, original in zip(fds, (web, admin), strict=True):
            with socket.socket(fileno=fd) as received:
                assert received.getsockname() == original.getsockname()
                assert os.fstat(fd).st_ino == os.fstat(original.fileno()).st_ino


@pytest.mark.parametrize("name", ["", "a:b", "tab\there", "x" * 256, "naïve"])
def test_store_fds_refuses_names_systemd_would_ignore(receiver, name):
    _, path = receiver
    notifier = Notifier(path)
    with pytest.raises(ValueError, match="FDNAME"):
        notifier.store_fds([0], name)
    with pytest.raises(ValueError, match="FDNAME"):
        notifier.remove_stored_fds(name)


def test_store_fds_needs_a_descriptor(receiver):
    with pytest.raises(ValueError, match="at least one"):
        Notifier(receiver[1]).store_fds([], "web")


def test_a_newline_cannot_forge_another_field(receiver):
    sock, path = receiver
    with pytest.raises(ValueError, match="newline"):
        Notifier(path).status("ok\nMAINPID=1")
    with pytest.raises(ValueError, match="field name"):
        Notifier(path).send(ready=1)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


def test_extend_timeout_refuses_a_negative_duration(receiver):
    with pytest.raises(ValueError, match=">= 0"):
        Notifier(receiver[1]).extend_timeout(-1)


ALL_MESSAGES: list[Message] = [case[1] for case in EXACT_MESSAGES] + [
    lambda n: n.reloading(),
    lambda n: n.store_fds([0], "web"),
]


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:9"}])
def test_without_a_socket_everything_is_a_no_op(environ):
    value = environ.get("NOTIFY_SOCKET") or None
    notifier = Notifier.from_environ(environ)
    assert not notifier.enabled
    assert notifier.socket_path == value
    assert [message(notifier) for message in ALL_MESSAGES] == [False] * len(ALL_MESSAGES)


def test_a_vanished_socket_returns_false_and_logs_at_debug(tmp_path, caplog):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
    os.unlink(path)
    caplog.set_level(logging.DEBUG, logger="unitcorn.systemd")
    notifier = Notifier(path)
    assert notifier.ready() is False
    assert notifier.store_fds([0], "web") is False
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]
    assert "notify failed" in caplog.records[0].getMessage()


def test_a_socket_nobody_reads_returns_false(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
    # The file stays but nothing is bound to it any more: ECONNREFUSED.
    assert os.path.exists(path)
    assert Notifier(path).watchdog() is False


def test_a_full_queue_gives_up_after_the_timeout_instead_of_blocking(receiver):
    sock, path = receiver
    notifier = Notifier(path, timeout=0.05)
    # net.unix.max_dgram_qlen (10 by default) bounds the queue; nobody reads it here.
    sent = 0
    while notifier.watchdog():
        sent += 1
        assert sent < 10_000, "the queue never filled up"
    for _ in range(sent):
        assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.watchdog() is True


WATCHDOG_CASES = [
    ({}, None),
    ({"WATCHDOG_USEC": "2000000"}, 1.0),
    ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "100"}, 1.5),
    ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "101"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "2s"}, None),
    ({"WATCHDOG_USEC": ""}, None),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "me"}, None),
    ({"WATCHDOG_PID": "100"}, None),
]


@pytest.mark.parametrize(("environ", "expected"), WATCHDOG_CASES)
def test_watchdog_interval(environ, expected):
    assert watchdog_interval(environ, pid=100) == expected


def test_watchdog_interval_defaults_to_our_pid_and_environment(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "500000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 0.25
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None


def test_pidfd_id_names_one_process_and_no_other():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ours, theirs = pidfd_id(os.getpid()), pidfd_id(child.pid)
        if ours is None:
            pytest.skip("this kernel has no pidfs (Linux < 6.9): no pidfd IDs to compare")
        assert isinstance(theirs, int) and theirs != ours
        assert pidfd_id(child.pid) == theirs  # stable for the process's lifetime
    finally:
        child.kill()
        child.wait()
    assert pidfd_id(child.pid) is None  # reaped: nothing to open


def test_pidfd_id_is_none_on_a_kernel_without_pidfs(monkeypatch):
    # Before pidfs every pidfd shares one anonymous inode, which identifies no process.
    # Only the module's view of os changes: pytest itself needs the real os.fstat meanwhile.
    shared = types.SimpleNamespace(
        pidfd_open=os.pidfd_open, close=os.close, getpid=os.getpid,
        fstat=lambda fd: types.SimpleNamespace(st_ino=7),
    )
    monkeypatch.setattr(notify, "os", shared)
    assert pidfd_id(1) is None
