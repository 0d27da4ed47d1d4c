"""Fixtures for real-process tests: a server factory that cleans up after itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import WORKER_CLASSES, Server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(app: str = "testapps:route", *args: str, ready: bool = True, **kwargs) -> Server:
        server = Server(tmp_path, app, *args, **kwargs)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(params=list(WORKER_CLASSES), ids=list(WORKER_CLASSES))
def worker_args(request) -> tuple[str, ...]:
    """The command-line arguments selecting each worker class in turn."""
    return WORKER_CLASSES[request.param]
