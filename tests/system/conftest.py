"""Fixtures that give tests/system a real systemd: `system_tree`, `container`, `fresh_container`.

Every test runs once per Debian suite, that is once per systemd: `[bookworm]` on 252, `[trixie]`
on 257 (`systemd_container.SUITES`). UNITCORN_SYSTEM_SUITES=trixie (a comma-separated list) runs
fewer; `container.systemd_version` tells a test which one it got.

A test asks for `container` (one boot per test module, the fast default) or `fresh_container` (one
boot per test, when it must not share state such as units or the journal):

    def test_unit_starts(container):
        container.write_file("/etc/systemd/system/demo.service", UNIT)
        container.daemon_reload()
        container.systemctl("start", "demo")
        assert container.show("demo", "ActiveState") == {"ActiveState": "active"}

Inside, the checkout is read-only at REPO_MOUNT (run `python3 -m unitcorn` with
PYTHONPATH=/opt/unitcorn-src) and a writable host tmp dir is at SHARED_MOUNT; use
`container.host_path(...)` to reach a socket there from the host. Both constants, `Container` and
`wait_for` come from `systemd_container` (importable because pytest puts this directory, which has
no __init__.py, on sys.path).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from systemd_container import REPO_MOUNT, SHARED_MOUNT, SUITES, Container, build_tree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test below this directory boots systemd, so it carries the marker without having to
    # remember it (`-m "not system"` deselects them all).
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.system)


def missing_prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("not running as root")
    for tool in ("systemd-nspawn", "mmdebstrap"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not found")
    return missing


def selected_suites() -> list[str]:
    chosen = os.environ.get("UNITCORN_SYSTEM_SUITES", ",".join(SUITES))
    suites = [suite.strip() for suite in chosen.split(",") if suite.strip()]
    unknown = [suite for suite in suites if suite not in SUITES]
    if unknown or not suites:
        raise pytest.UsageError(f"UNITCORN_SYSTEM_SUITES={chosen!r}: choose from {', '.join(SUITES)}")
    return suites


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrised here rather than in the decorator so that the suites can be chosen from the
    # environment. Session scope: pytest then runs all of one suite's tests before the other's,
    # and each module boots one container per suite.
    if "system_tree" in metafunc.fixturenames:
        metafunc.parametrize("system_tree", selected_suites(), indirect=True, scope="session")


@pytest.fixture(scope="session")
def system_tree(request: pytest.FixtureRequest) -> Path:
    """The cached Debian tree of the suite under test (built on first use, ~20 s each)."""
    missing = missing_prerequisites()
    if missing:
        reason = (
            "real-systemd tests need root and `apt-get install -y --no-install-recommends "
            f"systemd-container mmdebstrap`: {'; '.join(missing)}"
        )
        # CI sets UNITCORN_REQUIRE_SYSTEM=1 so that a broken runner fails loudly instead of
        # silently skipping the suite that matters most.
        if os.environ.get("UNITCORN_REQUIRE_SYSTEM") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return build_tree(suite=request.param)


def _booted(tree: Path, factory: pytest.TempPathFactory, label: str) -> Iterator[Container]:
    workdir = factory.mktemp(f"container-{label}")
    shared = workdir / "shared"
    shared.mkdir()
    # World-writable and sticky like /tmp, so services running as DynamicUser or another user
    # inside the container can create their sockets there too.
    shared.chmod(0o1777)
    container = Container(
        tree,
        ro_binds=[(REPO, REPO_MOUNT)],
        binds=[(shared, SHARED_MOUNT)],
        log_path=workdir / "console.log",  # kept in pytest's basetemp for post-mortems
    )
    with container:
        yield container


@pytest.fixture(scope="module")
def container(
    system_tree: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Container]:
    """A booted container shared by the tests of one module: use unit names of your own."""
    yield from _booted(system_tree, tmp_path_factory, request.module.__name__.rpartition(".")[2])


@pytest.fixture
def fresh_container(
    system_tree: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Container]:
    """A container booted for this test alone."""
    label = re.sub(r"\W", "_", request.node.name)[:40]
    yield from _booted(system_tree, tmp_path_factory, label)
