"""The harness itself: a real systemd boots, runs a notify service, logs it, and leaves no trace.

All tests share one container (the module-scoped `container` fixture); the last one shuts it down
and checks the host, so it must stay last in this file.
"""

from __future__ import annotations

import subprocess
import textwrap

from systemd_container import REPO_MOUNT, RUNNING_STATES, SHARED_MOUNT, host_leftovers

PROBE = textwrap.dedent("""
    import sdnotify, time
    print("probe says hello", flush=True)
    sdnotify.SystemdNotifier().notify("READY=1")
    time.sleep(3600)
""")

# Answers every connection on a unix socket in the shared directory with a fixed HTTP response;
# READY=1 only after listen(), so systemd-run returns when a connection can succeed.
UNIX_RESPONDER = textwrap.dedent(f"""
    import socket, sdnotify
    server = socket.socket(socket.AF_UNIX)
    server.bind("{SHARED_MOUNT}/responder.sock")
    server.listen()
    sdnotify.SystemdNotifier().notify("READY=1")
    while True:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 14\\r\\n\\r\\nhello from ct\\n")
        conn.close()
""")


def test_boot_reaches_running(container, record_property):
    record_property("boot_seconds", container.boot_seconds)
    assert container.run("systemctl", "is-system-running").stdout.strip() in RUNNING_STATES
    assert container.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
    assert container.run("hostname").stdout.strip() == container.name


def test_notify_service_becomes_active_and_logs_to_the_journal(container):
    container.run("systemd-run", "--unit=probe", "-p", "Type=notify", "-p", "NotifyAccess=all",
                  "python3", "-c", PROBE)
    try:
        # systemd-run waits for the start job, which for Type=notify ends at READY=1.
        props = container.show("probe", "ActiveState", "SubState", "Type", "MainPID")
        assert props["ActiveState"] == "active", props
        assert props["Type"] == "notify"
        pid = props["MainPID"]
        assert pid != "0"
        cmdline = container.run("cat", f"/proc/{pid}/cmdline").stdout.split("\0")
        assert cmdline[0].endswith("python3") and cmdline[-2] == PROBE

        def hello_entries():
            return [e for e in container.journal("probe") if e.get("MESSAGE") == "probe says hello"]

        (entry,) = container.wait_for(hello_entries, 10, "the probe's line in the journal")
        assert entry["_PID"] == pid
        assert entry["_TRANSPORT"] == "stdout"
    finally:
        container.systemctl("stop", "probe", check=False)


def test_checkout_is_read_only_and_has_what_units_need(container):
    assert container.run("test", "-f", f"{REPO_MOUNT}/pyproject.toml").returncode == 0
    assert container.run("touch", f"{REPO_MOUNT}/x", check=False).returncode != 0
    found = container.run(
        "python3", "-c", "import unitcorn, setproctitle, sdnotify, systemd.journal; "
        "print(unitcorn.__file__)", env={"PYTHONPATH": REPO_MOUNT},
    ).stdout
    assert found.strip() == f"{REPO_MOUNT}/unitcorn/__init__.py"


def test_shared_dir_carries_a_unix_socket_to_the_host(container):
    container.run("systemd-run", "--unit=responder", "-p", "Type=notify",
                  "python3", "-c", UNIX_RESPONDER)
    try:
        socket_path = container.host_path(f"{SHARED_MOUNT}/responder.sock")
        reply = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "10",
             "--unix-socket", str(socket_path), "http://container/"],
            capture_output=True, text=True, timeout=15, check=True,
        )
        assert reply.stdout == "hello from ct\n"
    finally:
        container.systemctl("stop", "responder", check=False)


def test_nothing_is_left_on_the_host_after_exit(container, record_property):
    # Runs last: shuts the module's container down (the fixture's own stop() is then a no-op).
    name, cgroups, nspawn = container.name, container.cgroups, container.nspawn
    assert all(cgroup.is_dir() for cgroup in cgroups)
    container.stop()
    record_property("shutdown_seconds", container.shutdown_seconds)
    assert nspawn.returncode == 0, "nspawn did not exit cleanly: the poweroff signal failed?"
    assert not any(cgroup.exists() for cgroup in cgroups)
    assert host_leftovers(name) == []
