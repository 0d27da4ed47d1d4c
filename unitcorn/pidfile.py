"""Write, rename and remove the master's pidfile — without following anything a local user planted.

The master often runs as root while the pidfile's directory may be writable by someone else
(issue 11). So nothing here opens, chmods or reads through a symlink: the temporary file gets an
unpredictable name and is created with O_EXCL|O_NOFOLLOW (`mkstemp`), its mode is set on the open
descriptor, and `rename` replaces whatever sits at the path (a symlink included) without
following it. Reading opens with O_NOFOLLOW|O_NONBLOCK, so a planted symlink reads as "not
ours" and a planted FIFO cannot block the master.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

# A pid is at most 7 digits on Linux; anything longer is not a pidfile of ours.
_MAX_PIDFILE = 64


def write_pidfile(path: str, pid: int) -> None:
    """Write atomically (temp file + rename) so a reader never sees an empty or partial pid."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o644)  # readable by monitoring tools, like gunicorn's
            handle.write(f"{pid}\n")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_pidfile(path: str) -> int | None:
    """The pid in a regular file at `path` (not through a symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # missing, a symlink (ELOOP), unreadable: not a pidfile we wrote
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, _MAX_PIDFILE).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def remove_pidfile(path: str, pid: int) -> None:
    """Remove the file only if it still names `pid`: after an upgrade it belongs to the new master."""
    if read_pidfile(path) == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
