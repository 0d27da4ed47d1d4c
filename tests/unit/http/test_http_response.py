"""Response framing: lengths, chunking, close-delimiting, bodiless responses, refused headers."""

import re

import pytest

from unitcorn.http.response import LAST_CHUNK, encode_chunk, error_response, frame_response


def _frame(status="200 OK", headers=(), method="GET", version=(1, 1), keep_alive=True):
    head, framing = frame_response(method, version, status, list(headers), keep_alive)
    text = head.decode("latin-1")
    assert text.endswith("\r\n\r\n")
    lines = text[:-4].split("\r\n")
    return lines[0], lines[1:], framing


def test_length_from_the_app() -> None:
    status, lines, framing = _frame(headers=[("Content-Length", "5"), ("X-A", "b")])
    assert status == "HTTP/1.1 200 OK"
    assert (framing.mode, framing.length, framing.keep_alive) == ("length", 5, True)
    assert "Content-Length: 5" in lines and "X-A: b" in lines
    assert not any(line.startswith(("Connection", "Transfer-Encoding")) for line in lines)


def test_date_and_server_are_added_once() -> None:
    _, lines, _ = _frame()
    assert [line for line in lines if line.startswith("Server:")] == ["Server: unitcorn"]
    (date,) = [line for line in lines if line.startswith("Date:")]
    assert re.fullmatch(r"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", date)
    _, lines, _ = _frame(headers=[("Server", "app"), ("Date", "x")])
    assert [line for line in lines if line.startswith(("Server", "Date"))] == [
        "Server: app",
        "Date: x",
    ]


def test_http11_without_length_is_chunked() -> None:
    _, lines, framing = _frame()
    assert framing.mode == "chunked" and framing.keep_alive
    assert "Transfer-Encoding: chunked" in lines


def test_http10_without_length_is_close_delimited() -> None:
    _, lines, framing = _frame(version=(1, 0))
    assert (framing.mode, framing.keep_alive) == ("close", False)
    assert "Connection: close" in lines and not any("chunked" in line for line in lines)


def test_http10_keep_alive_is_announced() -> None:
    _, lines, framing = _frame(version=(1, 0), headers=[("Content-Length", "0")])
    assert framing.keep_alive and "Connection: keep-alive" in lines


def test_http11_close_is_announced() -> None:
    _, lines, framing = _frame(headers=[("Content-Length", "0")], keep_alive=False)
    assert not framing.keep_alive and "Connection: close" in lines


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified")]
)
def test_bodiless_responses(method: str, status: str) -> None:
    _, lines, framing = _frame(status, [("Content-Length", "10")], method)
    assert framing.mode == "none" and framing.keep_alive
    assert not any("chunked" in line for line in lines)
    # RFC 9110 §8.6: never a Content-Length on 204; HEAD and 304 may say the GET's length.
    assert ("Content-Length: 10" in lines) == (status != "204 No Content")


def test_head_without_length_is_not_chunked() -> None:
    _, lines, framing = _frame(method="HEAD")
    assert framing.mode == "none" and not any("chunked" in line for line in lines)


@pytest.mark.parametrize(
    "name",
    ["Connection", "keep-alive", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Proxy-Authenticate"],
)
def test_hop_by_hop_headers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="hop-by-hop"):
        _frame(headers=[(name, "x")])


@pytest.mark.parametrize(
    "header",
    [
        ("X-A", "b\r\nSet-Cookie: evil=1"),
        ("X-A", "b\nc"),
        ("X-A", "b\rc"),
        ("X-A", "b\x00"),
        ("X A", "b"),
        ("X-A:", "b"),
        ("", "b"),
        ("X-A", "snowman \u2603"),
        ("Content-Length", "abc"),
    ],
)
def test_invalid_headers_are_refused(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        _frame(headers=[header])


def test_conflicting_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        _frame(headers=[("Content-Length", "1"), ("Content-Length", "2")])


@pytest.mark.parametrize("status", ["200", "OK", "20 OK", "200 OK\r\nX: y", "2000 OK"])
def test_invalid_status_is_refused(status: str) -> None:
    with pytest.raises(ValueError):
        _frame(status)


def test_tab_and_obs_text_are_allowed_in_values() -> None:
    _, lines, _ = _frame(headers=[("X-A", "a\tb caf\xe9")])
    assert "X-A: a\tb caf\xe9" in lines


def test_chunk_encoding() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert encode_chunk(b"") == b""
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_error_response_is_complete_and_closes() -> None:
    reply = error_response(400, "bare LF in header")
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert "Connection: close" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body == b"bare LF in header\n"
    assert error_response(431, "x").startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_reused_head_gets_the_current_date(monkeypatch) -> None:
    """Heads are cached per shape; only their Date line may change between uses."""
    import unitcorn.http.response as response

    headers = [("Content-Type", "text/plain"), ("Content-Length", "2")]
    monkeypatch.setattr(response.time, "time", lambda: 1_000_000_000.0)
    first, _ = response.frame_response("GET", (1, 1), "200 OK", headers, True)
    monkeypatch.setattr(response.time, "time", lambda: 1_000_000_061.0)
    second, _ = response.frame_response("GET", (1, 1), "200 OK", headers, True)
    assert b"Date: Sun, 09 Sep 2001 01:46:40 GMT\r\n" in first
    assert b"Date: Sun, 09 Sep 2001 01:47:41 GMT\r\n" in second
    assert first.replace(b"01:46:40", b"01:47:41") == second


def test_an_apps_own_date_header_is_kept_and_not_doubled() -> None:
    from unitcorn.http.response import frame_response

    headers = [("Date", "Mon, 01 Jan 2001 00:00:00 GMT"), ("Content-Length", "0")]
    head, _ = frame_response("GET", (1, 1), "200 OK", headers, True)
    assert head.count(b"Date: ") == 1
    assert b"Date: Mon, 01 Jan 2001 00:00:00 GMT\r\n" in head
