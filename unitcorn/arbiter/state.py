"""What the master knows, as typed data: its workers, generation, deadlines, and the phases of a
reload (HUP) and of an upgrade (USR2).

Plain data with no effects, so a rule about it (decisions.py) is a function of values a test
can build. The phases are enums rather than booleans: a reload or an upgrade is in exactly one
of them, and each transition is written once, in decisions.py.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass, field
from typing import Any

from unitcorn.settings.values import Settings


@dataclass
class WorkerHandle:
    """The master's record of one worker process (the worker's own code lives in workers/)."""

    pid: int
    age: int
    generation: int
    slot: int
    spawned_at: float
    is_booted: bool = False
    # Set when the master asked the worker to go: by then it only has to exit, not beat.
    retire_deadline: float | None = None
    # Set when SIGABRT was sent for a missed heartbeat: SIGKILL follows at this time.
    kill_deadline: float | None = None
    process: object = None  # the Worker object hooks receive (gunicorn passes the same)

    @property
    def is_retiring(self) -> bool:
        return self.retire_deadline is not None


class ReloadPhase(enum.Enum):
    IDLE = "idle"
    # A new generation is being booted while the old one serves.
    BOOTING = "booting"
    # As BOOTING, and another HUP arrived meanwhile: once this reload ends (either way), the
    # newest configuration is loaded by a reload of its own.
    BOOTING_THEN_AGAIN = "booting-then-again"


@dataclass(frozen=True)
class Fallback:
    """What a reload falls back to if its new generation fails to boot."""

    settings: Settings
    generation: int
    desired_workers: int
    app: Any


@dataclass
class Reload:
    phase: ReloadPhase = ReloadPhase.IDLE
    fallback: Fallback | None = None
    # Generation numbers are never reused, even after a reverted reload: the failed
    # generation's workers may still be on their way out when the next one starts.
    newest_generation: int = 1

    @property
    def is_reloading(self) -> bool:
        return self.phase is not ReloadPhase.IDLE


class UpgradePhase(enum.Enum):
    """The old master's side of a USR2 upgrade (the handshake of upgrade.py)."""

    # The new master was started; it has not said "ready" yet (a deadline runs).
    AWAITING_READY = "awaiting-ready"
    # It said "ready", we answered "main" (systemd knows it as MAINPID); waiting for "taken".
    AWAITING_TAKEN = "awaiting-taken"
    # It serves: it took over the control socket (we retire), or, outside systemd, both
    # masters serve until the operator retires this one. Only its exit is left to see.
    HANDED_OVER = "handed-over"
    # It failed; a detached new master is not our child, so its end-of-file is awaited.
    FAILED = "failed"


@dataclass
class PendingUpgrade:
    """The old master's view of a USR2 upgrade in progress."""

    new_master_pid: int
    channel: socket.socket
    deadline: float
    # ctl upgrade, or any USR2 under systemd: hand over and retire once the new master serves.
    completes_automatically: bool
    # Started through an intermediate child, so not our child: its exit shows as end-of-file
    # on the channel, never in waitpid.
    is_detached: bool = False
    phase: UpgradePhase = UpgradePhase.AWAITING_READY

    @property
    def deadline_applies(self) -> bool:
        return self.phase in (UpgradePhase.AWAITING_READY, UpgradePhase.AWAITING_TAKEN)


class Succession(enum.Enum):
    """The new master's side of an upgrade: whether it is the service's main process yet."""

    # Started by an old master that still runs; it has not handed over (said "main") yet.
    AWAITING_MAIN = "awaiting-main"
    MAIN = "main"


@dataclass
class MasterState:
    """Everything the master's rules read; master.py changes it, decisions.py reads it."""

    own_pid: int
    desired_workers: int
    # Set while this master is the new one of an upgrade and the old one still runs.
    old_master_pid: int = 0
    # Set while an upgrade started here runs (the new master's pid).
    new_master_pid: int = 0
    workers: dict[int, WorkerHandle] = field(default_factory=dict)
    generation: int = 1
    is_ready: bool = False
    # Set once a stop began: the moment workers still alive are killed.
    stop_deadline: float | None = None
    exit_code: int = 0
    reload: Reload = field(default_factory=Reload)
    upgrade: PendingUpgrade | None = None
    succession: Succession = Succession.MAIN

    @property
    def is_stopping(self) -> bool:
        return self.stop_deadline is not None

    def booted_workers(self) -> int:
        """Booted workers of the current generation not told to go."""
        return sum(
            1
            for w in self.workers.values()
            if w.is_booted and not w.is_retiring and w.generation == self.generation
        )
