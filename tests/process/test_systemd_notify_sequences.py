"""What a real master tells systemd, captured on a real AF_UNIX datagram socket in tmp_path.

The test plays systemd's part: it binds the NOTIFY_SOCKET, turns on SO_PASSCRED so every datagram
carries its sender's pid (systemd checks that pid against NotifyAccess=), and reads in a thread.
Sequences are compared exactly, after dropping what is periodic or progress-driven rather than an
event: STATUS-only messages, WATCHDOG=1 and EXTEND_TIMEOUT_USEC= (each has tests of its own).
"""

from __future__ import annotations

import array
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from harness import Server, children_of, is_alive, processes_in_session, wait_for
from test_signals import Clients

pytestmark = pytest.mark.timeout(60)

# Variables that are ours or systemd's: neither the workers nor the application may see them.
PRIVATE_VARIABLES = (
    "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC",
    "WATCHDOG_PID", "UNITCORN_FD", "UNITCORN_PID", "UNITCORN_UPGRADE_FD",
)
# Keys that mark progress, or qualify another (MAINPIDFDID goes with MAINPID), rather than a
# lifecycle event (see the module docstring).
PERIODIC = {"STATUS", "WATCHDOG", "EXTEND_TIMEOUT_USEC", "MONOTONIC_USEC", "FDNAME", "MAINPIDFDID"}


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@dataclass
class Message:
    """One datagram as systemd would see it."""

    sender: int
    fields: dict[str, str]
    fds: int
    received_usec: int
    # Whatever `NotifyReceiver.snapshot` returned when it arrived (the world at that moment).
    snapshot: object = None

    @property
    def event(self) -> str:
        """"READY", "MAINPID+READY", …: the lifecycle keys of the message; "" if none."""
        return "+".join(key for key in self.fields if key not in PERIODIC)


