"""gunicorn's access_log_format atoms, one by one and in the default format."""

import re

import pytest

from unitcorn.accesslog import DEFAULT_ACCESS_LOG_FORMAT, format_access

ENVIRON = {
    "REQUEST_METHOD": "POST",
    "RAW_URI": "/path%20x?a=1",
    "PATH_INFO": "/path x",
    "QUERY_STRING": "a=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "192.0.2.7",
    "HTTP_REFERER": "https://example.com/",
    "HTTP_USER_AGENT": 'curl/8 "quoted"',
    "HTTP_AUTHORIZATION": "Basic YWxpY2U6c2VjcmV0",  # alice:secret
    "HTTP_X_REQUEST_ID": "abc",
    "CONTENT_TYPE": "text/plain",
    "wsgi.url_scheme": "https",
}
HEADERS = [("Content-Type", "text/html"), ("X-Cache", "miss"), ("X-Cache", "hit")]


def _atom(atom: str, environ: dict = ENVIRON, length: int = 1234, duration: float = 2.5) -> str:
    return format_access(f"%({atom})s", environ, "201 Created", HEADERS, length, duration, 4242)


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "192.0.2.7"),
        ("l", "-"),
        ("u", "alice"),
        ("r", "POST /path%20x?a=1 HTTP/1.1"),
        ("s", "201"),
        ("m", "POST"),
        ("U", "/path x"),
        ("q", "a=1"),
        ("H", "HTTP/1.1"),
        ("b", "1234"),
        ("B", "1234"),
        ("f", "https://example.com/"),
        ("a", 'curl/8 \\"quoted\\"'),
        ("T", "2"),
        ("D", "2500000"),
        ("M", "2500"),
        ("L", "2.500000"),
        ("p", "<4242>"),
        ("{x-request-id}i", "abc"),
        ("{X-Request-Id}i", "abc"),
        ("{content-type}i", "text/plain"),
        ("{x-missing}i", "-"),
        ("{content-type}o", "text/html"),
        ("{x-cache}o", "hit"),
        ("{wsgi.url_scheme}e", "https"),
        ("{remote_addr}e", "192.0.2.7"),
        ("{nope}e", "-"),
        ("nonsense", "-"),
    ],
)
def test_atoms(atom: str, expected: str) -> None:
    assert _atom(atom) == expected


def test_time_atom() -> None:
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", _atom("t"))


def test_missing_values_are_dashes() -> None:
    environ = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.0"}
    assert _atom("h", environ) == "-"
    assert _atom("u", environ) == "-"
    assert _atom("f", environ) == "-"
    assert _atom("a", environ) == "-"
    assert _atom("u", {**environ, "HTTP_AUTHORIZATION": "Bearer x"}) == "-"
    assert _atom("u", {**environ, "HTTP_AUTHORIZATION": "Basic !!!"}) == "-"


def test_zero_length_is_a_number() -> None:
    assert _atom("b", length=0) == "0"


def test_default_format() -> None:
    line = format_access(DEFAULT_ACCESS_LOG_FORMAT, ENVIRON, "200 OK", [], 5, 0.01, 1)
    assert re.fullmatch(
        r'192\.0\.2\.7 - alice \[[^]]+\] "POST /path%20x\?a=1 HTTP/1\.1" 200 5 '
        r'"https://example\.com/" "curl/8 \\"quoted\\""',
        line,
    )


def test_numeric_conversions_work_like_gunicorn() -> None:
    assert format_access("%(D)d us %(B)d bytes", ENVIRON, "200 OK", [], 7, 0.000123, 1) == ("123 us 7 bytes")
