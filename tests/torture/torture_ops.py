"""The operator's hand: each storm action sends its signal (or ctl command) and waits until the
server says it is done, so the next action never races the previous one's bookkeeping.

Every wait is on an observable event (a log line of the right master, a /proc fact) with a hard
timeout; a "reload failed" or a dead master stops the storm at once with the log tail.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from torture_proc import fd_count, fd_targets, live_children, rss_kib, state, wait_until, zombie_children

REPO = Path(__file__).resolve().parents[2]
ACCESS_ID = re.compile(r'"GET /\?(\d+-\d+-\d) HTTP/1\.1"')


def ctl(socket_path: Path, *args: str, timeout: float = 60):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "unitcorn", "ctl", "--socket", str(socket_path), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def control_request(path: Path, payload: dict, timeout: float = 30) -> dict:
    """One JSON line to the master's control socket, one back (what `unitcorn ctl` does)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(payload).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return json.loads(answer)


class Operator:
    def __init__(self, server, workers: int, control: Path | None = None, seed: int = 0) -> None:
        self.server = server
        self.workers = workers
        self.control = control
        self.rng = random.Random(seed)
        self.done: Counter = Counter()
        self.kills = 0
        self.baseline_fds = fd_count(server.master)
        self.baseline_fd_targets = fd_targets(server.master)
        self.rss_samples: list[int] = [rss_kib(server.master)]
        self.load = None  # the running LoadGenerator, for pacing
        self._last_ok = 0

    def pace(self, answers: int = 200) -> None:
        """Let the clients get `answers` more answers first, so the next blow lands on busy
        workers (and the storm measures the server under load, not a burst of signals)."""
        if self.load is None:
            return
        target = self._last_ok + answers
        wait_until(lambda: self.load.count("ok") >= target, 20, f"{answers} answers between actions")
        self._last_ok = self.load.count("ok")

    # ---- actions --------------------------------------------------------------------------

    def hup(self) -> None:
        server = self.server
        mark = server.watch.mark()
        os.kill(server.master, signal.SIGHUP)
        server.wait(r"reload complete generation=\d+", server.master, since=mark,
                    fail=r"reload failed")
        self.done["hup"] += 1

    def scale_pair(self) -> None:
        server = self.server
        mark = server.watch.mark()
        os.kill(server.master, signal.SIGTTIN)
        server.wait(rf"worker count changed workers={self.workers + 1}", server.master, since=mark)
        server.wait(r"Booting worker with pid: \d+", server.master, since=mark)
        mark = server.watch.mark()
        os.kill(server.master, signal.SIGTTOU)
        server.wait(rf"worker count changed workers={self.workers} ", server.master, since=mark)
        server.wait(r"worker exited pid=\d+ code=0 reason=normal", server.master, since=mark)
        self.done["ttin/ttou"] += 1

    def upgrade(self, via: str = "signal") -> None:
        """USR2 then TERM to the old master, or `ctl upgrade` (which retires it by itself)."""
        server = self.server
        old = server.master
        mark = server.watch.mark()
        if via == "ctl":
            assert self.control is not None
            answer = control_request(self.control, {"command": "upgrade"}, timeout=60)
            assert answer["ok"], answer
        else:
            os.kill(old, signal.SIGUSR2)
        started = server.wait(r"upgrade started new_master=(\d+)", old, since=mark)
        new = int(started[0].group(1))

        def new_alive() -> bool:
            return state(new) not in ("", "Z")

        server.wait(r"server ready", new, since=mark, alive=new_alive)
        if via != "ctl":
            os.kill(old, signal.SIGTERM)
        server.wait(r"master promoted", new, since=mark, alive=new_alive)
        server.reap(old)
        server.adopt_master(new)
        if self.control is not None:
            # The new master opens the control socket once it is the main process. (After a
            # TERM that reached the old master before it had handed over, the path is missing
            # for a moment: the old master removed it and the new one has not yet bound it.)
            server.wait(r"control socket ready", new, since=mark, alive=new_alive)
        self.done[f"upgrade-{via}"] += 1

    def kill_worker(self) -> None:
        server = self.server
        self.pace()
        # Only a worker the master will replace: one still retiring after a HUP or TTOU is on its
        # way out, and killing it (correctly) spawns nothing — the wait below would never end.
        wait_until(lambda: len(live_children(server.master)) == self.workers
                   and len(self.booted_workers()) == self.workers, 20, "no worker retiring")
        victims = self.booted_workers()
        victim = self.rng.choice(victims)
        mark = server.watch.mark()
        os.kill(victim, signal.SIGKILL)
        server.wait(rf"worker exited pid={victim} code=- reason=killed by SIGKILL", server.master,
                    since=mark)
        server.wait(r"Booting worker with pid: \d+", server.master, since=mark)
        self.kills += 1
        self.done["sigkill"] += 1

    def random_action(self) -> str:
        choice = self.rng.choice(["hup", "scale", "upgrade-signal", "upgrade-ctl", "kill"])
        if choice == "hup":
            self.hup()
        elif choice == "scale":
            self.scale_pair()
        elif choice == "kill":
            self.kill_worker()
        else:
            self.upgrade(choice.split("-")[1])
        return choice

    def sample_rss(self) -> None:
        self.rss_samples.append(rss_kib(self.server.master))

    # ---- observing --------------------------------------------------------------------------

    def booted_workers(self) -> list[int]:
        """Workers whose boot the master logged (so a kill hits a serving worker)."""
        booted = {int(m.group(1)) for m in self.server.watch.find(
            r"Booting worker with pid: (\d+)", self.server.master)}
        return sorted(booted & set(live_children(self.server.master)))

    def settle(self, timeout: float = 30) -> dict[str, object]:
        """Wait until the server is at rest and return what the kernel says about its master."""
        server = self.server
        master = server.master

        def at_rest() -> bool:
            return (len(live_children(master)) == self.workers and not zombie_children(master)
                    and len(self.booted_workers()) == self.workers)

        wait_until(at_rest, timeout, f"{self.workers} booted workers and no zombies "
                   f"(children: {live_children(master)}, zombies: {zombie_children(master)})")
        try:
            wait_until(lambda: fd_count(master) == self.baseline_fds, 5, "fd count at baseline")
        except TimeoutError:
            raise AssertionError(
                f"master fds {fd_count(master)} != baseline {self.baseline_fds}:\n"
                f"before: {self.baseline_fd_targets}\nafter: {fd_targets(master)}") from None
        return {
            "workers": len(live_children(master)),
            "zombies": len(zombie_children(master)),
            "master_fds": fd_count(master),
            "master_fds_baseline": self.baseline_fds,
        }


def access_log_ids(path: Path) -> Counter:
    """Request ids the workers logged as answered (each attempt has its own id)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return Counter()
    return Counter(ACCESS_ID.findall(text))


def run_storm(operator: Operator, actions, deadline_seconds: float) -> float:
    """Call each action in turn; return the seconds the storm took."""
    started = time.monotonic()
    for action in actions:
        action()
        if time.monotonic() - started > deadline_seconds:
            raise AssertionError(f"storm exceeded {deadline_seconds}s after {operator.done}")
    return time.monotonic() - started
