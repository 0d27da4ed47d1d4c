"""SignalQueue: record-only handlers, one byte per delivery, everything restored afterwards."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterator

import pytest

from unitcorn.process.signals import SignalQueue

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


@pytest.fixture
def queue() -> Iterator[SignalQueue]:
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    queue = SignalQueue(SIGNALS)
    yield queue
    if signal.getsignal(signal.SIGUSR1) is not before[signal.SIGUSR1]:
        queue.restore()


def is_readable(queue: SignalQueue) -> bool:
    return bool(select.select([queue], [], [], 5)[0])


def test_nothing_received_drains_empty(queue: SignalQueue) -> None:
    assert not select.select([queue], [], [], 0)[0]
    assert queue.drain() == []


def test_each_delivery_is_one_entry_in_order(queue: SignalQueue) -> None:
    os.kill(os.getpid(), signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert is_readable(queue)  # the wakeup fd is what the master's selector waits on
    assert queue.drain() == [signal.SIGUSR1, signal.SIGUSR2, signal.SIGUSR1]
    assert queue.drain() == []


def test_a_burst_is_not_merged_or_lost(queue: SignalQueue) -> None:
    """A pipe holds 65,536 bytes; a socketpair lost TERM after ~280 (docs/reliability.md)."""
    for _ in range(1000):
        os.kill(os.getpid(), signal.SIGUSR2)
    assert queue.drain() == [signal.SIGUSR2] * 1000


def test_restore_puts_back_the_handlers_and_the_wakeup_fd() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGUSR1, mine)
    try:
        queue = SignalQueue(SIGNALS)
        assert signal.getsignal(signal.SIGUSR1) is not mine
        ours = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(ours)
        assert ours >= 0  # the write end of the queue's pipe
        queue.restore()
        assert signal.getsignal(signal.SIGUSR1) is mine
        assert signal.set_wakeup_fd(-1) == -1  # nothing was installed before the queue
    finally:
        signal.signal(signal.SIGUSR1, previous)
