"""Let through at most so many log lines a second, and count the ones held back.

A client sending garbage as fast as it can must not turn the error log into its amplifier: a
line per refused request is useful until it is thousands a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LineBudget:
    """At most `burst` lines per `interval` seconds (a fixed window); the rest are counted.

    `take()` returns None for a line to drop, or, for a line to write, how many were dropped
    since the last one written: the caller says so first, in one line. Counts may be off by a
    few under threads racing here; that is cheaper than a lock on the path of every refusal.
    """

    def __init__(self, burst: int, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.window_end = float("-inf")
        self.used = 0
        self.dropped = 0

    def take(self) -> int | None:
        now = self.clock()
        if now >= self.window_end:
            self.window_end = now + self.interval
            self.used = 0
        if self.used >= self.burst:
            self.dropped += 1
            return None
        self.used += 1
        dropped, self.dropped = self.dropped, 0
        return dropped


# Refused requests: a line each, up to this many a second in each worker.
REFUSALS_PER_SECOND = 20
refusal_lines = LineBudget(REFUSALS_PER_SECOND)
