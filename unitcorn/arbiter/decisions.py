"""The master's decisions as pure functions: signals, child exits, worker counts, heartbeats.

Nothing here forks, signals or sleeps; `master.py` carries the results out. That keeps every
rule of SIGNALS.md testable as a table, with no processes.
"""

from __future__ import annotations

import enum
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from unitcorn.arbiter.state import (
    MasterState,
    PendingUpgrade,
    ReloadPhase,
    UpgradePhase,
    WorkerHandle,
)
from unitcorn.process.exit_codes import APP_LOAD_ERROR, WORKER_BOOT_ERROR


class Command(enum.Enum):
    RELOAD = "reload"
    STOP_GRACEFUL = "stop-graceful"
    STOP_QUICK = "stop-quick"
    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    REOPEN_LOGS = "reopen-logs"
    REEXEC = "reexec"
    STOP_WORKERS = "stop-workers"
    REAP = "reap"
    IGNORE = "ignore"


SIGNAL_COMMANDS: dict[int, Command] = {
    signal.SIGHUP: Command.RELOAD,
    signal.SIGTERM: Command.STOP_GRACEFUL,
    signal.SIGINT: Command.STOP_QUICK,
    signal.SIGQUIT: Command.STOP_QUICK,
    signal.SIGTTIN: Command.SCALE_UP,
    signal.SIGTTOU: Command.SCALE_DOWN,
    signal.SIGUSR1: Command.REOPEN_LOGS,
    signal.SIGUSR2: Command.REEXEC,
    signal.SIGWINCH: Command.STOP_WORKERS,
    signal.SIGCHLD: Command.REAP,
}

HANDLED_SIGNALS = tuple(SIGNAL_COMMANDS)


def command_for_signal(signum: int, *, is_daemon: bool) -> Command:
    """What a signal asks of the master. WINCH only means something to a daemonized master."""
    command = SIGNAL_COMMANDS.get(signum, Command.IGNORE)
    if command is Command.STOP_WORKERS and not is_daemon:
        return Command.IGNORE
    return command


def reexec_refusal(new_master_pid: int, old_master_pid: int) -> str | None:
    """Why USR2 must be ignored now, or None if a new master may be started."""
    if new_master_pid:
        return f"an upgraded master is already running pid={new_master_pid}"
    if old_master_pid:
        return f"this master is itself an upgrade and its old master is alive pid={old_master_pid}"
    return None


def scaled_worker_count(current: int, command: Command) -> int:
    """TTIN adds one worker; TTOU removes one but never goes below one."""
    if command is Command.SCALE_UP:
        return current + 1
    if command is Command.SCALE_DOWN:
        return max(1, current - 1)
    return current


@dataclass(frozen=True)
class ExitInfo:
    code: int | None
    signal: int | None
    reason: str
    # Exit status the master must halt with (3 or 4), or None to carry on.
    halts_with: int | None


