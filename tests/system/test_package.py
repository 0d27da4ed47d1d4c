"""The .deb, installed into a real systemd 252 and driven the way an operator would.

One container for the module; the tests run in file order and each leaves the state the next one
starts from: install → verify and score the installed units → socket-activated request →
`systemctl reload` → `unitcorn ctl upgrade` → `systemctl stop` → `apt-get purge`. Each step
asserts on `systemctl show` properties or the journal, not only on curl.

The package: UNITCORN_DEB (a .deb) or UNITCORN_DIST (a directory from `packaging/build.sh deb|all
-o DIR`) when CI built it already; otherwise `packaging/build.sh deb` builds it once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from systemd_container import SHARED_MOUNT, Container

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300

SITE = "demo"
SERVICE = f"unitcorn@{SITE}.service"
SOCKET_UNIT = f"unitcorn@{SITE}.socket"
LISTEN_PATH = f"/run/unitcorn/{SITE}.sock"
CONTROL_SOCKET = f"/run/unitcorn/{SITE}/control.sock"
UNIT_DIR = "/lib/systemd/system"  # bookworm's debhelper; /usr/lib/systemd/system via merged /usr
STATE = ("MainPID", "ActiveState", "SubState", "NRestarts", "Result")


@pytest.fixture(scope="session")
def deb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb under test: CI's, or built here once per session."""
    if os.environ.get("UNITCORN_DEB"):
        return Path(os.environ["UNITCORN_DEB"])
    if os.environ.get("UNITCORN_DIST"):
        (found,) = Path(os.environ["UNITCORN_DIST"]).glob("unitcorn_*_all.deb")
        return found
    missing = [tool for tool in ("dpkg-buildpackage", "lintian") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"cannot build the .deb: {', '.join(missing)} not installed", pytrace=False)
    out = tmp_path_factory.mktemp("deb")
    done = subprocess.run([str(REPO / "packaging" / "build.sh"), "deb", "-o", str(out)],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, f"packaging/build.sh deb failed:\n{done.stderr[-6000:]}"
    (found,) = out.glob("unitcorn_*_all.deb")
    return found


@pytest.fixture(scope="module")
def installed(deb_path: Path, container: Container) -> Container:
    """The container with the package installed (the install itself is the first test)."""
    return container


def request(container: Container) -> subprocess.CompletedProcess[str]:
    return container.run("curl", "--silent", "--show-error", "--max-time", "10",
                         "--unix-socket", LISTEN_PATH, "http://localhost/", check=False,
                         timeout=20)


def unitcorn_processes(container: Container) -> list[str]:
    out = container.run("ps", "-eo", "pid=,args=").stdout
    return [line for line in out.splitlines() if "unitcorn" in line and "ps -eo" not in line]


def journal_messages(container: Container, unit: str) -> list[str]:
    return [str(entry.get("MESSAGE", "")) for entry in container.journal(unit)]


def test_apt_installs_the_deb_and_starts_nothing(installed, deb_path):
    shared = installed.host_path(SHARED_MOUNT)
    shutil.copy(deb_path, shared / deb_path.name)
    (shared / deb_path.name).chmod(0o644)
    done = installed.run("apt-get", "install", "-y", "--no-install-recommends",
                         f"{SHARED_MOUNT}/{deb_path.name}", check=False, timeout=120,
                         env={"DEBIAN_FRONTEND": "noninteractive"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed.run("dpkg-query", "-W", "-f=${Status}", "unitcorn").stdout == \
        "install ok installed"
    for path in ("/usr/bin/unitcorn", f"{UNIT_DIR}/unitcorn@.service",
                 f"{UNIT_DIR}/unitcorn@.socket", "/etc/unitcorn/demo.conf.py",
                 "/usr/share/man/man1/unitcorn.1.gz"):
        assert installed.run("test", "-e", path, check=False).returncode == 0, path
    # The package's python is the one on the system path, not the checkout's.
    where = installed.run("python3", "-c", "import unitcorn; print(unitcorn.__file__)").stdout
    assert where.strip() == "/usr/lib/python3/dist-packages/unitcorn/__init__.py"
    # Template units: nothing enabled, nothing started by the installation.
    assert installed.systemctl("is-enabled", SOCKET_UNIT, check=False).stdout.strip() == "disabled"
    assert installed.show(SERVICE, "ActiveState")["ActiveState"] == "inactive"
    assert unitcorn_processes(installed) == []


def test_installed_units_verify_and_score_at_most_two(installed):
    # --man=no: the man page is installed, but a minimal system has no man(1) to open it.
    done = installed.run("systemd-analyze", "verify", "--man=no", f"{UNIT_DIR}/unitcorn@.socket",
                         f"{UNIT_DIR}/unitcorn@.service", check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    # Online: the unit as this systemd loaded it, instance and all.
    done = installed.run("systemd-analyze", "security", "--threshold=20", SERVICE,
                         check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    done = installed.run("systemd-analyze", "security", "--offline=true", "--threshold=20",
                         f"{UNIT_DIR}/unitcorn@.service", check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_socket_activation_serves_the_demo_app_from_the_packaged_binary(installed):
    installed.systemctl("enable", "--now", SOCKET_UNIT)
    assert installed.show(SOCKET_UNIT, "ActiveState")["ActiveState"] == "active"
    # Nothing runs until the first connection.
    assert installed.show(SERVICE, "ActiveState")["ActiveState"] == "inactive"

    reply = request(installed)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.startswith("Hello from unitcorn"), reply.stdout

    props = installed.show(SERVICE, *STATE, "ExecMainPID", "ExecStart", "Type")
    assert props["ActiveState"] == "active", props
    assert props["Type"] == "notify"
    assert props["MainPID"] != "0"
    assert "path=/usr/bin/unitcorn" in props["ExecStart"]
    assert props["NRestarts"] == "0"


def test_systemctl_reload_keeps_the_main_pid_and_completes(installed):
    before = installed.show(SERVICE, *STATE)
    done = installed.systemctl("reload", SERVICE, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    after = installed.show(SERVICE, *STATE)
    assert after["MainPID"] == before["MainPID"], (before, after)
    assert after["ActiveState"] == "active", after
    assert after["NRestarts"] == "0"
    # ExecReload= waited for the new generation, so the master has already said so.
    assert any("reload complete" in message for message in journal_messages(installed, SERVICE))
    assert request(installed).stdout.startswith("Hello from unitcorn")


def test_ctl_upgrade_hands_the_main_pid_to_the_new_master(installed):
    before = installed.show(SERVICE, *STATE)
    done = installed.run("unitcorn", "ctl", "--socket", CONTROL_SOCKET, "upgrade",
                         check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    def handed_over() -> dict[str, str] | None:
        props = installed.show(SERVICE, *STATE)
        return props if props["MainPID"] not in ("0", before["MainPID"]) else None

    after = installed.wait_for(handed_over, 30, "MainPID to move to the new master")
    assert after["ActiveState"] == "active", after
    assert after["NRestarts"] == "0", after
    new_pid = after["MainPID"]
    assert installed.run("test", "-d", f"/proc/{new_pid}", check=False).returncode == 0
    # The old master retires; the unit stays up and keeps serving.
    installed.wait_for(
        lambda: installed.run("test", "-d", f"/proc/{before['MainPID']}",
                              check=False).returncode != 0,
        60, "the old master to exit",
    )
    assert installed.show(SERVICE, "MainPID", "ActiveState") == \
        {"MainPID": new_pid, "ActiveState": "active"}
    reply = request(installed)
    assert reply.stdout.startswith("Hello from unitcorn"), reply.stdout + reply.stderr


def test_systemctl_stop_ends_every_process(installed):
    installed.systemctl("stop", SOCKET_UNIT, SERVICE, timeout=90)
    props = installed.show(SERVICE, *STATE)
    assert props["ActiveState"] == "inactive", props
    assert props["Result"] == "success", props
    assert installed.show(SOCKET_UNIT, "ActiveState")["ActiveState"] == "inactive"
    assert unitcorn_processes(installed) == []
    # A drain, not a kill: the upgraded master is systemd's own child, not an "alien" MainPID.
    messages = journal_messages(installed, SERVICE)
    assert not [m for m in messages if "SIGKILL" in m], messages[-20:]
    assert any("Handling signal: term" in m for m in messages[-20:]), messages[-20:]
    # RuntimeDirectory= is gone with the service; the socket unit's path was beside it.
    assert installed.run("test", "-e", f"/run/unitcorn/{SITE}", check=False).returncode != 0


def test_purge_of_a_running_site_leaves_nothing_enabled_and_no_process(installed):
    # A live instance, as an operator would have it, so prerm has something to stop.
    installed.systemctl("start", SOCKET_UNIT)
    assert request(installed).stdout.startswith("Hello from unitcorn")
    assert installed.show(SERVICE, "ActiveState")["ActiveState"] == "active"

    done = installed.run("apt-get", "purge", "-y", "unitcorn", check=False, timeout=120,
                         env={"DEBIAN_FRONTEND": "noninteractive"})
    assert done.returncode == 0, done.stdout + done.stderr

    assert unitcorn_processes(installed) == []
    for unit in (SERVICE, SOCKET_UNIT):
        assert installed.show(unit, "ActiveState")["ActiveState"] == "inactive", unit
    leftovers = installed.run("find", "/etc/systemd/system", "-name", "unitcorn@*").stdout
    assert leftovers == ""
    files = installed.systemctl("list-unit-files", "unitcorn*", "--no-legend", check=False)
    assert files.stdout.strip() == ""
    for path in ("/usr/bin/unitcorn", "/etc/unitcorn", f"{UNIT_DIR}/unitcorn@.service"):
        assert installed.run("test", "-e", path, check=False).returncode != 0, path
    assert installed.run("dpkg-query", "-W", "unitcorn", check=False).returncode != 0
