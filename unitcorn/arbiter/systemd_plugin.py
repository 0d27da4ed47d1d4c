"""Tell systemd about the master's lifecycle: READY, RELOADING, STOPPING, STATUS, WATCHDOG, MAINPID,
EXIT_STATUS.

Subscribes to the master's lifecycle events (see lifecycle.py). Everything is a no-op when the
service manager gave us no NOTIFY_SOCKET, so the same code runs under systemd and outside it.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from unitcorn.arbiter.lifecycle import Lifecycle, MasterStatus
from unitcorn.process.exit_codes import APP_LOAD_ERROR, EX_CONFIG, WORKER_BOOT_ERROR
from unitcorn.sockets import fd_store_name
from unitcorn.systemd.notify import Notifier, pidfd_id, watchdog_interval

# While a graceful stop or the first boot still makes progress, ask for this much more time.
EXTENSION = 30.0

# The exit statuses that halt the service for good (RestartPreventExitStatus= in the shipped
# unit), with the STATUS= line that says why; they are announced with EXIT_STATUS= before the exit.
HALT_REASONS = {
    WORKER_BOOT_ERROR: "halted: a worker failed to boot (exit status 3)",
    APP_LOAD_ERROR: "halted: the app failed to load (exit status 4)",
    EX_CONFIG: "halted: bad configuration (exit status 78)",
}


class SystemdLifecycle(Lifecycle):
    def __init__(self, notifier: Notifier, watchdog_every: float | None, is_upgrade: bool) -> None:
        self.notifier = notifier
        self.watchdog_every = watchdog_every
        # A new master of an upgrade stays silent until the old one has made it the main
        # process: under NotifyAccess=main systemd would reject (and log) anything it sends.
        self.is_silent = is_upgrade
        self.next_watchdog = time.monotonic() if watchdog_every and not is_upgrade else None
        self.next_extension: float | None = None
        self.last_reload = "never"
        self.stored_fds: dict[str, int] = {}

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str], is_upgrade: bool) -> SystemdLifecycle:
        """Take NOTIFY_SOCKET and the watchdog variables out of the environment (workers and the
        app must never see them) and remember what they said."""
        every = watchdog_interval(environ)
        environ.pop("WATCHDOG_USEC", None)
        environ.pop("WATCHDOG_PID", None)
        return cls(Notifier.from_environ(environ, unset=True), every, is_upgrade)

    def _send(self, method: str, *args: Any) -> None:
        if not self.is_silent:
            getattr(self.notifier, method)(*args)

    def status_text(self, status: MasterStatus) -> str:
        return (
            f"workers {status.booted_workers}/{status.desired_workers} booted, "
            f"generation {status.generation}, {status.requests_served} requests served, "
            f"last reload {self.last_reload}"
        )

    def ready(self, status: MasterStatus) -> None:
        self.next_extension = None
        self._send("ready", self.status_text(status))
        self._store_listeners(status)

    def status_changed(self, status: MasterStatus) -> None:
        if not status.is_ready and not status.is_stopping and status.booted_workers:
            # A worker booted: the start is progressing, so a slow boot of many workers (each
            # loading the app) is not killed by TimeoutStartSec= while it still advances.
            self._send("extend_timeout", EXTENSION)
        self._send("status", self.status_text(status))

    def reload_started(self, status: MasterStatus) -> None:
        self._send("reloading")

    def reload_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        first_line = reason.splitlines()[0] if reason else ""
        self.last_reload = f"ok at {stamp}" if ok else f"FAILED at {stamp}: {first_line}"
        # READY=1 either way: after a failed reload the old generation serves, so we are ready.
        self._send("ready", self.status_text(status))
        self._store_listeners(status)

    def upgrade_ready(self, status: MasterStatus, new_master_pid: int) -> None:
        # MAINPIDFDID= names the new master beyond its pid where the kernel gives pidfds an ID
        # (systemd 257 checks it against the pid; older managers ignore the field).
        self._send("main_pid", new_master_pid, True, pidfd_id(new_master_pid))
        # From now on the new master is the main process: anything more from us would be
        # rejected under NotifyAccess=main, and under NotifyAccess=all our STOPPING=1 would put
        # the service into stop-sigterm and our WATCHDOG=1 would vouch for the wrong process.
        self.is_silent = True
        self.next_watchdog = None

    def became_main(self, status: MasterStatus) -> None:
        if not self.is_silent:
            return
        self.is_silent = False
        if self.watchdog_every:
            self.next_watchdog = time.monotonic()
        self._send("status", self.status_text(status))
        self._store_listeners(status)

    def completes_upgrades(self) -> bool:
        # Under systemd a USR2 must end with the new master as MainPID, or the old master's
        # exit would take the whole service down.
        return self.notifier.enabled

    def new_master_environment(self, child_pid: int) -> dict[str, str]:
        environment: dict[str, str] = {}
        if self.notifier.socket_path:
            environment["NOTIFY_SOCKET"] = self.notifier.socket_path
        if self.watchdog_every:
            environment["WATCHDOG_USEC"] = str(int(self.watchdog_every * 2 * 1_000_000))
            environment["WATCHDOG_PID"] = str(child_pid)
        return environment

    def stopping(self, status: MasterStatus) -> None:
        if self.is_silent:
            return  # a retiring old master (after an upgrade) stops on its own time
        self._send("stopping", "stopping")
        self.next_extension = time.monotonic()

    def finished(self, status: MasterStatus) -> None:
        self.exiting(status.exit_code)

    def exiting(self, code: int) -> None:
        """The process is about to exit with `code`; say so when it is one of HALT_REASONS.

        systemd >= 254 knows EXIT_STATUS=; 252 ignores the field (STATUS= still shows).
        """
        if code in HALT_REASONS:
            self._send("exit_status", code, HALT_REASONS[code])

    def tick(self, status: MasterStatus, now: float) -> None:
        # Pinged from the loop itself: a wedged loop stops pinging, and systemd notices.
        if self.next_watchdog is not None and self.watchdog_every and now >= self.next_watchdog:
            self._send("watchdog")
            self.next_watchdog = now + self.watchdog_every
        if self.next_extension is not None and now >= self.next_extension and status.worker_pids:
            self._send("extend_timeout", EXTENSION)
            self.next_extension = now + EXTENSION / 2

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.next_watchdog, self.next_extension) if d is not None]
        return min(deadlines, default=None)

    def _store_listeners(self, status: MasterStatus) -> None:
        """Keep our own listening sockets in systemd's fd store (FileDescriptorStoreMax=), so a
        `systemctl restart` finds them open and no connection is refused meanwhile. Sockets of
        a .socket unit are systemd's already; a stored socket no bind wants any more is removed.
        systemd ignores all this when the unit allows no store, and duplicates of a stored fd."""
        if self.is_silent or not self.notifier.enabled:
            return
        current = {
            fd_store_name(str(listener)): listener.fileno()
            for listener in status.listeners
            if not listener.is_from_socket_unit
        }
        for name in set(self.stored_fds) - set(current):
            self.notifier.remove_stored_fds(name)
        for name, fd in current.items():
            if self.stored_fds.get(name) != fd:
                self.notifier.store_fds([fd], name)
        self.stored_fds = current
