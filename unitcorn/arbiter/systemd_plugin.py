"""Tell systemd about the master's lifecycle: READY, RELOADING, STOPPING, STATUS, WATCHDOG.

Subscribes to the master's lifecycle events (see lifecycle.py). Everything is a no-op when the
service manager gave us no NOTIFY_SOCKET, so the same code runs under systemd and outside it.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from unitcorn.arbiter.lifecycle import Lifecycle
from unitcorn.systemd.notify import Notifier, watchdog_interval

# While a graceful stop still makes progress, ask systemd for this much more time per extension.
STOP_EXTENSION = 10.0


class SystemdLifecycle(Lifecycle):
    def __init__(self, notifier: Notifier, watchdog_every: float | None, is_upgrade: bool) -> None:
        self.notifier = notifier
        self.watchdog_every = watchdog_every
        self.is_upgrade = is_upgrade
        self.next_watchdog = time.monotonic() if watchdog_every else None
        self.next_extension: float | None = None
        self.last_reload = "never"

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str], is_upgrade: bool) -> SystemdLifecycle:
        """Take NOTIFY_SOCKET and the watchdog variables out of the environment (workers and the
        app must never see them) and remember what they said."""
        every = watchdog_interval(environ)
        environ.pop("WATCHDOG_USEC", None)
        environ.pop("WATCHDOG_PID", None)
        return cls(Notifier.from_environ(environ, unset=True), every, is_upgrade)

    def status_text(self, master: Any) -> str:
        booted = sum(
            1
            for w in master.workers.values()
            if w.is_booted and not w.is_retiring and w.generation == master.generation
        )
        return (
            f"workers {booted}/{master.num_workers} booted, generation {master.generation}, "
            f"last reload {self.last_reload}"
        )

    def ready(self, master: Any) -> None:
        if not self.is_upgrade:
            self.notifier.ready(self.status_text(master))

    def status_changed(self, master: Any) -> None:
        self.notifier.status(self.status_text(master))

    def reload_started(self, master: Any) -> None:
        self.notifier.reloading()

    def reload_finished(self, master: Any, ok: bool, reason: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.last_reload = f"ok at {stamp}" if ok else f"FAILED at {stamp}: {reason.splitlines()[0]}"
        # READY=1 either way: after a failed reload the old generation is serving, so we are ready.
        self.notifier.ready(self.status_text(master))

    def stopping(self, master: Any) -> None:
        self.notifier.stopping("stopping")
        self.next_extension = time.monotonic()

    def tick(self, master: Any, now: float) -> None:
        # Pinged from the loop itself: a wedged loop stops pinging, and systemd notices.
        if self.next_watchdog is not None and self.watchdog_every and now >= self.next_watchdog:
            self.notifier.watchdog()
            self.next_watchdog = now + self.watchdog_every
        if self.next_extension is not None and now >= self.next_extension and master.workers:
            self.notifier.extend_timeout(STOP_EXTENSION)
            self.next_extension = now + STOP_EXTENSION / 2

    def next_deadline(self, master: Any) -> float | None:
        deadlines = [d for d in (self.next_watchdog, self.next_extension) if d is not None]
        return min(deadlines, default=None)
