"""Lifecycle events the master announces, for plug-ins: systemd notification, the control socket.

The master calls these at the moments that matter to a supervisor; the base class does nothing,
so the master never needs to know who listens (Puma's launcher events, in Python).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("unitcorn.error")


class Lifecycle:
    def ready(self, master: Any) -> None:
        """Every worker of the first generation has booted."""

    def status_changed(self, master: Any) -> None:
        """Worker counts or generation changed."""

    def reload_started(self, master: Any) -> None:
        """HUP received; a new generation is being prepared."""

    def reload_finished(self, master: Any, ok: bool, reason: str) -> None:
        """The new generation serves (ok) or the reload failed and the old one still serves."""

    def upgrade_started(self, master: Any, new_master_pid: int) -> None:
        """A new master was forked and exec'd (USR2)."""

    def upgrade_ready(self, master: Any, new_master_pid: int) -> None:
        """The new master's workers serve; it may now become the service's main process."""

    def upgrade_finished(self, master: Any, ok: bool, reason: str) -> None:
        """The upgrade completed (ok) or failed and this master keeps serving."""

    def became_main(self, master: Any) -> None:
        """This (new) master is now the service's main process: the old one handed over or exited."""

    def stopping(self, master: Any) -> None:
        """Shutdown began."""

    def finished(self, master: Any) -> None:
        """The loop ended; the process is about to exit."""

    def tick(self, master: Any, now: float) -> None:
        """Called once per loop turn (after events and deadlines were handled)."""

    def next_deadline(self, master: Any) -> float | None:
        """The next monotonic time at which `tick` must run, or None."""
        return None

    def new_master_environment(self, master: Any, child_pid: int) -> dict[str, str]:
        """Variables the new master of an upgrade needs from this plug-in."""
        return {}

    def completes_upgrades(self) -> bool:
        """Whether a plain USR2 should finish the handover by itself (true under systemd)."""
        return False


class Lifecycles(Lifecycle):
    """Fan each event out to several listeners, in order."""

    def __init__(self, *members: Lifecycle) -> None:
        self.members = members

    def __getattribute__(self, name: str) -> Any:
        # Events (methods returning None) are forwarded to every member.
        if name.startswith("_") or name in _NOT_EVENTS:
            return object.__getattribute__(self, name)
        members = object.__getattribute__(self, "members")

        def fan_out(*args: Any, **kwargs: Any) -> None:
            for member in members:
                # A failing plug-in (say, a full notify socket) must not take the master down.
                try:
                    getattr(member, name)(*args, **kwargs)
                except Exception:
                    log.exception("lifecycle listener failed event=%s listener=%s", name, member)

        return fan_out

    def next_deadline(self, master: Any) -> float | None:
        deadlines = [m.next_deadline(master) for m in self.members]
        return min((d for d in deadlines if d is not None), default=None)

    def new_master_environment(self, master: Any, child_pid: int) -> dict[str, str]:
        environment: dict[str, str] = {}
        for member in self.members:
            environment.update(member.new_master_environment(master, child_pid))
        return environment

    def completes_upgrades(self) -> bool:
        return any(member.completes_upgrades() for member in self.members)


_NOT_EVENTS = frozenset({"members", "next_deadline", "new_master_environment", "completes_upgrades"})
