"""load_settings: layer defaults, environment, config file, *_CMD_ARGS and argv into Settings."""

from __future__ import annotations

import difflib
import inspect
import os
import shlex
import types
from collections.abc import Callable, Mapping, Sequence

from unitcorn.pastedeploy import has_logging_config, split_target
from unitcorn.settings.catalog import (
    IGNORED_BY_NAME,
    REFUSED_BY_NAME,
    SETTINGS,
    SETTINGS_BY_NAME,
)
from unitcorn.settings.cmdline import CommandLine, parse_command_line
from unitcorn.settings.configfile import find_default_config, read_config
from unitcorn.settings.errors import ConfigError, UsageError, show_value
from unitcorn.settings.paths import check_paths
from unitcorn.settings.tls import check_tls
from unitcorn.settings.values import Settings

COMMAND_LINE = "command line"
DEFAULT = "default"
# Ours wins; gunicorn's is read only when ours is unset, so a gunicorn deployment works as is.
CMD_ARGS_VARIABLES = ("UNITCORN_CMD_ARGS", "GUNICORN_CMD_ARGS")


def load_settings(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Settings:
    """Resolve every setting from its sources; lowest precedence first:

    defaults < environment defaults (WEB_CONCURRENCY, PORT, …) < config file
    < UNITCORN_CMD_ARGS (or GUNICORN_CMD_ARGS) < argv.

    Depends only on its arguments (argv without the program name, the environment, the launch
    directory) and the files they name, and changes none of them — the master calls it again
    with the original environment to reload from scratch. With -h or -v only the defaults are
    resolved, so help works whatever the config says. Raises ConfigError or UsageError.
    """
    environ = dict(os.environ if environ is None else environ)
    cwd = os.path.abspath(os.getcwd() if cwd is None else cwd)
    command_line = parse_command_line(argv, COMMAND_LINE)
    cmd_args_source, cmd_args = _cmd_args_from_env(environ)

    layers = _Layers(cwd)
    layers.apply(DEFAULT, {setting.name: setting.default for setting in SETTINGS})
    if command_line.show_help or command_line.show_version:
        return layers.settings(
            config_source=None,
            show_help=command_line.show_help,
            show_version=command_line.show_version,
        )
    for setting in SETTINGS:
        text = environ.get(setting.env) if setting.env else None
        if text:  # an empty variable counts as unset, as shells and container tools intend
            raw = setting.from_env(text) if setting.from_env else text
            layers.apply_one(setting.name, raw, f"environment ({setting.env})")

    config_source = _apply_config_file(layers, command_line, cmd_args, cmd_args_source, cwd)
    layers.apply(cmd_args_source, cmd_args.values)
    layers.apply(COMMAND_LINE, command_line.values)
    _apply_paste_logging(layers)

    settings = layers.settings(config_source=config_source)
    check_paths(settings)
    check_tls(settings)  # loads the certificate and key: a bad one fails here, not in a worker
    if settings.app_uri is None and not settings.print_config:
        raise UsageError("no application module specified (give MODULE:CALLABLE)")
    return settings


def _apply_paste_logging(layers: _Layers) -> None:
    """gunicorn's --paste: an ini with a [loggers] section is also the logging config, unless
    one was given (gunicorn sets logconfig before reading the config file and flags)."""
    target = layers.values.get("paste")
    if not isinstance(target, str) or layers.origins.get("logconfig") != DEFAULT:
        return
    path, _ = split_target(target)
    if has_logging_config(path):
        layers.apply_one("logconfig", path, f"paste ({layers.origins['paste']})")


def _cmd_args_from_env(environ: Mapping[str, str]) -> tuple[str, CommandLine]:
    for name in CMD_ARGS_VARIABLES:
        if name in environ:
            try:
                args = shlex.split(environ[name])
            except ValueError as exc:
                raise UsageError(f"{name}: {exc}") from None
            return name, parse_command_line(args, name)
    return CMD_ARGS_VARIABLES[0], CommandLine()


def _apply_config_file(
    layers: _Layers,
    command_line: CommandLine,
    cmd_args: CommandLine,
    cmd_args_source: str,
    cwd: str,
) -> str | None:
    """Load the config file that -c names (argv first, then *_CMD_ARGS) or the default one."""
    # -c is consumed here, not layered: its value is the file actually loaded.
    requested_by_argv = command_line.values.pop("config", None)
    requested_by_env = cmd_args.values.pop("config", None)
    if requested_by_argv is not None:
        location, requested_from = str(requested_by_argv), COMMAND_LINE
    elif requested_by_env is not None:
        location, requested_from = str(requested_by_env), cmd_args_source
    else:
        found = find_default_config(cwd)
        if found is None:
            return None
        location, requested_from = found, DEFAULT
    try:
        label, names = read_config(location, cwd)
    except ValueError as exc:
        raise ConfigError("config", location, requested_from, str(exc)) from None
    layers.apply_one("config", label, requested_from)
    layers.apply(label, _settings_in(names, label, layers))
    return label


def _settings_in(names: Mapping[str, object], label: str, layers: _Layers) -> dict[str, object]:
    """The config file's names that are settings; others are helpers, imports … and skipped,
    with a warning for one that looks like a misspelt setting."""
    found: dict[str, object] = {}
    for name, value in names.items():
        if name == "config":
            layers.ignore(name, value, label)  # gunicorn also ignores -c inside a config file
        elif name in SETTINGS_BY_NAME:
            found[name] = value
        elif name in IGNORED_BY_NAME or name in REFUSED_BY_NAME:
            layers.ignore(name, value, label)
        else:
            suggestion = _misspelt_setting(name, value)
            if suggestion:
                layers.warnings.append(
                    f"{name} (from {label}): not a setting, ignored; did you mean {suggestion}?"
                )
    return found


_KNOWN_NAMES = (*SETTINGS_BY_NAME, *IGNORED_BY_NAME, *REFUSED_BY_NAME)


def _misspelt_setting(name: str, value: object) -> str | None:
    """The setting a config-file name was probably meant to be, or None.

    gunicorn skips unknown names silently, because a config file also holds imports, helper
    functions and constants. So only a lowercase, public name close to a setting's counts;
    a module or class never; a function only if it is close to a server hook and takes as
    many arguments (a helper `worker_count()` is not a misspelt `worker_int(worker)`).
    """
    if name.startswith("_") or name != name.lower():
        return None
    if isinstance(value, (types.ModuleType, type)):
        return None
    if callable(value):
        arity = _positional_arity(value)
        candidates: Sequence[str] = [
            setting.name for setting in SETTINGS
            if setting.is_hook and len(setting.hook_params) == arity
        ]
    else:
        candidates = _KNOWN_NAMES
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return matches[0] if matches else None


def _positional_arity(function: Callable[..., object]) -> int | None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for parameter in parameters if parameter.kind in positional)


