"""The PROXY header between the parser's other states, the peer allow lists, the options' checks
(the header's bytes themselves are corpus cases: tests/unit/http_cases/*/proxy_*)."""

import pytest

from unitcorn.http.errors import HTTPError
from unitcorn.http.options import ParseOptions
from unitcorn.http.parser import RequestParser
from unitcorn.http.peers import AllowList
from unitcorn.http.proxy import V2_SIGNATURE

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
LOCAL = V2_SIGNATURE + b"\x20\x00\x00\x00"


def _parser(mode: str = "auto") -> RequestParser:
    return RequestParser(options=ParseOptions(proxy_protocol=mode), is_proxy_allowed=True)


def test_a_v2_signature_is_not_taken_for_empty_lines() -> None:
    """The v2 signature begins with CRLF CRLF, which before a request would be skipped."""
    parser = _parser()
    parser.feed(LOCAL[:4])
    assert not parser.is_idle and parser.has_buffered_data  # a head has begun: 408 on timeout
    assert parser.next_request() is None
    assert not parser.is_idle
    parser.feed(LOCAL[4:] + GET)
    assert parser.next_request() is not None
    assert parser.proxy is not None and parser.proxy.protocol == "LOCAL"
    assert parser.read_body() == b"" and parser.is_idle


def test_idle_before_anything_arrives() -> None:
    parser = _parser()
    assert parser.is_idle and not parser.has_buffered_data
    assert parser.next_request() is None


def test_eof_before_anything_is_no_error() -> None:
    parser = _parser()
    parser.feed(b"")
    assert parser.next_request() is None
    assert parser.proxy is None


def test_the_error_sticks() -> None:
    parser = RequestParser(options=ParseOptions(proxy_protocol="v1"))  # peer not allowed
    parser.feed(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + GET)
    for _ in range(2):
        with pytest.raises(HTTPError) as caught:
            parser.next_request()
        assert caught.value.status == 403


def test_allow_list() -> None:
    allow = AllowList(["10.0.0.0/8", "2001:db8::1", " 192.0.2.5 "])
    assert allow.allows(("10.255.0.1", 1)) and allow.allows(("2001:db8::1", 1, 0, 0))
    assert allow.allows(("192.0.2.5", 1)) and allow.allows(("::ffff:10.0.0.1", 1, 0, 0))
    assert not allow.allows(("11.0.0.1", 1)) and not allow.allows(("2001:db8::2", 1, 0, 0))
    assert not allow.allows(("not-an-address", 1))
    assert allow.allows("/run/app.sock") and allow.allows("") and allow.allows(b"")  # unix peers
    assert AllowList(["*"]).allows(("203.0.113.1", 1))
    assert not AllowList([]).allows(("127.0.0.1", 1))


@pytest.mark.parametrize(("keywords", "message"), [
    ({"header_map": "keep"}, "header_map must be one of drop, refuse, dangerous"),
    ({"proxy_protocol": "v3"}, "proxy_protocol must be one of off, v1, v2, auto"),
])
def test_options_are_checked(keywords: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParseOptions(**keywords)
