"""Benchmark unitcorn against gunicorn with wrk, side by side, alternating A B A B.

Not a test: numbers depend on the machine.  Run on a quiet machine (check `uptime`):

    python bench/run.py            # 3 rounds x 5 s per cell
    python bench/run.py --quick    # 1 round x 2 s per cell, to check that everything works
    python bench/run.py --asgi     # the asgi worker (on uvloop and on asyncio) against uvicorn,
                                   # gunicorn + UvicornWorker and granian, ASGI twins of the apps

Placement: wrk runs pinned to CPU 0 (`taskset -c 0`); the servers (master + 2 workers each) are
not pinned, so on a 2-core machine the workers get core 1 plus whatever wrk leaves of core 0 —
the same for every server.  All servers run at once on their own ports; only the one being
measured gets traffic.  Each cell is the median of the rounds.

Errors: every table shows what wrk counted, summed over the rounds (warm-up excluded), by kind —
connect, read (a connection closed or reset before its answer: on a kept-alive connection that is
a lost request, wrk does not retry), write, status (answers other than 2xx/3xx) and timeout
(no answer within 5 s).  A server that loses no request shows 0 in every column.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Server:
    name: str
    command: tuple[str, ...]  # the address and the app are appended
    is_baseline: bool  # what unitcorn is compared with: gunicorn (WSGI) or uvicorn (ASGI)
    binds_like_uvicorn: bool = False  # --host/--port instead of -b HOST:PORT (granian too)


SERVERS = [
    Server("gunicorn sync", ("-m", "gunicorn", "-w", "2", "-k", "sync"), True),
    Server("gunicorn gthread-4", ("-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4"), True),
    Server("unitcorn sync", ("-m", "unitcorn", "-w", "2", "-k", "sync"), False),
    Server("unitcorn gthread-1", ("-m", "unitcorn", "-w", "2", "-k", "gthread", "--threads", "1"), False),
    Server("unitcorn gthread-4", ("-m", "unitcorn", "-w", "2", "-k", "gthread", "--threads", "4"), False),
]
# Each as its plain pip install runs it: loop "auto" picks uvloop wherever it is installed
# (uvicorn, granian, unitcorn alike); `unitcorn asgi asyncio` shows what uvloop is worth.
ASGI_SERVERS = [
    Server("uvicorn", ("-m", "uvicorn", "--workers", "2", "--no-access-log"), True, True),
    Server("gunicorn UvicornWorker",
           ("-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker"), True),
    Server("granian", ("-m", "granian", "--interface", "asgi", "--workers", "2"), True, True),
    Server("unitcorn asgi", ("-m", "unitcorn", "-w", "2", "-k", "asgi"), False),
    Server("unitcorn asgi asyncio", ("-m", "unitcorn", "-w", "2", "-k", "asgi", "--asgi-loop", "asyncio"),
           False),
]


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str
    connections: int
    wrk_args: tuple[str, ...] = ()
    threads: int = 1  # wrk -t
    target: float = 0.0  # the minimum ratio to gunicorn (0: none)
    against: str = "best"  # "best" gunicorn worker, or "sync"


SCENARIOS = [
    Scenario("hello keep-alive c16", "hello", 16),
    Scenario("hello keep-alive c64", "hello", 64, threads=2, target=3.0),
    Scenario("hello close c16", "hello", 16, ("-H", "Connection: close")),
    Scenario("hello close c64", "hello", 64, ("-H", "Connection: close"), target=2.0, against="sync"),
    Scenario("64 KiB response c64", "big", 64, target=1.5),
    Scenario("4 KiB POST echo c64", "echo", 64, ("-s", str(HERE / "post4k.lua")), target=2.0),
]


ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass
class Result:
    rps: float
    p50: float  # ms
    p99: float  # ms
    errors: dict[str, int]  # by ERROR_KINDS

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    """One server process (its own session, so stopping it leaves nothing behind)."""

    def __init__(self, server: Server, app: str, log_dir: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))
        env.pop("WEB_CONCURRENCY", None)
        self.log = open(log_dir / f"{server.name.replace(' ', '_')}-{app}.log", "wb")
        if server.binds_like_uvicorn:
            address = ["--host", "127.0.0.1", "--port", str(self.port)]
        else:
            address = ["-b", f"127.0.0.1:{self.port}"]
        self.process = subprocess.Popen(
            [sys.executable, *server.command, *address, f"apps:{app}"],
            cwd=HERE, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if sock.recv(100).startswith(b"HTTP/1."):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{server.name} did not start; see {self.log.name}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def run_wrk(port: int, scenario: Scenario, duration: float) -> Result:
    command = ["taskset", "-c", "0", "wrk", f"-t{scenario.threads}", f"-c{scenario.connections}",
               f"-d{duration:g}s",
               "--latency", "--timeout", "5s", *scenario.wrk_args, f"http://127.0.0.1:{port}/"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk failed: {' '.join(command)}\n{out}{done.stderr}")
    rps = float(found.group(1))
    return Result(rps, _percentile(out, "50"), _percentile(out, "99"), wrk_errors(out))


def wrk_errors(out: str) -> dict[str, int]:
    """wrk prints `Socket errors: connect N, read N, write N, timeout N` and `Non-2xx or 3xx
    responses: N` only when there were some; absent lines mean 0."""
    errors = dict.fromkeys(ERROR_KINDS, 0)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        for kind, count in zip(("connect", "read", "write", "timeout"), socket_errors.groups(), strict=True):
            errors[kind] = int(count)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors["status"] = int(non2xx.group(1))
    return errors


def _percentile(out: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s per cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--only", default="",
                        help="run scenarios whose name contains this (comma-separated: any of these)")
    parser.add_argument("--servers", default="", help="comma-separated substrings of server names")
    parser.add_argument("--asgi", action="store_true",
                        help="unitcorn's asgi worker against uvicorn, on the apps' ASGI twins")
    args = parser.parse_args()
    rounds, duration = (1, 2.0) if args.quick else (args.rounds, args.duration)
    candidates = ASGI_SERVERS if args.asgi else SERVERS
    suffix = "_asgi" if args.asgi else ""
    servers = [s for s in candidates if not args.servers or any(p in s.name for p in args.servers.split(","))]
    scenarios = [s for s in SCENARIOS if any(part in s.name for part in args.only.split(","))]
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "unitcorn-bench"
    log_dir.mkdir(exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpus: {os.cpu_count()}; "
          f"{rounds} round(s) x {duration:g} s; wrk pinned to CPU 0", flush=True)

    table: dict[tuple[str, str], Result] = {}
    for app in dict.fromkeys(s.app for s in scenarios):
        running = {}
        try:
            for server in servers:
                running[server.name] = Running(server, app + suffix, log_dir)
            for scenario in (s for s in scenarios if s.app == app):
                samples: dict[str, list[Result]] = {name: [] for name in running}
                for proc in running.values():  # warm up: imports, caches, first connections
                    run_wrk(proc.port, scenario, 1)
                for _ in range(rounds):  # A B A B: drift hits every server alike
                    for name, proc in running.items():
                        samples[name].append(run_wrk(proc.port, scenario, duration))
                for name, results in samples.items():
                    table[scenario.name, name] = Result(
                        statistics.median(r.rps for r in results),
                        statistics.median(r.p50 for r in results),
                        statistics.median(r.p99 for r in results),
                        {kind: sum(r.errors[kind] for r in results) for kind in ERROR_KINDS},
                    )
                print_scenario(scenario, servers, table)
        finally:
            for proc in running.values():
                proc.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def print_scenario(scenario: Scenario, servers: list[Server], table: dict[tuple[str, str], Result]) -> None:
    baselines = [s.name for s in servers if s.is_baseline and (scenario.name, s.name) in table]
    if scenario.against == "sync":
        baselines = [name for name in baselines if name.endswith("sync")] or baselines
    base = max((table[scenario.name, name] for name in baselines), key=lambda r: r.rps, default=None)
    versus = "the fastest other" if any(s in ASGI_SERVERS for s in servers) else "gunicorn"
    target = ""
    if scenario.target and versus == "gunicorn":
        target = f" (target >= {scenario.target:g}x gunicorn {scenario.against})"
    kinds = " | ".join(ERROR_KINDS)
    print(f"\n### {scenario.name} (wrk -t{scenario.threads} -c{scenario.connections}){target}")
    print(f"| server | req/s | p50 ms | p99 ms | errors | {kinds} | vs {versus} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(ERROR_KINDS) + "---:|")
    for server in servers:
        result = table.get((scenario.name, server.name))
        if result is None:
            continue
        ratio = f"{result.rps / base.rps:.2f}x" if base and base.rps else "-"
        counts = " | ".join(str(result.errors[kind]) for kind in ERROR_KINDS)
        print(f"| {server.name} | {result.rps:,.0f} | {result.p50:.2f} | {result.p99:.2f} | "
              f"{result.total_errors} | {counts} | {ratio} |")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
