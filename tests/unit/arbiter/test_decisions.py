"""The master's decisions, as tables: no processes, no mocks."""

from __future__ import annotations

import os
import signal

import pytest

from unitcorn.arbiter import decisions as d
from unitcorn.arbiter.decisions import BootFailures, Command, WorkerHandle


@pytest.mark.parametrize(
    ("signum", "is_daemon", "expected"),
    [
        (signal.SIGHUP, False, Command.RELOAD),
        (signal.SIGTERM, False, Command.STOP_GRACEFUL),
        (signal.SIGINT, False, Command.STOP_QUICK),
        (signal.SIGQUIT, False, Command.STOP_QUICK),
        (signal.SIGTTIN, False, Command.SCALE_UP),
        (signal.SIGTTOU, False, Command.SCALE_DOWN),
        (signal.SIGUSR1, False, Command.REOPEN_LOGS),
        (signal.SIGUSR2, False, Command.REEXEC),
        (signal.SIGWINCH, False, Command.IGNORE),
        (signal.SIGWINCH, True, Command.STOP_WORKERS),
        (signal.SIGCHLD, False, Command.REAP),
        (signal.SIGPIPE, False, Command.IGNORE),
    ],
)
def test_command_for_signal(signum: int, is_daemon: bool, expected: Command) -> None:
    assert d.command_for_signal(signum, is_daemon=is_daemon) is expected


@pytest.mark.parametrize(
    ("new_master_pid", "old_master_pid", "refused"),
    [(0, 0, False), (123, 0, True), (0, 456, True), (123, 456, True)],
)
def test_reexec_guards(new_master_pid: int, old_master_pid: int, refused: bool) -> None:
    refusal = d.reexec_refusal(new_master_pid, old_master_pid)
    assert (refusal is not None) is refused
    if refused:
        assert str(new_master_pid or old_master_pid) in refusal


@pytest.mark.parametrize(
    ("current", "command", "expected"),
    [
        (1, Command.SCALE_UP, 2),
        (4, Command.SCALE_UP, 5),
        (3, Command.SCALE_DOWN, 2),
        (1, Command.SCALE_DOWN, 1),
        (2, Command.RELOAD, 2),
    ],
)
def test_scaled_worker_count(current: int, command: Command, expected: int) -> None:
    assert d.scaled_worker_count(current, command) == expected


def _exited(code: int) -> int:
    return code << 8


def _killed(signum: int) -> int:
    return signum


@pytest.mark.parametrize(
    ("status", "code", "signum", "reason", "halts_with"),
    [
        (_exited(0), 0, None, "normal", None),
        (_exited(1), 1, None, "error", None),
        (_exited(3), 3, None, "boot-failed", 3),
        (_exited(4), 4, None, "app-load-failed", 4),
        (_killed(signal.SIGKILL), None, signal.SIGKILL, "killed by SIGKILL", None),
        (_killed(signal.SIGTERM), None, signal.SIGTERM, "killed by SIGTERM", None),
    ],
)
def test_classify_exit(status: int, code, signum, reason: str, halts_with) -> None:
    assert os.WIFEXITED(status) or os.WIFSIGNALED(status)
    info = d.classify_exit(status)
    observed = (info.code, info.signal, info.reason, info.halts_with)
    assert observed == (code, signum, reason, halts_with)


def _worker(
    pid: int, generation: int = 1, booted: bool = True, retiring: bool = False
) -> WorkerHandle:
    handle = WorkerHandle(pid=pid, age=pid, generation=generation, slot=pid, spawned_at=0.0)
    handle.is_booted = booted
    handle.retire_deadline = 99.0 if retiring else None
    return handle


def test_plan_spawns_up_to_the_desired_count() -> None:
    assert d.plan_workers([_worker(1)], desired=3, generation=1) == [d.Spawn(1), d.Spawn(1)]


def test_plan_retires_the_oldest_excess_workers() -> None:
    workers = [_worker(3), _worker(1), _worker(2)]
    assert d.plan_workers(workers, desired=1, generation=1) == [d.Retire(1), d.Retire(2)]


def test_plan_ignores_workers_already_retiring() -> None:
    workers = [_worker(1, retiring=True), _worker(2)]
    assert d.plan_workers(workers, desired=2, generation=1) == [d.Spawn(1)]


def test_reload_keeps_the_old_generation_until_the_new_one_booted() -> None:
    old = [_worker(1, generation=1), _worker(2, generation=1)]
    assert d.plan_workers(old, desired=2, generation=2) == [d.Spawn(2), d.Spawn(2)]
    half = old + [_worker(3, generation=2), _worker(4, generation=2, booted=False)]
    assert d.plan_workers(half, desired=2, generation=2) == []
    done = old + [_worker(3, generation=2), _worker(4, generation=2)]
    assert d.plan_workers(done, desired=2, generation=2) == [d.Retire(1), d.Retire(2)]


def test_zero_desired_workers_retires_everyone() -> None:
    workers = [_worker(1), _worker(2, generation=0)]
    assert d.plan_workers(workers, desired=0, generation=1) == [d.Retire(1), d.Retire(2)]


def test_heartbeat_aborts_a_silent_worker_then_kills_it() -> None:
    beats = {1: 100.0, 2: 125.0}
    workers = [_worker(1), _worker(2)]
    assert d.heartbeat_actions(workers, now=131.0, timeout=30, last_beat=beats.get) == [d.Abort(1)]
    workers[0].kill_deadline = 133.0
    assert d.heartbeat_actions(workers, now=132.0, timeout=30, last_beat=beats.get) == []
    assert d.heartbeat_actions(workers, now=133.0, timeout=30, last_beat=beats.get) == [d.Kill(1)]


