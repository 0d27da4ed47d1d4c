"""Check, before anything starts, that the files settings name can be created or written.

A log file, pidfile or unix socket in a missing or read-only directory would otherwise fail
later as a traceback (or, for the pidfile, after the sockets are bound); as a ConfigError it is
one line naming the setting, its value and its source, from a start and from --check-config.
"""

from __future__ import annotations

import os

from unitcorn.settings.errors import ConfigError
from unitcorn.settings.values import Settings

STDIO = "-"


def check_paths(settings: Settings) -> None:
    """Raise ConfigError for the first errorlog, accesslog, pidfile or unix bind that cannot be
    written. Relative paths are taken from chdir, where the master opens them."""
    base = str(settings.chdir)
    for name in ("errorlog", "accesslog", "pidfile"):
        value = getattr(settings, name)
        if value and value != STDIO:
            _check(name, str(value), _problem_with_file(os.path.join(base, value)), settings)
    for bind in settings.bind:
        # An abstract socket (@name) has no file to create.
        if bind.kind == "unix" and not bind.path.startswith("@"):
            problem = _problem_with_socket(os.path.join(base, bind.path))
            _check("bind", str(bind), problem, settings)


def _check(name: str, value: str, problem: str | None, settings: Settings) -> None:
    if problem:
        raise ConfigError(name, value, settings.origin(name), problem)


def _problem_with_file(path: str) -> str | None:
    """Why a file cannot be opened for appending (created if missing), or None."""
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path):
        return None if _can(path, os.W_OK) else f"{path} is not writable"
    return _problem_with_directory(path)


def _problem_with_socket(path: str) -> str | None:
    # An existing file may be a socket systemd passes us (adopted, not created): then its
    # directory need not be writable by us. A stale one is checked when it is bound.
    if os.path.exists(path):
        return None
    return _problem_with_directory(path)


def _problem_with_directory(path: str) -> str | None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"directory {directory} does not exist"
    if not _can(directory, os.W_OK | os.X_OK):
        return f"cannot create files in {directory} (permission denied)"
    return None


def _can(path: str, mode: int) -> bool:
    # The effective ids: what open() will be checked against.
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
