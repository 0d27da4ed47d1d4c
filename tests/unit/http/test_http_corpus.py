"""Every .http case in tests/unit/http_cases, fed whole, byte by byte and at random splits."""

import json
import random
from pathlib import Path

import pytest
from http_drive import drive

from unitcorn.http.errors import HTTPError
from unitcorn.http.options import ParseOptions
from unitcorn.http.parser import Limits, RequestParser

CASES = Path(__file__).parent.parent / "http_cases"
VALID = sorted(CASES.glob("valid/*.http"))
INVALID = sorted(CASES.glob("invalid/*.http"))


def _splits(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(f"{how}:{len(data)}")  # seeded: a failure is reproducible
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


SPLITS = ["whole", "bytes", "random-1", "random-2", "random-3"]


def _parser(case: dict) -> RequestParser:
    """The parser a case asks for: its "options" (ParseOptions keywords), "trusted" (the peer is
    in forwarded_allow_ips) and "proxy_allowed" (in proxy_allow_ips)."""
    return RequestParser(
        Limits(),
        ParseOptions(**case.get("options", {})),
        is_trusted=case.get("trusted", False),
        is_proxy_allowed=case.get("proxy_allowed", False),
    )


def test_corpus_is_large_enough() -> None:
    assert len(VALID) >= 25
    assert len(INVALID) >= 60
    for case in VALID + INVALID:
        assert case.with_suffix(".json").exists(), case


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("case", VALID, ids=lambda path: path.stem)
def test_valid(case: Path, split: str) -> None:
    spec = json.loads(case.with_suffix(".json").read_text())
    expected = spec["requests"]
    data = case.read_bytes()
    max_bytes = 3 if split == "random-2" else -1
    parser = _parser(spec)
    done, pending = drive(_splits(data, split), eof=False, parser=parser, max_bytes=max_bytes)
    assert pending is None
    if "proxy" in spec:
        proxy = spec["proxy"]
        assert (None if parser.proxy is None else vars(parser.proxy)) == proxy
    assert len(done) == len(expected)
    for (request, body), want in zip(done, expected, strict=True):
        assert body == want["body"].encode("latin-1")
        for key, value in want.items():
            if key == "body":
                continue
            got = getattr(request, key)
            if key == "version":
                got = list(got)
            elif key == "headers":
                got = [list(pair) for pair in got]
            assert got == value, key


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("case", INVALID, ids=lambda path: path.stem)
def test_invalid(case: Path, split: str) -> None:
    expected = json.loads(case.with_suffix(".json").read_text())
    data = case.read_bytes()
    with pytest.raises(HTTPError) as caught:
        drive(_splits(data, split), eof=True, parser=_parser(expected))
    assert caught.value.status == expected["status"], caught.value.reason
