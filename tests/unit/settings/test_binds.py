"""parse_bind: every accepted form, its canonical text, and each rejection's reason."""

import pytest

from unitcorn.binds import Bind, parse_bind

ACCEPTED = [
    # text, expected Bind, canonical str()
    ("127.0.0.1:8000", Bind("tcp", host="127.0.0.1", port=8000), "127.0.0.1:8000"),
    ("0.0.0.0:80", Bind("tcp", host="0.0.0.0", port=80), "0.0.0.0:80"),
    ("localhost", Bind("tcp", host="localhost", port=8000), "localhost:8000"),
    ("LocalHost:5000", Bind("tcp", host="localhost", port=5000), "localhost:5000"),
    (":9000", Bind("tcp", host="0.0.0.0", port=9000), "0.0.0.0:9000"),
    ("127.0.0.1:0", Bind("tcp", host="127.0.0.1", port=0), "127.0.0.1:0"),
    ("example.com:65535", Bind("tcp", host="example.com", port=65535), "example.com:65535"),
    ("[::1]:8000", Bind("tcp", host="::1", port=8000), "[::1]:8000"),
    ("[::]:80", Bind("tcp", host="::", port=80), "[::]:80"),
    ("[::1]", Bind("tcp", host="::1", port=8000), "[::1]:8000"),
    ("[FE80::1]:81", Bind("tcp", host="fe80::1", port=81), "[fe80::1]:81"),
    ("tcp://10.0.0.1:8080", Bind("tcp", host="10.0.0.1", port=8080), "10.0.0.1:8080"),
    ("  127.0.0.1:8000 ", Bind("tcp", host="127.0.0.1", port=8000), "127.0.0.1:8000"),
    ("unix:/run/app.sock", Bind("unix", path="/run/app.sock"), "unix:/run/app.sock"),
    ("unix://run/app.sock", Bind("unix", path="run/app.sock"), "unix:run/app.sock"),
    ("unix:///run/app.sock", Bind("unix", path="/run/app.sock"), "unix:/run/app.sock"),
    ("unix:app.sock", Bind("unix", path="app.sock"), "unix:app.sock"),
    ("fd://3", Bind("fd", fd=3), "fd://3"),
    ("fd://0", Bind("fd", fd=0), "fd://0"),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), ACCEPTED)
def test_accepted(text: str, expected: Bind, canonical: str) -> None:
    bind = parse_bind(text)
    assert bind == expected
    assert str(bind) == canonical
    assert parse_bind(canonical) == bind  # the canonical text round-trips


REJECTED = [
    ("", "is empty"),
    ("   ", "is empty"),
    ("unix:", "unix socket path is empty"),
    ("unix://", "unix socket path is empty"),
    ("unix:/tmp/a\0b", "NUL"),
    ("fd://", "is not a file descriptor number"),
    ("fd://x", "'x' is not a file descriptor number"),
    ("fd://-1", "'-1' is not a file descriptor number"),
    ("127.0.0.1:http", "port 'http' is not a number"),
    ("127.0.0.1:", "port '' is not a number"),
    ("127.0.0.1:-1", "port '-1' is not a number"),
    ("127.0.0.1:65536", "port 65536 is out of range (0-65535)"),
    ("127.0.0.1:٣", "is not a number"),  # a non-ASCII digit
    ("::1:8000", "an IPv6 address needs brackets"),
    ("[::1:8000", "missing ']'"),
    ("[::1]8000", "expected ':PORT' after ']'"),
    ("[::1]:", "port '' is not a number"),
    ("[nothost]:80", "'nothost' is not an IPv6 address"),
    ("[]:80", "is not an IPv6 address"),
]


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_rejected(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_bind(text)
    assert reason in str(info.value)


def test_not_a_string() -> None:
    with pytest.raises(TypeError, match="must be a string, not int"):
        parse_bind(8000)  # type: ignore[arg-type]


def test_is_ipv6() -> None:
    assert parse_bind("[::1]:1").is_ipv6
    assert not parse_bind("127.0.0.1:1").is_ipv6
    assert not parse_bind("unix:/x").is_ipv6
