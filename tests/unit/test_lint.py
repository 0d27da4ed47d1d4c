"""ruff and mypy stay clean (STYLE.md: "Done, for a module")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)


def test_ruff_is_clean() -> None:
    pytest.importorskip("ruff")
    result = _run("ruff", "check", "unitcorn", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy")
    result = _run("mypy", "unitcorn")
    assert result.returncode == 0, result.stdout + result.stderr
