"""--reload: a new generation of workers (the HUP path) when a watched source file changes.

The development loop gunicorn's --reload gives — edit, save, reload the page.  Watched: every
`*.py` file under the directories the app is imported from (pythonpath, chdir, else the working
directory), every `reload_extra_files` entry, and the --paste ini.  A change is a HUP: workers
of the new generation import the new code, and a change that breaks the import fails the reload
while the old generation serves on, as any failed reload does.

Two ways to see a change (--reload-engine): kernel events through watchfiles (`inotify`; `auto`
when the `reload` extra is installed), delivered on a pipe the master's loop selects on (see
file_events); or polling, once a second from the master's own loop (a deadline like any other,
no thread), by size and modification time — no dependency, and the fallback when events fail.
Both are bounded (MAX_FILES, MAX_DIRECTORIES): they are for development trees, not for whole
filesystems.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import sys
import time
from collections.abc import Iterable, Iterator

from unitcorn import pastedeploy
from unitcorn.app import search_paths
from unitcorn.arbiter import file_events
from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.file_events import FileEvents
from unitcorn.arbiter.lifecycle import Lifecycle, MasterRequests, MasterStatus
from unitcorn.logs import ERROR_LOGGER
from unitcorn.settings.values import Settings

log = logging.getLogger(ERROR_LOGGER)

INTERVAL = 1.0  # seconds between scans
EXIT_WAIT = 0.5  # at most this long at exit for the events' thread to end (it takes one step)
MAX_FILES = 20_000
MAX_DIRECTORIES = 2_000  # one inotify watch each; kernels allow 8192 per user at the least
# Directories that hold no code of the app's own, or too much of somebody else's.
_SKIPPED = {"__pycache__", "node_modules", "site-packages", "dist-packages"}

Snapshot = dict[str, tuple[int, int]]  # path -> (size, mtime in ns)


def watched_roots(settings: Settings) -> list[str]:
    roots = search_paths(settings.pythonpath, settings.chdir) or [os.getcwd()]
    return [os.path.abspath(root) for root in roots]


def extra_files(settings: Settings) -> list[str]:
    """reload_extra_files, and the --paste ini: its sections are the application too."""
    files = [str(path) for path in settings.reload_extra_files]
    if settings.paste:
        files.append(pastedeploy.split_target(settings.paste)[0])
    return [os.path.abspath(path) for path in files]


def uses_file_events(engine: str) -> bool:
    return engine == "inotify" or (engine == "auto" and file_events.is_available())


def _code_directories(roots: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """(directory, file names) under `roots`, skipping hidden directories, caches and virtual
    environments."""
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [
                name for name in subdirectories
                if not name.startswith(".") and name not in _SKIPPED
                and not os.path.exists(os.path.join(directory, name, "pyvenv.cfg"))
            ]
            yield directory, files


def source_files(roots: Iterable[str]) -> Iterator[str]:
    """Every *.py under `roots`, as _code_directories walks them."""
    for directory, files in _code_directories(roots):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def watched_directories(roots: Iterable[str], extra: Iterable[str]) -> list[str]:
    """The directories to watch for events: the code's (at most MAX_DIRECTORIES) and those
    holding the extra files (a file saved by renaming a new copy over it is a new inode, so
    the directory is watched, not the file)."""
    directories: list[str] = []
    for directory, _files in _code_directories(roots):
        if len(directories) >= MAX_DIRECTORIES:
            break
        directories.append(directory)
    directories += [os.path.dirname(path) for path in extra if os.path.isdir(os.path.dirname(path))]
    return sorted(set(directories))


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
    """A master plug-in: reload when something changed, seen by events or by a scan on its deadline."""

    def __init__(self, settings: Settings, master: MasterRequests) -> None:
        # A .pyc is trusted when the source's size and whole-second mtime match: a file saved
        # twice within a second at the same size would be served stale. Workers are forked, so
        # this reaches them, and preloading masters too.
        sys.dont_write_bytecode = True
        self._master = master
        self._selector: selectors.BaseSelector | None = None  # the master's, once it runs
        self._roots = watched_roots(settings)
        self._extra = extra_files(settings)
        self._events: FileEvents | None = None
        self._is_attached = False  # the events' pipe is registered in the master's selector
        self._has_watched = False
        self._files: Snapshot = {}
        self._next_scan: float | None = None
        if uses_file_events(settings.reload_engine):
            self._start_events()
        else:
            self._start_polling()

    # ---- the master's side of a Lifecycle ---------------------------------------------------

    def open(self, selector: selectors.BaseSelector) -> None:
        """The master's loop starts: the events' pipe joins its selector (the kernel queued
        whatever changed meanwhile)."""
        self._selector = selector
        self._attach()

    def next_deadline(self) -> float | None:
        return self._next_scan

    def tick(self, status: MasterStatus, now: float) -> None:
        if self._next_scan is None or now < self._next_scan:
            return
        self._next_scan = now + INTERVAL
        files = self._scan()
        changed = first_change(self._files, files)
        self._files = files
        if changed is not None:
            log.info("reload: source changed path=%s", changed)
            self._master.handle_command(Command.RELOAD)

    def stopping(self, status: MasterStatus) -> None:
        self._stop_events()
        self._next_scan = None

    def finished(self, status: MasterStatus) -> None:
        self._stop_events(wait=EXIT_WAIT)

    # ---- polling ------------------------------------------------------------------------

    def _start_polling(self) -> None:
        self._files = self._scan()
        if len(self._files) >= MAX_FILES:
            log.warning("reload: watching only the first %d files under %s", MAX_FILES, self._roots)
        log.info("reload: watching %d files under %s engine=poll", len(self._files),
                 ", ".join(self._roots))
        self._next_scan = time.monotonic() + INTERVAL

    def _scan(self) -> Snapshot:
        return snapshot([*self._extra, *source_files(self._roots)])

    # ---- events -------------------------------------------------------------------------

    def _start_events(self) -> None:
        directories = watched_directories(self._roots, self._extra)
        if len(directories) >= MAX_DIRECTORIES:
            log.warning("reload: watching only the first %d directories under %s",
                        MAX_DIRECTORIES, self._roots)
        try:
            self._events = FileEvents(directories, self._is_wanted)
        except Exception as exc:  # e.g. the kernel's inotify watch limit: polling still works
            log.warning("reload: file events unavailable, polling instead reason=%s", exc)
            self._start_polling()
            return
        self._is_attached = False
        # Said once; a rescan after each change says it at debug level.
        log.log(logging.DEBUG if self._has_watched else logging.INFO,
                "reload: watching %d directories under %s engine=inotify", len(directories),
                ", ".join(self._roots))
        self._has_watched = True

    def _is_wanted(self, path: str) -> bool:
        """A source file, an extra file, or a new directory that may hold code (then watched
        too, as the next scan for events includes it). Called in the events' thread: reads
        only what never changes after start."""
        if path.endswith(".py") or path in self._extra:
            return True
        name = os.path.basename(path)
        return not name.startswith(".") and name not in _SKIPPED and os.path.isdir(path)

    def _attach(self) -> None:
        if self._events is None or self._selector is None:
            return  # polling, or the loop has not started yet (open attaches then)
        self._selector.register(self._events.reader, selectors.EVENT_READ, self._on_events)
        self._is_attached = True

    def _on_events(self) -> None:
        assert self._events is not None
        paths, has_failed = self._events.read_changes()
        if has_failed:
            self._stop_events()
            self._start_polling()
            return
        if paths:
            log.info("reload: source changed path=%s", paths[0])
            # Watch afresh: a new package directory must be watched from the new generation on.
            self._stop_events()
            self._start_events()
            self._attach()
            self._master.handle_command(Command.RELOAD)

    def _stop_events(self, wait: float = 0.0) -> None:
        if self._events is None:
            return
        if self._is_attached and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):  # a closed selector, at exit
                self._selector.unregister(self._events.reader)
        self._events.close(wait)
        self._events = None
        self._is_attached = False
