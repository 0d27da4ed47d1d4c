"""The shape of one setting's declaration, and of a gunicorn key we accept but ignore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Action = Literal["store", "append", "store_true", "store_false"]


@dataclass(frozen=True)
class Setting:
    """Everything about one setting; parser, config keys, docs and --print-config derive from it.

    ``default`` is a raw value, converted like any other (so a bad default fails the tests).
    """

    name: str  # the config-file key, gunicorn's spelling
    section: str
    default: object
    convert: Callable[[object], object]  # raw -> value; raises ValueError/TypeError("why")
    help: str
    flags: tuple[str, ...] = ()  # empty: config file only (hooks, wsgi_app)
    action: Action = "store"
    metavar: str | None = None
    env: str | None = None  # an environment variable that replaces the default
    from_env: Callable[[str], object] | None = None  # env text -> raw value; None: the text
    default_doc: str | None = None  # how docs show a default that depends on the environment
    hook_params: tuple[str, ...] = ()  # a server hook's arguments, gunicorn's names and order
    relative_to_cwd: bool = False  # a relative path means relative to the launch directory
    gunicorn: bool = True  # gunicorn has this setting with the same name and flags
    show: Callable[[object], str] | None = None  # how --print-config and docs write a value
    const: object = None  # not None: the flag's value is optional, and this when left out

    @property
    def is_hook(self) -> bool:
        return bool(self.hook_params)


@dataclass(frozen=True)
class IgnoredSetting:
    """A gunicorn setting unitcorn does not implement but accepts, so existing configs load."""

    name: str
    flags: tuple[str, ...] = ()
    action: Action = "store"
    metavar: str | None = None
