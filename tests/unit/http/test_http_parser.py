"""RequestParser behaviour beyond the corpus: limits, body reading, pipelining state, misuse."""

import pytest

from unitcorn.http.errors import HTTPError
from unitcorn.http.parser import Limits, RequestParser

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
DEFAULT = Limits()


def _parser(data: bytes, limits: Limits = DEFAULT) -> RequestParser:
    parser = RequestParser(limits)
    parser.feed(data)
    return parser


def _status(data: bytes, limits: Limits = DEFAULT, eof: bool = False) -> int:
    parser = _parser(data, limits)
    if eof:
        parser.feed(b"")
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    return caught.value.status


# -- limits --------------------------------------------------------------------------------------


def test_request_line_at_the_limit_is_accepted() -> None:
    line = b"GET /" + b"a" * 86 + b" HTTP/1.1"  # 100 bytes
    assert len(line) == 100
    request = _parser(line + b"\r\nHost: a\r\n\r\n", Limits(request_line=100)).next_request()
    assert request is not None


def test_request_line_over_the_limit_is_414() -> None:
    line = b"GET /" + b"a" * 87 + b" HTTP/1.1"
    assert _status(line + b"\r\nHost: a\r\n\r\n", Limits(request_line=100)) == 414


def test_endless_request_line_is_refused_before_its_end() -> None:
    parser = RequestParser(Limits(request_line=100))
    parser.feed(b"GET /" + b"a" * 95)  # 100 bytes, may still end
    assert parser.next_request() is None
    parser.feed(b"a")
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    assert caught.value.status == 414


def test_cr_after_a_full_length_request_line_may_still_be_its_end() -> None:
    parser = RequestParser(Limits(request_line=100))
    parser.feed(b"GET /" + b"a" * 86 + b" HTTP/1.1\r")
    assert parser.next_request() is None
    parser.feed(b"\nHost: a\r\n\r\n")
    assert parser.next_request() is not None


def test_field_line_at_and_over_the_limit() -> None:
    limits = Limits(field_size=20)
    field = b"X: " + b"v" * 17  # 20 bytes
    assert _parser(b"GET / HTTP/1.1\r\nHost: a\r\n" + field + b"\r\n\r\n", limits).next_request()
    assert _status(b"GET / HTTP/1.1\r\nHost: a\r\n" + field + b"v\r\n\r\n", limits) == 431


def test_field_count_at_and_over_the_limit() -> None:
    limits = Limits(fields=3)
    head = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"
    assert _parser(head + b"\r\n", limits).next_request()
    assert _status(head + b"C: 3\r\n\r\n", limits) == 431


def test_endless_head_is_refused_without_unbounded_buffering() -> None:
    limits = Limits(request_line=50, fields=4, field_size=20)
    parser = RequestParser(limits)
    parser.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(HTTPError) as caught:
        for _ in range(1000):
            parser.feed(b"X: y\r\n")
            assert parser.next_request() is None
    assert caught.value.status == 431
    assert limits.max_head < 200


def test_zero_limits_mean_the_maximum_never_unlimited() -> None:
    """0 used to switch a limit off, and the whole-head bound with it: a head was buffered
    without end.  Now 0 is gunicorn's maximum: 8190-byte line, 32768 fields, 8190-byte field."""
    limits = Limits(request_line=0, fields=0, field_size=0)
    assert (limits.request_line, limits.fields, limits.field_size) == (8190, 32768, 8190)
    assert limits.max_head == 8192 + 32768 * 8192 + 2
    line = b"GET /" + b"a" * 8176 + b" HTTP/1.1"
    assert len(line) == 8190
    field = b"X: " + b"v" * 8187
    request = _parser(line + b"\r\nHost: a\r\n" + field + b"\r\n\r\n", limits).next_request()
    assert request is not None and len(request.headers) == 2
    assert _status(b"GET /" + b"a" * 8177 + b" HTTP/1.1\r\nHost: a\r\n\r\n", limits) == 414
    assert _status(b"GET / HTTP/1.1\r\nHost: a\r\n" + field + b"v\r\n\r\n", limits) == 431
    many = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 32768 + b"\r\n"
    assert _status(many, limits) == 431


