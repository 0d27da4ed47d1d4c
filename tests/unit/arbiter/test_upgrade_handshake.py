"""The old master's side of the USR2 handshake as tables: every message order, EOF at each step.

The new master says "ready"; we announce it (systemd: MAINPID) and answer "main"; it answers
"taken" once it holds the control socket; we retire. End-of-file means it exited.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from unitcorn.arbiter import decisions as d
from unitcorn.arbiter.decisions import (
    AnnounceNewMaster,
    ChannelData,
    CloseUpgrade,
    NewMasterExited,
    QuitNewMaster,
    RetireForNewMaster,
    UpgradeFinished,
    UpgradeTimedOut,
)
from unitcorn.arbiter.state import PendingUpgrade, UpgradePhase

PID = 4242
READY, TAKEN, HANDED, FAILED = (
    UpgradePhase.AWAITING_READY,
    UpgradePhase.AWAITING_TAKEN,
    UpgradePhase.HANDED_OVER,
    UpgradePhase.FAILED,
)
EOF_ = ChannelData(b"")
BEFORE_READY = "the new master exited before it was ready"
RETIRING = UpgradeFinished(True, f"new master pid={PID} serves; old master retiring")
BESIDE = UpgradeFinished(True, f"new master pid={PID} serves beside this one; retire with TERM")


def upgrade(phase: UpgradePhase = READY, *, automatic: bool = True, detached: bool = False) -> PendingUpgrade:
    # The channel is the master's to read; the rules never touch it.
    return PendingUpgrade(PID, None, 100.0, automatic, detached, phase)  # type: ignore[arg-type]


@dataclass
class Run:
    phases: list[UpgradePhase]
    actions: list[list[d.UpgradeAction]]


def run(events: list[d.UpgradeEvent], **kwargs: bool) -> Run:
    """Feed events in order, as the master does: it stops feeding once the upgrade is closed."""
    pending = upgrade(**kwargs)
    result = Run([], [])
    for event in events:
        pending.phase, actions = d.upgrade_step(pending, event)
        result.phases.append(pending.phase)
        result.actions.append(actions)
        if CloseUpgrade() in actions:
            break
    return result


@pytest.mark.parametrize(
    ("events", "phases", "actions"),
    [
        pytest.param(
            [ChannelData(b"ready\n"), ChannelData(b"taken\n"), EOF_],
            [TAKEN, HANDED, HANDED],
            [[AnnounceNewMaster(PID)], [RETIRING, RetireForNewMaster(PID)], [CloseUpgrade()]],
            id="ready-taken-eof",
        ),
        pytest.param(
            [ChannelData(b"ready\ntaken\n"), EOF_],
            [HANDED, HANDED],
            [[AnnounceNewMaster(PID), RETIRING, RetireForNewMaster(PID)], [CloseUpgrade()]],
            id="ready-and-taken-in-one-read",
        ),
        pytest.param(
            [ChannelData(b"taken\n"), ChannelData(b"ready\n"), ChannelData(b"taken\n")],
            [READY, TAKEN, HANDED],
            [[], [AnnounceNewMaster(PID)], [RETIRING, RetireForNewMaster(PID)]],
            id="taken-before-ready-is-ignored",
        ),
        pytest.param(
            [ChannelData(b"ready\n"), ChannelData(b"ready\n"), ChannelData(b"taken\n")],
            [TAKEN, TAKEN, HANDED],
            [[AnnounceNewMaster(PID)], [], [RETIRING, RetireForNewMaster(PID)]],
            id="ready-twice-announces-once",
        ),
        pytest.param(
            [EOF_],
            [READY],
            [[UpgradeFinished(False, BEFORE_READY), CloseUpgrade()]],
            id="eof-before-ready",
        ),
        pytest.param(
            [ChannelData(b"ready\n"), EOF_],
            [TAKEN, TAKEN],
            [[AnnounceNewMaster(PID)], [UpgradeFinished(False, BEFORE_READY), CloseUpgrade()]],
            id="eof-after-ready-before-taken",
        ),
        pytest.param(
            [ChannelData(b"ready\n"), ChannelData(b"taken\n"), ChannelData(b"taken\n"), EOF_],
            [TAKEN, HANDED, HANDED, HANDED],
            [[AnnounceNewMaster(PID)], [RETIRING, RetireForNewMaster(PID)], [], [CloseUpgrade()]],
            id="taken-twice-retires-once",
        ),
    ],
)
def test_handshake_in_every_order(events: list[d.UpgradeEvent], phases: list[UpgradePhase],
                                  actions: list[list[d.UpgradeAction]]) -> None:
    result = run(events)
    assert result.phases == phases
    assert result.actions == actions


def test_outside_systemd_both_masters_serve_after_ready() -> None:
    """A plain USR2 (not ctl, not systemd): nothing more is expected of the new master."""
    result = run([ChannelData(b"ready\n"), ChannelData(b"taken\n"), EOF_], automatic=False)
    assert result.phases == [HANDED, HANDED, HANDED]
    assert result.actions == [[AnnounceNewMaster(PID), BESIDE], [], [CloseUpgrade()]]


@pytest.mark.parametrize("detached", [False, True])
@pytest.mark.parametrize(
    ("prefix", "fails"),
    [([], True), ([ChannelData(b"ready\n")], True), ([ChannelData(b"ready\ntaken\n")], False)],
    ids=["awaiting-ready", "awaiting-taken", "handed-over"],
)
def test_the_deadline(prefix: list[d.UpgradeEvent], fails: bool, detached: bool) -> None:
    timeout = UpgradeTimedOut(30)
    result = run([*prefix, timeout, EOF_], detached=detached)
    after_timeout = result.actions[len(prefix)]
    if not fails:
        assert after_timeout == []
        assert result.actions[-1] == [CloseUpgrade()]
        return
    failure = UpgradeFinished(False, "the new master did not become ready within 30s")
    if detached:
        # Not our child: only its end-of-file says it is gone, so the channel stays open.
        assert after_timeout == [QuitNewMaster(PID), failure]
        assert result.phases[len(prefix)] is FAILED
        assert result.actions[-1] == [CloseUpgrade()]  # the EOF, with no second report
    else:
        assert after_timeout == [QuitNewMaster(PID), failure, CloseUpgrade()]


@pytest.mark.parametrize(
    ("prefix", "reported"),
    [([], True), ([ChannelData(b"ready\n")], True), ([ChannelData(b"ready\ntaken\n")], False)],
    ids=["awaiting-ready", "awaiting-taken", "handed-over"],
)
def test_the_new_master_exiting(prefix: list[d.UpgradeEvent], reported: bool) -> None:
    result = run([*prefix, NewMasterExited("killed by SIGKILL")])
    expected: list[d.UpgradeAction] = [CloseUpgrade()]
    if reported:
        expected.insert(0, UpgradeFinished(False, f"{BEFORE_READY} (killed by SIGKILL)"))
    assert result.actions[-1] == expected


def test_a_failed_detached_upgrade_ignores_a_late_ready() -> None:
    """Told to quit after its deadline, it must not become MAINPID on its way out."""
    result = run([UpgradeTimedOut(5), ChannelData(b"ready\n"), ChannelData(b"taken\n"), EOF_],
                 detached=True)
    assert result.phases == [FAILED, FAILED, FAILED, FAILED]
    assert result.actions[1:] == [[], [], [CloseUpgrade()]]
