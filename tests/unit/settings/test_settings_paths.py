"""Log files, the pidfile and unix sockets that cannot be created are configuration errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from unitcorn.settings import ConfigError, paths


@pytest.mark.parametrize(
    ("flag", "name"),
    [("--error-logfile", "errorlog"), ("--log-file", "errorlog"),
     ("--access-logfile", "accesslog"), ("--pid", "pidfile")],
)
def test_a_file_in_a_missing_directory(load, tmp_path: Path, flag: str, name: str) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(ConfigError) as info:
        load(flag, f"{missing}/x", "app:app")
    assert str(info.value) == (
        f"{name} = {missing}/x (from command line): directory {missing} does not exist"
    )


def test_a_unix_socket_in_a_missing_directory(load, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load("-b", "127.0.0.1:1", "-b", f"unix:{tmp_path}/gone/app.sock", "app:app")
    assert str(info.value) == (
        f"bind = unix:{tmp_path}/gone/app.sock (from command line): "
        f"directory {tmp_path}/gone does not exist"
    )


def test_the_source_is_the_config_file(load, write, tmp_path: Path) -> None:
    config = write("gunicorn.conf.py", "pidfile = 'run/app.pid'\n")
    with pytest.raises(ConfigError) as info:
        load("app:app")
    assert str(info.value) == (
        f"pidfile = run/app.pid (from {config}): directory {tmp_path}/run does not exist"
    )


def test_relative_paths_are_from_chdir(load, tmp_path: Path) -> None:
    (tmp_path / "site" / "logs").mkdir(parents=True)
    s = load("--chdir", "site", "--error-logfile", "logs/error.log", "--pid", "app.pid",
             "-b", "unix:app.sock", "app:app")
    assert s.errorlog == "logs/error.log"
    with pytest.raises(ConfigError, match="directory .*/site/gone does not exist"):
        load("--chdir", "site", "--access-logfile", "gone/access.log", "app:app")


def test_a_directory_is_not_a_log_file(load, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load("--error-logfile", str(tmp_path), "app:app")
    assert str(info.value) == f"errorlog = {tmp_path} (from command line): {tmp_path} is a directory"


def test_unwritable_file_and_directory(load, tmp_path: Path, monkeypatch) -> None:
    # As root everything is writable, so the permission check itself is stubbed.
    monkeypatch.setattr(paths, "_can", lambda path, mode: False)
    existing = tmp_path / "error.log"
    existing.touch()
    with pytest.raises(ConfigError, match=f"^errorlog = {existing} .*: {existing} is not writable$"):
        load("--error-logfile", str(existing), "app:app")
    with pytest.raises(ConfigError, match=f"cannot create files in {tmp_path} \\(permission denied\\)$"):
        load("--pid", str(tmp_path / "app.pid"), "app:app")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_for_real(load, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="permission denied"):
        load("--access-logfile", str(locked / "access.log"), "app:app")


def test_an_existing_socket_needs_no_writable_directory(load, tmp_path: Path, monkeypatch) -> None:
    # systemd may hand us a socket in a directory only root can write: we adopt, not create.
    path = tmp_path / "app.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        monkeypatch.setattr(paths, "_can", lambda path, mode: False)
        assert str(load("-b", f"unix:{path}", "app:app").bind[0]) == f"unix:{path}"


def test_stdio_and_unset_are_fine(load) -> None:
    s = load("--error-logfile", "-", "--access-logfile", "-", "app:app")
    assert (s.errorlog, s.accesslog, s.pidfile) == ("-", "-", None)
