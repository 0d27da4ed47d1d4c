"""Record-only signal handlers that wake the master's selector through a pipe.

The handlers do nothing: CPython's C-level handler writes each signal number as one byte to the
wakeup fd (`signal.set_wakeup_fd`), and those bytes ARE the queue the loop reads — one byte per
delivery, where Python-level handlers would merge repeats. So nothing runs in signal context (no
logging, no locks) and the loop wakes at once, with no polling. A pipe, not a socketpair: a
socketpair's buffer is charged per write and fills after ~280 one-byte signals (a burst then
lost TERM), a pipe holds 65,536. Not signalfd: it needs the signals blocked in every thread,
which Python cannot promise (libraries start threads).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from typing import Any


def _record_only(signum: int, frame: Any) -> None:
    """The byte written to the wakeup socket already records the signal."""


class SignalQueue:
    """Installs handlers for `signals`; `drain()` returns the signals received since last time."""

    def __init__(self, signals: Iterable[int]) -> None:
        self._reader, self._writer = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous_handlers = {sig: signal.signal(sig, _record_only) for sig in signals}
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._writer, warn_on_full_buffer=False)

    def fileno(self) -> int:
        return self._reader

    def drain(self) -> list[int]:
        received = bytearray()
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._reader, 65536):
                received += chunk
        return list(received)

    def restore(self) -> None:
        """Put back whatever was installed before (for tests and for forked children)."""
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        os.close(self._reader)
        os.close(self._writer)


def fork_with_signals_blocked(signals: Iterable[int]) -> tuple[int, set[Any]]:
    """fork() with `signals` blocked; returns (pid, the mask to restore).

    Until a child has dropped the master's handlers, a signal sent to it would run them: the
    byte would land in the master's wakeup pipe, and the master would act on a signal meant
    for the child (seen: a USR1 sent to a just-forked worker counted twice). Blocked, such a
    signal waits for the child to install its own handlers and restore the mask. The parent's
    mask is restored here; the child must restore it itself.
    """
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
    return pid, saved
