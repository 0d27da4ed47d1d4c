"""HUP: reload the configuration from scratch and replace every worker, the old ones serving meanwhile.

The effects a reload needs, with explicit arguments: load the new configuration, app and
listeners. When a reload starts, completes, fails or reverts is decided in decisions.py
(`reload_requested`, `reload_ended`, `exit_outcome`) on the phases of state.py; master.py
switches generations. See docs/SIGNALS.md for the operator's view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unitcorn.app import AppLoadError, load_configured_app, purge_app_modules
from unitcorn.process.environment import apply_environment
from unitcorn.settings import ConfigError, UsageError, load_settings
from unitcorn.settings.values import Settings
from unitcorn.sockets import BindError, Listener, explicit_umask, open_listeners


class ReloadFailed(Exception):
    """The new configuration cannot be served; the message says why (the old one serves on)."""


@dataclass(frozen=True)
class NextGeneration:
    """A new configuration, loaded and bound: what the master switches to on HUP."""

    settings: Settings
    app: Any
    listeners: list[Listener]


def prepare_generation(
    argv: list[str],
    environ_orig: dict[str, str],
    start_cwd: str,
    board_capacity: int,
    current_settings: Settings,
    current_listeners: list[Listener],
) -> NextGeneration:
    """Load the configuration from scratch (as at start), the app if preloaded, and the
    listeners it binds; raises ReloadFailed with the environment of `current_settings` back."""
    try:
        settings = load_settings(argv, environ_orig, cwd=start_cwd)
        check_worker_bounds(settings, board_capacity)
    except (ConfigError, UsageError) as exc:
        raise ReloadFailed(f"configuration: {exc}") from exc
    apply_environment(environ_orig, settings)
    app = None
    if settings.preload_app:
        try:
            purge_app_modules(settings.pythonpath, settings.chdir)
            app = load_configured_app(settings)
        except AppLoadError as exc:
            apply_environment(environ_orig, current_settings)
            raise ReloadFailed(f"application: {exc}") from exc
    try:
        listeners = open_listeners(
            binds_for(settings, current_listeners),
            settings.backlog,
            settings.reuse_port,
            inherited=current_listeners,
            owner=(settings.user, settings.group),
            umask=explicit_umask(settings),
        )
    except BindError as exc:
        apply_environment(environ_orig, current_settings)
        raise ReloadFailed(f"listeners: {exc}") from exc
    return NextGeneration(settings, app, listeners)


def binds_for(settings: Settings, inherited: list[Listener]) -> list[Any]:
    """Under socket activation with no `bind` configured, serve exactly systemd's sockets
    (binding the default 127.0.0.1:8000 as well would surprise everyone)."""
    if settings.origin("bind") == "default" and any(lst.is_from_socket_unit for lst in inherited):
        return []
    return list(settings.bind)


def check_worker_bounds(settings: Settings, board_capacity: int | None = None) -> None:
    """Raise ConfigError unless `workers` fits under `max_workers`, and `max_workers` fits the
    heartbeat board sized at start (`board_capacity`, None before there is one).

    The board holds twice `max_workers`: during a reload the old generation serves until the
    new one has booted, so both are alive at once.
    """
    bound, bound_from = settings.max_workers, settings.origin("max_workers")
    if settings.workers > bound:
        raise ConfigError(
            "workers", settings.workers, settings.origin("workers"),
            f"must be at most max_workers = {bound} (from {bound_from})",
        )
    if board_capacity is not None and 2 * bound > board_capacity:
        raise ConfigError(
            "max_workers", bound, bound_from,
            f"cannot rise above {board_capacity // 2} (its value at start) without a restart "
            "or an upgrade (USR2)",
        )