@dataclass
class NotifyReceiver:
    """systemd's end of NOTIFY_SOCKET."""

    path: str
    snapshot: Callable[[Message], object] | None = None
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ancillary = socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16 * 4)
        while not self._stop.is_set():
            try:
                data, cmsgs, _, _ = self._sock.recvmsg(65536, ancillary)
            except TimeoutError:
                continue
            except OSError:
                return
            sender, fds = 0, 0
            for level, kind, payload in cmsgs:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = array.array("i", payload[:12])[0]  # struct ucred: pid, uid, gid
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    passed = array.array("i", payload[: len(payload) - len(payload) % 4])
                    fds += len(passed)
                    for fd in passed:
                        os.close(fd)  # systemd would keep them; we only count them
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            message = Message(sender, fields, fds, monotonic_usec())
            if self.snapshot is not None:
                message.snapshot = self.snapshot(message)
            with self._lock:
                self.messages.append(message)

    def all(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def events(self, sender: int | None = None) -> list[str]:
        """The lifecycle events so far, in order (of `sender` only, if given)."""
        return [m.event for m in self.all() if m.event and sender in (None, m.sender)]

    def wait_for(self, predicate: Callable[[Message], bool], what: str, count: int = 1,
                 timeout: float = 15) -> Message:
        """Wait for the `count`-th message matching `predicate`; return it."""
        def found() -> Message | None:
            matching = [m for m in self.all() if predicate(m)]
            return matching[count - 1] if len(matching) >= count else None

        return cast(Message, wait_for(found, timeout, f"notification: {what}"))

    def wait_event(self, event: str, count: int = 1, timeout: float = 15) -> Message:
        return self.wait_for(lambda m: m.event == event, event, count, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def notify(tmp_path: Path):
    receiver = NotifyReceiver(str(tmp_path / "notify.sock"))
    yield receiver
    receiver.close()


def start(start_server, notify: NotifyReceiver, *args: str, env: dict[str, str] | None = None,
          **kwargs) -> Server:
    """A server started the way systemd starts a Type=notify service (with NOTIFY_SOCKET)."""
    return start_server("testapps:route", *args, ready=False,
                        env={"NOTIFY_SOCKET": notify.path, **(env or {})}, **kwargs)


def booted_pids(log: str, generation: int = 1) -> set[int]:
    import re

    return {int(pid) for pid in
            re.findall(rf"Booting worker with pid: (\d+) generation={generation}\b", log)}


# ---- start ----------------------------------------------------------------------------------

# Each worker takes longer to boot than the one before, so a READY=1 sent before every worker
# booted would be caught.
STAGGERED_BOOT = """
import time
workers = 3
def post_worker_init(worker):
    time.sleep(0.25 * worker.age)
"""


def test_ready_comes_only_after_every_worker_booted(start_server, notify, tmp_path) -> None:
    server: Server | None = None

    def world(message: Message) -> object:
        if server is None or message.event != "READY":
            return None
        return {"workers": [p for p in children_of(server.pid) if is_alive(p)], "log": server.log()}

    notify.snapshot = world
    server = start(start_server, notify, config=STAGGERED_BOOT)
    ready = notify.wait_event("READY")
    assert ready.sender == server.pid
    assert ready.fields["READY"] == "1"
    assert ready.fields["STATUS"].startswith("workers 3/3 booted, generation 1, ")
    # At the moment READY=1 arrived, three workers existed and each had reported itself booted.
    assert ready.snapshot is not None
    workers = set(ready.snapshot["workers"])
    assert len(workers) == 3
    assert booted_pids(ready.snapshot["log"]) == workers
    # Before READY the STATUS line counted them up; nothing else was announced.
    statuses = [m.fields["STATUS"] for m in notify.all()
                if m.received_usec < ready.received_usec and "STATUS" in m.fields]
    assert [s.split(",")[0] for s in statuses] == ["workers 1/3 booted", "workers 2/3 booted"]
    # Each of those booted workers also asked systemd for more start time (progress, not a hang).
    extensions = [m for m in notify.all()
                  if "EXTEND_TIMEOUT_USEC" in m.fields and m.received_usec < ready.received_usec]
    assert [m.fields["EXTEND_TIMEOUT_USEC"] for m in extensions] == ["30000000"] * 2
    status, pid = server.get("/")
    assert status == 200 and int(pid) in workers
    # The listener we handed over (not systemd's) goes to the fd store once we are ready.
    store = notify.wait_event("FDSTORE")
    assert store.fds == 1 and store.fields["FDNAME"] == f"ucstore-127.0.0.1_{server.port}"
    assert notify.events() == ["READY", "FDSTORE"]
    assert {m.sender for m in notify.all()} == {server.pid}


def test_term_sends_stopping(start_server, notify) -> None:
    server = start(start_server, notify)
    notify.wait_event("READY")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    stopping = notify.wait_event("STOPPING")
    assert stopping.sender == server.pid
    assert notify.events() == ["READY", "FDSTORE", "STOPPING"]


IN_FLIGHT_MARK = """
def pre_request(worker, req):
    open("in-flight", "w").close()
"""


def test_graceful_stop_asks_for_more_time_while_requests_drain(start_server, notify,
                                                               tmp_path) -> None:
    server = start(start_server, notify, "--graceful-timeout", "20", config=IN_FLIGHT_MARK)
    notify.wait_event("READY")
    answers: list[tuple[int, str]] = []
    client = threading.Thread(target=lambda: answers.append(server.get("/slow?2", timeout=15)))
    client.start()
    wait_for((tmp_path / "in-flight").exists, 10, "the slow request to reach the app")
    server.signal(signal.SIGTERM)
    stopping = notify.wait_event("STOPPING")
    extension = notify.wait_for(lambda m: "EXTEND_TIMEOUT_USEC" in m.fields, "EXTEND_TIMEOUT_USEC")
    assert extension.sender == server.pid
    assert int(extension.fields["EXTEND_TIMEOUT_USEC"]) >= 10_000_000
    assert extension.received_usec >= stopping.received_usec
    client.join(timeout=20)
    assert answers and answers[0][0] == 200
    assert server.wait_exit() == 0


# ---- reload (HUP) ---------------------------------------------------------------------------

def test_hup_sends_reloading_with_a_timestamp_then_ready_once_the_new_workers_booted(
    start_server, notify
) -> None:
    server: Server | None = None

    def world(message: Message) -> object:
        return server.log() if server is not None and message.event == "READY" else None

    notify.snapshot = world
    server = start(start_server, notify, "--workers", "2")
    notify.wait_event("READY")
    old_workers = set(server.workers())
    before = monotonic_usec()
    server.signal(signal.SIGHUP)
    ready = notify.wait_event("READY", count=2)
    reloading = notify.wait_event("RELOADING")
    assert reloading.fields["RELOADING"] == "1"
    # systemd >= 253 (Type=notify-reload) rejects a RELOADING=1 older than its reload signal.
    assert before <= int(reloading.fields["MONOTONIC_USEC"]) <= reloading.received_usec
    assert notify.events() == ["READY", "FDSTORE", "RELOADING", "READY"]
    assert {reloading.sender, ready.sender} == {server.pid}
    assert "generation 2" in ready.fields["STATUS"] and "last reload ok at" in ready.fields["STATUS"]
    # When READY=1 came, both workers of generation 2 had booted and the reload was complete.
    new_workers = booted_pids(ready.snapshot, generation=2)
    assert len(new_workers) == 2 and not new_workers & old_workers
    assert "reload complete generation=2" in ready.snapshot
    server.wait_for_workers(lambda pids: set(pids) == new_workers, "the old generation to retire")


def test_failed_hup_sends_ready_with_a_failed_status_and_keeps_the_workers(
    start_server, notify, tmp_path
) -> None:
    server = start(start_server, notify, config="workers = 2\n")
    notify.wait_event("READY")
    workers = server.workers()
    (tmp_path / "unitcorn.conf.py").write_text("workers = 'many'\n")
    server.signal(signal.SIGHUP)
    ready = notify.wait_event("READY", count=2)
    assert notify.events() == ["READY", "FDSTORE", "RELOADING", "READY"]
    assert "last reload FAILED at " in ready.fields["STATUS"]
    assert "workers = many (from " in ready.fields["STATUS"]
    assert "generation 1" in ready.fields["STATUS"]
    assert server.workers() == workers
    assert server.get("/")[0] == 200


def test_hup_whose_new_workers_cannot_boot_reports_failed(start_server, notify, tmp_path) -> None:
    (tmp_path / "shopapp.py").write_text(SITE_APP)
    server = start_server("shopapp:app", "--workers", "2", ready=False,
                          env={"NOTIFY_SOCKET": notify.path})
    notify.wait_event("READY")
    workers = server.workers()
    # Without --preload each new worker imports the app itself, and now it cannot.
    (tmp_path / "shopapp.py").write_text("raise ImportError('the new release is broken')\n")
    server.signal(signal.SIGHUP)
    ready = notify.wait_event("READY", count=2)
    assert notify.events() == ["READY", "FDSTORE", "RELOADING", "READY"]
    assert "last reload FAILED at " in ready.fields["STATUS"]
    assert "new worker failed: app-load-failed" in ready.fields["STATUS"]
    # The rest of the failed generation is retired; the old one was never touched.
    server.wait_for_workers(lambda pids: pids == workers, "the failed generation to be gone")
    assert server.process.poll() is None
    assert server.get("/") == (200, "site")


SITE_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "4")])
    return [b"site"]
