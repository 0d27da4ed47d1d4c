"""Write setting values as text: the --print-config report, and the one-value form docs use."""

from __future__ import annotations

from unitcorn.binds import Bind
from unitcorn.settings.callables import no_op
from unitcorn.settings.catalog import SETTINGS
from unitcorn.settings.setting import Setting
from unitcorn.settings.values import Settings


def render_print_config(settings: Settings) -> str:
    """One "name = value  (origin)" line per setting, sorted by name, then ignored keys and
    the warnings a start would log."""
    lines = [
        f"{setting.name} = {show(setting, getattr(settings, setting.name))}"
        f"  ({settings.origin(setting.name)})"
        for setting in sorted(SETTINGS, key=lambda setting: setting.name)
    ]
    lines += [f"# ignored: {name}  ({source})" for name, source in settings.ignored]
    lines += [f"# warning: {warning}" for warning in settings.warnings]
    return "\n".join(lines) + "\n"


def show(setting: Setting, value: object) -> str:
    return setting.show(value) if setting.show else format_value(value)


def format_value(value: object) -> str:
    if value is no_op:
        return "(no-op)"
    if isinstance(value, Bind):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(format_value(item) for item in value)) + "}"
    if callable(value):
        module = getattr(value, "__module__", None) or "?"
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        return f"{module}.{name}"
    return repr(value)
