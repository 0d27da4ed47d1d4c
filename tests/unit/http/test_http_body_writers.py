"""Body writers: app bytes in, wire bytes out; too many, too few, chunks, and bodiless responses."""

from collections.abc import Callable
from functools import partial

import pytest

from unitcorn.http.response import (
    BodyWriter,
    ChunkedWriter,
    CloseWriter,
    Framing,
    LengthWriter,
    NoBodyWriter,
    body_writer,
    frame_response,
)

pytestmark = pytest.mark.timeout(10)

# (case, a new writer, app blocks, wire bytes for each block, bytes at the end, body bytes counted,
#  whether only closing the connection can end the message)
CASES = [
    ("exact length", partial(LengthWriter, 5), [b"he", b"llo"], [b"he", b"llo"], b"", 5, False),
    ("length in one block", partial(LengthWriter, 5), [b"hello"], [b"hello"], b"", 5, False),
    ("empty length", partial(LengthWriter, 0), [], [], b"", 0, False),
    ("too many bytes: cut", partial(LengthWriter, 3), [b"toolong"], [b"too"], b"", 3, True),
    ("too many, over blocks", partial(LengthWriter, 3), [b"ab", b"cd", b"ef"], [b"ab", b"c", b""], b"", 3,
     True),
    ("too few bytes", partial(LengthWriter, 10), [b"short"], [b"short"], b"", 5, True),
    ("no bytes of a length", partial(LengthWriter, 5), [], [], b"", 0, True),
    ("empty blocks", partial(LengthWriter, 2), [b"", b"ok", b""], [b"", b"ok", b""], b"", 2, False),
    ("chunks", ChunkedWriter, [b"hello", b"x" * 26], [b"5\r\nhello\r\n", b"1a\r\n" + b"x" * 26 + b"\r\n"],
     b"0\r\n\r\n", 31, False),
    ("an empty block is no chunk", ChunkedWriter, [b"", b"a"], [b"", b"1\r\na\r\n"], b"0\r\n\r\n", 1,
     False),
    ("no chunks at all", ChunkedWriter, [], [], b"0\r\n\r\n", 0, False),
    ("close-delimited", CloseWriter, [b"a", b"bc"], [b"a", b"bc"], b"", 3, True),
    ("bodiless", NoBodyWriter, [b"ignored", b"too"], [b"", b""], b"", 0, False),
]


@pytest.mark.parametrize(
    ("new_writer", "blocks", "wire", "tail", "sent", "ends_connection"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_writer(new_writer: Callable[[], BodyWriter], blocks: list[bytes], wire: list[bytes], tail: bytes,
                sent: int, ends_connection: bool) -> None:
    writer = new_writer()
    assert [writer.write(block) for block in blocks] == wire
    assert writer.end() == tail
    assert writer.sent == sent
    assert writer.ends_connection == ends_connection


# A body fed byte by byte frames the same bytes as fed whole (chunks aside: one per write).
@pytest.mark.parametrize("length", [0, 3, 5, 8])
def test_length_writer_byte_by_byte(length: int) -> None:
    body = b"hello"
    whole, split = LengthWriter(length), LengthWriter(length)
    assert b"".join(split.write(body[i : i + 1]) for i in range(len(body))) == whole.write(body)
    assert split.end() == whole.end() == b""
    assert (split.sent, split.ends_connection) == (whole.sent, whole.ends_connection)


@pytest.mark.parametrize(
    ("size", "left", "ends_connection"), [(10, 0, False), (4, 6, True)], ids=["whole file", "short file"]
)
def test_bytes_sent_elsewhere_count_against_the_length(size: int, left: int, ends_connection: bool) -> None:
    """os.sendfile sends around the writer: the writer still knows whether the length was met."""
    writer = LengthWriter(10)
    writer.count(size)
    writer.end()
    assert (writer.left, writer.sent, writer.ends_connection) == (left, size, ends_connection)


# (framing, the writer it gets)
FRAMINGS = [
    (Framing("length", 7, True), LengthWriter),
    (Framing("chunked", None, True), ChunkedWriter),
    (Framing("close", None, False), CloseWriter),
    (Framing("none", None, True), NoBodyWriter),
]


@pytest.mark.parametrize(("framing", "kind"), FRAMINGS, ids=[f[0].mode for f in FRAMINGS])
def test_body_writer_follows_the_framing(framing: Framing, kind: type) -> None:
    writer = body_writer(framing)
    assert type(writer) is kind
    if isinstance(writer, LengthWriter):
        assert writer.left == 7


# (method, status, request version, headers) → what the app's b"hello" becomes on the wire
RESPONSES = [
    ("GET", "200 OK", (1, 1), [("Content-Length", "5")], b"hello"),
    ("GET", "200 OK", (1, 1), [], b"5\r\nhello\r\n"),
    ("GET", "200 OK", (1, 0), [], b"hello"),
    ("HEAD", "200 OK", (1, 1), [("Content-Length", "5")], b""),
    ("GET", "204 No Content", (1, 1), [], b""),
    ("GET", "304 Not Modified", (1, 1), [("Content-Length", "5")], b""),
    ("GET", "200 OK", (1, 1), [("Content-Length", "2")], b"he"),
]


@pytest.mark.parametrize(("method", "status", "version", "headers", "wire"), RESPONSES)
def test_framed_response_bodies(method: str, status: str, version: tuple[int, int],
                                headers: list[tuple[str, str]], wire: bytes) -> None:
    _, framing = frame_response(method, version, status, headers, True)
    assert body_writer(framing).write(b"hello") == wire
