"""Call the operator's server hooks (gunicorn's names and signatures) without letting them kill us."""

from __future__ import annotations

import logging
from typing import Any

from unitcorn.lognames import ERROR_LOGGER
from unitcorn.settings.values import Settings

log = logging.getLogger(ERROR_LOGGER)


def call_hook(settings: Settings, name: str, *args: Any) -> bool:
    """Run hook `name` from `settings`; log and swallow what it raises. Returns False if it raised.

    A hook is operator code running inside the master: a bug in it must never take the whole
    server down, so the exception is logged with its traceback and the caller carries on.
    """
    hook = getattr(settings, name, None)
    if hook is None:
        return True
    try:
        hook(*args)
    except Exception:
        log.exception("hook failed hook=%s", name)
        return False
    return True
