"""HUP: reload the configuration from scratch and replace every worker, the old ones serving meanwhile.

Mixed into `Master` (master.py); this file is where "what happens on SIGHUP" lives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unitcorn.app import AppLoadError, load_app, purge_app_modules
from unitcorn.hooks import call_hook
from unitcorn.logs import configure_logging, set_log_context
from unitcorn.process.environment import apply_environment
from unitcorn.settings import ConfigError, UsageError, load_settings
from unitcorn.sockets import BindError, Listener, explicit_umask, open_listeners

if TYPE_CHECKING:
    from unitcorn.arbiter.master import Master

@dataclass
class ReloadBase:
    """What a reload falls back to if its new generation fails to boot."""

    settings: Any
    generation: int
    num_workers: int
    app: Any


class Reloader:
    """The master's reload: one at a time, reverting when the new generation cannot boot."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.base: ReloadBase | None = None
        self.is_requested_again = False
        # Generation numbers are never reused, even after a reverted reload: the failed
        # generation's workers may still be on their way out when the next one starts.
        self.newest_generation = master.generation

    @property
    def is_reloading(self) -> bool:
        return self.base is not None

    def reload(self) -> None:
        """Reload configuration from scratch and replace every worker, old ones serving meanwhile."""
        if self.base is not None:
            # Let the running reload finish first; then apply the newest configuration.
            self.is_requested_again = True
            return
        self.master.lifecycle.reload_started(self.master)
        try:
            settings = load_settings(self.master.argv, self.master.environ_orig, cwd=self.master.start_cwd)
            check_worker_bounds(settings, self.master.board_capacity)
        except (ConfigError, UsageError) as exc:
            self.fail(f"configuration: {exc}")
            return
        self.apply_environment(settings)
        app = None
        if settings.preload_app:
            try:
                purge_app_modules(settings.pythonpath, settings.chdir)
                app = load_app(settings.app_uri, settings.pythonpath, settings.chdir)
            except AppLoadError as exc:
                self.apply_environment(self.master.settings)
                self.fail(f"application: {exc}")
                return
        try:
            listeners = open_listeners(
                self.binds_for(settings, self.master.listeners),
                settings.backlog,
                settings.reuse_port,
                inherited=self.master.listeners,
                owner=(settings.user, settings.group),
                umask=explicit_umask(settings),
            )
        except BindError as exc:
            self.apply_environment(self.master.settings)
            self.fail(f"listeners: {exc}")
            return
        for listener in self.master.listeners:
            if listener not in listeners:
                self.master.log.info("closing listener no longer bound address=%s", listener)
                listener.close(unlink=self.master.may_unlink_sockets())
        master = self.master
        self.base = ReloadBase(master.settings, master.generation, master.num_workers, master.app)
        old_count = self.master.num_workers
        self.master.listeners = listeners
        self.master.settings = settings
        self.master.app = app
        configure_logging(settings)
        for warning in settings.warnings:  # as at start: the reloaded config may add some
            master.log.warning("configuration warning: %s", warning)
        self.master.num_workers = settings.workers
        if self.master.num_workers != old_count:
            call_hook(settings, "nworkers_changed", self.master, self.master.num_workers, old_count)
        call_hook(settings, "on_reload", self.master)
        self.master.update_pidfile()
        self.master.set_title()
        self.newest_generation += 1
        self.master.generation = self.newest_generation
        set_log_context(UNITCORN_GENERATION=self.master.generation)
        master.log.info("reload started generation=%d workers=%d", master.generation, master.num_workers)

    @staticmethod
    def binds_for(settings: Any, inherited: list[Listener]) -> list[Any]:
        """Under socket activation with no `bind` configured, serve exactly systemd's sockets
        (binding the default 127.0.0.1:8000 as well would surprise everyone)."""
        if settings.origin("bind") == "default" and any(lst.is_from_socket_unit for lst in inherited):
            return []
        return list(settings.bind)

    def apply_environment(self, settings: Any) -> None:
        apply_environment(self.master.environ_orig, settings)

    def check_done(self) -> None:
        if self.base is None or self.master.booted_workers() < self.master.num_workers:
            return
        self.base = None
        self.master.log.info("reload complete generation=%d", self.master.generation)
        self.master.lifecycle.reload_finished(self.master, ok=True, reason="")
        self._again_if_asked()

    def fail(self, reason: str) -> None:
        self.master.log.error("reload failed, old generation keeps serving reason=%s", reason)
        self.master.lifecycle.reload_finished(self.master, ok=False, reason=reason)
        self._again_if_asked()

    def revert(self, reason: str) -> None:
        base = self.base
        assert base is not None
        failed_generation = self.master.generation
        self.base = None
        for handle in list(self.master.workers.values()):
            if handle.generation == failed_generation:
                self.master.retire_worker(handle.pid, time.monotonic())
        self.master.settings, self.master.generation = base.settings, base.generation
        self.master.num_workers, self.master.app = base.num_workers, base.app
        set_log_context(UNITCORN_GENERATION=self.master.generation)
        configure_logging(self.master.settings)
        self.apply_environment(self.master.settings)
        self.master.update_pidfile()
        self.fail(reason)

    def _again_if_asked(self) -> None:
        if self.is_requested_again:
            self.is_requested_again = False
            self.reload()



def check_worker_bounds(settings: Any, board_capacity: int | None = None) -> None:
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
