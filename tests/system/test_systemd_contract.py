"""The systemd service contract, driven by systemctl against a real systemd: 252 and 257 (issues 4, 14).

Every check asserts what systemd itself saw (`systemctl show`, the journal, a job's result), not
only what a client got. All tests share the module's container; each uses units and a port of its
own and stops them at the end. Units mirror a real deployment: Type=notify, NotifyAccess=main,
ExecReload=unitcorn ctl reload --wait, KillMode=mixed, RuntimeDirectory=.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from systemd_container import REPO_MOUNT, SHARED_MOUNT, Container

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)

PYTHONPATH = f"{REPO_MOUNT}:{REPO_MOUNT}/tests/process/apps"
CLIENT_PATH = "/usr/local/lib/unitcorn-test/loadclient.py"

# Requests in a loop on fresh connections, from inside the container (the host cannot reach its
# ports), until a stop file appears; prints what happened as JSON. It touches STARTED after its
# first answers so the test knows the loop runs before it acts.
LOAD_CLIENT = textwrap.dedent("""
    import http.client, json, os, sys, threading
    port, stop, started = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    lock = threading.Lock()
    result = {"ok": 0, "failures": [], "bodies": []}

    def run():
        while not os.path.exists(stop):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode()
                connection.close()
            except Exception as exc:
                with lock:
                    result["failures"].append(repr(exc))
                continue
            with lock:
                if response.status == 200:
                    result["ok"] += 1
                    if body not in result["bodies"]:
                        result["bodies"].append(body)
                else:
                    result["failures"].append(f"status {response.status}")
                if result["ok"] == 10:
                    open(started, "w").close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(result))
""")


# ---- helpers --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ct(container: Container) -> Container:
    """The module's container with the load client installed."""
    container.write_file(CLIENT_PATH, LOAD_CLIENT)
    return container