def test_trailer_limits_apply() -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    parser = _parser(head + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", Limits(fields=2))
    assert parser.next_request() is not None
    with pytest.raises(HTTPError) as caught:
        parser.read_body()
    assert caught.value.status == 431
    parser = _parser(head + b"A: " + b"v" * 40 + b"\r\n\r\n", Limits(field_size=30))
    parser.next_request()
    with pytest.raises(HTTPError) as caught:
        parser.read_body()
    assert caught.value.status == 431


# -- bodies --------------------------------------------------------------------------------------


def test_length_body_arrives_in_pieces_and_never_eats_the_next_request() -> None:
    parser = _parser(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab")
    request = parser.next_request()
    assert request is not None and request.content_length == 6
    assert parser.read_body() == b"ab"
    assert parser.read_body() is None
    assert not parser.is_idle
    parser.feed(b"cdef" + GET)
    assert parser.read_body(3) == b"cde"
    assert parser.read_body() == b"f"
    assert parser.has_buffered_data
    assert parser.read_body() == b""
    assert parser.read_body() == b""
    second = parser.next_request()
    assert second is not None and second.method == "GET"
    assert parser.is_idle and not parser.has_buffered_data


def test_chunked_body_with_max_bytes_spans_chunks() -> None:
    parser = _parser(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
    )
    parser.next_request()
    assert parser.read_body(4) == b"abcd"
    assert parser.read_body(4) == b"ef"
    assert parser.read_body(4) == b""


def test_request_without_body_reads_empty() -> None:
    parser = _parser(GET)
    request = parser.next_request()
    assert request is not None and request.content_length is None and not request.is_chunked
    assert parser.read_body() == b""
    assert parser.is_idle


def test_next_request_before_the_body_is_consumed_is_a_programming_error() -> None:
    parser = _parser(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab")
    parser.next_request()
    with pytest.raises(RuntimeError):
        parser.next_request()


def test_max_bytes_zero_is_refused() -> None:
    parser = _parser(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab")
    parser.next_request()
    with pytest.raises(ValueError):
        parser.read_body(0)


# -- connection state ----------------------------------------------------------------------------


def test_eof_on_an_empty_buffer_is_not_an_error() -> None:
    parser = RequestParser()
    parser.feed(b"")
    assert parser.next_request() is None
    assert parser.is_idle


def test_eof_in_the_middle_of_a_head_is_400() -> None:
    assert _status(b"GET / HTTP/1.1\r\nHo", eof=True) == 400


def test_empty_lines_between_requests_are_not_a_buffered_request() -> None:
    parser = _parser(GET + b"\r\n")
    parser.next_request()
    assert not parser.has_buffered_data
    assert parser.is_idle


def test_partial_next_request_is_not_idle() -> None:
    parser = _parser(GET + b"GET /2")
    parser.next_request()
    assert parser.has_buffered_data and not parser.is_idle
    assert parser.next_request() is None


def test_errors_are_sticky() -> None:
    parser = _parser(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
    for _ in range(2):
        with pytest.raises(HTTPError):
            parser.next_request()
    with pytest.raises(HTTPError):
        parser.read_body()


def test_bare_lf_is_refused_before_the_head_is_complete() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\n")
    with pytest.raises(HTTPError) as caught:
        parser.next_request()
    assert caught.value.status == 400


def test_head_split_inside_the_crlfcrlf() -> None:
    parser = RequestParser()
    for piece in (b"GET / HTTP/1.1\r\nHost: a\r", b"\n\r", b"\n"):
        assert parser.next_request() is None
        parser.feed(piece)
    assert parser.next_request() is not None


def test_keep_alive_rules() -> None:
    def keep_alive(head: bytes) -> bool:
        request = _parser(head + b"\r\n").next_request()
        assert request is not None
        return request.keep_alive

    assert keep_alive(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert not keep_alive(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n")
    assert not keep_alive(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n")
    assert not keep_alive(b"GET / HTTP/1.0\r\n")
    assert keep_alive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n")
    assert keep_alive(b"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: Keep-Alive\r\n")
