"""Issue 11: nothing sent to the control socket, no signal and no shortage of descriptors or
processes crashes or wedges the master; each such request fails on its own, the server serves."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import time
from pathlib import Path

import pytest
from harness import Server, is_alive, wait_for
from test_ctl import ctl


def _start(start_server, tmp_path: Path, *args: str, config: str = "workers = 2\n") -> tuple[Server, Path]:
    control = tmp_path / "control.sock"
    server = start_server("testapps:route", "--control-socket", str(control), *args, config=config)
    return server, control


def send_raw(control: Path, data: bytes, timeout: float = 10) -> bytes:
    """Send `data` as is and return whatever the master answers before closing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(control))
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def assert_still_serving(server: Server, control: Path) -> None:
    assert server.process.poll() is None, server.log()
    status = ctl(control, "status", timeout=20)
    assert status.returncode == 0, status.stderr + server.log()
    assert server.get("/")[0] == 200


def test_deeply_nested_json_is_refused_and_the_master_lives(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    answer = json.loads(send_raw(control, b"[" * 2000 + b"\n"))
    assert answer["ok"] is False and "flat JSON object" in answer["message"]
    answer = json.loads(send_raw(control, b'{"command": {"command": "status"}}\n'))
    assert answer["ok"] is False
    assert_still_serving(server, control)


def test_silent_clients_are_bounded_and_closed_after_the_idle_deadline(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    silent = []
    for _ in range(40):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(control))
        sock.settimeout(20)
        silent.append(sock)
    try:
        started = time.monotonic()
        # A client arriving after the crowd is still answered, and at once.
        result = ctl(control, "status", timeout=10)
        assert result.returncode == 0, result.stderr
        answers = [s.recv(4096) for s in silent]  # every one is closed, none is held forever
        elapsed = time.monotonic() - started
    finally:
        for sock in silent:
            sock.close()
    messages = [json.loads(a)["message"] for a in answers]
    assert sum("too many clients" in m for m in messages) >= 40 - 16
    assert sum("no request within 10s" in m for m in messages) >= 1
    assert 9 <= elapsed < 15
    assert_still_serving(server, control)


def test_scale_to_a_huge_count_is_refused_naming_the_bound(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    result = ctl(control, "scale", "1000000000000", timeout=20)
    assert result.returncode == 1
    assert "above max_workers = 256" in result.stderr
    assert_still_serving(server, control)
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=10) == 0  # promptly: the loop is not wedged


def test_scale_above_a_lowered_bound_is_refused(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path, "--max-workers", "3")
    result = ctl(control, "scale", "4")
    assert result.returncode == 1
    assert "workers = 4 is above max_workers = 3" in result.stderr
    assert ctl(control, "scale", "3").returncode == 0
    server.wait_for_workers(lambda pids: len(pids) == 3, "3 workers")
    server.signal(signal.SIGTTIN)
    server.wait_for_log(r"SIGTTIN ignored: workers = 4 is above max_workers = 3")
    assert_still_serving(server, control)


def test_workers_above_max_workers_is_a_configuration_error(start_server) -> None:
    server: Server = start_server("testapps:route", "--workers", "5", "--max-workers", "4",
                                  ready=False)
    assert server.wait_exit(timeout=15) == 78
    output = server.output_path.read_text()
    assert "workers = 5 (from command line): must be at most max_workers = 4 (from command line)" \
        in output


def test_a_reload_cannot_raise_max_workers_above_its_start_value(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path, config="workers = 2\nmax_workers = 4\n")
    (tmp_path / "unitcorn.conf.py").write_text("workers = 2\nmax_workers = 8\n")
    result = ctl(control, "reload", "--wait")
    assert result.returncode == 1
    assert "max_workers = 8" in result.stderr and "cannot rise above 4" in result.stderr
    assert_still_serving(server, control)


# ---- out of descriptors or processes ----------------------------------------------------


def free_fds(pid: int) -> list[int]:
    """The lowest descriptor numbers `pid` does not use: where its next opens land."""
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    return [fd for fd in range(max(used) + 3) if fd not in used]


class FdLimit:
    """Lower a running master's RLIMIT_NOFILE so that only `spare` more descriptors open."""

    def __init__(self, pid: int, spare: int) -> None:
        self.pid = pid
        self.saved = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (free_fds(pid)[spare], self.saved[1]))

    def __enter__(self) -> FdLimit:
        return self

    def __exit__(self, *exc: object) -> None:
        if is_alive(self.pid):
            resource.prlimit(self.pid, resource.RLIMIT_NOFILE, self.saved)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="prlimit on another process needs root")


@needs_root
def test_ctl_upgrade_with_a_full_fd_table_fails_and_the_master_serves(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    with FdLimit(server.pid, spare=1):  # room to accept ctl, none for the upgrade's socketpair
        result = ctl(control, "upgrade", timeout=20)
    assert result.returncode == 1, result.stdout
    assert "upgrade refused: the new master could not be started" in result.stderr
    assert "Too many open files" in result.stderr
    assert_still_serving(server, control)
    assert server.pidfile.read_text().strip() == str(server.pid)


@needs_root
def test_usr2_with_a_full_fd_table_fails_the_upgrade_and_the_master_serves(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    with FdLimit(server.pid, spare=0):
        server.signal(signal.SIGUSR2)
        server.wait_for_log(r"upgrade failed to start reason=.*Too many open files")
    assert_still_serving(server, control)


@needs_root
def test_control_accept_with_a_full_fd_table_pauses_then_answers(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        with FdLimit(server.pid, spare=0):
            sock.connect(str(control))  # queued in the backlog; the master cannot accept it
            sock.sendall(b'{"command": "status"}\n')
            server.wait_for_log(r"control socket: cannot accept, pausing")
        answer = json.loads(sock.recv(65536))
    assert answer["ok"] is True and answer["status"]["pid"] == server.pid
    assert_still_serving(server, control)


FORK_FAILS_AFTER_RELOAD = """
import errno, os
workers = 2
def on_reload(server):
    # Stands in for a machine out of processes or memory: fork fails in the master from now on.
    def fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
    os.fork = fork
"""


def test_a_reload_that_cannot_fork_fails_and_the_old_generation_serves(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    old = server.workers()
    (tmp_path / "unitcorn.conf.py").write_text(FORK_FAILS_AFTER_RELOAD)
    result = ctl(control, "reload", "--wait", timeout=20)
    assert result.returncode == 1
    assert "cannot start a worker: [Errno 11] Resource temporarily unavailable" in result.stderr
    assert server.workers() == old
    assert_still_serving(server, control)
    wait_for(lambda: "reload failed" in server.log(), 5, "the failed reload logged")
