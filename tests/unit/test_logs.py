"""Log files: reopening after rotation, and a full disk that must not kill anyone."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from unitcorn.logs import FailureReport, ReopenableFileHandler


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


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _full_disk() -> OSError:
    return OSError(28, "No space left on device")


def test_write_failures_are_reported_at_once_then_once_per_interval_with_a_count() -> None:
    clock, stream = _Clock(), io.StringIO()
    report = FailureReport("/var/log/app/access.log", interval=10.0, clock=clock, stream=stream)
    report.failed(_full_disk())
    assert stream.getvalue().count("\n") == 1
    assert "path=/var/log/app/access.log error=No space left on device lines_lost=1" in stream.getvalue()
    for _ in range(500):  # a busy server, one failure per line, within the interval: silence
        clock.now += 0.01
        report.failed(_full_disk())
    assert stream.getvalue().count("\n") == 1
    clock.now = 1010.0
    report.failed(_full_disk())  # the interval is over: the lines lost meanwhile, and this one
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "lines_lost=501" in lines[1]
    report.failed(_full_disk())
    report.report()  # at close: what was lost since
    assert "lines_lost=1" in stream.getvalue().splitlines()[2]
    report.report()  # nothing lost since: nothing said
    assert len(stream.getvalue().splitlines()) == 3


class _FullStream(io.StringIO):
    def write(self, text: str) -> int:
        raise _full_disk()


def test_a_report_that_cannot_be_written_is_dropped_quietly() -> None:
    FailureReport("x", stream=_FullStream()).failed(_full_disk())  # stderr is full too: no raise


def test_installed_handlers_report_instead_of_a_traceback_per_record(capsys) -> None:
    handler = ReopenableFileHandler("/dev/full")
    for _ in range(100):
        handler.emit(_record("lost"))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Logging error" not in err
    assert err.count("log write failed") == 1
    assert "error=No space left on device lines_lost=1" in err
    handler.close()
    assert "lines_lost=99" in capsys.readouterr().err
