"""The operator's own logging configuration: gunicorn's --log-config, logconfig_dict, --log-config-json.

Configs written for gunicorn name its loggers, `gunicorn.error` and `gunicorn.access`; unitcorn
logs through `unitcorn.error` and `unitcorn.access`. So, as in gunicorn, the operator's config
is applied over the defaults below, and then each unitcorn logger a config does not name itself
forwards its records to the gunicorn logger of the same role: whatever handlers, level,
formatter and propagation the config gave `gunicorn.error` apply to unitcorn's error log.
"""

from __future__ import annotations

import configparser
import json
import logging
import logging.config
import os
from dataclasses import dataclass, field
from typing import Any

from unitcorn.settings.errors import ConfigError
from unitcorn.settings.values import Settings

# gunicorn's glogging.CONFIG_DEFAULTS: a dict (or JSON) config is laid over these, key by key.
CONFIG_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO", "handlers": ["error_console"], "propagate": True, "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO", "handlers": ["console"], "propagate": True, "qualname": "gunicorn.access",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
        "error_console": {
            "class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter",
        },
    },
}

# What a config may go wrong with, as dictConfig and fileConfig report it.
_CONFIG_ERRORS = (ValueError, TypeError, AttributeError, ImportError, KeyError, configparser.Error)


@dataclass
class LogConfig:
    """One operator logging configuration, read and checked, not yet applied."""

    setting: str  # which setting it came from, for error messages
    source: str  # where that setting came from
    value: object  # the setting's value, for error messages
    config: dict[str, Any] | None = None  # for dictConfig
    ini_path: str = ""  # for fileConfig
    loggers: frozenset[str] = field(default_factory=frozenset)  # the loggers it configures

    def apply(self) -> None:
        try:
            if self.config is not None:
                logging.config.dictConfig(self.config)
            else:
                here = os.path.dirname(self.ini_path)
                logging.config.fileConfig(
                    self.ini_path, defaults={"__file__": self.ini_path, "here": here},
                    disable_existing_loggers=False,
                )
        except _CONFIG_ERRORS as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""  # dictConfig's real reason
            raise self.error(f"the logging configuration failed: {exc}{cause}") from None

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.setting, self.value, self.source, message)


def read_log_config(settings: Settings) -> LogConfig | None:
    """The configuration to apply, gunicorn's precedence: logconfig_dict, then _json, then the ini.

    Raises ConfigError for a file that is missing or unreadable: nothing is changed yet.
    """
    if settings.logconfig_dict:
        plan = _plan(settings, "logconfig_dict", settings.logconfig_dict)
        plan.config = _over_defaults(settings.logconfig_dict)
    elif settings.logconfig_json:
        path = settings.logconfig_json
        plan = _plan(settings, "logconfig_json", path)
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            raise plan.error(f"cannot read it: {exc}") from None
        if not isinstance(loaded, dict):
            raise plan.error("must hold a JSON object (a logging.config.dictConfig dictionary)")
        plan.config = _over_defaults(loaded)
    elif settings.logconfig:
        plan = _plan(settings, "logconfig", settings.logconfig)
        plan.ini_path = settings.logconfig
        plan.loggers = _ini_loggers(plan)
        return plan
    else:
        return None
    plan.loggers = frozenset(plan.config.get("loggers") or ())
    return plan


def _plan(settings: Settings, name: str, value: object) -> LogConfig:
    return LogConfig(setting=name, source=settings.origin(name), value=value)


def _over_defaults(config: dict[str, Any]) -> dict[str, Any]:
    # gunicorn's update(): a key the operator gives ("loggers", "handlers"…) replaces the default's.
    merged = dict(CONFIG_DEFAULTS)
    merged.update(config)
    return merged


def _ini_loggers(plan: LogConfig) -> frozenset[str]:
    """The logger names (qualname) an ini file configures; reading it also checks it exists."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(plan.ini_path, encoding="utf-8") as handle:
            parser.read_file(handle)
        keys = [key.strip() for key in parser.get("loggers", "keys").split(",") if key.strip()]
    except (OSError, configparser.Error) as exc:
        raise plan.error(f"cannot read it: {exc}") from None
    names = set()
    for key in keys:
        if key != "root":
            names.add(parser.get(f"logger_{key}", "qualname", fallback=key))
    return frozenset(names)


class ForwardHandler(logging.Handler):
    """Hands each record to another logger, as if logged there (unitcorn.error → gunicorn.error)."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            record.name = self.target.name  # filters and formats keyed on gunicorn's names match
            self.target.handle(record)
