"""Log files: reopening after rotation, and a full disk that must not kill anyone."""

from __future__ import annotations

import logging
from pathlib import Path

from unitcorn.logs import ReopenableFileHandler


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("unitcorn.error", logging.INFO, __file__, 1, message, (), None)


def test_reopen_follows_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    handler = ReopenableFileHandler(str(path))
    handler.emit(_record("before"))
    path.rename(tmp_path / "error.log.1")
    handler.reopen()
    handler.emit(_record("after"))
    handler.close()
    assert (tmp_path / "error.log.1").read_text() == "before\n"
    assert path.read_text() == "after\n"


def test_reopen_and_close_survive_lines_a_full_disk_refused(capsys) -> None:
    """/dev/full refuses every write with ENOSPC: the unwritten line stays buffered, and closing
    the old file flushes it again. Before the fix that OSError escaped from reopen() and a
    worker rotating its logs on a full disk died."""
    handler = ReopenableFileHandler("/dev/full")
    handler.emit(_record("lost"))  # logging reports the failure on stderr, as it should
    handler.reopen()
    handler.emit(_record("lost too"))
    handler.close()
    assert "No space left on device" in capsys.readouterr().err
