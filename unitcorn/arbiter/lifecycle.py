"""Lifecycle events the master announces, for plug-ins such as systemd notification.

The master calls these at the moments that matter to a supervisor; the base class does nothing,
so the master never needs to know who listens (Puma's launcher events, in Python).
"""

from __future__ import annotations

from typing import Any


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

    def upgrade_child_exited(self, master: Any, pid: int, info: Any) -> None:
        """The new master of an upgrade exited while we were still running."""

    def stopping(self, master: Any) -> None:
        """Shutdown began."""

    def finished(self, master: Any) -> None:
        """The loop ended; the process is about to exit."""

    def tick(self, master: Any, now: float) -> None:
        """Called once per loop turn (after events and deadlines were handled)."""

    def next_deadline(self, master: Any) -> float | None:
        """The next monotonic time at which `tick` must run, or None."""
        return None


class Lifecycles(Lifecycle):
    """Fan one event out to several listeners."""

    def __init__(self, *members: Lifecycle) -> None:
        self.members = members

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name in ("members", "next_deadline"):
            return object.__getattribute__(self, name)
        members = object.__getattribute__(self, "members")

        def fan_out(*args: Any) -> None:
            for member in members:
                getattr(member, name)(*args)

        return fan_out

    def next_deadline(self, master: Any) -> float | None:
        deadlines = [m.next_deadline(master) for m in self.members]
        return min((d for d in deadlines if d is not None), default=None)