def test_heartbeat_counts_from_spawn_until_the_first_beat() -> None:
    worker = _worker(1, booted=False)
    worker.spawned_at = 50.0
    assert d.heartbeat_actions([worker], now=79.0, timeout=30, last_beat=lambda slot: 0.0) == []
    assert d.heartbeat_actions([worker], now=81.0, timeout=30, last_beat=lambda slot: 0.0) == [
        d.Abort(1)
    ]


def test_timeout_zero_disables_heartbeat_checks() -> None:
    assert d.heartbeat_actions([_worker(1)], now=1e9, timeout=0, last_beat=lambda s: 1.0) == []


def test_a_retiring_worker_is_killed_at_its_deadline_not_for_silence() -> None:
    worker = _worker(1, retiring=True)  # deadline 99
    assert d.heartbeat_actions([worker], now=98.0, timeout=1, last_beat=lambda s: 0.1) == []
    actions = d.heartbeat_actions([worker], now=99.0, timeout=1, last_beat=lambda s: 0.1)
    assert actions == [d.Kill(1)]


def test_next_deadline_is_the_earliest() -> None:
    beats = {1: 100.0, 2: 90.0}
    workers = [_worker(1), _worker(2)]
    assert d.next_heartbeat_deadline(workers, 30, beats.get) == 120.0
    assert d.next_heartbeat_deadline(workers, 0, beats.get) is None
    workers[0].kill_deadline = 101.0
    assert d.next_heartbeat_deadline(workers, 30, beats.get) == 101.0


@pytest.mark.parametrize(
    ("count", "max_workers", "refusal"),
    [
        (1, 1, None),
        (256, 256, None),
        (0, 256, None),  # WINCH
        (257, 256, "workers = 257 is above max_workers = 256 (raise --max-workers)"),
        (10**12, 256, "workers = 1000000000000 is above max_workers = 256 (raise --max-workers)"),
    ],
)
def test_worker_count_refusal(count: int, max_workers: int, refusal: str | None) -> None:
    assert d.worker_count_refusal(count, max_workers) == refusal


# ---- back-off after boot failures ------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "delay"),
    [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (7, 6.4), (8, 10.0), (9, 10.0), (10_000, 10.0)],
)
def test_spawn_delay_doubles_from_a_tenth_to_ten_seconds(count: int, delay: float) -> None:
    assert d.spawn_delay(BootFailures(count)) == pytest.approx(delay)


def _handle(pid: int, *, spawned_at: float = 100.0, booted: bool = False, generation: int = 1,
            retiring: bool = False) -> WorkerHandle:
    handle = WorkerHandle(pid, pid, generation, pid, spawned_at, is_booted=booted)
    if retiring:
        handle.retire_deadline = spawned_at + 30
    return handle


# (failures before, the exited worker, its requests, other workers alive, their requests, now,
#  count after)
BACKOFF_CASES = [
    ("boot failure counts", BootFailures(0, generation=1), _handle(1), 0, [], 0, 100.5, 1),
    ("failures accumulate", BootFailures(3, 99.0, 1), _handle(1), 0, [], 0, 100.5, 4),
    ("booted then died: not a boot failure", BootFailures(3, 99.0, 1),
     _handle(1, booted=True), 0, [], 0, 100.5, 3),
    ("booted and served after the last failure: reset", BootFailures(3, 99.0, 1),
     _handle(1, booted=True), 1, [], 0, 100.5, 0),
    ("booted and lived 10 s after the last failure: reset", BootFailures(3, 99.0, 1),
     _handle(1, booted=True), 0, [], 0, 110.0, 0),
    ("booted, lived 9 s, served nothing: no proof", BootFailures(3, 99.0, 1),
     _handle(1, booted=True), 0, [], 0, 109.0, 3),
    ("a proven worker alive resets, then this failure counts", BootFailures(3, 99.0, 1),
     _handle(1), 0, [_handle(2, booted=True)], 5, 100.5, 1),
    ("a worker older than the last failure proves nothing", BootFailures(3, 99.0, 1),
     _handle(1), 0, [_handle(2, spawned_at=10.0, booted=True)], 5000, 100.5, 4),
    ("an unbooted worker alive proves nothing", BootFailures(3, 99.0, 1),
     _handle(1), 0, [_handle(2, spawned_at=99.5)], 0, 120.0, 4),
    ("retired before booting: not a failure", BootFailures(3, 99.0, 1),
     _handle(1, retiring=True), 0, [], 0, 100.5, 3),
    ("a new generation starts afresh", BootFailures(5, 99.0, 1),
     _handle(1, generation=2), 0, [], 0, 100.5, 1),
    ("an old generation's failure is not counted", BootFailures(5, 99.0, 2),
     _handle(1, generation=1), 0, [], 0, 100.5, 5),
]


@pytest.mark.parametrize(
    ("failures", "exited", "exited_served", "alive", "alive_served", "now", "count"),
    [case[1:] for case in BACKOFF_CASES],
    ids=[case[0] for case in BACKOFF_CASES],
)
def test_boot_failures_after_a_worker_exit(failures, exited, exited_served, alive, alive_served,
                                           now, count) -> None:
    generation = max([exited.generation, failures.generation])

    def served(worker: WorkerHandle) -> int:
        return exited_served if worker is exited else alive_served

    after = d.after_worker_exit(failures, exited, served, alive, generation, now)
    assert after.count == count
    assert after.generation == generation
    if count > failures.count or (count == 1 and failures.count != 0):
        assert after.last_at == now


def test_a_reload_forgets_the_failures_of_the_generation_before() -> None:
    failures = BootFailures(6, 50.0, generation=3)
    assert d.for_generation(failures, 3) is failures
    assert d.for_generation(failures, 4) == BootFailures(generation=4)
