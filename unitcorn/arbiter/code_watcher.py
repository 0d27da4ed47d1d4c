"""--reload: a new generation of workers (the HUP path) when a watched source file changes.

The development loop gunicorn's --reload gives — edit, save, reload the page.  The master polls,
once a second from its own loop (a deadline like any other, no thread): every `*.py` file under
the directories the app is imported from (pythonpath, chdir, else the working directory) and
every `reload_extra_files` entry, by size and modification time.  A change is a HUP: workers of
the new generation import the new code, and a change that breaks the import fails the reload
while the old generation serves on, as any failed reload does.  Polling, not inotify: it needs
no dependency and sees every editor's way of saving; the scan is bounded (MAX_FILES) because it
is for development trees, not for whole filesystems.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from unitcorn.app import search_paths
from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.lifecycle import Lifecycle, MasterRequests, MasterStatus
from unitcorn.logs import ERROR_LOGGER

log = logging.getLogger(ERROR_LOGGER)

INTERVAL = 1.0  # seconds between scans
MAX_FILES = 20_000
# Directories that hold no code of the app's own, or too much of somebody else's.
_SKIPPED = {"__pycache__", "node_modules", "site-packages", "dist-packages"}

Snapshot = dict[str, tuple[int, int]]  # path -> (size, mtime in ns)


def watched_roots(settings: Any) -> list[str]:
    return search_paths(settings.pythonpath, settings.chdir) or [os.getcwd()]


def source_files(roots: Iterable[str]) -> Iterator[str]:
    """Every *.py under `roots`, skipping hidden directories, caches and virtual environments."""
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [
                name for name in subdirectories
                if not name.startswith(".") and name not in _SKIPPED
                and not os.path.exists(os.path.join(directory, name, "pyvenv.cfg"))
            ]
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(directory, name)


def snapshot(paths: Iterable[str]) -> Snapshot:
    taken: Snapshot = {}
    for path in paths:
        if len(taken) >= MAX_FILES:
            break
        try:
            status = os.stat(path)
        except OSError:
            continue  # gone: its absence is the change
        taken[path] = (status.st_size, status.st_mtime_ns)
    return taken


def first_change(before: Snapshot, after: Snapshot) -> str | None:
    for path in before.keys() | after.keys():
        if before.get(path) != after.get(path):
            return path
    return None


class CodeWatcher(Lifecycle):
    """A master plug-in: scan on its deadline, and reload when something changed."""

    def __init__(self, settings: Any, master: MasterRequests) -> None:
        # A .pyc is trusted when the source's size and whole-second mtime match: a file saved
        # twice within a second at the same size would be served stale. Workers are forked, so
        # this reaches them, and preloading masters too.
        sys.dont_write_bytecode = True
        self._roots = watched_roots(settings)
        self._extra = [str(path) for path in settings.reload_extra_files]
        self._files = self._scan()
        if len(self._files) >= MAX_FILES:
            log.warning("reload: watching only the first %d files under %s", MAX_FILES, self._roots)
        log.info("reload: watching %d files under %s", len(self._files), ", ".join(self._roots))
        self._next_scan = time.monotonic() + INTERVAL
        self._master = master

    def _scan(self) -> Snapshot:
        return snapshot([*self._extra, *source_files(self._roots)])

    def next_deadline(self) -> float | None:
        return self._next_scan

    def tick(self, status: MasterStatus, now: float) -> None:
        if now < self._next_scan:
            return
        self._next_scan = now + INTERVAL
        files = self._scan()
        changed = first_change(self._files, files)
        self._files = files
        if changed is not None:
            log.info("reload: source changed path=%s", changed)
            self._master.handle_command(Command.RELOAD)
