"""A full disk under the access log costs log lines, not megabytes of stderr (issue 11, finding C).

Python's logging prints a traceback to stderr for every record a handler fails to write: a busy
server on a full disk wrote 23 MB of them in 10 s — to the journal, or to a disk as full.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

DRIVE = 3.0


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 KiB tmpfs, already full."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                   check=True, timeout=10)
    try:
        with open(mount_point / "filler", "wb", buffering=0) as filler:
            with pytest.raises(OSError, match="No space left"):
                while True:
                    filler.write(b"x" * 4096)
        yield mount_point
    finally:
        # Lazy: the server may still hold the log open if the test failed before stopping it.
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=10)


def test_a_full_disk_under_the_access_log_is_reported_once_per_interval(
    start_server, full_disk: Path
) -> None:
    access_log = full_disk / "access.log"
    server = start_server("testapps:route", "--workers", "2", "--access-logfile", str(access_log))
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + DRIVE
    while time.monotonic() < deadline:
        status, _ = server.get("/")
        statuses[status] = statuses.get(status, 0) + 1
    server.close()

    assert set(statuses) == {200}, statuses
    stderr = server.output_path.read_text(errors="replace")
    error_log = server.log()
    print(f"{statuses[200]} requests in {DRIVE} s; stderr {len(stderr)} bytes, "
          f"error log {len(error_log)} bytes")
    assert len(stderr) + len(error_log) < 20_000
    assert "Logging error" not in stderr
    # The first failure of each worker is reported at once, with what and how many.
    reports = re.findall(
        r"log write failed pid=\d+ path=(\S+) error=No space left on device lines_lost=(\d+)", stderr
    )
    assert reports, stderr
    assert {path for path, _ in reports} == {str(access_log)}
    assert len(reports) <= 2 * 2  # per worker: the first failure, at most one more in 3 s