"""


# ---- upgrade (USR2) -------------------------------------------------------------------------

def new_master_of(server: Server) -> int:
    second = server.pidfile.with_name("unitcorn.pid.2")
    return int(wait_for(lambda: second.exists() and second.read_text().strip(), 15, "PIDFILE.2"))


def test_usr2_under_systemd_hands_over_mainpid_from_the_old_master(start_server, notify) -> None:
    server = start(start_server, notify, "--workers", "2")
    notify.wait_event("READY")
    old = server.pid
    with Clients(server) as clients:
        server.signal(signal.SIGUSR2)
        handover = notify.wait_event("MAINPID+READY")
        new = int(handover.fields["MAINPID"])
        # The old master, still the main process, announces its successor (NotifyAccess=main).
        assert handover.sender == old and new != old
        assert server.wait_exit() == 0  # no operator action: the old master retired by itself
        server.wait_for_log(rf"\[{new}\] \[INFO\] now the main process", launcher_exits=True)
        wait_for(lambda: server.pidfile.exists() and server.pidfile.read_text().strip() == str(new),
                 10, "PIDFILE taken over")
        wait_for(lambda: clients.pids & {str(p) for p in children_of(new)}, 10,
                 "the new workers answering")
    assert clients.failures == []
    # The new master said nothing before it was made the main process (systemd would reject it).
    first_from_new = next(m for m in notify.all() if m.sender == new)
    assert first_from_new.received_usec >= handover.received_usec
    # The old master said nothing after it handed over: it is no longer the main process, and a
    # STOPPING=1 from it would, under NotifyAccess=all, put the service into stop-sigterm.
    assert notify.events(sender=old) == ["READY", "FDSTORE", "MAINPID+READY"]
    # The new master stores its listener again (same socket, new holder) and is silent otherwise.
    notify.wait_for(lambda m: m.sender == new and m.event == "FDSTORE", "FDSTORE from new master")
    assert notify.events(sender=new) == ["FDSTORE"]
    os.kill(new, signal.SIGTERM)
    notify.wait_for(lambda m: m.sender == new and m.event == "STOPPING", "STOPPING from new master")
    wait_for(lambda: not is_alive(new), 15, "the new master to exit")


def test_failed_usr2_sends_no_mainpid_and_the_old_master_keeps_serving(
    start_server, notify, tmp_path
) -> None:
    server = start(start_server, notify, config="workers = 2\n")
    notify.wait_event("READY")
    workers = server.workers()
    (tmp_path / "unitcorn.conf.py").write_text("workers = -1\n")
    with Clients(server) as clients:
        server.signal(signal.SIGUSR2)
        server.wait_for_log(r"upgrade failed, this master keeps serving reason=the new master "
                            r"exited before it was ready")
        server.wait_for_log(r"upgraded master exited")
    assert clients.failures == []
    assert notify.events() == ["READY", "FDSTORE"]
    assert {m.sender for m in notify.all()} == {server.pid}
    assert server.process.poll() is None and server.workers() == workers
    # Still the main process in every respect: it reloads and stops as before.
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    notify.wait_event("STOPPING")


def test_usr2_that_times_out_sends_no_mainpid(start_server, notify, tmp_path) -> None:
    server = start(start_server, notify, "--upgrade-timeout", "1", config="workers = 1\n")
    notify.wait_event("READY")
    (tmp_path / "unitcorn.conf.py").write_text(
        "import time\nworkers = 1\ndef post_worker_init(worker):\n    time.sleep(60)\n"
    )
    server.signal(signal.SIGUSR2)
    server.wait_for_log(r"upgrade failed, this master keeps serving reason=the new master did not "
                        r"become ready within 1s")
    server.wait_for_log(r"upgraded master exited")
    assert notify.events() == ["READY", "FDSTORE"]
    assert {m.sender for m in notify.all()} == {server.pid}
    assert server.get("/")[0] == 200


# ---- watchdog -------------------------------------------------------------------------------

def test_watchdog_is_pinged_from_the_master_at_half_the_interval(start_server, notify) -> None:
    server = start(start_server, notify, env={"WATCHDOG_USEC": "400000"})
    notify.wait_event("READY")
    pings = [notify.wait_for(lambda m: m.event == "" and "WATCHDOG" in m.fields, "WATCHDOG=1",
                             count=n) for n in (1, 6)]
    assert {m.sender for m in notify.all() if "WATCHDOG" in m.fields} == {server.pid}
    # Six pings at 0.2 s: about a second.
    every = [m.received_usec for m in notify.all() if "WATCHDOG" in m.fields]
    gaps = [b - a for a, b in zip(every, every[1:], strict=False)]
    assert max(gaps) < 400_000, gaps  # never as late as the limit itself
    assert pings[1].received_usec - pings[0].received_usec >= 5 * 150_000


def test_watchdog_meant_for_another_pid_is_not_pinged(start_server, notify) -> None:
    server = start(start_server, notify, env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    notify.wait_event("READY")
    # A reload cycle takes longer than several 50 ms ping periods.
    server.signal(signal.SIGHUP)
    notify.wait_event("READY", count=2)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # a window to observe an absence in, not a sync sleep
        time.sleep(0.05)
    assert not [m for m in notify.all() if "WATCHDOG" in m.fields]


# ---- what workers and the app see -----------------------------------------------------------

def app_environment(server: Server) -> dict[str, str]:
    return {name: server.get(f"/env?{name}")[1] for name in PRIVATE_VARIABLES}


def test_workers_never_see_systemd_or_upgrade_variables(start_server, notify) -> None:
    server = start(start_server, notify, "--workers", "1",
                   env={"WATCHDOG_USEC": "30000000", "MY_SETTING": "kept"})
    notify.wait_event("READY")
    assert app_environment(server) == dict.fromkeys(PRIVATE_VARIABLES, "<unset>")
    assert server.get("/env?MY_SETTING")[1] == "kept"
    # The same after an upgrade, which passes NOTIFY_SOCKET, WATCHDOG_*, UNITCORN_FD, … on.
    server.signal(signal.SIGUSR2)
    notify.wait_event("MAINPID+READY")
    assert server.wait_exit() == 0
    new = int(server.pidfile.read_text().strip()) if server.pidfile.exists() else 0
    wait_for(lambda: server.pidfile.exists() and server.pidfile.read_text().strip() != str(server.pid),
             10, "the new master's pidfile")
    new = int(server.pidfile.read_text().strip())
    answers = {server.get("/")[1] for _ in range(5)}
    assert answers <= {str(p) for p in children_of(new)}
    assert app_environment(server) == dict.fromkeys(PRIVATE_VARIABLES, "<unset>")
    assert server.get("/env?MY_SETTING")[1] == "kept"


def test_without_notify_socket_nothing_is_sent_and_usr2_keeps_both_masters(
    start_server, notify
) -> None:
    # Classic gunicorn behaviour outside systemd: a plain USR2 leaves both masters running.
    server = start_server("testapps:route", "--workers", "1")
    server.signal(signal.SIGUSR2)
    new = new_master_of(server)
    server.wait_for_log(r"server ready", count=2)
    assert server.process.poll() is None and is_alive(new)
    assert notify.all() == []
    assert set(processes_in_session(server.pid)) >= {server.pid, new}

