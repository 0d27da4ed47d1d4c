"""Packaging: one version (pyproject.toml's) everywhere, and packages that hold what they should.

The payload tests need the packages. When UNITCORN_DIST names a directory where
`packaging/build.sh all -o DIR` already put them (CI does), they are read from there; otherwise they
are built here, once per module (~15 s, lint included), when dpkg-buildpackage, rpmbuild and
friends are installed. Inside a package build (UNITCORN_PACKAGE_BUILD=1, set by debian/rules and
the spec's %check) nothing is built: a build must not start builds.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
DEBIAN = PACKAGING / "debian"
SPEC = PACKAGING / "rpm" / "unitcorn.spec"
BUILD_SCRIPT = PACKAGING / "build.sh"
BUILD_TIMEOUT = 300
BUILD_TOOLS = ("dpkg-buildpackage", "lintian", "rpmbuild", "rpmlint", "rpm", "dpkg-deb")

needs_packaging = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="packaging/ is not in this tree (an sdist without it?)"
)


def pyproject_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


# -------------------------------------------------------------------------------- versions


@needs_packaging
def test_debian_changelog_top_entry_is_the_pyproject_version():
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    match = re.fullmatch(r"unitcorn \(([^)]+)\) \S+; urgency=\w+", first)
    assert match, first
    # 3.0 (native): the Debian version is the upstream version, no revision.
    assert match.group(1) == pyproject_version()


@needs_packaging
def test_spec_version_and_latest_changelog_entry_are_the_pyproject_version():
    spec = SPEC.read_text()
    (version,) = re.findall(r"^Version:\s*(\S+)$", spec, re.MULTILINE)
    assert version == pyproject_version()
    changelog = spec.split("\n%changelog\n", 1)[1]
    first_entry = changelog.lstrip().splitlines()[0]
    match = re.fullmatch(r"\* \w{3} \w{3} [ \d]\d \d{4} .+ <[^>]+> - (\S+)-(\S+)", first_entry)
    assert match, first_entry
    assert match.group(1) == pyproject_version()


def test_the_package_reports_the_pyproject_version():
    import unitcorn

    assert unitcorn.__version__ == pyproject_version()


@needs_packaging
def test_debian_unit_symlinks_point_at_the_shipped_units():
    # dh_installsystemd installs debian/unitcorn@.{service,socket}; they must be the units/ files.
    for name in ("unitcorn@.service", "unitcorn@.socket"):
        link = DEBIAN / name
        assert link.is_symlink()
        assert link.resolve() == (REPO / "units" / name).resolve()


@needs_packaging
def test_the_rpmlint_config_filters_only_the_debian_build_artefacts():
    config = tomllib.loads((PACKAGING / "rpm" / "rpmlint.toml").read_text())
    assert set(config["Filters"]) == {
        "no-signature", "no-packager-tag", "no-group-tag", "no-buildroot-tag",
        "invalid-license", "no-manual-page-for-binary",
    }


def test_the_ci_standin_macros_say_they_are_not_fedoras():
    head = (PACKAGING / "rpm" / "ci-standin-macros").read_text().splitlines()[0]
    assert head == "# CI ONLY, NOT FEDORA'S MACROS."


# --------------------------------------------------------------------------------- payloads


# ------------------------------------------------------------------------- dependencies


def imported_modules() -> set[str]:
    """The top-level names unitcorn imports, by statement or importlib.import_module("...")."""
    names: set[str] = set()
    for path in (REPO / "unitcorn").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.partition(".")[0])
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.add(node.args[0].value.partition(".")[0])
    return names


def declared_runtime_modules() -> dict[str, str]:
    """{module: where declared} for each run-time Python dependency of the wheel, .deb and .rpm."""
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    declared = {re.split(r"[<>=!~; \[]", name)[0].lower(): "pyproject.toml"
                for name in project["dependencies"]}
    control = (DEBIAN / "control").read_text().split("\nPackage:", 1)[1]
    depends = re.search(r"^Depends:(.*?)^\S", control, re.MULTILINE | re.DOTALL)
    assert depends, control
    for name in re.findall(r"python3-([a-z0-9-]+)", depends.group(1)):
        declared[name] = "debian/control"
    for name in re.findall(r"^Requires:\s*python3-([a-z0-9-]+)", SPEC.read_text(), re.MULTILINE):
        declared[name] = "unitcorn.spec"
    return declared


@needs_packaging
def test_every_runtime_dependency_is_imported():
    # sdnotify was one that was not: unitcorn speaks sd_notify itself (docs/systemd.md).
    imported = imported_modules()
    unused = {f"{name} ({where})" for name, where in declared_runtime_modules().items()
              if name not in imported}
    assert unused == set()
    assert {"setproctitle", "systemd"} <= declared_runtime_modules().keys()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.environ.get("UNITCORN_PACKAGE_BUILD") == "1":
        pytest.skip("inside a package build: packages are not built from here")
    given = os.environ.get("UNITCORN_DIST")
    if given:
        yield Path(given)
        return
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing or not DEBIAN.is_dir():
        pytest.skip(f"cannot build packages here: missing {', '.join(missing) or 'packaging/'}")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(BUILD_SCRIPT), "all", "-o", str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, f"packaging/build.sh all failed:\n{done.stderr[-6000:]}"
    yield out


def only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def test_rpm_payload_has_script_package_units_config_and_man_page(dist):
    rpm = only(dist, f"unitcorn-{pyproject_version()}-*.noarch.rpm")
    listing = subprocess.run(["rpm", "-qpl", str(rpm)], capture_output=True, text=True,
                             timeout=60, check=True).stdout.splitlines()
    assert "/usr/bin/unitcorn" in listing
    assert any(re.fullmatch(r"/usr/lib/python3\.\d+/site-packages/unitcorn/cli\.py", p)
               for p in listing)
    assert "/usr/lib/systemd/system/unitcorn@.service" in listing
    assert "/usr/lib/systemd/system/unitcorn@.socket" in listing
    assert "/etc/unitcorn/demo.conf.py" in listing
    assert "/usr/share/man/man1/unitcorn.1.gz" in listing


def test_rpm_marks_the_site_config_noreplace(dist):
    rpm = only(dist, f"unitcorn-{pyproject_version()}-*.noarch.rpm")
    configs = subprocess.run(["rpm", "-qpc", str(rpm)], capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
    assert configs == ["/etc/unitcorn/demo.conf.py"]


def test_deb_payload_has_script_package_units_config_and_man_page(dist):
    deb = only(dist, f"unitcorn_{pyproject_version()}_all.deb")
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    paths = {line.split()[5].lstrip(".").rstrip("/") for line in listing.splitlines()}
    assert {
        "/usr/bin/unitcorn",
        "/usr/lib/python3/dist-packages/unitcorn/cli.py",
        "/lib/systemd/system/unitcorn@.service",
        "/lib/systemd/system/unitcorn@.socket",
        "/etc/unitcorn/demo.conf.py",
        "/usr/share/man/man1/unitcorn.1.gz",
    } <= paths
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    for dependency in ("python3-setproctitle", "python3-systemd"):
        assert dependency in depends
    # unitcorn speaks sd_notify itself (docs/systemd.md, "Dependencies").
    assert "sdnotify" not in depends
