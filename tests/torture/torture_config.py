"""How much torture (CI sizes or `--soak`) and which worker classes to torture."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# ---- sizes: CI (default) or --soak ----------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much torture: the issue's counts run in CI where they fit the budget (see
    docs/reliability.md); `--soak` multiplies everything."""

    hups: int
    scale_pairs: int
    upgrades: int
    kills: int
    mix: int
    signal_burst: int
    fuzz_seconds: float
    slowloris_clients: int
    timeout_factor: int


CI = Sizes(hups=100, scale_pairs=50, upgrades=20, kills=20, mix=60, signal_burst=1000,
           fuzz_seconds=6.0, slowloris_clients=50, timeout_factor=1)
SOAK = Sizes(hups=1000, scale_pairs=500, upgrades=100, kills=200, mix=300, signal_burst=10000,
             fuzz_seconds=120.0, slowloris_clients=200, timeout_factor=10)


# ---- worker classes -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # missing, or half-written by a parallel change: either way, not testable
        return False
    return True


HAS_GTHREAD = _importable("unitcorn.workers.gthread")
GTHREAD_THREADS = 4

WORKER_CLASSES = [
    pytest.param("sync", id="sync"),
    pytest.param("gthread", id="gthread", marks=pytest.mark.skipif(
        not HAS_GTHREAD, reason="unitcorn.workers.gthread is not importable yet (being written)")),
]


# The storms and the nginx test also run the asgi worker, with ASGI twins of their apps
# (`app_for`); the other torture tests use WSGI-only apps.
WORKER_CLASSES_WITH_ASGI = [*WORKER_CLASSES, pytest.param("asgi", id="asgi")]


def app_for(app: str, worker_class: str) -> str:
    """The app a test names, or its ASGI twin (`NAME_asgi` beside it) for the asgi worker."""
    return f"{app}_asgi" if worker_class == "asgi" else app


def worker_args(worker_class: str) -> list[str]:
    if worker_class == "gthread":
        return ["--worker-class", "gthread", "--threads", str(GTHREAD_THREADS)]
    return ["--worker-class", worker_class]
