"""What the torture tests observe about processes: /proc facts, the error log, orphan reaping.

Everything here reads the kernel's view (fds, RSS, states, uids) rather than trusting what the
server says about itself, so a leak or a zombie shows up even if the server's bookkeeping is wrong.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from harness import wait_for

PR_SET_CHILD_SUBREAPER = 36


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def state(pid: int) -> str:
    """One-letter state (R, S, Z, …), or "" if the process is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else ""


def parent_of(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def all_children(pid: int) -> list[int]:
    """Children of `pid` including zombies (task/children lists every thread's children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return sorted(set(found))


def live_children(pid: int) -> list[int]:
    return [p for p in all_children(pid) if state(p) not in ("", "Z")]


def zombie_children(pid: int) -> list[int]:
    return [p for p in all_children(pid) if state(p) == "Z"]


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int) -> list[str]:
    """What each open fd points at (for a leak report)."""
    targets = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        with contextlib.suppress(OSError):
            targets.append(f"{fd} -> {os.readlink(f'/proc/{pid}/fd/{fd}')}")
    return targets


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise KeyError(name)


def rss_kib(pid: int) -> int:
    return int(status_field(pid, "VmRSS").split()[0])


def ids_of(pid: int) -> tuple[int, int]:
    """(effective uid, effective gid)."""
    return int(status_field(pid, "Uid").split()[1]), int(status_field(pid, "Gid").split()[1])


def session_processes(sid: int) -> list[int]:
    """Every process (zombies included) in session `sid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[3]) == sid:
                found.append(int(entry.name))
    return found


def listening_tcp_ports(pid: int) -> list[int]:
    """Ports of the TCP sockets in LISTEN state that `pid` holds (race-free port discovery)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def set_subreaper(enabled: bool) -> None:
    """Orphans of our descendants (an upgraded-away master's heir, a killed master's workers)
    come to us instead of PID 1 — which in this sandbox never reaps, so they would stay zombies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_adopted(pids: list[int]) -> None:
    """waitpid() those of `pids` that are our (adopted) children and have exited or will."""
    me = os.getpid()
    for pid in pids:
        if parent_of(pid) == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


# The process suite's poll-with-deadline (this suite's conftest puts tests/process on sys.path).
wait_until = wait_for


class LogWatch:
    """Follows the error log incrementally; waits for lines after a mark, per master pid.

    Lines look like ``[date] [PID] [LEVEL] message``; patterns are matched against the message
    with the pid and level available as ``(?P<pid>)``-free prefixes via `line_pattern`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""
        self._offset = 0

    def refresh(self) -> str:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                data = stream.read()
        except FileNotFoundError:
            return self.text
        # Keep only whole lines; a half-written one is read again next time.
        end = data.rfind(b"\n") + 1
        self._offset += end
        self.text += data[:end].decode("utf-8", "replace")
        return self.text

    def mark(self) -> int:
        return len(self.refresh())

    @staticmethod
    def line_pattern(message: str, pid: int | None = None) -> str:
        who = str(pid) if pid else r"\d+"
        return rf"^\[[^\]]*\] \[{who}\] \[\w+\] {message}"

    def find(self, message: str, pid: int | None = None, since: int = 0) -> list[re.Match]:
        return list(re.finditer(self.line_pattern(message, pid), self.refresh()[since:], re.M))

    def wait(self, message: str, pid: int | None = None, since: int = 0, count: int = 1,
             timeout: float = 20, fail: str | None = None,
             alive: Callable[[], bool] | None = None) -> list[re.Match]:
        """Wait for `count` lines matching; raise at once on a `fail` line or if `alive()` turns false."""
        deadline = time.monotonic() + timeout
        while True:
            matches = self.find(message, pid, since)
            if len(matches) >= count:
                return matches
            if fail and (bad := self.find(fail, None, since)):
                raise AssertionError(f"log says {bad[0].group(0)!r} while waiting for {message!r}")
            if alive is not None and not alive():
                raise AssertionError(f"process died while waiting for {message!r}:\n"
                                     + self.text[since:][-3000:])
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {message!r} x{count}"
                                   f" (pid {pid}); log tail:\n{self.text[since:][-3000:]}")
            time.sleep(0.01)
