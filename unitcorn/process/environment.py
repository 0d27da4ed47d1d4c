"""The process environment a configuration asks for: the operator's original one plus --env, and chdir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol


class EnvironmentSettings(Protocol):
    """What this needs of unitcorn.settings.Settings (process/ imports nothing above it)."""

    @property
    def env(self) -> dict[str, str]: ...

    @property
    def chdir(self) -> str: ...


def apply_environment(original: Mapping[str, str], settings: EnvironmentSettings) -> None:
    """Make the process environment the original one plus this configuration's --env, and
    enter its chdir: at start (cli.py), and again on every reload or its revert (the master)."""
    if os.environ != original:
        # Only when it differs: clearing rebuilds the C environ, and setproctitle (on its first
        # use) needs the block the kernel laid out after argv to still be in place.
        os.environ.clear()
        os.environ.update(original)
    os.environ.update(settings.env)
    if settings.chdir:
        os.chdir(settings.chdir)
