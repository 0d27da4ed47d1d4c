"""Security checks: what the application can see and who it runs as; the unix socket's mode;
a HUP sent to the whole process group (`systemctl kill -s HUP`) must not kill workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import harness
import pytest
from torture_config import WORKER_CLASSES
from torture_load import LoadGenerator
from torture_ops import Operator
from torture_proc import ids_of, live_children

HERE = Path(__file__).resolve().parent
NOBODY, NOGROUP = 65534, 65534
CONTROL_VARIABLES = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "UNITCORN_FD",
                     "UNITCORN_PID", "UNITCORN_UPGRADE_FD", "WATCHDOG_USEC", "WATCHDOG_PID")


def _identity(address) -> dict:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"GET /identity HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), reply[:300]
    return json.loads(body)


class _SocketActivated:
    """Makes harness.Server start unitcorn through torture_launch.py, with `listener` at fd 3."""

    STDOUT = subprocess.STDOUT

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener

    def Popen(self, command, **kwargs):  # noqa: N802 - stands in for subprocess.Popen
        kwargs["pass_fds"] = (self.listener.fileno(),)
        kwargs["env"] = {**kwargs["env"], "TORTURE_LISTEN_FD": str(self.listener.fileno())}
        return subprocess.Popen([command[0], str(HERE / "torture_launch.py"), *command[1:]],
                                **kwargs)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_app_never_sees_control_variables(start_torture, tmp_path: Path, worker_class,
                                          figures) -> None:
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "60000000",
           "TORTURE_DIR": str(tmp_path)}
    original = harness.subprocess
    harness.subprocess = _SocketActivated(listener)
    try:
        server = start_torture("tortureapps:identity", "--workers", "2", env=env,
                               bind_socket=False, worker_class=worker_class, ready=False)
    finally:
        harness.subprocess = original
    server.port = listener.getsockname()[1]
    listener.close()
    server.wait_ready()
    notify.settimeout(10)
    messages = b""
    while b"READY=1" not in messages:  # the variables reached the master, and were used
        messages += notify.recv(4096) + b"\n"
    seen = _identity(server.address)["environ"]
    figures["first_master"] = sorted(v for v in CONTROL_VARIABLES if v in seen)
    assert not [v for v in CONTROL_VARIABLES if v in seen], seen
    # After an upgrade (UNITCORN_FD, UNITCORN_PID, LISTEN_* set for the new master): same.
    Operator(server, 2).upgrade("signal")
    answers = [_identity(server.address) for _ in range(4)]
    assert {a["pid"] for a in answers} <= set(live_children(server.master))
    leaked = sorted({v for a in answers for v in CONTROL_VARIABLES if v in a["environ"]})
    figures["upgraded_master"] = leaked
    assert leaked == []
    notify.close()


@pytest.fixture
def apps_for_nobody():
    """The test apps where `nobody` can import them: the checkout may sit in a directory only
    root can enter (a mktemp directory, /root), and workers import the app after dropping to
    --user."""
    directory = Path(tempfile.mkdtemp(prefix="torture-apps-"))
    directory.chmod(0o755)
    for name in ("tortureapps.py", "testapps.py"):
        shutil.copy(harness.APPS / name, directory / name)
        (directory / name).chmod(0o644)
    yield ["--pythonpath", str(directory)]
    shutil.rmtree(directory)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_workers_run_as_user_and_group_with_the_umask(start_torture, worker_class,
                                                      apps_for_nobody, figures) -> None:
    shared = Path(tempfile.mkdtemp(prefix="torture-umask-"))
    shared.chmod(0o1777)
    try:
        server = start_torture("tortureapps:identity", *apps_for_nobody, "--workers", "2",
                               "--user", "nobody",
                               "--group", "nogroup", "--umask", "027",
                               env={"TORTURE_DIR": str(shared)}, worker_class=worker_class)
        identity = _identity(server.address)
    finally:
        for leftover in shared.iterdir():
            leftover.unlink()
        shared.rmdir()
    figures.update({k: identity[k] for k in ("uid", "euid", "gid", "egid", "groups", "file_mode")})
    assert (identity["uid"], identity["euid"]) == (NOBODY, NOBODY)
    assert (identity["gid"], identity["egid"]) == (NOGROUP, NOGROUP)
    assert identity["groups"] == [NOGROUP]
    assert identity["file_mode"] == "0o640"
    for worker in server.current_workers():
        assert ids_of(worker) == (NOBODY, NOGROUP)
    assert ids_of(server.pid) == (0, 0)  # the master keeps root to bind, reload and upgrade


@pytest.mark.timeout(60)
@pytest.mark.parametrize("umask, mode", [("027", 0o750), ("0o117", 0o660)])
def test_unix_socket_gets_the_intended_mode(start_torture, tmp_path: Path, umask, mode,
                                            apps_for_nobody, figures) -> None:
    """docs/settings.md: the umask "also sets the permissions of unix sockets" (as gunicorn
    does: the socket is bound under --umask), and --user/--group own it."""
    path = tmp_path / "app.sock"
    start_torture("testapps:route", *apps_for_nobody, "--bind", f"unix:{path}", "--umask", umask,
                  "--user",
                  "nobody", "--group", "nogroup", bind_socket=False)
    info = path.stat()
    figures["mode"] = oct(stat.S_IMODE(info.st_mode))
    figures["owner"] = (info.st_uid, info.st_gid)
    assert stat.S_ISSOCK(info.st_mode)
    assert (info.st_uid, info.st_gid) == (NOBODY, NOGROUP)
    assert stat.S_IMODE(info.st_mode) == mode


@pytest.mark.timeout(90)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_hup_to_the_whole_process_group(start_torture, tmp_path: Path, worker_class,
                                        sizes, figures) -> None:
    """What `systemctl kill -s HUP` does: every process of the group gets HUP. The master
    reloads; the workers ignore it and are retired the normal way (exit 0), never killed."""
    server = start_torture("testapps:route", "--workers", "2", worker_class=worker_class)
    operator = Operator(server, 2)
    group = os.getpgid(server.pid)
    assert group != os.getpgid(0)
    rounds = 10
    with LoadGenerator(server.address) as load:
        for _ in range(rounds):
            mark = server.watch.mark()
            before = live_children(server.pid)
            os.killpg(group, signal.SIGHUP)
            server.wait(r"reload complete generation=\d+", server.pid, since=mark,
                        fail=r"reload failed")
            for pid in before:
                server.wait(rf"worker exited pid={pid} code=0 reason=normal", server.pid,
                            since=mark)
        report = load.stop()
    figures.update(report.summary())
    figures["group_hups"] = rounds
    assert report.failures == [], report.failures[:10]
    assert "killed by SIGHUP" not in server.log()
    figures.update(operator.settle())

