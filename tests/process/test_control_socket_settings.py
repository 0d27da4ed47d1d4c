"""gunicorn 27's control socket settings on unitcorn's control socket: mode, and none at all."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO
from test_ctl import ctl

pytestmark = pytest.mark.timeout(60)


def test_a_group_mode_is_applied_and_ctl_still_works(start_server, tmp_path: Path) -> None:
    control = tmp_path / "control.sock"
    start_server("testapps:route", "--control-socket", str(control), "--control-socket-mode", "0o660")
    assert stat.S_IMODE(control.stat().st_mode) == 0o660
    assert ctl(control, "status").returncode == 0


def test_the_default_mode_is_owner_only(start_server, tmp_path: Path) -> None:
    control = tmp_path / "control.sock"
    start_server("testapps:route", "--control-socket", str(control))
    assert stat.S_IMODE(control.stat().st_mode) == 0o600


def test_a_mode_open_to_other_users_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unitcorn", "--control-socket", str(tmp_path / "c.sock"),
         "--control-socket-mode", "0o666", "testapps:route"],
        capture_output=True, text=True, timeout=20, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"},
    )
    assert result.returncode == 78
    assert "control_socket_mode = 0o666 (from command line): must not give other users" in result.stderr


def test_no_control_socket_wins_over_runtime_directory(start_server, tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    server = start_server("testapps:route", "--no-control-socket",
                          env={"RUNTIME_DIRECTORY": str(runtime)})
    assert server.get("/")[0] == 200
    assert list(runtime.iterdir()) == []
    assert "control socket ready" not in server.log()