class _Layers:
    """Values and origins so far; each source applied later replaces what it names."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.values: dict[str, object] = {}
        self.origins: dict[str, str] = {}
        self.ignored: list[tuple[str, str]] = []
        # An ignored setting's latest non-default value: (raw, source); one warning each.
        self.unapplied: dict[str, tuple[object, str]] = {}
        # A refused setting's latest value: only the last source's is judged, as for others.
        self.refused: dict[str, tuple[object, str]] = {}
        self.warnings: list[str] = []

    def apply(self, source: str, raws: Mapping[str, object]) -> None:
        for name, raw in raws.items():
            if name in IGNORED_BY_NAME or name in REFUSED_BY_NAME:
                self.ignore(name, raw, source)
        # Declaration order, so the first error reported is stable.
        for setting in SETTINGS:
            if setting.name in raws:
                self.apply_one(setting.name, raws[setting.name], source)

    def apply_one(self, name: str, raw: object, source: str) -> None:
        setting = SETTINGS_BY_NAME[name]
        value = raw
        if setting.relative_to_cwd and isinstance(raw, str):
            # Relative to the launch directory, even when a reload runs after --chdir.
            value = os.path.join(self.cwd, raw)
        try:
            self.values[name] = setting.convert(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(name, raw, source, str(exc)) from None
        self.origins[name] = source

    def ignore(self, name: str, raw: object, source: str) -> None:
        """A gunicorn key unitcorn does not apply: record it (and whether its value, unlike
        gunicorn's default, would have changed something), or keep it to be judged last."""
        if name in REFUSED_BY_NAME:
            self.refused[name] = (raw, source)
            return
        self.ignored.append((name, source))
        item = IGNORED_BY_NAME.get(name)
        if item is None:
            return
        self.unapplied.pop(name, None)  # a later source decides, and keeps its place last
        if not item.is_default(raw):
            self.unapplied[name] = (raw, source)

    def settings(self, config_source: str | None, **flags: bool) -> Settings:
        for name, (raw, source) in self.refused.items():
            refused = REFUSED_BY_NAME[name]
            if raw and not refused.is_default(raw):
                raise ConfigError(name, raw, source, refused.why)
        warnings = list(self.warnings)
        for name, (raw, source) in self.unapplied.items():
            warnings.append(
                f"{name} = {_show_raw(raw)} (from {source}): ignored: "
                f"{IGNORED_BY_NAME[name].why}"
            )
        return Settings(
            self.values, self.origins, config_source=config_source, ignored=self.ignored,
            warnings=warnings, **flags,
        )


def _show_raw(raw: object) -> str:
    # A hook (ssl_context, the dirty_* hooks) by its name, not "<function … at 0x7f…>".
    if callable(raw):
        return f"{getattr(raw, '__module__', '?')}.{getattr(raw, '__qualname__', '?')}"
    return show_value(raw)
