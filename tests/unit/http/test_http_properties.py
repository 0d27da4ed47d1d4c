"""Property tests: whatever the bytes, the parser answers with requests or HTTPError, nothing else."""

import os
from pathlib import Path

from http_drive import drive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitcorn.http.errors import HTTPError
from unitcorn.http.parser import Limits, Request, RequestParser
from unitcorn.http.response import encode_chunk

CASES = Path(__file__).parent.parent / "http_cases"
SAMPLES = [path.read_bytes() for path in sorted(CASES.glob("*/*.http")) if path.stat().st_size < 600]

# A longer hunt: HTTP_PROPERTY_EXAMPLES=20000 python -m pytest tests/unit/http
EXAMPLES = int(os.environ.get("HTTP_PROPERTY_EXAMPLES", "400"))
SMALL_LIMITS = Limits(request_line=64, fields=8, field_size=64)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [piece for piece in pieces if piece]  # b"" would mean EOF


def _check(data: bytes, cuts: list[int], eof: bool, limits: Limits, max_bytes: int) -> None:
    try:
        done, _ = drive(_pieces(data, cuts), eof, RequestParser(limits), max_bytes)
    except HTTPError as exc:
        assert exc.status in (400, 413, 414, 431, 501, 505)
        assert exc.reason
        return
    for request, body in done:
        assert isinstance(request, Request)
        assert request.version in ((1, 0), (1, 1))
        assert all(name == name.upper() for name, _ in request.headers)
        if request.content_length is not None:
            assert len(body) == request.content_length
            assert not request.is_chunked


settings_ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(
    st.binary(max_size=300),
    st.lists(st.integers(min_value=0), max_size=6),
    st.booleans(),
    st.sampled_from([-1, 1, 7]),
)
def test_arbitrary_bytes(data: bytes, cuts: list[int], eof: bool, max_bytes: int) -> None:
    _check(data, cuts, eof, Limits(), max_bytes)
    _check(data, cuts, eof, SMALL_LIMITS, max_bytes)


# Bytes that matter to HTTP framing, so mutations hit the interesting paths more often.
_SPECIAL = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b";", b",", b"0", b"f", b"\x00", b"\x7f", b"\xff"]
)


@settings_
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 3), _SPECIAL | st.binary(max_size=3)),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(min_value=0), max_size=4),
    st.booleans(),
)
def test_mutated_requests(
    sample: bytes, edits: list[tuple[int, int, bytes]], cuts: list[int], eof: bool
) -> None:
    data = sample
    for at, delete, insert in edits:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + delete :]
    _check(data, cuts, eof, Limits(), -1)


@settings_
@given(
    st.binary(max_size=2000),
    st.lists(st.integers(1, 300), min_size=1, max_size=20),
    st.lists(st.integers(min_value=0), max_size=8),
    st.sampled_from([-1, 1, 100]),
)
def test_chunked_round_trip_stops_at_the_body_end(
    body: bytes, sizes: list[int], cuts: list[int], max_bytes: int
) -> None:
    chunks, rest = [], body
    while rest:
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(encode_chunk(rest[:size]))
        rest = rest[size:]
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(chunks)
        + b"0\r\n\r\n"
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    done, pending = drive(_pieces(data, cuts), False, max_bytes=max_bytes)
    assert pending is None
    assert [(request.target, got) for request, got in done] == [("/", body), ("/next", b"")]
