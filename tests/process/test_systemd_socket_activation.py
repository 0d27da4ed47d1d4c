"""Socket activation against a real master: fds 3.. and LISTEN_PID set to the exec'd pid.

A tiny launcher does what systemd does between fork and exec: it moves the sockets to 3, 4, …,
sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (its own pid, which exec keeps) and execs
``python -m unitcorn``. The test binds the sockets itself, so no port is raced for.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO, Server, children_of, is_alive, wait_for
from test_signals import Clients
from test_systemd_notify_sequences import PRIVATE_VARIABLES, NotifyReceiver

pytestmark = pytest.mark.timeout(60)

LAUNCHER = r"""
import fcntl, json, os, sys
spec = json.loads(sys.argv[1])
parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in spec["fds"]]
for fd in spec["fds"]:
    os.close(fd)
for target, fd in enumerate(parked, start=3):
    os.dup2(fd, target, inheritable=True)
    os.close(fd)
env = dict(os.environ, **spec["env"])
if spec["fds"]:
    env["LISTEN_FDS"] = str(len(spec["fds"]))
    env["LISTEN_PID"] = str(os.getpid() + spec["pid_offset"])
    if spec["names"] is not None:
        env["LISTEN_FDNAMES"] = ":".join(spec["names"])
if "WATCHDOG_USEC" in env:
    env["WATCHDOG_PID"] = str(os.getpid())
