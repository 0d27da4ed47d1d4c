"""Set the process title (`unitcorn: master [NAME]`), when setproctitle is installed."""

from __future__ import annotations

from collections.abc import Callable

_setproctitle: Callable[[str], None] | None
try:
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # optional at run time: titles are a convenience, not a contract
    _setproctitle = None


def set_title(role: str) -> None:
    if _setproctitle is not None:
        _setproctitle(f"unitcorn: {role}")
