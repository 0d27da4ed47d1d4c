"""Run a real `python -m unitcorn` on a socket the test bound itself, and watch what it does."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
T = TypeVar("T")


# The WSGI worker classes HTTP behaviour is checked on: the sync worker, gthread without a pool
# (the loop runs the app) and with one, and gevent.
WORKER_CLASSES = {
    "sync": ("-k", "sync"),
    "gthread-1": ("-k", "gthread", "--threads", "1"),
    "gthread-4": ("-k", "gthread", "--threads", "4"),
    "gevent": ("-k", "gevent"),
}


def get_through_small_window(port: int, target: str, timeout: float = 30) -> tuple[bytes, bytes]:
    """GET `target` (Connection: close) as a client with a 4 KiB receive window that reads as
    fast as it can: (head, body)."""
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        client.settimeout(timeout)
        client.connect(("127.0.0.1", port))
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        received = bytearray()
        while chunk := client.recv(1 << 16):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, body


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def is_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_in_session(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Server:
    """One unitcorn master started for a test; `close()` leaves nothing behind."""

    def __init__(self, tmp_path: Path, app: str, *args: str, env: dict[str, str] | None = None,
                 bind_socket: bool = True, config: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "error.log"
        self.pidfile = tmp_path / "unitcorn.pid"
        self.output_path = tmp_path / "output.log"
        self.listener: socket.socket | None = None
        command = [sys.executable, "-m", "unitcorn"]
        pass_fds: tuple[int, ...] = ()
        if bind_socket:
            self.listener = socket.socket()
            self.listener.bind(("127.0.0.1", 0))
            self.listener.listen(128)
            self.port = self.listener.getsockname()[1]
            command += ["--bind", f"fd://{self.listener.fileno()}"]
            pass_fds = (self.listener.fileno(),)
        if config is not None:
            config_path = tmp_path / "unitcorn.conf.py"
            config_path.write_text(config)
            command += ["-c", str(config_path)]
        command += ["--error-logfile", str(self.log_path), "--pid", str(self.pidfile),
                    "--log-level", "debug", *args, app]
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join([str(REPO), str(APPS)])
        environment.pop("NOTIFY_SOCKET", None)
        environment.update(env or {})
        self.output = open(self.output_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=tmp_path, env=environment, pass_fds=pass_fds,
            stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.process.pid
        if self.listener is not None:
            # The server owns the socket now; our copy would keep accepting nothing forever.
            self.listener.close()

    # ---- observing ---------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 15, count: int = 1,
                     launcher_exits: bool = False) -> list[re.Match]:
        """Wait for `count` matches; fail early if the process we launched exited first
        (unless it is expected to: a daemon's launcher, or an upgraded-away old master)."""
        def found() -> list[re.Match]:
            matches = list(re.finditer(pattern, self.log()))
            exited = self.process.poll() is not None and not launcher_exits
            if exited and len(matches) < count:
                raise AssertionError(
                    f"server exited ({self.process.returncode}) before logging {pattern!r}:\n"
                    f"{self.log()}\n{self.output_path.read_text(errors='replace')}"
                )
            return matches if len(matches) >= count else []

        return wait_for(found, timeout, f"log line {pattern!r} x{count}")

    def wait_ready(self, timeout: float = 15) -> Server:
        self.wait_for_log(r"server ready", timeout)
        return self

    def workers(self, master: int | None = None) -> list[int]:
        return sorted(p for p in children_of(master or self.pid) if is_alive(p))

    def wait_for_workers(self, predicate: Callable[[list[int]], bool], what: str,
                         timeout: float = 15, master: int | None = None) -> list[int]:
        def check() -> tuple[list[int]] | None:
            pids = self.workers(master)
            return (pids,) if predicate(pids) else None

        return wait_for(check, timeout, what)[0]

    def wait_exit(self, timeout: float = 20) -> int:
        return self.process.wait(timeout=timeout)

    def signal(self, signum: int, pid: int | None = None) -> None:
        os.kill(pid or self.pid, signum)

    # ---- talking HTTP ------------------------------------------------------------------

    def get(self, path: str = "/", timeout: float = 10) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    # ---- cleaning up -------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything this test started: the master, workers, any upgraded master."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGQUIT)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            for pid in processes_in_session(self.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
            self.output.close()
