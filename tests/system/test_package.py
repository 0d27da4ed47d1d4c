"""The .deb, installed into a real systemd (252 and 257) and driven the way an operator would.

One container for the module; the tests run in file order and each leaves the state the next one
starts from: install → verify and score the installed units → what unitcorn-generator added for
this systemd → socket-activated request → `systemctl reload` → `unitcorn ctl upgrade` →
`systemctl stop` → a site binding its own port stopped and started → `apt-get purge`. Each step
asserts on `systemctl show` properties or the journal, not only on curl.

The package: UNITCORN_DEB (a .deb) or UNITCORN_DIST (a directory from `packaging/build.sh deb|all
-o DIR`) when CI built it already; otherwise `packaging/build.sh deb` builds it once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import threading
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
GENERATED_DROP_IN = "/run/systemd/generator.late/unitcorn@.service.d/50-unitcorn-systemd-254.conf"


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


def test_the_generator_fits_the_unit_to_this_systemd(installed):
    # The postinst's daemon-reload ran unitcorn-generator.
    has_drop_in = installed.run("test", "-f", GENERATED_DROP_IN, check=False).returncode == 0
    assert has_drop_in == (installed.systemd_version >= 254)
    if installed.systemd_version >= 254:
        assert installed.show(SERVICE, "FileDescriptorStorePreserve") == \
            {"FileDescriptorStorePreserve": "yes"}
        assert GENERATED_DROP_IN in installed.show(SERVICE, "DropInPaths")["DropInPaths"]
    # Whatever the version, PID 1 found nothing to complain about in unitcorn's units.
    warnings = installed.run("journalctl", "--no-pager", "_PID=1", "-p", "warning", "-o", "cat").stdout
    assert not [line for line in warnings.splitlines() if "unitcorn" in line], warnings


def test_socket_activation_serves_the_demo_app_from_the_packaged_binary(installed):
    installed.systemctl("enable", "--now", SOCKET_UNIT)
    assert installed.show(SOCKET_UNIT, "ActiveState")["ActiveState"] == "active"
    # Nothing runs until the first connection.
    assert installed.show(SERVICE, "ActiveState")["ActiveState"] == "inactive"

    reply = request(installed)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.startswith("Hello from unitcorn"), reply.stdout

    # A worker may answer before the master has told systemd READY=1: wait for that, bounded.
    def settled() -> dict[str, str] | None:
        props = installed.show(SERVICE, *STATE, "ExecMainPID", "ExecStart", "Type")
        return None if props["ActiveState"] == "activating" else props

    props = installed.wait_for(settled, timeout=30, what="the service to leave activating")
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


OWN_SITE = "own"
OWN_PORT = 8123


def test_a_stopped_site_keeps_its_own_socket_where_systemd_can(installed):
    """systemd >= 254 with the generator's FileDescriptorStorePreserve=yes: `systemctl stop` of an
    enabled site that binds its own port leaves the stored socket listening in PID 1, so a client
    waits in its backlog and is answered after `systemctl start`. systemd 252 refuses it."""
    service = f"unitcorn@{OWN_SITE}.service"
    config = f"/etc/unitcorn/{OWN_SITE}.conf.py"
    installed.write_file(config, textwrap.dedent(f"""\
        wsgi_app = "unitcorn.demo:app"
        bind = ["127.0.0.1:{OWN_PORT}"]
        workers = 1
    """))
    url = f"http://127.0.0.1:{OWN_PORT}/"
    try:
        installed.systemctl("enable", "--now", service)
        assert installed.show(service, "NFileDescriptorStore") == {"NFileDescriptorStore": "1"}
        installed.systemctl("stop", service, timeout=60)
        state = installed.show(service, "ActiveState", "SubState", "NFileDescriptorStore")
        if installed.systemd_version < 254:
            assert state["ActiveState"] == "inactive" and state["NFileDescriptorStore"] == "0"
            refused = installed.run("curl", "-sS", "--max-time", "5", url, check=False)
            assert refused.returncode == 7, refused.stderr  # connection refused
            return
        assert state == {"ActiveState": "inactive", "SubState": "dead-resources-pinned",
                         "NFileDescriptorStore": "1"}
        fdstore = installed.run("systemd-analyze", "fdstore", service).stdout
        assert f"ucstore-127.0.0.1_{OWN_PORT}" in fdstore
        answer: dict[str, subprocess.CompletedProcess[str]] = {}
        client = threading.Thread(target=lambda: answer.update(
            reply=installed.run("curl", "-sS", "--max-time", "30", url, check=False, timeout=40)))
        client.start()

        def queued() -> bool:  # a LISTEN socket's Recv-Q is its accept queue
            lines = installed.run("ss", "-Hltn", f"sport = :{OWN_PORT}").stdout.split()
            return lines[:2] == ["LISTEN", "1"]

        installed.wait_for(queued, 10, "the client to wait in the kept socket's backlog")
        assert client.is_alive(), answer
        installed.systemctl("start", service, timeout=60)
        client.join(timeout=40)
        assert answer["reply"].returncode == 0, answer["reply"].stderr
        assert answer["reply"].stdout.startswith("Hello from unitcorn")
        # The new master served the socket systemd kept, not a fresh bind.
        assert installed.show(service, "NFileDescriptorStore") == {"NFileDescriptorStore": "1"}
        main = installed.show(service, "MainPID")["MainPID"]
        listening = [e.get("MESSAGE") for e in installed.journal(service) if e.get("_PID") == main]
        assert f"Listening at: 127.0.0.1:{OWN_PORT} (3)" in listening
    finally:
        installed.systemctl("disable", "--now", service, check=False, timeout=60)
        if installed.systemd_version >= 254:
            installed.systemctl("clean", "--what=fdstore", service, check=False)
        installed.run("rm", "-f", config)
    assert installed.run("curl", "-sS", "--max-time", "5", url, check=False).returncode == 7


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
