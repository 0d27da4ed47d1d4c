"""A worker that dies before booting is replaced with a growing delay (issue 11, finding B)."""

from __future__ import annotations

import re
import signal
import time

from harness import wait_for

WINDOW = 5.0


def test_a_crash_at_import_is_retried_with_back_off_and_signals_still_work(start_server) -> None:
    server = start_server("segfault_at_import:app", "--workers", "2", ready=False)
    server.wait_for_log(r"worker spawned pid=")
    started = time.monotonic()
    # The measurement itself: let the crash loop run for the window, then count.
    time.sleep(WINDOW)
    spawned = len(re.findall(r"worker spawned pid=", server.log()))
    crashed = len(re.findall(r"worker exited pid=\d+ code=- reason=killed by SIGSEGV", server.log()))
    print(f"forks in {time.monotonic() - started:.1f} s: {spawned}, crashes: {crashed}")
    # Without back-off: ~300 a second. With it: 0.1 + 0.2 + 0.4 + … s between rounds.
    assert 2 <= spawned <= 30, server.log()
    delays = re.findall(r"spawn delayed seconds=([\d.]+) reason=boot-failures count=(\d+)", server.log())
    assert delays, server.log()
    counts = [int(count) for _, count in delays]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # once per step
    assert float(delays[-1][0]) > float(delays[0][0])

    # A HUP during the delay is handled (and starts a fresh count for the new generation).
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload started generation=2", timeout=5)
    server.wait_for_log(r"worker spawned pid=\d+ generation=2", timeout=5)

    # TERM while a spawn is delayed: the master stops at once, not after the delay.
    server.wait_for_log(r"spawn delayed seconds=[\d.]+ reason=boot-failures count=\d+", count=len(delays) + 1,
                        timeout=10)
    asked = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=5) == 0
    assert time.monotonic() - asked < 1.0
    assert wait_for(lambda: "Shutting down: Master" in server.log(), 2, "shutdown line")
