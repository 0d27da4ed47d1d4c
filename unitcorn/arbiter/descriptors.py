"""What a freshly forked worker keeps of the master's descriptors: a positive list; the rest closes.

The application runs in the worker, possibly as an unprivileged user. Every master descriptor it
inherits is a way to act as the master: the control socket (accept `ctl` requests), a pending
`ctl reload --wait` connection (answer root with a forged "reload complete"), the upgrade
channel, the signal wakeup pipe (send the master any command). Listing what a worker *needs*
rather than what the master *has* means a descriptor the master gains tomorrow is closed too.

Closing leaves Python objects in the child (the master's control socket object, say) holding
numbers the worker will reuse. They are never used in the worker, and the master object that
references them lives until `os._exit`; `gc.freeze()` keeps garbage cycles from before the fork
from being finalized later, which would close a reused number under the worker's feet.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable

from unitcorn.logs import log_descriptors
from unitcorn.sockets import Listener

STDIO = (0, 1, 2)


def worker_descriptors(listeners: Iterable[Listener], boot_fd: int, life_fd: int) -> set[int]:
    """The descriptors a worker serves with: stdio, its listeners, the boot and life pipes."""
    keep = set(STDIO)
    keep.update(listener.fileno() for listener in listeners)
    keep.update((boot_fd, life_fd))
    return keep


def open_descriptors() -> list[int]:
    # /proc/self/fd, not a loop up to the fd limit: exact, and the limit may be a million.
    return [int(name) for name in os.listdir("/proc/self/fd")]


def close_all_but(keep: set[int]) -> None:
    """In the forked child: close every descriptor not in `keep` nor used by logging."""
    gc.freeze()
    present = open_descriptors()
    keep = keep | log_descriptors(present)
    for fd in present:
        if fd not in keep:
            # EBADF: the descriptor listdir used for /proc/self/fd, closed already.
            with contextlib.suppress(OSError):
                os.close(fd)