def service_unit(name: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        [Unit]
        Description=unitcorn contract test {name}

        [Service]
        Type=notify
        NotifyAccess=main
        Environment=PYTHONPATH={PYTHONPATH}
        ExecStart=/usr/bin/python3 -m unitcorn -c /etc/unitcorn/{name}.conf.py testapps:route
        ExecReload=/usr/bin/python3 -m unitcorn ctl reload --wait
        KillMode=mixed
        RuntimeDirectory={name}
        TimeoutStopSec=30
        LimitCORE=0
        """) + textwrap.dedent(extra)


def config(port: int | None, body: str = "") -> str:
    bind = f"bind = ['127.0.0.1:{port}']\n" if port else ""
    return f"workers = 2\ngraceful_timeout = 20\n{bind}" + textwrap.dedent(body)


def install(ct: Container, name: str, conf: str, extra: str = "", socket: str = "") -> None:
    ct.write_file(f"/etc/unitcorn/{name}.conf.py", conf)
    ct.write_file(f"/etc/systemd/system/{name}.service", service_unit(name, extra))
    if socket:
        ct.write_file(f"/etc/systemd/system/{name}.socket", textwrap.dedent(socket))
    ct.daemon_reload()


@contextmanager
def service(ct: Container, name: str, conf: str, extra: str = "", socket: str = "",
            start: bool = True) -> Iterator[None]:
    """Install and start a unit; stop it (and its socket) afterwards, whatever happened."""
    install(ct, name, conf, extra, socket)
    try:
        if start:
            ct.systemctl("start", f"{name}.socket" if socket else name)
        yield
    finally:
        ct.systemctl("stop", name, *([f"{name}.socket"] if socket else []), check=False)
        ct.systemctl("reset-failed", name, check=False)


def show(ct: Container, name: str) -> dict[str, str]:
    return ct.show(name, "MainPID", "ActiveState", "SubState", "NRestarts", "Result",
                   "ExecMainStatus")


def ctl(ct: Container, name: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return ct.run("python3", "-m", "unitcorn", "ctl", "--socket", f"/run/{name}/control.sock",
                  *args, env={"PYTHONPATH": REPO_MOUNT}, check=False, timeout=timeout)


def status(ct: Container, name: str) -> dict[str, str]:
    answer = ctl(ct, name, "status")
    assert answer.returncode == 0, answer.stderr
    return dict(line.split(": ", 1) for line in answer.stdout.splitlines())


def is_alive(ct: Container, pid: str) -> bool:
    state = ct.run("sh", "-c", f"cat /proc/{pid}/stat 2>/dev/null", check=False).stdout
    return bool(state) and state.rsplit(")", 1)[1].split()[0] != "Z"


def curl(ct: Container, port: int, path: str = "/", timeout: float = 30) -> tuple[int, str]:
    done = ct.run("curl", "-sS", "--max-time", str(timeout), "-w", "\n%{http_code}",
                  f"http://127.0.0.1:{port}{path}", check=False, timeout=timeout + 5)
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def messages(entries: list[dict[str, Any]]) -> list[str]:
    return [str(entry.get("MESSAGE", "")) for entry in entries]


def index_of(entries: list[dict[str, Any]], what: str, **fields: str) -> int:
    """Position of the first journal entry whose MESSAGE contains `what` and has `fields`."""
    for position, entry in enumerate(entries):
        if what in str(entry.get("MESSAGE", "")) and all(
            entry.get(key) == value for key, value in fields.items()
        ):
            return position
    raise AssertionError(f"no journal entry {what!r} {fields}:\n" + "\n".join(messages(entries)))


def job_done(unit: str, job: str, result: str = "done") -> dict[str, str]:
    """Fields of PID 1's job-completion entry ("Started X.", "Reloaded X.", …)."""
    return {"UNIT": unit, "JOB_TYPE": job, "JOB_RESULT": result, "_PID": "1"}


class Load:
    """The load client running in the container while the test acts; `stop()` returns its tally."""

    def __init__(self, ct: Container, name: str, port: int) -> None:
        self.ct = ct
        self.stop_file = f"{SHARED_MOUNT}/{name}.stop"
        self.started_file = f"{SHARED_MOUNT}/{name}.started"
        for path in (self.stop_file, self.started_file):
            ct.host_path(path).unlink(missing_ok=True)
        self.result: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()
        ct.wait_for(lambda: ct.host_path(self.started_file).exists() or self._error, 20,
                    "the load client's first answers")
        if self._error:
            raise self._error

    def _run(self, port: int) -> None:
        try:
            done = self.ct.run("python3", CLIENT_PATH, str(port), self.stop_file,
                               self.started_file, timeout=110)
            self.result = json.loads(done.stdout)
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    def stop(self) -> dict[str, Any]:
        self.ct.host_path(self.stop_file).touch()
        self._thread.join(timeout=60)
        if self._error:
            raise self._error
        assert self.result, "the load client reported nothing"
        return self.result


@contextmanager
def load(ct: Container, name: str, port: int) -> Iterator[Load]:
    client = Load(ct, name, port)
    try:
        yield client
    finally:
        if not client.result:
            client.stop()


# ---- socket activation and READY ------------------------------------------------------------

STAGGERED_BOOT = """
    import time
    def post_worker_init(worker):
        time.sleep(0.4 * worker.age)
"""


def test_socket_activated_start_is_ready_only_once_every_worker_booted(ct) -> None:
    name, port = "uc-activated", 9101
    socket_unit = f"""\
        [Socket]
        ListenStream=127.0.0.1:{port}
        FileDescriptorName=web
    """
    with service(ct, name, config(None, STAGGERED_BOOT), socket=socket_unit):
        # Nothing runs until the first connection.
        assert show(ct, name)["ActiveState"] == "inactive"
        assert ct.show(f"{name}.socket", "ActiveState")["ActiveState"] == "active"
        status_code, worker = curl(ct, port)
        assert status_code == 200  # the first worker to boot answers, READY or not
        ct.wait_for(lambda: show(ct, name)["ActiveState"] == "active", 20, "the start job")
        state = show(ct, name)
        assert state["SubState"] == "running", state
        workers = status(ct, name)["worker_pids"].split()
        assert worker in workers and len(workers) == 2
        entries = ct.journal(name)
        started = index_of(entries, f"Started {name}.service", **job_done(f"{name}.service", "start"))
        # systemd declared the unit started only after both workers had booted.
        for pid in workers:
            assert index_of(entries, f"Booting worker with pid: {pid} ") < started
        assert index_of(entries, "server ready workers=2") < started
        serving = index_of(entries, f"serving activated socket with no bind "
                                    f"address=127.0.0.1:{port} name=web")
        assert entries[serving]["_PID"] == state["MainPID"]
        assert f"Listening at: 127.0.0.1:{port} (3)" in messages(entries)


# ---- reload -----------------------------------------------------------------------------------

def test_systemctl_reload_blocks_until_the_new_generation_serves(ct) -> None:
    name, port = "uc-reload", 9102
    # A worker boots in 0.8 s, so a reload that returned early would be caught.
    conf = config(port, "import time\ndef post_worker_init(worker):\n    time.sleep(0.8)\n")
    with service(ct, name, conf), load(ct, name, port) as client:
        before = show(ct, name)
        old_workers = set(status(ct, name)["worker_pids"].split())
        started = time.monotonic()
        reload = ct.systemctl("reload", name, check=False, timeout=60)
        elapsed = time.monotonic() - started
        assert reload.returncode == 0, reload.stderr
        assert elapsed >= 0.8
        # When systemctl returned, the new generation served and the old one was on its way out.
        now = status(ct, name)
        assert now["generation"] == "2" and now["reloading"] == "False"
        assert show(ct, name) == before  # same MainPID, active/running, no restart
        result = client.stop()
    new_workers = set(now["worker_pids"].split()) - old_workers
    assert len(new_workers) == 2
    assert result["failures"] == [] and result["ok"] > 0
    entries = ct.journal(name)
    reloaded = index_of(entries, f"Reloaded {name}.service", **job_done(f"{name}.service", "reload"))
    assert index_of(entries, "reload complete generation=2") < reloaded
    assert index_of(entries, "unitcorn ctl reload: reload complete generation=2") < reloaded


def test_systemctl_reload_with_a_broken_config_fails_and_keeps_serving(ct) -> None:
    name, port = "uc-badreload", 9103
    with service(ct, name, config(port)), load(ct, name, port) as client:
        before = show(ct, name)
        workers = status(ct, name)["worker_pids"]
        ct.write_file(f"/etc/unitcorn/{name}.conf.py", config(port, "workers = 'many'\n"))
        reload = ct.systemctl("reload", name, check=False, timeout=60)
        assert reload.returncode != 0
        assert f"Job for {name}.service failed" in reload.stderr
        assert show(ct, name) == before  # still active/running, same MainPID, no restart
        assert status(ct, name)["worker_pids"] == workers
        assert curl(ct, port)[0] == 200
        result = client.stop()
    assert result["failures"] == []
    entries = ct.journal(name)
    failed = index_of(entries, f"Reload failed for {name}.service",
                      **job_done(f"{name}.service", "reload", "failed"))
    reason = f"workers = many (from /etc/unitcorn/{name}.conf.py)"
    assert index_of(entries, "reload failed, old generation keeps serving reason=configuration: "
                    + reason) < failed
    # The ExecReload helper said why, in the unit's journal, for `systemctl status` to show.
    assert index_of(entries, reason, _COMM="python3") < failed


NOTIFY_RELOAD_EXAMPLE = REPO / "units" / "unitcorn@.service.d" / "notify-reload.conf.example"


def notify_reload_drop_in() -> str:
    """The example drop-in as an operator would use it: uncommented from its `# [Service]` on."""
    text = NOTIFY_RELOAD_EXAMPLE.read_text()
    lines = text[text.index("# [Service]"):].splitlines()
    return "\n".join(line[2:] for line in lines if line.startswith("# ") and "=" in line
                     or line == "# [Service]") + "\n"


def test_the_notify_reload_example_waits_but_cannot_report_a_failed_reload(ct) -> None:
    """Why the shipped unit keeps `ExecReload=unitcorn ctl reload --wait` on every systemd.

    257: Type=notify-reload alone makes `systemctl reload` wait for the new generation, but a
    reload whose config does not load still ends in READY=1 (the old generation serves), so the
    reload job succeeds. 252: the drop-in's Type= is ignored (Type=notify stays) and, with
    ExecReload= emptied, the unit cannot be reloaded at all."""
    name, port = "uc-notifyreload", 9115
    conf = config(port, "import time\ndef post_worker_init(worker):\n    time.sleep(0.8)\n")
    with service(ct, name, conf, start=False):
        ct.write_file(f"/etc/systemd/system/{name}.service.d/notify-reload.conf",
                      notify_reload_drop_in())
        ct.daemon_reload()
        ct.systemctl("start", name)
        props = ct.show(name, "Type", "ExecReload")
        if ct.systemd_version < 253:
            assert props["Type"] == "notify"
            reload = ct.systemctl("reload", name, check=False, timeout=60)
            assert reload.returncode != 0 and "not applicable" in reload.stderr, reload.stderr
            return
        assert props["Type"] == "notify-reload" and not props.get("ExecReload")  # no helper
        started = time.monotonic()
        assert ct.systemctl("reload", name, check=False, timeout=60).returncode == 0
        assert time.monotonic() - started >= 0.8  # it waited for the new workers
        assert status(ct, name)["generation"] == "2"
        ct.write_file(f"/etc/unitcorn/{name}.conf.py", config(port, "workers = 'many'\n"))
        assert ct.systemctl("reload", name, check=False, timeout=60).returncode == 0  # (sic)
        assert "last reload FAILED" in ct.show(name, "StatusText")["StatusText"]
        assert show(ct, name)["ActiveState"] == "active"


# ---- upgrade ----------------------------------------------------------------------------------

def test_ctl_upgrade_moves_mainpid_with_no_failed_request(ct) -> None:
    name, port = "uc-upgrade", 9104
    # WatchdogSec=2: the new master must be pinging as the main process within 2 s, or systemd
    # kills it.
    with service(ct, name, config(port), extra="WatchdogSec=2\n"):
        with load(ct, name, port) as client:
            old = show(ct, name)
            upgrade = ctl(ct, name, "upgrade")
            assert upgrade.returncode == 0, upgrade.stderr
            found = re.search(r"new master pid=(\d+)", upgrade.stdout)
            assert found, upgrade.stdout
            new_pid = found.group(1)
            ct.wait_for(lambda: not is_alive(ct, old["MainPID"]), 30, "the old master to exit")
            state = show(ct, name)
            assert state["MainPID"] == new_pid != old["MainPID"]
            assert (state["ActiveState"], state["SubState"], state["NRestarts"]) == \
                ("active", "running", "0")
            new_workers = status(ct, name)["worker_pids"].split()
            ct.wait_for(lambda: curl(ct, port)[1] in new_workers, 10, "the new workers to answer")
            _wait_for_watchdog_pings(ct, name, count=2)
            assert show(ct, name)["MainPID"] == new_pid
            result = client.stop()
            text = "\n".join(messages(ct.journal(name)))
            # systemd accepted every notification (NotifyAccess=main): none came from a pid
            # that was not the main process at the time.
            assert "reception only permitted for main PID" not in text
            # systemd is the new master's parent (started through an intermediate process), so
            # it is not an "alien" main process: stop and restart drain it normally.
            assert f"Supervising process {new_pid} which is not our child" not in text
            # The new master is the main process for reloads too (ExecReload finds its socket).
            reload = ct.systemctl("reload", name, check=False, timeout=60)
            assert reload.returncode == 0, reload.stderr
            assert status(ct, name)["generation"] == "2"
    assert result["failures"] == []


# A main process that forks a child and hands it the main-process role with MAINPID= and
# MAINPIDFDID= (the child's pidfd ID, or a wrong one), as an old master could announce a new one.
MAINPIDFDID_PROBE = textwrap.dedent("""
    import os, sys, time
    from unitcorn.systemd.notify import Notifier, pidfd_id
    notifier = Notifier.from_environ()
    child = os.fork()
    if child == 0:
        time.sleep(3600)
        os._exit(0)
    ident = pidfd_id(child)
    if ident is not None:
        notifier.main_pid(child, pidfd_id=ident + 1 if sys.argv[1] == "wrong" else ident)
    print(f"child={child} id={ident}", flush=True)
    time.sleep(3600)
""")


@pytest.mark.parametrize("given", ["right", "wrong"])
def test_mainpidfdid_is_checked_by_257_and_ignored_by_252(ct, given: str) -> None:
    """What `Notifier.main_pid(pid, pidfd_id=…)` gets from each systemd: 257 moves MainPID only
    when the ID names that very process; 252 ignores the field and moves it either way."""
    name = f"uc-pidfdid-{given}"
    ct.write_file(f"/usr/local/lib/unitcorn-test/{name}.py", MAINPIDFDID_PROBE)
    unit = textwrap.dedent(f"""\
        [Service]
        Type=notify
        NotifyAccess=main
        Environment=PYTHONPATH={REPO_MOUNT}
        ExecStart=/usr/bin/python3 /usr/local/lib/unitcorn-test/{name}.py {given}
        TimeoutStartSec=10
    """)
    ct.write_file(f"/etc/systemd/system/{name}.service", unit)
    ct.daemon_reload()
    try:
        ct.systemctl("start", name, check=False, timeout=30)
        (line,) = ct.wait_for(lambda: [m for m in messages(ct.journal(name)) if "child=" in m],
                              10, "the probe's line")
        child, ident = (part.split("=")[1] for part in line.split())
        if ident == "None":
            pytest.skip("this kernel has no pidfs (Linux < 6.9): no pidfd IDs")
        main = ct.show(name, "MainPID", "ExecMainPID")
        text = "\n".join(messages(ct.journal(name)))
        moves = given == "right" or ct.systemd_version < 257
        assert (main["MainPID"] == child) == moves, (main, text)
        if not moves:
            assert main["MainPID"] == main["ExecMainPID"]
            assert f"mismatches with received MAINPIDFDID={int(ident) + 1}" in text
    finally:
        ct.systemctl("stop", name, check=False)


def _wait_for_watchdog_pings(ct: Container, name: str, count: int) -> None:
    """WatchdogTimestamp moves each time systemd accepts a WATCHDOG=1 from the main process."""
    def stamp() -> str:
        return ct.show(name, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]

    def moved_since(previous: str) -> str | None:
        now = stamp()
        return now if now != previous else None

    seen = stamp()
    for _ in range(count):
        seen = ct.wait_for(functools.partial(moved_since, seen), 10,
                           "systemd to accept a WATCHDOG=1")


def test_usr2_from_systemctl_kill_completes_the_handover(ct) -> None:
    name, port = "uc-usr2", 9105
    with service(ct, name, config(port)), load(ct, name, port) as client:
        old = show(ct, name)["MainPID"]
        ct.systemctl("kill", "-s", "USR2", "--kill-whom=main", name)
        ct.wait_for(lambda: show(ct, name)["MainPID"] != old, 30, "MainPID to move")
        ct.wait_for(lambda: not is_alive(ct, old), 30, "the old master to exit")
        state = show(ct, name)
        assert (state["ActiveState"], state["SubState"], state["NRestarts"]) == \
            ("active", "running", "0")
        result = client.stop()
    assert result["failures"] == []


def test_failing_upgrade_leaves_mainpid_unchanged(ct) -> None:
    name, port = "uc-badupgrade", 9106
    with service(ct, name, config(port)), load(ct, name, port) as client:
        before = show(ct, name)
        workers = status(ct, name)["worker_pids"]
        ct.write_file(f"/etc/unitcorn/{name}.conf.py", config(port, "workers = -1\n"))
        upgrade = ctl(ct, name, "upgrade")
        assert upgrade.returncode == 1
        assert "the new master exited before it was ready" in upgrade.stderr
        assert show(ct, name) == before
        assert status(ct, name)["worker_pids"] == workers
        result = client.stop()
    assert result["failures"] == []
    entries = ct.journal(name)
    assert index_of(entries, "upgrade failed, this master keeps serving")
    assert "reception only permitted for main PID" not in "\n".join(messages(entries))


# ---- restart with the fd store ------------------------------------------------------------

@pytest.mark.parametrize("store", [4, 0], ids=["fd-store", "no-fd-store"])
def test_restart_with_the_fd_store_refuses_no_connection(ct, store: int) -> None:
    name, port = f"uc-restart{store}", 9107 + (store > 0)
    extra = f"FileDescriptorStoreMax={store}\n"
    with service(ct, name, config(port), extra=extra), load(ct, name, port) as client:
        old = show(ct, name)["MainPID"]
        if store:
            assert ct.show(name, "NFileDescriptorStore")["NFileDescriptorStore"] == "1"
        ct.systemctl("restart", name, timeout=60)
        state = show(ct, name)
        assert state["MainPID"] != old and state["ActiveState"] == "active"
        ct.wait_for(lambda: curl(ct, port)[0] == 200, 10, "the restarted service to answer")
        result = client.stop()
    entries = [e for e in ct.journal(name) if e.get("_PID") == state["MainPID"]]
    if store:
        # The stored socket came back through LISTEN_FDS and was adopted for the bind.
        assert f"Listening at: 127.0.0.1:{port} (3)" in messages(entries)
        assert result["failures"] == [], result["failures"][:5]
    else:
        # The control: without the store the same restart does refuse connections, so the
        # check above can fail.
        assert any("ConnectionRefusedError" in f for f in result["failures"])
    assert result["ok"] > 0


# ---- watchdog ---------------------------------------------------------------------------------

def test_watchdog_kills_a_wedged_master_and_systemd_restarts_it(ct) -> None:
    name, port = "uc-watchdog", 9109
    extra = "WatchdogSec=2\nRestart=on-failure\nRestartSec=0.5\n"
    with service(ct, name, config(port), extra=extra):
        _wait_for_watchdog_pings(ct, name, count=2)  # a healthy master keeps its pid
        before = show(ct, name)
        workers = status(ct, name)["worker_pids"].split()
        ct.run("kill", "-STOP", before["MainPID"])  # the loop is wedged; its workers still serve
        ct.wait_for(lambda: show(ct, name)["MainPID"] not in ("0", before["MainPID"]), 20,
                    "systemd to restart the service")
        ct.wait_for(lambda: show(ct, name)["SubState"] == "running", 20, "running again")
        state = show(ct, name)
        assert state["NRestarts"] == "1" and state["ActiveState"] == "active"
        assert not any(is_alive(ct, pid) for pid in [before["MainPID"], *workers])
        assert curl(ct, port)[0] == 200
    entries = ct.journal(name)
    timeout = index_of(entries, "Watchdog timeout (limit 2s)!", _PID="1")
    assert index_of(entries, "Failed with result 'watchdog'", UNIT_RESULT="watchdog") > timeout


# ---- stop -------------------------------------------------------------------------------------

def test_systemctl_stop_drains_an_in_flight_request(ct) -> None:
    name, port = "uc-drain", 9110
    marker = f"{SHARED_MOUNT}/{name}.in-flight"
    ct.host_path(marker).unlink(missing_ok=True)
    conf = config(port, f"def pre_request(worker, req):\n    open({marker!r}, 'w').close()\n")
    with service(ct, name, conf + "accesslog = '-'\n"):
        main_pid = show(ct, name)["MainPID"]
        answer: dict[str, tuple[int, str]] = {}
        slow = threading.Thread(target=lambda: answer.update(slow=curl(ct, port, "/slow?3")))
        slow.start()
        ct.wait_for(ct.host_path(marker).exists, 20, "the slow request to reach the app")
        started = time.monotonic()
        ct.systemctl("stop", name, timeout=60)
        elapsed = time.monotonic() - started
        slow.join(timeout=30)
        assert answer["slow"][0] == 200 and answer["slow"][1].startswith("slept 3.0")
        assert 1.0 < elapsed < 20  # it waited for the request, not for a timeout
        state = show(ct, name)
        assert (state["ActiveState"], state["Result"], state["ExecMainStatus"]) == \
            ("inactive", "success", "0")
    entries = ct.journal(name)
    stopping = index_of(entries, f"Stopping {name}.service", _PID="1")
    shutdown = index_of(entries, "Shutting down: Master", _PID=main_pid)
    assert stopping < index_of(entries, '"GET /slow?3 HTTP/1.1" 200', LOGGER="unitcorn.access")
    assert shutdown < index_of(entries, f"Stopped {name}.service", _PID="1")
    assert "SIGKILL" not in "\n".join(messages(entries))


def test_systemctl_stop_after_an_upgrade_still_drains(ct) -> None:
    """systemd 252 SIGKILLs the whole unit on stop when its MainPID is not its own child
    ("alien", service_set_main_pid). Under systemd the new master is started through an
    intermediate process that exits at once, so systemd is its parent: the stop drains."""
    name, port = "uc-drain-upgraded", 9112
    marker = f"{SHARED_MOUNT}/{name}.in-flight"
    ct.host_path(marker).unlink(missing_ok=True)
    conf = config(port, f"def pre_request(worker, req):\n    open({marker!r}, 'w').close()\n")
    with service(ct, name, conf):
        old = show(ct, name)["MainPID"]
        assert ctl(ct, name, "upgrade").returncode == 0
        ct.wait_for(lambda: not is_alive(ct, old), 30, "the old master to exit")
        new = show(ct, name)["MainPID"]
        answer: dict[str, tuple[int, str]] = {}
        slow = threading.Thread(target=lambda: answer.update(slow=curl(ct, port, "/slow?2")))
        slow.start()
        ct.wait_for(ct.host_path(marker).exists, 20, "the slow request to reach the app")
        ct.systemctl("stop", name, timeout=60)
        slow.join(timeout=30)
        state = show(ct, name)
    entries = ct.journal(name)
    assert answer["slow"][0] == 200
    assert (state["ActiveState"], state["Result"], state["ExecMainStatus"]) == \
        ("inactive", "success", "0")
    assert index_of(entries, "Shutting down: Master", _PID=new)
    assert "SIGKILL" not in "\n".join(messages(entries))


# ---- halting statuses -------------------------------------------------------------------------

# code: (config, unit override, STATUS= text). 78 and 4 (the app fails to import with preload)
# end in cli.serve; 3 (a worker cannot boot) in the master's loop.
HALTS = {
    78: ("workers = 'many'\n", "", "halted: bad configuration (exit status 78)"),
    3: ("def post_worker_init(worker):\n    raise RuntimeError('no')\n", "",
        "halted: a worker failed to boot (exit status 3)"),
    4: ("preload_app = True\n", "broken_import:app", "halted: the app failed to load (exit status 4)"),
}


@pytest.mark.parametrize("code", sorted(HALTS))
def test_a_halting_master_says_why_with_exit_status(ct, code: int) -> None:
    """EXIT_STATUS= (+ STATUS=) before exiting 3, 4 or 78: systemd 257 takes it in silence, 252
    ignores the unknown field; both keep the STATUS= line for `systemctl status`."""
    name, port = f"uc-halt{code}", 9113 + {78: 0, 3: 1, 4: 3}[code]  # 9115 is the notify-reload test's
    body, app, text = HALTS[code]
    extra = (f"ExecStart=\nExecStart=/usr/bin/python3 -m unitcorn -c /etc/unitcorn/{name}.conf.py "
             f"{app}\n") if app else ""
    with service(ct, name, config(port, body), extra=extra, start=False):
        assert ct.systemctl("start", name, check=False).returncode != 0
        state = ct.show(name, "ActiveState", "Result", "ExecMainStatus", "StatusText")
    assert state == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": str(code),
                     "StatusText": text}
    journal = "\n".join(messages(ct.journal(name)))
    assert "reception only permitted" not in journal and "Unknown" not in journal


