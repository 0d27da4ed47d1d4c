"""Fixtures: load settings in an empty environment from a scratch launch directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from unitcorn.settings import Settings, load_settings

Load = Callable[..., Settings]


@pytest.fixture
def load(tmp_path: Path) -> Load:
    """load(*argv, env={...}): settings as unitcorn started in tmp_path would see them."""

    def _load(*argv: str, env: Mapping[str, str] | None = None) -> Settings:
        return load_settings(list(argv), environ=dict(env or {}), cwd=str(tmp_path))

    return _load


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, text): a file in the launch directory, dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write
