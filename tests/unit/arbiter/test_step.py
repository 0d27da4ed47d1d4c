"""decisions.step as tables: (state, event) → actions, with no processes."""

from __future__ import annotations

import signal

import pytest

from unitcorn.arbiter import decisions as d
from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.state import (
    Fallback,
    MasterState,
    PendingUpgrade,
    ReloadPhase,
    UpgradePhase,
    WorkerHandle,
)


def state(*, stopping: bool = False, reloading: bool = False, desired: int = 2,
          booted: int = 2, is_ready: bool = False) -> MasterState:
    s = MasterState(own_pid=1, desired_workers=desired, generation=2)
    for pid in range(10, 10 + booted):
        s.workers[pid] = WorkerHandle(pid, pid, 2, pid, 0.0, is_booted=True)
    s.is_ready = is_ready
    if stopping:
        s.stop_deadline = 50.0
    if reloading:
        s.reload.phase = ReloadPhase.BOOTING
        s.reload.fallback = Fallback(None, 1, 2, None)
    return s


@pytest.mark.parametrize(
    ("command", "signum", "expected"),
    [
        (Command.RELOAD, signal.SIGHUP, [d.StartReload()]),
        (Command.STOP_GRACEFUL, signal.SIGTERM, [d.Stop(graceful=True)]),
        (Command.STOP_QUICK, signal.SIGQUIT, [d.Stop(graceful=False)]),
        (Command.SCALE_UP, signal.SIGTTIN, [d.ScaleTo(3, signal.SIGTTIN)]),
        (Command.SCALE_DOWN, signal.SIGTTOU, [d.ScaleTo(1, signal.SIGTTOU)]),
        (Command.REOPEN_LOGS, signal.SIGUSR1, [d.ReopenLogs(), d.SignalWorkers(signal.SIGUSR1)]),
        (Command.REEXEC, signal.SIGUSR2, [d.StartUpgrade()]),
        (Command.STOP_WORKERS, signal.SIGWINCH, [d.StopAllWorkers()]),
        (Command.IGNORE, signal.SIGWINCH, [d.Ignored("SIGWINCH ignored: not daemonized")]),
        (Command.IGNORE, signal.SIGPIPE, []),
        (Command.REAP, signal.SIGCHLD, []),
    ],
)
def test_a_command_while_serving(command: Command, signum: int, expected: list[d.Action]) -> None:
    assert d.step(state(), d.CommandGiven(command, signum)) == expected


@pytest.mark.parametrize("command", list(Command))
def test_during_a_stop_only_quit_counts(command: Command) -> None:
    """A second INT/QUIT during a graceful stop makes it quick; everything else waits it out."""
    actions = d.step(state(stopping=True), d.CommandGiven(command))
    expected = [d.SignalWorkers(signal.SIGQUIT)] if command is Command.STOP_QUICK else []
    assert actions == expected


def test_hup_during_a_reload_asks_for_a_reload_which_the_phase_defers() -> None:
    """step says "reload"; reload_requested (the master's StartReload) defers it to the end."""
    s = state(reloading=True)
    assert d.step(s, d.CommandGiven(Command.RELOAD, signal.SIGHUP)) == [d.StartReload()]
    assert d.reload_requested(s.reload.phase) == (ReloadPhase.BOOTING_THEN_AGAIN, False)


def _exit(code: int, generation: int = 2, retiring: bool = False) -> d.WorkerExited:
    worker = WorkerHandle(99, 99, generation, 0, 0.0)
    if retiring:
        worker.retire_deadline = 1.0
    return d.WorkerExited(worker, d.classify_exit(code << 8))


@pytest.mark.parametrize(
    ("reloading", "event", "expected"),
    [
        (False, _exit(3), [d.Halt(3, "boot-failed")]),
        (False, _exit(4), [d.Halt(4, "app-load-failed")]),
        (True, _exit(3), [d.RevertReload("new worker failed: boot-failed (exit 3)")]),
        (True, _exit(4, generation=1), [d.Halt(4, "app-load-failed")]),
        (True, _exit(3, retiring=True), []),
        (False, _exit(1), []),
        (False, _exit(0), []),
    ],
)
def test_a_worker_exit(reloading: bool, event: d.WorkerExited, expected: list[d.Action]) -> None:
    assert d.step(state(reloading=reloading), event) == expected


@pytest.mark.parametrize(
    ("booted", "is_ready", "expected"),
    [(1, False, []), (2, False, [d.AnnounceReady()]), (2, True, [])],
)
def test_workers_booted(booted: int, is_ready: bool, expected: list[d.Action]) -> None:
    assert d.step(state(booted=booted, is_ready=is_ready), d.WorkersBooted()) == expected


@pytest.mark.parametrize(
    ("stopping", "now", "booted", "expected"),
    [
        (False, 99.0, 2, []),
        (True, 49.0, 2, []),
        (True, 50.0, 2, [d.KillRemaining(again_at=51.0)]),
        (True, 60.0, 0, []),
    ],
)
def test_the_graceful_stop_kill(stopping: bool, now: float, booted: int, expected: list[d.Action]) -> None:
    assert d.step(state(stopping=stopping, booted=booted), d.Tick(now)) == expected


def test_upgrade_channel_events_go_through_the_handshake() -> None:
    s = state()
    assert d.step(s, d.ChannelData(b"ready\n")) == []  # no upgrade in progress: a stray message
    s.upgrade = PendingUpgrade(7, None, 100.0, completes_automatically=True)  # type: ignore[arg-type]
    assert d.step(s, d.ChannelData(b"ready\n")) == [
        d.UpgradeAdvanced(UpgradePhase.AWAITING_TAKEN), d.AnnounceNewMaster(7),
    ]
    s.upgrade.phase = UpgradePhase.AWAITING_TAKEN
    assert d.step(s, d.NewMasterExited("killed by SIGKILL")) == [
        d.UpgradeAdvanced(UpgradePhase.AWAITING_TAKEN),
        d.UpgradeFinished(False, "the new master exited before it was ready (killed by SIGKILL)"),
        d.CloseUpgrade(),
    ]
