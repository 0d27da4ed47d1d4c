"""`unitcorn ctl` against a real master over its control socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import APPS, REPO, is_alive, wait_for
from test_signals import Clients


def ctl(socket_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"}
    return subprocess.run(
        [sys.executable, "-m", "unitcorn", "ctl", "--socket", str(socket_path), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def _start(start_server, tmp_path: Path, *args: str, config: str = "workers = 2\n",
           app: str = "testapps:route"):
    control = tmp_path / "control.sock"
    server = start_server(app, "--control-socket", str(control), *args, config=config)
    return server, control


VERSIONED_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"VERSION"]
"""


def test_status_names_the_master_and_its_workers(start_server, tmp_path: Path) -> None:
    server, control = _start(start_server, tmp_path)
    result = ctl(control, "status")
    assert result.returncode == 0, result.stderr
    assert f"pid: {server.pid}" in result.stdout
    assert "workers: 2/2 booted" in result.stdout
    assert (control.stat().st_mode & 0o777) == 0o600


def test_reload_wait_succeeds_once_the_new_generation_serves(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    old = set(server.workers())
    with Clients(server) as clients:
        result = ctl(control, "reload", "--wait")
    assert result.returncode == 0, result.stderr
    assert "reload complete generation=2" in result.stdout
    # By the time ctl returned, the new generation was serving.
    assert not set(server.workers()) <= old
    assert clients.failures == []


def test_reload_wait_fails_with_the_reason_and_keeps_serving(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path)
    old = server.workers()
    (tmp_path / "unitcorn.conf.py").write_text("workers = 'many'\n")
    result = ctl(control, "reload", "--wait")
    assert result.returncode == 1
    assert "workers = many (from " in result.stderr
    assert server.workers() == old
    assert server.get("/")[0] == 200


def test_preload_reload_imports_the_new_code(start_server, tmp_path) -> None:
    (tmp_path / "myapp.py").write_text(VERSIONED_APP.replace("VERSION", "one"))
    server, control = _start(start_server, tmp_path, "--preload", app="myapp:app")
    assert server.get("/") == (200, "one")
    (tmp_path / "myapp.py").write_text(VERSIONED_APP.replace("VERSION", "two"))
    assert ctl(control, "reload", "--wait").returncode == 0
    assert server.get("/") == (200, "two")


def test_reload_wait_fails_when_the_new_app_cannot_import(start_server, tmp_path) -> None:
    (tmp_path / "myapp.py").write_text(VERSIONED_APP.replace("VERSION", "one"))
    server, control = _start(start_server, tmp_path, "--preload", app="myapp:app")
    (tmp_path / "myapp.py").write_text("raise ImportError('new code is broken')\n")
    result = ctl(control, "reload", "--wait")
    assert result.returncode == 1
    assert "new code is broken" in result.stderr
    assert server.get("/") == (200, "one")


def test_scale_sets_the_worker_count(start_server, tmp_path: Path) -> None:
    server, control = _start(start_server, tmp_path)
    assert ctl(control, "scale", "3").returncode == 0
    server.wait_for_workers(lambda pids: len(pids) == 3, "3 workers")
    assert ctl(control, "scale", "0").returncode == 1


def test_upgrade_hands_over_and_retires_the_old_master(start_server, tmp_path: Path) -> None:
    server, control = _start(start_server, tmp_path)
    with Clients(server) as clients:
        result = ctl(control, "upgrade")
        assert result.returncode == 0, result.stderr
        assert server.wait_exit() == 0  # the old master retired by itself
        new_master = int(wait_for(lambda: server.pidfile.exists() and
                                  server.pidfile.read_text().strip() != str(server.pid)
                                  and server.pidfile.read_text().strip(), 10, "PIDFILE handed over"))
        wait_for(lambda: len(server.workers(new_master)) == 2, 10, "new workers")
    assert clients.failures == []
    assert is_alive(new_master)
    # The new master answers on the same control socket path.
    status = ctl(control, "status")
    assert f"pid: {new_master}" in status.stdout


def test_upgrade_whose_new_master_fails_keeps_the_old_one(start_server, tmp_path: Path) -> None:
    server, control = _start(start_server, tmp_path)
    (tmp_path / "unitcorn.conf.py").write_text("workers = -1\n")
    with Clients(server) as clients:
        result = ctl(control, "upgrade")
    assert result.returncode == 1
    assert "exited before it was ready" in result.stderr
    assert server.process.poll() is None
    assert clients.failures == []
    assert ctl(control, "status").returncode == 0


def test_upgrade_whose_new_master_never_gets_ready_times_out(start_server, tmp_path) -> None:
    server, control = _start(start_server, tmp_path, "--upgrade-timeout", "2")
    (tmp_path / "unitcorn.conf.py").write_text(
        "import time\nworkers = 2\ndef post_worker_init(worker):\n    time.sleep(60)\n"
    )
    with Clients(server) as clients:
        result = ctl(control, "upgrade")
    assert result.returncode == 1
    assert "did not become ready within 2s" in result.stderr
    assert server.process.poll() is None
    assert clients.failures == []
    server.wait_for_log(r"upgraded master exited")
