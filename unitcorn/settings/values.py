"""Settings: the resolved value of every setting, and where each value came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from unitcorn.settings.catalog import SETTINGS_BY_NAME
from unitcorn.settings.fields import SettingFields


class Settings(SettingFields):
    """Read-only: ``s.workers``, ``s.bind`` (list[Bind]), ``s.on_starting`` (callable) …

    A reload builds a new Settings with load_settings(); nothing changes one in place, so a
    failed reload leaves the old one intact. Each setting's type is declared in fields.py.
    """

    _values: dict[str, object]
    _origins: dict[str, str]
    config_source: str | None
    ignored: list[tuple[str, str]]
    warnings: list[str]
    show_help: bool
    show_version: bool

    def __init__(
        self,
        values: Mapping[str, object],
        origins: Mapping[str, str],
        *,
        config_source: str | None = None,
        ignored: list[tuple[str, str]] | None = None,
        warnings: list[str] | None = None,
        show_help: bool = False,
        show_version: bool = False,
    ) -> None:
        missing = SETTINGS_BY_NAME.keys() - values.keys()
        if missing:
            raise ValueError(f"no value for {', '.join(sorted(missing))}")
        set_ = object.__setattr__  # bypass our read-only __setattr__, once
        set_(self, "_values", dict(values))
        set_(self, "_origins", dict(origins))
        set_(self, "config_source", config_source)  # the config file loaded, or None
        set_(self, "ignored", list(ignored or []))  # (gunicorn key, source) we did not apply
        # What the operator should hear about once: a gunicorn setting given a value that
        # unitcorn does not apply, a config-file name that looks like a misspelt setting.
        set_(self, "warnings", list(warnings or []))
        set_(self, "show_help", show_help)  # -h: the CLI prints help; only defaults are loaded
        set_(self, "show_version", show_version)  # -v: likewise, the version

    if not TYPE_CHECKING:
        # Hidden from mypy, which would otherwise accept any name, a misspelt one too, as a
        # setting; it reads the names and types from SettingFields instead.

        def __getattr__(self, name: str) -> object:
            # Only called when normal lookup fails, i.e. for setting names.
            if not name.startswith("_"):
                try:
                    return self._values[name]
                except KeyError:
                    pass
            raise AttributeError(f"no setting named {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are read-only; call load_settings() for new ones")

    def __repr__(self) -> str:
        return f"<Settings config_source={self.config_source!r} app_uri={self.app_uri!r}>"

    @property
    def app_uri(self) -> str | None:
        """MODULE:CALLABLE from the command line, else the config file's wsgi_app; with --paste,
        the ini (``/abs/site.ini#name``), which wins as in gunicorn."""
        return self.paste or self.wsgi_app

    @property
    def effective_worker_class(self) -> str:
        # gunicorn quietly upgrades sync to gthread when threads > 1; so do we.
        return "gthread" if self.worker_class == "sync" and self.threads > 1 else self.worker_class

    @property
    def env(self) -> dict[str, str]:
        """raw_env (--env KEY=VALUE) as a mapping; a later KEY wins."""
        pairs = (pair.partition("=") for pair in self.raw_env)
        return {key: value for key, _, value in pairs}

    def origin(self, name: str) -> str:
        """Where the value came from: "default", a config file path, "python:MODULE",
        "UNITCORN_CMD_ARGS", "GUNICORN_CMD_ARGS", "command line", or "environment (VAR)"."""
        if name not in self._origins:
            raise KeyError(f"no setting named {name!r}")
        return self._origins[name]

    def as_dict(self) -> dict[str, object]:
        return dict(self._values)