os.execve(sys.executable, [sys.executable, "-m", "unitcorn", *spec["argv"]], env)
"""


class ActivatedServer(Server):
    """A master started like systemd starts a socket-activated service (see LAUNCHER)."""

    def __init__(self, tmp_path: Path, sockets: list[socket.socket], *args: str,
                 names: list[str] | None = None, env: dict[str, str] | None = None,
                 pid_offset: int = 0, config: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "error.log"
        self.pidfile = tmp_path / "unitcorn.pid"
        self.output_path = tmp_path / "output.log"
        self.listener = None
        tcp = [s for s in sockets if s.family == socket.AF_INET]
        self.port = tcp[0].getsockname()[1] if tcp else 0
        argv = ["--error-logfile", str(self.log_path), "--pid", str(self.pidfile),
                "--log-level", "debug"]
        if config is not None:
            (tmp_path / "unitcorn.conf.py").write_text(config)
            argv += ["-c", str(tmp_path / "unitcorn.conf.py")]
        argv += [*args, "testapps:route"]
        spec = {"fds": [s.fileno() for s in sockets], "names": names, "env": env or {},
                "pid_offset": pid_offset, "argv": argv}
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                       "PYTHONPATH": os.pathsep.join([str(REPO), str(APPS)])}
        self.output = open(self.output_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, json.dumps(spec)], cwd=tmp_path, env=environment,
            pass_fds=[s.fileno() for s in sockets], stdout=self.output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.process.pid
        for sock in sockets:
            sock.close()  # systemd keeps its copy; ours would only confuse who listens


@pytest.fixture
def activate(tmp_path: Path):
    servers: list[ActivatedServer] = []

    def start(sockets: list[socket.socket], *args: str, ready: bool = True,
              **kwargs) -> ActivatedServer:
        server = ActivatedServer(tmp_path, sockets, *args, **kwargs)
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.close()


def tcp_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def unix_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(64)
    return sock


def get_unix(path: Path, target: str = "/") -> tuple[int, str]:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(10)
            self.sock.connect(str(path))

    connection = UnixConnection("localhost", timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def listening_lines(log: str) -> list[str]:
    return [line.split("Listening at: ", 1)[1] for line in log.splitlines() if "Listening at: " in line]


def test_activated_socket_is_served_and_nothing_else_is_bound(activate) -> None:
    server = activate([tcp_socket()], names=["web"])
    assert server.get("/")[0] == 200
    log = server.log()
    assert f"serving activated socket with no bind address=127.0.0.1:{server.port} name=web" in log
    # With no `bind` configured only systemd's socket is served (not the default :8000 too).
    assert listening_lines(log) == [f"127.0.0.1:{server.port} (3)"]
    # The master took the variables out of its environment: the app cannot see them.
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert server.get(f"/env?{name}") == (200, "<unset>")


def test_sockets_for_another_pid_are_not_adopted(activate, tmp_path: Path) -> None:
    own = tmp_path / "own.sock"
    server = activate([tcp_socket()], "--bind", f"unix:{own}", names=["web"], pid_offset=1)
    (only,) = listening_lines(server.log())
    assert only.startswith(f"unix:{own} ")
    assert "activated" not in server.log()
    assert get_unix(own)[0] == 200


def test_binds_match_activated_sockets_by_address_and_the_rest_are_bound(
    activate, tmp_path: Path
) -> None:
    web, api_path, own = tcp_socket(), tmp_path / "api.sock", tmp_path / "own.sock"
    port = web.getsockname()[1]
    server = activate([web, unix_socket(api_path)], "--bind", f"127.0.0.1:{port}",
                      "--bind", f"unix:{own}", names=["web", "api"])
    log = server.log()
    # The configured address is systemd's socket (no second bind, which would fail EADDRINUSE).
    assert f"127.0.0.1:{port} (3)" in listening_lines(log)
    assert f"no activated socket for bind; binding it ourselves address=unix:{own}" in log
    assert f"serving activated socket with no bind address=unix:{api_path} name=api" in log
    assert server.get("/")[0] == 200
    assert get_unix(api_path)[0] == 200
    assert get_unix(own)[0] == 200


def test_systemd_unix_socket_is_not_unlinked_at_shutdown(activate, tmp_path: Path) -> None:
    activated, own = tmp_path / "activated.sock", tmp_path / "own.sock"
    server = activate([unix_socket(activated)], "--bind", f"unix:{own}",
                      "--bind", f"unix:{activated}", names=["app"])
    assert get_unix(activated)[0] == 200 and get_unix(own)[0] == 200
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    # systemd owns the activated socket's path (the .socket unit keeps listening there); the
    # socket unitcorn bound itself is cleaned up.
    assert stat.S_ISSOCK(activated.stat().st_mode)
    assert not own.exists()


def test_activated_sockets_survive_hup(activate, tmp_path: Path) -> None:
    api_path = tmp_path / "api.sock"
    server = activate([tcp_socket(), unix_socket(api_path)], names=["web", "api"])
    before = server.workers()
    with Clients(server) as clients:
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"reload complete generation=2")
        server.wait_for_workers(lambda pids: pids and not set(pids) & set(before), "new workers")
    assert clients.failures == []
    assert "closing listener" not in server.log()
    assert get_unix(api_path)[0] == 200


def test_usr2_hands_activated_sockets_to_the_new_master_with_their_names(
    activate, tmp_path: Path
) -> None:
    notify = NotifyReceiver(str(tmp_path / "notify.sock"))
    api_path = tmp_path / "api.sock"
    try:
        server = activate([tcp_socket(), unix_socket(api_path)], names=["web", "api"],
                          env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "30000000"})
        with Clients(server) as clients:
            server.signal(signal.SIGUSR2)
            handover = notify.wait_event("MAINPID+READY")
            new = int(handover.fields["MAINPID"])
            assert server.wait_exit() == 0
            wait_for(lambda: clients.pids & {str(p) for p in children_of(new)}, 10,
                     "the new master's workers answering")
        assert clients.failures == []
        log = server.log()
        # Renumbered from 3 for the new master and named as systemd named them.
        assert f"[{new}] [INFO] Listening at: 127.0.0.1:{server.port} (3)" in log
        assert f"[{new}] [INFO] Listening at: unix:{api_path} (4)" in log
        assert f"[{new}] [INFO] serving activated socket with no bind address=unix:{api_path} " \
               "name=api" in log
        assert get_unix(api_path)[0] == 200
        # Activated sockets are systemd's: the new master stores none of them in the fd store.
        assert not [m for m in notify.all() if m.event == "FDSTORE"]
        assert {name: server.get(f"/env?{name}")[1] for name in PRIVATE_VARIABLES} == \
            dict.fromkeys(PRIVATE_VARIABLES, "<unset>")
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not is_alive(new), 15, "the new master to exit")
        assert stat.S_ISSOCK(api_path.stat().st_mode)
    finally:
        notify.close()


def test_fd_store_sockets_serve_their_bind_and_dropped_ones_are_removed(
    activate, tmp_path: Path
) -> None:
    """After `systemctl restart`, our stored sockets come back among LISTEN_FDS: one a bind
    still asks for is served again; one no bind wants is closed and removed from the store."""
    notify = NotifyReceiver(str(tmp_path / "notify.sock"))
    kept, dropped = tcp_socket(), tcp_socket()
    kept_port, dropped_port = kept.getsockname()[1], dropped.getsockname()[1]
    names = [f"ucstore-127.0.0.1_{kept_port}", f"ucstore-127.0.0.1_{dropped_port}"]
    try:
        server = activate([kept, dropped], "--bind", f"127.0.0.1:{kept_port}", names=names,
                          env={"NOTIFY_SOCKET": notify.path})
        removal = notify.wait_for(lambda m: m.event == "FDSTOREREMOVE", "the dropped socket removed")
        assert removal.fields["FDNAME"] == names[1]
        assert server.get("/")[0] == 200
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", dropped_port), timeout=5)
        assert "no activated socket for bind" not in server.log()
    finally:
        notify.close()
