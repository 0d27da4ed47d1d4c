"""The heartbeat board: slots the master allocates and reads, pens the workers write with."""

from __future__ import annotations

import pytest

from unitcorn.process.heartbeat import NEVER, BoardFull, HeartbeatBoard


def test_a_pen_writes_what_the_board_reads() -> None:
    board = HeartbeatBoard(4)
    slot = board.allocate()
    assert (board.last_beat(slot), board.requests_served(slot)) == (NEVER, 0)
    board.pen(slot).beat(1234.5, 7)
    assert (board.last_beat(slot), board.requests_served(slot)) == (1234.5, 7)


def test_slots_are_separate() -> None:
    board = HeartbeatBoard(3)
    first, second = board.allocate(), board.allocate()
    board.pen(first).beat(10.0, 1)
    assert first != second
    assert (board.last_beat(second), board.requests_served(second)) == (NEVER, 0)


def test_a_reused_slot_starts_blank() -> None:
    """A new worker must not inherit the last beat (or the request count) of the one before."""
    board = HeartbeatBoard(1)
    slot = board.allocate()
    board.pen(slot).beat(99.0, 42)
    board.release(slot)
    assert board.allocate() == slot
    assert (board.last_beat(slot), board.requests_served(slot)) == (NEVER, 0)


def test_a_full_board_says_so_and_frees_slots() -> None:
    board = HeartbeatBoard(2)
    slots = [board.allocate(), board.allocate()]
    with pytest.raises(BoardFull, match="all 2 heartbeat slots"):
        board.allocate()
    board.release(slots[0])
    assert board.allocate() == slots[0]
    assert board.capacity == 2


def test_slots_are_handed_out_lowest_first() -> None:
    board = HeartbeatBoard(3)
    assert [board.allocate() for _ in range(3)] == [0, 1, 2]
