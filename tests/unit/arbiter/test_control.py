"""The control protocol's grammar: one flat JSON object per line, refused before json recurses."""

from __future__ import annotations

import pytest

from unitcorn.arbiter.control import MAX_REQUEST, parse_request


@pytest.mark.parametrize(
    "line",
    [
        b'{"command": "status"}',
        b'{"command": "reload", "wait": true}',
        b'{"command": "scale", "workers": 3}',
        b'{"command": "x", "note": "brackets [{ in strings are text"}',
        b'{"command": "x", "note": "escaped \\" quote [ "}',
    ],
)
def test_flat_objects_parse(line: bytes) -> None:
    assert isinstance(parse_request(line), dict)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[" * 2000, "flat JSON object"),
        (b"{" * 2000, "flat JSON object"),
        (b'{"command": {"command": "status"}}', "flat JSON object"),
        (b'{"command": ["status"]}', "flat JSON object"),
        (b'"status"', "flat JSON object"),
        (b"12", "flat JSON object"),
        (b"\xff\xfe", None),  # not UTF-8 (json may detect another encoding first): any message
        (b'{"command": "status"', "delimiter"),
        (b"x" * (MAX_REQUEST + 1), "longer than"),
    ],
)
def test_everything_else_is_a_value_error(line: bytes, message: str | None) -> None:
    with pytest.raises(ValueError, match=message):
        parse_request(line)

