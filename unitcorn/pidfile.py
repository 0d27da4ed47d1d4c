"""Write, rename and remove the master's pidfile."""

from __future__ import annotations

import contextlib
import os


def write_pidfile(path: str, pid: int) -> None:
    """Write atomically (temp file + rename) so a reader never sees an empty or partial pid."""
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{pid}.tmp")
    with open(temp, "w") as handle:
        handle.write(f"{pid}\n")
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def read_pidfile(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def remove_pidfile(path: str, pid: int) -> None:
    """Remove the file only if it still names `pid`: after an upgrade it belongs to the new master."""
    if read_pidfile(path) == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
