"""--logger-class: run an operator's gunicorn-style logger class (a gunicorn.glogging.Logger subclass).

Such a class is built with the settings (`cls(cfg)`); its `setup(cfg)` puts handlers on the
`gunicorn.error` and `gunicorn.access` loggers (unitcorn's own loggers then forward to those,
see unitcorn.logs) and its `access(resp, req, environ, request_time)` writes each access line —
which is what such classes override: to drop health checks, add fields, write JSON. gunicorn's
own classes ("gunicorn.glogging.Logger", its default, "simple" and the statsd one) mean
unitcorn's built-in logging, which does what they do.
"""

from __future__ import annotations

import datetime
import importlib
import os
from typing import Any

from unitcorn.settings.values import Settings

# Names that select unitcorn's own logging: gunicorn's default and its aliases for it, and
# its statsd logger (--statsd-host turns unitcorn's statsd on by itself).
BUILT_IN = frozenset({
    "gunicorn.glogging.Logger", "glogging.Logger", "simple", "gunicorn.instrument.statsd.Statsd",
})


class LoggerClassError(Exception):
    """The class cannot be imported or built; the message says why."""


class GunicornConfigView:
    """The settings as a gunicorn Logger reads them: there `proc_name` is never None, and
    `user`/`group` are numbers (the process's own when not set), which it chowns log files to."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._settings, name)

    @property
    def proc_name(self) -> str:
        return str(self._settings.proc_name or self._settings.app_uri or "unitcorn")

    @property
    def user(self) -> int:
        user = self._settings.user
        return os.geteuid() if user is None else user

    @property
    def group(self) -> int:
        group = self._settings.group
        return os.getegid() if group is None else group

    uid = user
    gid = group


def build_logger(settings: Settings) -> Any | None:
    """An instance of the configured logger class, or None for unitcorn's built-in logging."""
    path = settings.logger_class
    if not path or path in BUILT_IN:
        return None
    module_name, _, class_name = path.removeprefix("egg:").rpartition(".")
    if not module_name:
        raise LoggerClassError(f"{path!r} is not a dotted path (package.module.Class)")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise LoggerClassError(f"cannot import it: {exc}") from None
    try:
        return cls(GunicornConfigView(settings))
    except Exception as exc:  # noqa: BLE001 - operator code: whatever it raises is the reason
        raise LoggerClassError(f"building it failed: {type(exc).__name__}: {exc}") from None


def log_access(logger: Any, response: Any, request: Any, environ: dict[str, Any], duration: float) -> None:
    """Hand one request to the logger's access(), with gunicorn's request_time (a timedelta)."""
    logger.access(response, request, environ, datetime.timedelta(seconds=duration))