def classify_exit(status: int) -> ExitInfo:
    """Turn a `waitpid` status into what happened and whether it is fatal for the server."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return ExitInfo(None, signum, f"killed by {signal.Signals(signum).name}", None)
    code = os.WEXITSTATUS(status)
    if code == 0:
        return ExitInfo(0, None, "normal", None)
    if code == WORKER_BOOT_ERROR:
        return ExitInfo(code, None, "boot-failed", WORKER_BOOT_ERROR)
    if code == APP_LOAD_ERROR:
        return ExitInfo(code, None, "app-load-failed", APP_LOAD_ERROR)
    return ExitInfo(code, None, "error", None)


@dataclass(frozen=True)
class Spawn:
    generation: int


@dataclass(frozen=True)
class Retire:
    pid: int


@dataclass(frozen=True)
class Abort:
    """Missed heartbeat: SIGABRT now (the worker_abort hook runs), SIGKILL later."""

    pid: int


@dataclass(frozen=True)
class Kill:
    pid: int


WorkerAction = Spawn | Retire | Abort | Kill


def plan_workers(workers: Iterable[WorkerHandle], desired: int, generation: int) -> list[WorkerAction]:
    """Spawn or retire workers so the current generation has `desired` of them.

    Older generations (after a reload) keep serving until the current generation has all its
    workers booted; only then are they retired. That ordering is what makes HUP zero-downtime.
    """
    active = [w for w in workers if not w.is_retiring]
    current = sorted((w for w in active if w.generation == generation), key=lambda w: w.age)
    older = [w for w in active if w.generation != generation]
    actions: list[WorkerAction] = []
    if len(current) < desired:
        actions.extend(Spawn(generation) for _ in range(desired - len(current)))
    elif len(current) > desired:
        actions.extend(Retire(w.pid) for w in current[: len(current) - desired])
    booted = sum(1 for w in current if w.is_booted)
    if older and booted >= desired:
        actions.extend(Retire(w.pid) for w in sorted(older, key=lambda w: w.age))
    return actions


def heartbeat_actions(
    workers: Iterable[WorkerHandle], now: float, timeout: float, last_beat: Callable[[int], float]
) -> list[WorkerAction]:
    """Abort workers silent for longer than `timeout`; kill those that ignored the abort or a retire."""
    actions: list[WorkerAction] = []
    for worker in workers:
        if worker.kill_deadline is not None:
            if now >= worker.kill_deadline:
                actions.append(Kill(worker.pid))
        elif worker.retire_deadline is not None:
            if now >= worker.retire_deadline:
                actions.append(Kill(worker.pid))
        elif timeout > 0 and now - (last_beat(worker.slot) or worker.spawned_at) > timeout:
            actions.append(Abort(worker.pid))
    return actions


def next_heartbeat_deadline(
    workers: Iterable[WorkerHandle], timeout: float, last_beat: Callable[[int], float]
) -> float | None:
    """The earliest moment `heartbeat_actions` could decide something new."""
    deadlines = []
    for worker in workers:
        if worker.kill_deadline is not None:
            deadlines.append(worker.kill_deadline)
        elif worker.retire_deadline is not None:
            deadlines.append(worker.retire_deadline)
        elif timeout > 0:
            deadlines.append((last_beat(worker.slot) or worker.spawned_at) + timeout)
    return min(deadlines, default=None)


def worker_count_refusal(count: int, max_workers: int) -> str | None:
    """Why the master must not run `count` workers (from ctl scale or TTIN), or None.

    No lower bound here: WINCH sets 0 on purpose; ctl's "at least 1" is checked by ctl's handler.

    The bound keeps one request from making the master plan (and fork) without end: `scale
    1000000000000` once wedged the loop building a list of spawns.
    """
    if count > max_workers:
        return f"workers = {count} is above max_workers = {max_workers} (raise --max-workers)"
    return None


# ---- back-off after boot failures ------------------------------------------------------

# A worker that dies before it booted (a segfault at import, say; exits 3 and 4 halt instead)
# would otherwise be replaced at once, hundreds of times a second. Each boot failure in a row
# doubles the wait before the next spawn: 0.1 s, 0.2 s, … at most 10 s.
SPAWN_DELAY_FIRST = 0.1
SPAWN_DELAY_MAX = 10.0
# What proves the app can run again, and ends the back-off: a worker spawned after the last
# failure booted and served a request, or booted and stayed up this long (an idle server).
PROVEN_AFTER = 10.0


@dataclass(frozen=True)
class BootFailures:
    """Boot failures in a row within one generation (a reload starts a fresh count)."""

    count: int = 0
    last_at: float = float("-inf")  # monotonic time of the latest one
    generation: int = 0


def spawn_delay(failures: BootFailures) -> float:
    """How long to wait before the next spawn."""
    if failures.count <= 0:
        return 0.0
    # Capped exponent: the count keeps growing in a crash loop, 2 ** count must not overflow.
    return min(SPAWN_DELAY_MAX, SPAWN_DELAY_FIRST * 2 ** min(failures.count - 1, 64))


def for_generation(failures: BootFailures, generation: int) -> BootFailures:
    """A reload brings new settings or code: its workers get a fresh start."""
    return failures if failures.generation == generation else BootFailures(generation=generation)


def is_proven(worker: WorkerHandle, requests_served: int, now: float) -> bool:
    return worker.is_booted and (requests_served >= 1 or now - worker.spawned_at >= PROVEN_AFTER)


def after_worker_exit(
    failures: BootFailures,
    exited: WorkerHandle,
    served: Callable[[WorkerHandle], int],
    alive: Iterable[WorkerHandle],
    generation: int,
    now: float,
) -> BootFailures:
    """Count `exited` if it failed to boot, after forgetting failures a worker since disproved.

    Only workers spawned after the latest failure prove anything: a worker that has served for
    a week says nothing about whether the next one can import the app.
    """
    failures = for_generation(failures, generation)
    if any(
        w.spawned_at > failures.last_at and is_proven(w, served(w), now) for w in (exited, *alive)
    ):
        failures = BootFailures(generation=generation)
    # A worker told to go before it booted (TTOU, the rest of a failed reload) did not fail,
    # and a worker of an older generation is not replaced.
    if exited.is_booted or exited.is_retiring or exited.generation != generation:
        return failures
    return BootFailures(failures.count + 1, now, generation)


# ---- a worker's exit: carry on, revert a reload, or halt ---------------------------------


class ExitOutcome(enum.Enum):
    CARRY_ON = "carry-on"
    # The reload's new generation cannot run: the old one serves on (reload.py's revert).
    REVERT_RELOAD = "revert-reload"
    # No generation can run (exit 3 or 4): stop now and exit with the worker's status.
    HALT = "halt"


def exit_outcome(info: ExitInfo, worker: WorkerHandle, state: MasterState) -> ExitOutcome:
    """What a worker's exit means for the server.

    A worker told to go (e.g. the rest of a failed reload's generation) or one exiting during
    a stop says nothing about whether the server can run, however it ends.
    """
    if info.halts_with is None or state.is_stopping or worker.is_retiring:
        return ExitOutcome.CARRY_ON
    if state.reload.is_reloading and worker.generation == state.generation:
        return ExitOutcome.REVERT_RELOAD
    return ExitOutcome.HALT


def is_server_ready(state: MasterState) -> bool:
    """The first moment every worker of the current generation has booted: READY=1, when_ready,
    and (after an upgrade) "ready" to the old master. It happens once per master."""
    return not state.is_ready and state.booted_workers() >= state.desired_workers


def command_during_stop(command: Command) -> bool:
    """During a stop only a quick stop still means something (QUIT after TERM: stop now)."""
    return command is Command.STOP_QUICK


def is_stop_overdue(state: MasterState, now: float) -> bool:
    """The graceful stop's time is up and workers remain: they are killed (SIGKILL)."""
    return state.stop_deadline is not None and now >= state.stop_deadline and bool(state.workers)


# ---- reload (HUP) --------------------------------------------------------------------------


def reload_requested(phase: ReloadPhase) -> tuple[ReloadPhase, bool]:
    """HUP, `ctl reload` or a changed source file: (the phase now, whether to start one now).

    One reload at a time: a request during a reload is remembered (once, however many arrive)
    and runs after it, so the newest configuration is the one that ends up serving.
    """
    if phase is ReloadPhase.IDLE:
        return ReloadPhase.BOOTING, True
    return ReloadPhase.BOOTING_THEN_AGAIN, False


def reload_ended(phase: ReloadPhase) -> bool:
    """A reload ended (complete, failed or reverted): whether another one was asked for meanwhile."""
    return phase is ReloadPhase.BOOTING_THEN_AGAIN


def is_reload_complete(state: MasterState) -> bool:
    return state.reload.is_reloading and state.reload.fallback is not None and (
        state.booted_workers() >= state.desired_workers
    )


# ---- upgrade (USR2), the old master's side of the handshake ----------------------------------
# The new master says "ready" once its workers serve; we answer "main" (after telling systemd
# MAINPID); it answers "taken" once it holds the control socket; then we retire. End-of-file
# on the channel means it exited.


@dataclass(frozen=True)
class ChannelData:
    """Bytes from the new master; b"" is end-of-file (it exited)."""

    data: bytes


@dataclass(frozen=True)
class UpgradeTimedOut:
    timeout: float


@dataclass(frozen=True)
class NewMasterExited:
    """waitpid reported the new master (a child of ours unless detached)."""

    reason: str


UpgradeEvent = ChannelData | UpgradeTimedOut | NewMasterExited


@dataclass(frozen=True)
class AnnounceNewMaster:
    """It serves: tell the plug-ins (systemd: MAINPID), answer "main"."""

    pid: int


@dataclass(frozen=True)
class UpgradeFinished:
    ok: bool
    reason: str


@dataclass(frozen=True)
class RetireForNewMaster:
    """The new master holds the control socket: this master stops gracefully."""

    pid: int


@dataclass(frozen=True)
class QuitNewMaster:
    pid: int


@dataclass(frozen=True)
class CloseUpgrade:
    """Stop listening to the channel and forget the upgrade: USR2 may be used again."""


UpgradeAction = AnnounceNewMaster | UpgradeFinished | RetireForNewMaster | QuitNewMaster | CloseUpgrade

_BEFORE_READY = "the new master exited before it was ready"


def upgrade_step(upgrade: PendingUpgrade, event: UpgradeEvent) -> tuple[UpgradePhase, list[UpgradeAction]]:
    """The handshake as one function: (phase, event) → (next phase, what to do)."""
    phase = upgrade.phase
    actions: list[UpgradeAction] = []

    def fail(reason: str) -> None:
        nonlocal phase
        actions.append(UpgradeFinished(False, reason))
        if upgrade.is_detached:
            # Keep listening: its end-of-file is the only sign that it is gone (USR2 waits).
            phase = UpgradePhase.FAILED
        else:
            actions.append(CloseUpgrade())

    if isinstance(event, UpgradeTimedOut):
        if upgrade.deadline_applies:
            actions.append(QuitNewMaster(upgrade.new_master_pid))
            fail(f"the new master did not become ready within {event.timeout}s")
        return phase, actions
    if isinstance(event, NewMasterExited):
        if upgrade.deadline_applies:
            fail(f"{_BEFORE_READY} ({event.reason})")
        if CloseUpgrade() not in actions:
            actions.append(CloseUpgrade())
        return phase, actions
    if not event.data:
        if upgrade.deadline_applies:
            fail(_BEFORE_READY)
        if CloseUpgrade() not in actions:
            actions.append(CloseUpgrade())
        return phase, actions
    if b"ready" in event.data and phase is UpgradePhase.AWAITING_READY:
        actions.append(AnnounceNewMaster(upgrade.new_master_pid))
        phase = UpgradePhase.AWAITING_TAKEN
        if not upgrade.completes_automatically:
            phase = UpgradePhase.HANDED_OVER
            actions.append(UpgradeFinished(
                True,
                f"new master pid={upgrade.new_master_pid} serves beside this one; retire with TERM",
            ))
    if b"taken" in event.data and phase is UpgradePhase.AWAITING_TAKEN:
        # The new master holds the control socket now: `ctl` never finds the path missing.
        phase = UpgradePhase.HANDED_OVER
        actions.append(UpgradeFinished(
            True, f"new master pid={upgrade.new_master_pid} serves; old master retiring"
        ))
        actions.append(RetireForNewMaster(upgrade.new_master_pid))
    return phase, actions


# ---- step: (state, event) → actions, for everything but heartbeats and the upgrade channel ----
# master.py turns what happened into one of these events, asks `step` what to do, and does it.


@dataclass(frozen=True)
class CommandGiven:
    """A signal's command, or the same command from `unitcorn ctl` or --reload (signum 0)."""

    command: Command
    signum: int = 0


@dataclass(frozen=True)
class WorkerExited:
    worker: WorkerHandle
    info: ExitInfo


@dataclass(frozen=True)
class WorkersBooted:
    """Workers reported on the boot pipe that they can serve."""


@dataclass(frozen=True)
class Tick:
    now: float


Event = CommandGiven | WorkerExited | WorkersBooted | Tick | UpgradeEvent


@dataclass(frozen=True)
class SignalWorkers:
    signum: int


@dataclass(frozen=True)
class StartReload:
    pass


@dataclass(frozen=True)
class RevertReload:
    reason: str


@dataclass(frozen=True)
class StartUpgrade:
    pass


@dataclass(frozen=True)
class Stop:
    """Close the listeners; workers get TERM (graceful: finish requests) or QUIT."""

    graceful: bool


@dataclass(frozen=True)
class Halt:
    """No generation can run: a quick stop, exiting with `exit_code` (3 or 4)."""

    exit_code: int
    reason: str


@dataclass(frozen=True)
class ScaleTo:
    count: int
    signum: int


@dataclass(frozen=True)
class StopAllWorkers:
    """WINCH to a daemonized master: no workers, the master stays."""


@dataclass(frozen=True)
class ReopenLogs:
    pass


@dataclass(frozen=True)
class AnnounceReady:
    """when_ready, READY=1, and "ready" to the old master after an upgrade."""


@dataclass(frozen=True)
class KillRemaining:
    """The graceful stop's time is up: SIGKILL every worker, and again at `again_at`."""

    again_at: float


@dataclass(frozen=True)
class UpgradeAdvanced:
    """The upgrade's handshake moved to `phase`."""

    phase: UpgradePhase


@dataclass(frozen=True)
class Ignored:
    """Nothing to do; `reason` is logged at debug level."""

    reason: str


Action = (
    SignalWorkers | StartReload | RevertReload | StartUpgrade | Stop | Halt | ScaleTo
    | StopAllWorkers | ReopenLogs | AnnounceReady | KillRemaining | Ignored
    | UpgradeAdvanced | UpgradeAction
)


def step(state: MasterState, event: Event) -> list[Action]:
    """What the master does about `event`, given what it knows."""
    if isinstance(event, CommandGiven):
        return _command_actions(state, event.command, event.signum)
    if isinstance(event, WorkerExited):
        outcome = exit_outcome(event.info, event.worker, state)
        info = event.info
        if outcome is ExitOutcome.REVERT_RELOAD:
            return [RevertReload(f"new worker failed: {info.reason} (exit {info.code})")]
        if outcome is ExitOutcome.HALT:
            assert info.halts_with is not None
            return [Halt(info.halts_with, info.reason)]
        return []
    if isinstance(event, WorkersBooted):
        return [AnnounceReady()] if is_server_ready(state) else []
    if isinstance(event, ChannelData | UpgradeTimedOut | NewMasterExited):
        if state.upgrade is None:
            return []
        phase, upgrade_actions = upgrade_step(state.upgrade, event)
        return [UpgradeAdvanced(phase), *upgrade_actions]
    if is_stop_overdue(state, event.now):
        # Repeat once a second until waitpid reports them, rather than trusting one signal.
        return [KillRemaining(again_at=event.now + 1.0)]
    return []


def _command_actions(state: MasterState, command: Command, signum: int) -> list[Action]:
    if state.is_stopping:
        return [SignalWorkers(signal.SIGQUIT)] if command_during_stop(command) else []
    if command is Command.RELOAD:
        return [StartReload()]
    if command is Command.STOP_GRACEFUL:
        return [Stop(graceful=True)]
    if command is Command.STOP_QUICK:
        return [Stop(graceful=False)]
    if command in (Command.SCALE_UP, Command.SCALE_DOWN):
        return [ScaleTo(scaled_worker_count(state.desired_workers, command), signum)]
    if command is Command.REOPEN_LOGS:
        return [ReopenLogs(), SignalWorkers(signal.SIGUSR1)]
    if command is Command.REEXEC:
        return [StartUpgrade()]
    if command is Command.STOP_WORKERS:
        return [StopAllWorkers()]
    if command is Command.IGNORE and signum == signal.SIGWINCH:
        return [Ignored("SIGWINCH ignored: not daemonized")]
    return []
