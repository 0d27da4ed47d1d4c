"""USR2: start a new master on the same sockets, hand over to it (MAINPID under systemd), retire.

Both sides live here, talking over a socketpair. The new master says "ready" once its workers
serve; the old one announces it to systemd (MAINPID) and answers "main"; the new master opens
the control socket and answers "taken"; only then does the old master report success to
`ctl upgrade` and retire — so the control socket path never goes missing. The new master also
learns at once (a pidfd) when the old one exits.
Mixed into `Master` (master.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unitcorn.arbiter import decisions
from unitcorn.process.signals import fork_with_signals_blocked

if TYPE_CHECKING:
    from unitcorn.arbiter.master import Master

@dataclass
class PendingUpgrade:
    """The old master's view of a USR2 upgrade in progress."""

    pid: int
    channel: socket.socket
    deadline: float
    completes_automatically: bool
    # Not our child (see `reexec`): its exit shows as end-of-file on the channel, not in waitpid.
    is_detached: bool = False
    is_ready: bool = False
    # The new master answered "taken": it is the main process and holds the control socket.
    has_taken_over: bool = False
    is_failed: bool = False


class Upgrader:
    """Both sides of a USR2 upgrade: the old master's pending handover, the new master's link."""

    def __init__(self, master: Master, link: socket.socket | None) -> None:
        self.master = master
        self.pending: PendingUpgrade | None = None
        # After an upgrade: our line to the old master ("ready" out, "main" back).
        self.link = link
        self.old_master_fd = -1
        self.is_main = False

    @property
    def deadline(self) -> float | None:
        """When a new master that has not reported ready is given up on."""
        if self.pending is None or self.pending.has_taken_over or self.pending.is_failed:
            return None
        return self.pending.deadline

    def check_deadline(self, now: float) -> None:
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            assert self.pending is not None
            self.master.kill(self.pending.pid, signal.SIGQUIT)
            self.fail(f"the new master did not become ready within {self.master.settings.upgrade_timeout}s")

    def new_master_exited(self, info: decisions.ExitInfo) -> None:
        if self.pending is not None and not self.pending.has_taken_over:
            self.fail(f"the new master exited before it was ready ({info.reason})")
        self.close()

    def reexec(self, complete_automatically: bool | None = None) -> str | None:
        """Start a new master from the installed code, handing it our listening sockets.

        With `complete_automatically` (ctl upgrade, or any USR2 under systemd) this master hands
        over and retires once the new one reports ready; otherwise both run, as in gunicorn,
        until the operator retires the old one. Returns why the upgrade was refused, or None.
        """
        from unitcorn.arbiter.reexec import exec_new_master

        refusal = decisions.reexec_refusal(self.master.new_master_pid, self.master.old_master_pid)
        if refusal:
            self.master.log.warning("USR2 ignored: %s", refusal)
            return refusal
        # Under systemd the new master is started through a child that exits at once, so it is
        # reparented to systemd before we announce it: systemd 252 treats a MAINPID that is not
        # its own child as "alien" and, on stop, SIGKILLs the whole unit instead of draining.
        is_detached = self.master.lifecycle.completes_upgrades()
        if complete_automatically is None:
            complete_automatically = is_detached
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:
            return self._not_started(exc)
        try:
            pid, saved_mask = fork_with_signals_blocked(decisions.HANDLED_SIGNALS)
        except OSError as exc:
            ours.close()
            theirs.close()
            return self._not_started(exc)
        if pid:
            theirs.close()
            if is_detached:
                try:
                    pid = _read_pid(ours)  # the intermediate child tells us the new master's pid
                except (OSError, ValueError) as exc:
                    ours.close()
                    return self._not_started(exc)
            ours.setblocking(False)
            self.master.new_master_pid = pid
            deadline = time.monotonic() + self.master.settings.upgrade_timeout
            self.pending = PendingUpgrade(pid, ours, deadline, complete_automatically, is_detached)
            self.master.selector.register(ours, selectors.EVENT_READ, self._read_channel)
            self.master.log.info("upgrade started new_master=%d", pid)
            self.master.lifecycle.upgrade_started(self.master, pid)
            return None
        try:
            ours.close()
            self.master.become_child()
            if is_detached:
                new_master = os.fork()
                if new_master:
                    theirs.sendall(f"{new_master}\n".encode())
                    os._exit(0)
            environment = self.master.lifecycle.new_master_environment(self.master, os.getpid())
            # exec keeps the signal mask: the new master must start with nothing blocked.
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
            exec_new_master(self.master, theirs, environment)
        finally:
            os._exit(1)

    def _not_started(self, exc: object) -> str:
        """Out of descriptors, memory or processes (EMFILE, ENOMEM, EAGAIN …): this upgrade
        fails, reported to whoever asked (USR2: the log; ctl: its answer); we serve on."""
        self.master.log.error("upgrade failed to start reason=%s", exc)
        return f"the new master could not be started: {exc}"

    def _read_channel(self) -> None:
        """The new master reports "ready" once its workers serve (EOF: it died)."""
        upgrade = self.pending
        assert upgrade is not None
        try:
            data = upgrade.channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if not upgrade.has_taken_over and not upgrade.is_failed:
                self.fail("the new master exited before it was ready")
            if upgrade.is_detached:
                self.master.log.info("upgraded master exited pid=%d", upgrade.pid)
            self.close()
            return
        if b"ready" in data and not upgrade.is_ready:
            upgrade.is_ready = True
            self.master.log.info("upgrade: new master ready pid=%d", upgrade.pid)
            self.master.lifecycle.upgrade_ready(self.master, upgrade.pid)
            try:
                upgrade.channel.sendall(b"main\n")
            except OSError:
                pass
            if not upgrade.completes_automatically:
                upgrade.has_taken_over = True
                self.master.lifecycle.upgrade_finished(
                    self.master, True,
                    f"new master pid={upgrade.pid} serves beside this one; retire with TERM",
                )
        if b"taken" in data and not upgrade.has_taken_over:
            # The new master holds the control socket now: `ctl` never finds the path missing.
            upgrade.has_taken_over = True
            self.master.lifecycle.upgrade_finished(
                self.master, True, f"new master pid={upgrade.pid} serves; old master retiring"
            )
            self.master.log.info("upgrade complete; this master retires new_master=%d", upgrade.pid)
            self.master.stop(graceful=True)

    def fail(self, reason: str) -> None:
        self.master.log.error("upgrade failed, this master keeps serving reason=%s", reason)
        self.master.lifecycle.upgrade_finished(self.master, False, reason)
        if self.pending is not None and self.pending.is_detached:
            # Keep listening: its end-of-file is the only sign that it is gone (USR2 waits).
            self.pending.is_failed = True
        else:
            self.close()

    def close(self) -> None:
        if self.pending is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.master.selector.unregister(self.pending.channel)
        self.pending.channel.close()
        if self.pending.is_detached and self.master.new_master_pid == self.pending.pid:
            self.master.new_master_pid = 0  # no waitpid will tell us: USR2 may be used again
        self.pending = None

    def tell_old_master(self, message: bytes) -> None:
        assert self.link is not None
        try:
            self.link.sendall(message)
        except OSError as exc:
            self.master.log.warning("cannot reach the old master: %s", exc)

    def _read_link(self) -> None:
        """The old master answers "main" once systemd knows us as the main process."""
        assert self.link is not None
        try:
            data = self.link.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if b"main" in data:
            self.become_main()
            self.tell_old_master(b"taken\n")
        if not data:
            self.master.selector.unregister(self.link)
            self.link.close()
            self.link = None

    def become_main(self) -> None:
        if self.is_main:
            return
        self.is_main = True
        self.master.log.info("now the main process of the service")
        if self.master.control is not None:
            self.master.control.open(self.master.selector, self.master)
        self.master.lifecycle.became_main(self.master)

    def watch_old_master(self) -> None:
        """After an upgrade, listen to the old master, and learn at once when it exits (a pidfd)."""
        if self.link is not None:
            self.master.selector.register(self.link, selectors.EVENT_READ, self._read_link)
        if not self.master.old_master_pid:
            return
        try:
            self.old_master_fd = os.pidfd_open(self.master.old_master_pid)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                self._promote()
                return
            raise
        os.set_inheritable(self.old_master_fd, False)
        self.master.selector.register(self.old_master_fd, selectors.EVENT_READ, self._promote)

    def _promote(self) -> None:
        if self.old_master_fd >= 0:
            self.master.selector.unregister(self.old_master_fd)
            os.close(self.old_master_fd)
            self.old_master_fd = -1
        old_master_pid = self.master.old_master_pid
        self.master.log.info("master promoted: the old master exited old_master=%d", old_master_pid)
        self.master.old_master_pid = 0
        self.master.update_pidfile()
        self.master.set_title()
        self.become_main()



def _read_pid(channel: socket.socket) -> int:
    """The first line on the channel: the pid of the new master, from the intermediate child."""
    channel.settimeout(10)
    line = b""
    while not line.endswith(b"\n"):
        byte = channel.recv(1)  # byte by byte: nothing after this line may be consumed here
        if not byte:
            raise OSError("the upgrade's intermediate process exited without a pid")
        line += byte
    return int(line)
