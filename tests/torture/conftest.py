"""Fixtures for the torture suite: a server that survives upgrades, sizes for CI or `--soak`,
the worker classes to run against, and a figures table printed at the end of the run.

Servers come from `tests/process/harness.py` (the fd-passing, log-watching `Server`); this file
adds what torture needs on top: following the *current* master across USR2 upgrades, reaping
orphans (the sandbox's PID 1 does not), and an incremental log watcher.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROCESS_TESTS = HERE.parent / "process"
sys.path.insert(0, str(PROCESS_TESTS))

from harness import Server  # noqa: E402
from torture_config import CI, SOAK, Sizes, worker_args  # noqa: E402
from torture_proc import (  # noqa: E402
    LogWatch,
    live_children,
    reap_adopted,
    session_processes,
    set_subreaper,
    state,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torture")
    group.addoption("--soak", action="store_true", default=False,
                    help="torture suite: run the long soak sizes instead of the CI sizes")
    group.addoption("--torture-report", default=None, metavar="PATH",
                    help="torture suite: write the figures of this run to PATH as JSON")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "torture: the torture suite (tests/torture)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    factor = SOAK.timeout_factor if config.getoption("--soak", default=False) else 1
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.torture)
        marker = item.get_closest_marker("timeout")
        if marker is not None and factor > 1:
            item.add_marker(pytest.mark.timeout(marker.args[0] * factor), append=False)


@pytest.fixture(scope="session")
def sizes(request: pytest.FixtureRequest) -> Sizes:
    return SOAK if request.config.getoption("--soak", default=False) else CI


# ---- the server -----------------------------------------------------------------------------


class TortureServer(Server):
    """A `Server` whose current master may change (USR2), with a log watcher and full cleanup."""

    def __init__(self, directory: Path, app: str, *args: str, **kwargs) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(directory, app, *args, **kwargs)
        self.master = self.pid
        self.masters = [self.pid]
        self.watch = LogWatch(self.log_path)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def is_master_alive(self) -> bool:
        return state(self.master) not in ("", "Z")

    def wait(self, message: str, pid: int | None = None, since: int = 0, **kwargs) -> list:
        kwargs.setdefault("alive", self.is_master_alive)
        return self.watch.wait(message, pid, since, **kwargs)

    def wait_ready(self, timeout: float = 20) -> TortureServer:
        self.wait(r"server ready", self.master, timeout=timeout)
        return self

    def current_workers(self) -> list[int]:
        return live_children(self.master)

    def adopt_master(self, pid: int) -> None:
        self.master = pid
        self.masters.append(pid)

    def reap(self, pid: int, timeout: float = 20) -> None:
        """Collect an exited master: the launched one via Popen, later ones as adopted orphans."""
        if pid == self.pid:
            self.process.wait(timeout=timeout)
            return
        deadline = time.monotonic() + timeout
        while state(pid) not in ("", "Z"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"master {pid} did not exit")
            time.sleep(0.01)
        reap_adopted([pid])

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.master != self.pid and self.is_master_alive():
                os.kill(self.master, signal.SIGQUIT)
                with contextlib.suppress(TimeoutError):
                    self.reap(self.master, timeout=10)
        super().close()
        # Whatever is left in the session (orphaned workers, zombies adopted by us) goes now.
        deadline = time.monotonic() + 10
        while leftovers := session_processes(self.pid):
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            reap_adopted(leftovers)
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)


@pytest.fixture
def start_torture(tmp_path: Path) -> Iterator[Callable[..., TortureServer]]:
    """start_torture(app, *args, worker_class="sync", ready=True, config=None, env=None, ...)"""
    servers: list[TortureServer] = []
    set_subreaper(True)

    def start(app: str = "testapps:route", *args: str, worker_class: str | None = None,
              ready: bool = True, name: str | None = None, **kwargs) -> TortureServer:
        directory = tmp_path / (name or f"server{len(servers)}")
        extra = worker_args(worker_class) if worker_class else []
        server = TortureServer(directory, app, *extra, *args, **kwargs)
        servers.append(server)
        return server.wait_ready() if ready else server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
        set_subreaper(False)


# ---- figures --------------------------------------------------------------------------------

_FIGURES: dict[str, dict[str, object]] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, object]:
    """A dict the test fills with what it measured; printed at the end of the run."""
    record: dict[str, object] = {}
    _FIGURES[request.node.nodeid.split("::", 1)[-1]] = record
    return record


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    figures = {name: record for name, record in _FIGURES.items() if record}
    if not figures:
        return
    terminalreporter.section("torture figures")
    for name, record in figures.items():
        terminalreporter.write_line(f"{name}: {json.dumps(record, sort_keys=True)}")
    path = config.getoption("--torture-report", default=None)
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
