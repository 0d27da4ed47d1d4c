"""Hostile input the corpus cannot express: what a refusal leaves behind, limits set to 0."""

import gc
import tracemalloc
import types

import pytest

from unitcorn.http.errors import HTTPError
from unitcorn.http.parser import Limits, RequestParser

MANY_HEADERS = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 10_000 + b"\r\n"


def _reachable(root: object) -> list[object]:
    """Everything `root` keeps alive through references (what a collection could not free)."""
    seen = {id(root)}
    found = []
    todo = [root]
    while todo:
        for child in gc.get_referents(todo.pop()):
            if id(child) not in seen and not isinstance(child, type | types.ModuleType):
                seen.add(id(child))
                found.append(child)
                todo.append(child)
    return found


def _refuse(parser: RequestParser) -> int:
    # Not pytest.raises: its ExceptionInfo, held by this frame, would form a cycle of its own.
    try:
        parser.next_request()
    except HTTPError as exc:
        return exc.status
    raise AssertionError("not refused")


def test_a_refused_parser_keeps_no_traceback_and_no_frame() -> None:
    parser = RequestParser()
    parser.feed(MANY_HEADERS)
    assert _refuse(parser) == 431
    kept = _reachable(parser)
    assert not [o for o in kept if isinstance(o, types.TracebackType | types.FrameType)]
    assert not [o for o in kept if isinstance(o, BaseException)]
    # Still broken: every later call refuses the same way.
    assert _refuse(parser) == 431
    with pytest.raises(HTTPError):
        parser.read_body()


def test_a_refusal_frees_its_parse_at_once_without_a_collection() -> None:
    """With the collector off, what the refusal allocated must go by reference counting alone
    (the stored traceback used to pin parse_head's 10,000-field list, ~1.6 MB)."""
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsers = []
        for _ in range(5):
            parser = RequestParser()
            parser.feed(MANY_HEADERS)
            assert _refuse(parser) == 431
            parser.feed(b"")  # drop the received bytes: only the refusal itself may stay
            parsers.append(parser)
        kept = tracemalloc.get_traced_memory()[0] - before
        # A constant ~110 kB stays on CPython's tuple free lists, counted by tracemalloc.
    finally:
        tracemalloc.stop()
        gc.enable()
    assert kept < 300_000, kept


def test_the_whole_head_is_bounded_even_with_a_limit_at_zero() -> None:
    """Every field under its limit, the head over the total (fields x field size): refused with
    431 while it arrives.  With a limit at 0 there used to be no total, and it was buffered."""
    limits = Limits(field_size=0)
    assert limits.max_head == 4094 + 2 + 100 * (8190 + 2) + 2
    parser = RequestParser(limits)
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n")
    field = b"X: " + b"v" * 4000 + b"\r\n"
    fed = 0
    with pytest.raises(HTTPError) as caught:
        while fed < 2 * limits.max_head:
            parser.feed(field * 10)
            fed += len(field) * 10
            assert parser.next_request() is None
    assert (caught.value.status, caught.value.reason) == (431, "request head too large")
    assert fed <= limits.max_head + len(field) * 10
