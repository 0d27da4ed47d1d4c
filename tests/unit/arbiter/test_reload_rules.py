"""Reload (HUP) rules as tables: one at a time, HUP during a reload, a failed generation's revert."""

from __future__ import annotations

import signal

import pytest

from unitcorn.arbiter import decisions as d
from unitcorn.arbiter.decisions import Command, ExitOutcome
from unitcorn.arbiter.state import (
    Fallback,
    MasterState,
    PendingUpgrade,
    ReloadPhase,
    UpgradePhase,
    WorkerHandle,
)

IDLE, BOOTING, AGAIN = ReloadPhase.IDLE, ReloadPhase.BOOTING, ReloadPhase.BOOTING_THEN_AGAIN


@pytest.mark.parametrize(
    ("phase", "expected"),
    [(IDLE, (BOOTING, True)), (BOOTING, (AGAIN, False)), (AGAIN, (AGAIN, False))],
)
def test_a_reload_request(phase: ReloadPhase, expected: tuple[ReloadPhase, bool]) -> None:
    assert d.reload_requested(phase) == expected


@pytest.mark.parametrize(("phase", "again"), [(BOOTING, False), (AGAIN, True), (IDLE, False)])
def test_a_reload_ending(phase: ReloadPhase, again: bool) -> None:
    assert d.reload_ended(phase) is again


@pytest.mark.parametrize("hups_during", [0, 1, 2, 5])
def test_hups_during_a_reload_run_one_more_reload_after_it(hups_during: int) -> None:
    """However many HUPs arrive during a reload, exactly one more reload follows it, and that
    one ends with nothing pending."""
    phase, started = d.reload_requested(IDLE)
    assert started
    for _ in range(hups_during):
        phase, started = d.reload_requested(phase)
        assert not started
    again = d.reload_ended(phase)
    assert again is (hups_during > 0)
    if again:
        phase, started = d.reload_requested(IDLE)
        assert started and d.reload_ended(phase) is False


def _state(*workers: WorkerHandle, phase: ReloadPhase = IDLE, generation: int = 2,
           desired: int = 2, is_stopping: bool = False) -> MasterState:
    state = MasterState(own_pid=1, desired_workers=desired, generation=generation)
    state.workers = {w.pid: w for w in workers}
    state.reload.phase = phase
    if phase is not IDLE:
        state.reload.fallback = Fallback(settings=None, generation=1, desired_workers=2, app=None)
    if is_stopping:
        state.stop_deadline = 100.0
    return state


def _worker(pid: int, generation: int, *, booted: bool = True, retiring: bool = False) -> WorkerHandle:
    handle = WorkerHandle(pid, age=pid, generation=generation, slot=pid, spawned_at=0.0, is_booted=booted)
    if retiring:
        handle.retire_deadline = 50.0
    return handle


BOOT_FAILED = d.ExitInfo(3, None, "boot-failed", 3)
APP_FAILED = d.ExitInfo(4, None, "app-load-failed", 4)
CRASHED = d.ExitInfo(1, None, "error", None)
KILLED = d.ExitInfo(None, signal.SIGKILL, "killed by SIGKILL", None)


