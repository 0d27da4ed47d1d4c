"""LineBudget: so many lines a window, then a count of the ones dropped."""

from __future__ import annotations

from unitcorn.ratelimit import LineBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_burst_passes_then_lines_are_counted_and_reported_with_the_next_one() -> None:
    clock = Clock()
    budget = LineBudget(3, interval=1.0, clock=clock)
    assert [budget.take() for _ in range(3)] == [0, 0, 0]
    assert [budget.take() for _ in range(5)] == [None] * 5
    clock.now += 0.999
    assert budget.take() is None  # still the same window
    clock.now += 0.001
    assert budget.take() == 6  # the first line of the next window reports what was dropped
    assert budget.take() == 0


def test_a_quiet_period_refills_the_budget() -> None:
    clock = Clock()
    budget = LineBudget(1, interval=2.0, clock=clock)
    assert budget.take() == 0
    assert budget.take() is None
    clock.now += 60
    assert budget.take() == 1
    clock.now += 60
    assert budget.take() == 0
