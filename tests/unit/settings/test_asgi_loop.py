"""asgi_loop: gunicorn 27's names (auto, asyncio, uvloop), and uvloop only when it is installed."""

from __future__ import annotations

import importlib.util

import pytest

from unitcorn.settings import ConfigError


@pytest.mark.parametrize("given, loop", [(None, "auto"), ("asyncio", "asyncio"), (" UVLOOP ", "uvloop")])
def test_the_loops(load, monkeypatch: pytest.MonkeyPatch, given: str | None, loop: str) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # as if installed
    argv = ["--asgi-loop", given] if given else []
    assert load(*argv, "app:app").asgi_loop == loop


def test_an_unknown_loop_is_refused(load) -> None:
    with pytest.raises(ConfigError) as refused:
        load("--asgi-loop", "trio", "app:app")
    assert str(refused.value) == (
        "asgi_loop = trio (from command line): must be one of auto, asyncio, uvloop"
    )


def test_uvloop_when_it_is_not_installed_is_a_configuration_error(
    load, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as refused:
        load("--asgi-loop", "uvloop", "app:app")
    assert "uvloop is not installed (pip install 'unitcorn[uvloop]')" in str(refused.value)
