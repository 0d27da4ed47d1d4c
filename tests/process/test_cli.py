"""The command line: exit statuses and messages."""

from __future__ import annotations

import subprocess
import sys

from harness import APPS, REPO


def _run(*args: str, cwd=None, timeout: float = 20) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"}
    return subprocess.run([sys.executable, "-m", "unitcorn", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def test_bad_value_in_config_file_exits_78_naming_setting_value_and_source(tmp_path) -> None:
    config = tmp_path / "site.conf.py"
    config.write_text("workers = -2\n")
    result = _run("-c", str(config), "testapps:route")
    assert result.returncode == 78
    assert f"workers = -2 (from {config})" in result.stderr


def test_bad_flag_value_exits_78(tmp_path) -> None:
    result = _run("--timeout", "soon", "testapps:route", cwd=tmp_path)
    assert result.returncode == 78
    assert "timeout" in result.stderr and "soon" in result.stderr


def test_unknown_flag_is_a_usage_error(tmp_path) -> None:
    result = _run("--no-such-flag", "testapps:route", cwd=tmp_path)
    assert result.returncode == 2


def test_missing_app_is_a_usage_error(tmp_path) -> None:
    result = _run(cwd=tmp_path)
    assert result.returncode == 2
    assert "MODULE:CALLABLE" in result.stderr


def test_check_config(tmp_path) -> None:
    assert _run("--check-config", "testapps:route", cwd=tmp_path).returncode == 0
    assert _run("--check-config", "broken_import:app", cwd=tmp_path).returncode == 4


def test_print_config_shows_values_and_origins(tmp_path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text("workers = 5\n")
    result = _run("--print-config", "--timeout", "7", "testapps:route", cwd=tmp_path)
    assert result.returncode == 0
    assert "workers = 5" in result.stdout and "gunicorn.conf.py" in result.stdout
    assert "timeout = 7" in result.stdout and "command line" in result.stdout


def test_help_and_version(tmp_path) -> None:
    help_text = _run("--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--workers" in help_text.stdout
    version = _run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("unitcorn ")
