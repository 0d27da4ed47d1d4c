"""Lifecycles: every event reaches every plug-in in order; a failing plug-in stops none of the others."""

from __future__ import annotations

import logging

import pytest

from unitcorn.arbiter.lifecycle import Lifecycle, Lifecycles, MasterStatus

STATUS = MasterStatus(
    own_pid=1, generation=1, desired_workers=1, booted_workers=1, worker_pids=(2,),
    requests_served=0, is_ready=True, is_stopping=False, is_reloading=False, new_master_pid=0,
    exit_code=0, listeners=(), settings=None,
)


class Recorder(Lifecycle):
    def __init__(self, name: str, seen: list[str], deadline: float | None = None,
                 environment: dict[str, str] | None = None, completes: bool = False) -> None:
        self.name, self.seen, self.deadline = name, seen, deadline
        self.environment, self.completes = environment or {}, completes

    def ready(self, status: MasterStatus) -> None:
        self.seen.append(f"{self.name} ready generation={status.generation}")

    def reload_finished(self, status: MasterStatus, ok: bool, reason: str) -> None:
        self.seen.append(f"{self.name} reload ok={ok} reason={reason}")

    def next_deadline(self) -> float | None:
        return self.deadline

    def new_master_environment(self, child_pid: int) -> dict[str, str]:
        return {**self.environment, "PID": str(child_pid)}

    def completes_upgrades(self) -> bool:
        return self.completes


class Broken(Lifecycle):
    def ready(self, status: MasterStatus) -> None:
        raise OSError("notify socket full")


def test_events_reach_every_member_in_order(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    fan = Lifecycles(Recorder("a", seen), Broken(), Recorder("b", seen))
    with caplog.at_level(logging.ERROR, logger="unitcorn.error"):
        fan.ready(STATUS)
    fan.reload_finished(STATUS, False, "configuration: bad")
    fan.stopping(STATUS)  # nobody overrides it: the base class does nothing
    assert seen == [
        "a ready generation=1", "b ready generation=1",
        "a reload ok=False reason=configuration: bad", "b reload ok=False reason=configuration: bad",
    ]
    assert "lifecycle listener failed event=ready" in caplog.text


def test_answers_are_combined() -> None:
    fan = Lifecycles(Recorder("a", [], deadline=5.0, environment={"A": "1"}),
                     Recorder("b", [], deadline=3.0, environment={"B": "2"}, completes=True),
                     Recorder("c", []))
    assert fan.next_deadline() == 3.0
    assert fan.new_master_environment(9) == {"A": "1", "B": "2", "PID": "9"}
    assert fan.completes_upgrades() is True
    assert Lifecycles().next_deadline() is None
    assert Lifecycles(Recorder("a", [])).completes_upgrades() is False


def test_every_event_of_the_base_class_is_fanned_out() -> None:
    """A new event added to Lifecycle without a fan-out method would silently go nowhere."""
    events = {name for name, value in vars(Lifecycle).items() if callable(value) and not name.startswith("_")}
    assert events <= set(vars(Lifecycles))