# ---- what a worker can say to systemd -------------------------------------------------------

def test_a_worker_cannot_speak_for_the_service(ct) -> None:
    """NOTIFY_SOCKET is gone from a worker's os.environ but not from /proc/self/environ (the
    exec-time snapshot); what protects the service is NotifyAccess=main: systemd rejects, and
    logs, every message from a pid that is not the main process."""
    name, port = "uc-forge", 9112
    forging = (f"ExecStart=\nExecStart=/usr/bin/python3 -m unitcorn -c /etc/unitcorn/{name}.conf.py "
               "securityapps:forge_notify\n")
    with service(ct, name, config(port), extra=forging):
        before = ct.show(name, "MainPID", "StatusText")
        code, body = curl(ct, port)
        assert code == 200, body
        answer = json.loads(body)
        worker = str(answer["pid"])
        assert worker != before["MainPID"]
        assert answer == {"pid": answer["pid"], "in_os_environ": False, "in_proc_environ": True,
                          "sent": True}
        if ct.systemd_version <= 252:
            rejection = (f"Got notification message from PID {worker}, but reception only "
                         f"permitted for main PID {before['MainPID']}")
            ct.wait_for(lambda: any(rejection in m for m in messages(ct.journal(name))), 10,
                        "systemd's rejection of the worker's message")
        else:
            # 257 rejects without a log line. systemd reads the notify socket in order, so once
            # it has taken a reload's RELOADING=1/READY=1 from the master, it has seen the
            # worker's earlier datagram too.
            assert ct.systemctl("reload", name, check=False, timeout=60).returncode == 0
        after = ct.show(name, "MainPID", "StatusText", "ActiveState")
        assert after["MainPID"] == before["MainPID"]
        assert after["ActiveState"] == "active"
        assert "forged" not in after["StatusText"]
        assert after["StatusText"].startswith("workers 2/2 booted")
        assert is_alive(ct, after["MainPID"])


