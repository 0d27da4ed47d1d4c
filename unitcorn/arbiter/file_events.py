"""Kernel file-change events (inotify, through watchfiles) as lines on a pipe the master selects on.

watchfiles (a Rust `notify` binding, kept by the pydantic authors and used by uvicorn) is the
optional `reload` extra. Its only interface is a blocking call, so it runs in one daemon thread
of the master, which does nothing else: it waits for a batch of changes and writes the first
changed path, one line, to a non-blocking pipe. The master never waits for that thread: it reads
the pipe when its selector says so, and when it stops or rescans it just tells the thread to stop
(within one `STEP_MS`) and lets go of its pipe. A full pipe means a wake-up is already pending,
so the write is dropped; a failed watch is reported as an empty line, and the master falls back
to polling.

Why not inotify by ctypes, with no thread: that is a binding of our own to keep correct (event
buffers, overflow, renames) where a well-kept one exists; watchfiles is the watcher Python web
servers already rely on (uvicorn --reload), and its thread is confined to this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import select
import threading
from collections.abc import Callable, Iterable

from unitcorn.logs import ERROR_LOGGER

log = logging.getLogger(ERROR_LOGGER)

# One editor save is several events (write, chmod, rename): gather them into one batch.
DEBOUNCE_MS = 300
STEP_MS = 50  # how soon the thread sees that it was told to stop
TIMEOUT_MS = 5_000
FAILED = b"\n"  # an empty line: the watch broke


def is_available() -> bool:
    return importlib.util.find_spec("watchfiles") is not None


class FileEvents:
    """Watch `directories` (not their subdirectories) for changes to paths `is_wanted` accepts."""

    def __init__(self, directories: Iterable[str], is_wanted: Callable[[str], bool]) -> None:
        from watchfiles._rust_notify import RustNotify  # the documented low-level interface

        self.directories = sorted(set(directories))
        self._is_wanted = is_wanted
        # Made here, not in the thread: the watches exist before the master serves, and a
        # failure (say, the kernel's watch limit) is raised to the caller, which then polls.
        self._notify = RustNotify(self.directories, False, False, 0, False, True)
        self.reader, self._writer = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="unitcorn-reload", daemon=True)
        self._thread.start()

    def read_changes(self) -> tuple[list[str], bool]:
        """The changed paths reported since the last call, and whether the watch has failed."""
        data = b""
        is_closed = False  # the thread ended: only a failure ends it while we still listen
        with contextlib.suppress(BlockingIOError):
            while True:
                chunk = os.read(self.reader, select.PIPE_BUF)
                if not chunk:
                    is_closed = True
                    break
                data += chunk
        lines = data.split(b"\n")[:-1]
        paths = [os.fsdecode(line) for line in lines if line]
        return paths, is_closed or len(paths) < len(lines)

    def close(self, wait: float = 0.0) -> None:
        """Tell the thread to stop, waiting for it at most `wait` seconds (it stops within
        STEP_MS); it closes its own end of the pipe."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.close(self.reader)
        if wait > 0:
            self._thread.join(wait)

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    def _watch(self) -> None:
        try:
            self._forward_changes()
        except Exception as exc:  # whatever broke, polling still works
            if not self._stop.is_set():
                log.warning("reload: file events failed, polling instead reason=%s", exc)
                self._write(FAILED)
        finally:
            with contextlib.suppress(Exception):
                self._notify.close()
            with contextlib.suppress(OSError):
                os.close(self._writer)

    def _forward_changes(self) -> None:
        while not self._stop.is_set():
            # Returns a batch, or "stop" (within STEP_MS of close()), or "timeout" to go round.
            result = self._notify.watch(DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, self._stop)
            if not isinstance(result, set):
                continue
            wanted = sorted(path for _change, path in result if self._is_wanted(path))
            if wanted:
                # One write of at most PIPE_BUF bytes is atomic: lines never interleave or split.
                self._write(os.fsencode(wanted[0])[: select.PIPE_BUF - 1] + b"\n")

    def _write(self, line: bytes) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._writer, line)
