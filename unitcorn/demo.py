"""A built-in demo application, so ``unitcorn unitcorn.demo:app`` answers with no app of your own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Say hello, and which worker answered (handy when watching reloads and upgrades)."""
    body = f"Hello from unitcorn (worker {os.getpid()})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