@pytest.mark.parametrize(
    ("info", "worker", "phase", "is_stopping", "expected"),
    [
        # A failed generation is reverted: the new generation's worker cannot boot.
        (BOOT_FAILED, _worker(7, 2, booted=False), BOOTING, False, ExitOutcome.REVERT_RELOAD),
        (APP_FAILED, _worker(7, 2, booted=False), AGAIN, False, ExitOutcome.REVERT_RELOAD),
        # An old generation's worker failing to boot during a reload: no generation can run.
        (BOOT_FAILED, _worker(5, 1), BOOTING, False, ExitOutcome.HALT),
        # No reload: exit 3 or 4 halts the server.
        (BOOT_FAILED, _worker(7, 2), IDLE, False, ExitOutcome.HALT),
        (APP_FAILED, _worker(7, 2), IDLE, False, ExitOutcome.HALT),
        # Told to go (the rest of a failed generation, TTOU) or stopping: says nothing.
        (BOOT_FAILED, _worker(7, 2, retiring=True), BOOTING, False, ExitOutcome.CARRY_ON),
        (APP_FAILED, _worker(7, 2), IDLE, True, ExitOutcome.CARRY_ON),
        # Other exits are replaced, reload or not.
        (CRASHED, _worker(7, 2), BOOTING, False, ExitOutcome.CARRY_ON),
        (KILLED, _worker(7, 2), IDLE, False, ExitOutcome.CARRY_ON),
    ],
)
def test_what_a_worker_exit_means(info: d.ExitInfo, worker: WorkerHandle, phase: ReloadPhase,
                                  is_stopping: bool, expected: ExitOutcome) -> None:
    state = _state(phase=phase, is_stopping=is_stopping)
    assert d.exit_outcome(info, worker, state) is expected


@pytest.mark.parametrize(
    ("workers", "phase", "complete"),
    [
        ((_worker(1, 1), _worker(2, 1)), BOOTING, False),  # only the old generation
        ((_worker(1, 1), _worker(3, 2), _worker(4, 2, booted=False)), BOOTING, False),
        ((_worker(1, 1), _worker(3, 2), _worker(4, 2)), BOOTING, True),
        ((_worker(3, 2), _worker(4, 2)), AGAIN, True),
        ((_worker(3, 2), _worker(4, 2, retiring=True)), BOOTING, False),
        ((_worker(3, 2), _worker(4, 2)), IDLE, False),  # no reload to complete
    ],
)
def test_a_reload_completes_when_the_new_generation_booted(
    workers: tuple[WorkerHandle, ...], phase: ReloadPhase, complete: bool
) -> None:
    assert d.is_reload_complete(_state(*workers, phase=phase)) is complete


@pytest.mark.parametrize(
    ("workers", "is_ready", "expected"),
    [
        ((_worker(3, 2), _worker(4, 2, booted=False)), False, False),
        ((_worker(3, 2), _worker(4, 2)), False, True),
        ((_worker(3, 2), _worker(4, 2)), True, False),  # once per master
        ((_worker(1, 1), _worker(2, 1)), False, False),  # an older generation does not count
    ],
)
def test_when_the_server_is_ready(workers: tuple[WorkerHandle, ...], is_ready: bool, expected: bool) -> None:
    state = _state(*workers)
    state.is_ready = is_ready
    assert d.is_server_ready(state) is expected


@pytest.mark.parametrize("command", list(Command))
def test_only_a_quick_stop_counts_during_a_stop(command: Command) -> None:
    assert d.command_during_stop(command) is (command is Command.STOP_QUICK)


@pytest.mark.parametrize(
    ("stop_deadline", "now", "workers", "overdue"),
    [(None, 99.0, 1, False), (10.0, 9.9, 1, False), (10.0, 10.0, 1, True), (10.0, 11.0, 0, False)],
)
def test_the_graceful_stop_kill(stop_deadline: float | None, now: float, workers: int, overdue: bool) -> None:
    state = _state(*[_worker(p, 2) for p in range(1, workers + 1)])
    state.stop_deadline = stop_deadline
    assert d.is_stop_overdue(state, now) is overdue


def test_hup_during_an_upgrade_reloads_and_leaves_the_upgrade_alone() -> None:
    """The two are independent: the new master inherits the sockets, not the generation."""
    state = _state(_worker(1, 2), _worker(2, 2))
    state.upgrade = PendingUpgrade(99, None, 100.0, completes_automatically=True)  # type: ignore[arg-type]
    phase, started = d.reload_requested(state.reload.phase)
    assert (phase, started) == (BOOTING, True)
    assert state.upgrade.phase is UpgradePhase.AWAITING_READY
    assert d.upgrade_step(state.upgrade, d.ChannelData(b"ready\n"))[0] is UpgradePhase.AWAITING_TAKEN