# ---- journald -----------------------------------------------------------------------------

def test_journal_entries_carry_native_fields(ct) -> None:
    name, port = "uc-journal", 9111
    with service(ct, name, config(port, "accesslog = '-'\n")):
        main_pid = show(ct, name)["MainPID"]
        assert curl(ct, port, "/hello")[0] == 200
        assert curl(ct, port, "/boom")[0] == 500

        def access_entries() -> list[dict[str, Any]]:
            found = [e for e in ct.journal(name) if e.get("LOGGER") == "unitcorn.access"]
            return found if len(found) >= 2 else []

        hello, boom = ct.wait_for(access_entries, 10, "two access log entries")
    assert hello["_TRANSPORT"] == "journal" and hello["SYSLOG_IDENTIFIER"] == "unitcorn"
    assert (hello["HTTP_METHOD"], hello["HTTP_PATH"], hello["HTTP_STATUS"]) == ("GET", "/hello", "200")
    assert int(hello["HTTP_DURATION_USEC"]) >= 0
    assert hello["PRIORITY"] == "6"
    assert hello["UNITCORN_WORKER_PID"] == hello["_PID"] != main_pid
    assert hello["UNITCORN_GENERATION"] == "1"
    assert '"GET /hello HTTP/1.1" 200' in hello["MESSAGE"]
    assert (boom["HTTP_PATH"], boom["HTTP_STATUS"]) == ("/boom", "500")
    entries = ct.journal(name)
    # The application's traceback is ONE entry, at priority err, with the worker's fields.
    (error,) = [e for e in entries if "boom from the test app" in str(e.get("MESSAGE", ""))]
    assert error["PRIORITY"] == "3"
    assert error["MESSAGE"].startswith("application error method=GET target='/boom'")
    assert "Traceback (most recent call last):" in error["MESSAGE"]
    assert error["MESSAGE"].count("\n") >= 3
    assert error["UNITCORN_WORKER_PID"] == error["_PID"] == boom["_PID"]
    assert "RuntimeError: boom from the test app" in error["EXCEPTION"]
    assert not [e for e in entries if str(e.get("MESSAGE", "")).lstrip().startswith("File \"")]
    # The master's own entries are native too, with its generation.
    ready = entries[index_of(entries, "server ready workers=2")]
    assert (ready["_PID"], ready["PRIORITY"], ready["_TRANSPORT"]) == (main_pid, "6", "journal")
    assert ready["UNITCORN_GENERATION"] == "1" and "UNITCORN_WORKER_PID" not in ready
    assert ready["CODE_FILE"].endswith("unitcorn/arbiter/master.py")
