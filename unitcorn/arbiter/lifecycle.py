"""Lifecycle events the master announces, for plug-ins: systemd notification, the control socket,
the statsd gauge, --reload.

The master calls these at the moments that matter to a supervisor, each with a read-only
snapshot of its status (`MasterStatus`), never the master itself; the base class does nothing,
so the master never needs to know who listens (Puma's launcher events, in Python). A plug-in
that must ask something of the master (ctl's reload, scale, upgrade; --reload's reload) is
given the narrow `MasterRequests` interface when it is built or opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from unitcorn.arbiter.decisions import Command
from unitcorn.logs import ERROR_LOGGER
from unitcorn.settings.values import Settings
from unitcorn.sockets import Listener

log = logging.getLogger(ERROR_LOGGER)


@dataclass(frozen=True)
class MasterStatus:
    """What the master knows at one moment, for plug-ins to read (they cannot change it)."""

    own_pid: int
    generation: int
    desired_workers: int
    booted_workers: int
    worker_pids: tuple[int, ...]
    requests_served: int
    is_ready: bool
    is_stopping: bool
    is_reloading: bool
    # The new master's pid while an upgrade started here runs, else 0.
    new_master_pid: int
    exit_code: int
    listeners: tuple[Listener, ...]
    settings: Settings


class MasterRequests(Protocol):
    """What a plug-in may ask of the master."""

    def status_snapshot(self) -> MasterStatus: ...

    def handle_command(self, command: Command, signum: int = 0) -> None: ...

    def set_worker_count(self, count: int) -> str | None: ...

    def start_upgrade(self, complete_automatically: bool | None = None) -> str | None: ...


class Lifecycle:
    def ready(self, status: MasterStatus) -> None:
        """Every worker of the first generation has booted."""

    def status_changed(self, status: MasterStatus) -> None:
        """Worker counts or generation changed."""

    def reload_started(self, status: MasterStatus) -> None:
        """HUP received; a new generation is being prepared."""

    def reload_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        """The new generation serves (ok) or the reload failed and the old one still serves."""

    def upgrade_started(self, status: MasterStatus, new_master_pid: int) -> None:
        """A new master was forked and exec'd (USR2)."""

    def upgrade_ready(self, status: MasterStatus, new_master_pid: int) -> None:
        """The new master's workers serve; it may now become the service's main process."""

    def upgrade_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        """The upgrade completed (ok) or failed and this master keeps serving."""

    def became_main(self, status: MasterStatus) -> None:
        """This (new) master is now the service's main process: the old one handed over or exited."""

    def stopping(self, status: MasterStatus) -> None:
        """Shutdown began."""

    def finished(self, status: MasterStatus) -> None:
        """The loop ended; the process is about to exit."""

    def tick(self, status: MasterStatus, now: float) -> None:
        """Called once per loop turn (after events and deadlines were handled)."""

    def next_deadline(self) -> float | None:
        """The next monotonic time at which `tick` must run, or None."""
        return None

    def new_master_environment(self, child_pid: int) -> dict[str, str]:
        """Variables the new master of an upgrade needs from this plug-in."""
        return {}

    def completes_upgrades(self) -> bool:
        """Whether a plain USR2 should finish the handover by itself (true under systemd)."""
        return False


class Lifecycles(Lifecycle):
    """Fan each event out to several plug-ins, in order; one failing never stops the others."""

    def __init__(self, *members: Lifecycle) -> None:
        self.members = members

    def _each(self, event: str, call: Callable[[Lifecycle], None]) -> None:
        for member in self.members:
            # A failing plug-in (say, a full notify socket) must not take the master down.
            try:
                call(member)
            except Exception:
                log.exception("lifecycle listener failed event=%s listener=%s", event, member)

    def ready(self, status: MasterStatus) -> None:
        self._each("ready", lambda m: m.ready(status))

    def status_changed(self, status: MasterStatus) -> None:
        self._each("status_changed", lambda m: m.status_changed(status))

    def reload_started(self, status: MasterStatus) -> None:
        self._each("reload_started", lambda m: m.reload_started(status))

    def reload_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        self._each("reload_finished", lambda m: m.reload_finished(status, ok, reason))

    def upgrade_started(self, status: MasterStatus, new_master_pid: int) -> None:
        self._each("upgrade_started", lambda m: m.upgrade_started(status, new_master_pid))

    def upgrade_ready(self, status: MasterStatus, new_master_pid: int) -> None:
        self._each("upgrade_ready", lambda m: m.upgrade_ready(status, new_master_pid))

    def upgrade_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        self._each("upgrade_finished", lambda m: m.upgrade_finished(status, ok, reason))

    def became_main(self, status: MasterStatus) -> None:
        self._each("became_main", lambda m: m.became_main(status))

    def stopping(self, status: MasterStatus) -> None:
        self._each("stopping", lambda m: m.stopping(status))

    def finished(self, status: MasterStatus) -> None:
        self._each("finished", lambda m: m.finished(status))

    def tick(self, status: MasterStatus, now: float) -> None:
        self._each("tick", lambda m: m.tick(status, now))

    def next_deadline(self) -> float | None:
        deadlines = [m.next_deadline() for m in self.members]
        return min((d for d in deadlines if d is not None), default=None)

    def new_master_environment(self, child_pid: int) -> dict[str, str]:
        environment: dict[str, str] = {}
        for member in self.members:
            environment.update(member.new_master_environment(child_pid))
        return environment

    def completes_upgrades(self) -> bool:
        return any(member.completes_upgrades() for member in self.members)
