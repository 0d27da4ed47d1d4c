"""The pidfile never writes, chmods, reads or removes through a planted symlink (issue 11)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from unitcorn.pidfile import read_pidfile, remove_pidfile, write_pidfile


def test_write_replaces_a_symlink_at_the_path_and_leaves_its_target_alone(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep\n")
    target.chmod(0o600)
    path = tmp_path / "app.pid"
    path.symlink_to(target)
    write_pidfile(str(path), 4242)
    assert not path.is_symlink() and path.read_text() == "4242\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert target.read_text() == "keep\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.pid", "target"]  # no temp left


def test_the_old_predictable_temp_name_is_not_used(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep\n")
    (tmp_path / ".app.pid.4242.tmp").symlink_to(target)
    write_pidfile(str(tmp_path / "app.pid"), 4242)
    assert target.read_text() == "keep\n"


def test_read_and_remove_ignore_symlinks_fifos_and_other_pids(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("4242\n")
    link = tmp_path / "link.pid"
    link.symlink_to(target)
    assert read_pidfile(str(link)) is None
    remove_pidfile(str(link), 4242)
    assert link.is_symlink() and target.exists()
    fifo = tmp_path / "fifo.pid"
    os.mkfifo(fifo)
    assert read_pidfile(str(fifo)) is None  # and did not block
    remove_pidfile(str(target), 1)
    assert target.exists()
    remove_pidfile(str(target), 4242)
    assert not target.exists()
    assert read_pidfile(str(tmp_path / "missing")) is None
