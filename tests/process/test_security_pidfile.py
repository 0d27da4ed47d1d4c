"""Issue 11: a second local user who can write the pidfile's directory cannot make root write,
chmod or remove any other file through it (symlinks planted at the pidfile and its temp name)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root and the user nobody")

SECRET = "root's secret\n"


def as_nobody(*command: str) -> None:
    """Run `command` as the unprivileged user nobody: the attacker is a real second user."""
    subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *command],
        check=True, timeout=10, capture_output=True,
    )


@pytest.fixture
def nobodys_directory() -> Iterator[Path]:
    # Under /tmp, not tmp_path: nobody must be able to reach it (pytest's directories are 0700).
    path = Path(tempfile.mkdtemp(prefix="unitcorn-pid-"))
    try:
        path.chmod(0o755)
        os.chown(path, 65534, 65534)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_planted_symlinks_never_redirect_roots_pidfile_writes(
    start_server, tmp_path: Path, nobodys_directory: Path
) -> None:
    target = tmp_path / "target"  # a root-owned file nobody must not be able to touch
    target.write_text(SECRET)
    target.chmod(0o600)
    pidfile = nobodys_directory / "unitcorn.pid"
    # Planted before start, at the pidfile path itself.
    as_nobody("ln", "-s", str(target), str(pidfile))
    server: Server = start_server("testapps:route", "--pid", str(pidfile))
    assert pidfile.read_text().strip() == str(server.pid)
    assert not pidfile.is_symlink()  # replaced, not followed
    # Planted while it runs: at the temporary name the master used to write through (it was
    # predictable from the pid), and at the pidfile path again; then HUP rewrites the pidfile.
    as_nobody("ln", "-s", str(target), str(nobodys_directory / f".unitcorn.pid.{server.pid}.tmp"))
    as_nobody("ln", "-sf", str(target), str(pidfile))
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert target.read_text() == SECRET
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert pidfile.read_text().strip() == str(server.pid) and not pidfile.is_symlink()
    # At exit a symlink at the path is left alone (and its target is never removed or read).
    as_nobody("ln", "-sf", str(target), str(pidfile))
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert pidfile.is_symlink()
    assert target.read_text() == SECRET
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_fifo_at_the_pidfile_path_does_not_hang_the_exit(
    start_server, nobodys_directory: Path
) -> None:
    pidfile = nobodys_directory / "unitcorn.pid"
    server: Server = start_server("testapps:route", "--pid", str(pidfile))
    # Opening a FIFO for reading blocks until a writer comes: the master reading its pidfile
    # at exit would hang forever.
    as_nobody("rm", "-f", str(pidfile))
    as_nobody("mkfifo", str(pidfile))
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=15) == 0
    assert stat.S_ISFIFO(os.lstat(pidfile).st_mode)


def test_the_pidfile_is_removed_at_exit_when_it_still_holds_our_pid(start_server) -> None:
    server: Server = start_server("testapps:route")
    assert server.pidfile.read_text().strip() == str(server.pid)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not server.pidfile.exists()
