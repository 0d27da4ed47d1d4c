"""Worker heartbeats in shared anonymous memory: one slot per worker, no files, no syscalls.

A worker writes ``time.monotonic()`` into its slot; the master reads it. CLOCK_MONOTONIC is
system-wide on Linux, so the values compare across processes. gunicorn's ``os.utime`` on a temp
file can stall on a slow disk; a memory write cannot.
"""

from __future__ import annotations

import mmap
import struct

# Each slot: the last beat (monotonic seconds) and the requests served so far.
_SLOT = struct.Struct("dQ")
# Slots are reused as workers come and go. The master sizes its board from `max_workers`; this
# default only serves tests.
MAX_SLOTS = 4096

NEVER = 0.0


class BoardFull(Exception):
    """Every slot is held by a live worker: spawning must wait until one exits."""


class HeartbeatBoard:
    """The master's side: allocates slots, reads them."""

    def __init__(self, slots: int = MAX_SLOTS) -> None:
        self.capacity = slots
        self._memory = mmap.mmap(-1, slots * _SLOT.size, flags=mmap.MAP_SHARED)
        self._free = list(range(slots - 1, -1, -1))

    def allocate(self) -> int:
        """A free slot; raises BoardFull when workers alive (retiring ones too) hold them all."""
        if not self._free:
            raise BoardFull(f"all {self.capacity} heartbeat slots are held by live workers")
        slot = self._free.pop()
        _SLOT.pack_into(self._memory, slot * _SLOT.size, NEVER, 0)
        return slot

    def requests_served(self, slot: int) -> int:
        return int(_SLOT.unpack_from(self._memory, slot * _SLOT.size)[1])

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def last_beat(self, slot: int) -> float:
        return float(_SLOT.unpack_from(self._memory, slot * _SLOT.size)[0])

    def pen(self, slot: int) -> HeartbeatPen:
        """The object a worker writes its beats with (valid in the forked child)."""
        return HeartbeatPen(self._memory, slot)

    def close(self) -> None:
        self._memory.close()


class HeartbeatPen:
    """The worker's side: one slot to write to."""

    def __init__(self, memory: mmap.mmap, slot: int) -> None:
        self._memory = memory
        self._offset = slot * _SLOT.size

    def beat(self, now: float, requests_served: int) -> None:
        _SLOT.pack_into(self._memory, self._offset, now, requests_served)
