"""Fixtures for every unit test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from unitcorn.ratelimit import refusal_lines


@pytest.fixture(autouse=True)
def fresh_refusal_budget() -> Iterator[None]:
    """Each test starts with the whole per-second budget of refusal log lines."""
    refusal_lines.window_end = float("-inf")
    refusal_lines.used = refusal_lines.dropped = 0
    yield
