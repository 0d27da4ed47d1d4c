"""Every signal of the operator contract (docs/SIGNALS.md), against a real master process."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from harness import Server, is_alive, wait_for


class Clients:
    """Clients requesting in a loop on fresh connections, recording every failure."""

    def __init__(self, server: Server, threads: int = 2) -> None:
        self.server = server
        self.ok = 0
        self.failures: list[str] = []
        self.pids: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        wait_for(lambda: self.ok >= 5, 10, "the clients' first answers")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = self.server.get("/", timeout=10)
            except Exception as exc:  # every failure counts, whatever its kind
                with self._lock:
                    self.failures.append(repr(exc))
                continue
            with self._lock:
                if status == 200:
                    self.ok += 1
                    self.pids.add(body)
                else:
                    self.failures.append(f"status {status}")


def test_term_stops_gracefully_and_cleans_up(start_server, tmp_path: Path) -> None:
    server = start_server("testapps:route", "--workers", "2")
    workers = server.workers()
    assert len(workers) == 2
    assert server.pidfile.read_text().strip() == str(server.pid)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert "Shutting down: Master" in server.log()
    assert not server.pidfile.exists()
    assert not any(is_alive(pid) for pid in workers)


def test_term_lets_in_flight_requests_finish(start_server) -> None:
    server = start_server("testapps:route", "--graceful-timeout", "10")
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(answer=server.get("/slow?1.5")))
    thread.start()
    server.wait_for_log(r"GET /slow|pre_request|worker", timeout=5)
    wait_for(lambda: _has_connection(server), 5, "the slow request to be accepted")
    server.signal(signal.SIGTERM)
    thread.join(timeout=15)
    assert result["answer"][0] == 200
    assert server.wait_exit() == 0


def _has_connection(server: Server) -> bool:
    """The worker holds an established TCP connection to our port."""
    port_hex = f"{server.port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(":" + port_hex) and fields[3] == "01":
            return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGINT])
def test_quit_and_int_stop_now(start_server, tmp_path: Path, signum: int) -> None:
    sock_path = tmp_path / "unitcorn.sock"
    marker = tmp_path / "on_exit.ran"
    server = start_server(
        "testapps:route", "--bind", f"unix:{sock_path}", "--graceful-timeout", "30",
        config=f"def on_exit(server):\n    open({str(marker)!r}, 'w').write('bye')\n",
    )
    assert sock_path.exists()
    thread = threading.Thread(target=lambda: _ignore_errors(server.get, "/slow?20"), daemon=True)
    thread.start()
    wait_for(lambda: _has_connection(server), 5, "the slow request to be accepted")
    started = time.monotonic()
    server.signal(signum)
    assert server.wait_exit(timeout=10) == 0
    # The 20 s request did not hold the stop: quick means quick.
    assert time.monotonic() - started < 10
    assert "Shutting down: Master" in server.log()
    assert not sock_path.exists()
    assert not server.pidfile.exists()
    assert marker.read_text() == "bye"


def _ignore_errors(function, *args):
    try:
        return function(*args)
    except Exception:
        return None


def test_hup_replaces_workers_with_no_failed_request(start_server, tmp_path: Path) -> None:
    config = tmp_path / "unitcorn.conf.py"
    server = start_server(
        "testapps:route", "--workers", "2", config="workers = 2\nraw_env = ['COLOUR=red']\n"
    )
    old = server.workers()
    assert server.get("/env?COLOUR") == (200, "red")
    config.write_text("workers = 3\nraw_env = ['COLOUR=blue']\n")
    with Clients(server) as clients:
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"reload complete generation=2")
        new = server.wait_for_workers(
            lambda pids: len(pids) == 2 and not set(pids) & set(old), "old workers retired"
        )
        wait_for(lambda: clients.pids & {str(p) for p in new}, 10, "answers from new workers")
    assert clients.failures == []
    assert clients.ok > 10
    # --workers on the command line still beats the file; the file's --env is re-applied.
    assert server.get("/env?COLOUR") == (200, "blue")


def test_hup_with_a_broken_config_keeps_serving(start_server, tmp_path: Path) -> None:
    config = tmp_path / "unitcorn.conf.py"
    server = start_server("testapps:route", config="workers = 1\n")
    old = server.workers()
    config.write_text("workers = -2\n")
    server.signal(signal.SIGHUP)
    match = server.wait_for_log(r"reload failed.*")[0].group(0)
    assert "workers = -2" in match and str(config) in match
    assert server.workers() == old
    assert server.get("/")[0] == 200


def test_ttin_and_ttou_scale_but_never_below_one(start_server) -> None:
    server = start_server("testapps:route", "--workers", "1")
    server.signal(signal.SIGTTIN)
    server.wait_for_workers(lambda pids: len(pids) == 2, "2 workers after TTIN")
    server.signal(signal.SIGTTIN)
    server.wait_for_workers(lambda pids: len(pids) == 3, "3 workers after TTIN")
    for expected in (2, 1):
        server.signal(signal.SIGTTOU)
        server.wait_for_workers(lambda pids, n=expected: len(pids) == n, f"{expected} after TTOU")
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"worker count unchanged workers=1")
    assert len(server.workers()) == 1


def test_usr1_reopens_rotated_log_files(start_server, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = start_server("testapps:route", "--access-logfile", str(access))
    server.get("/before")
    wait_for(lambda: access.exists() and "/before" in access.read_text(), 5, "access line")
    access.rename(tmp_path / "access.log.1")
    server.log_path.rename(tmp_path / "error.log.1")
    server.signal(signal.SIGUSR1)
    wait_for(server.log_path.exists, 5, "error log recreated")
    wait_for(lambda: access.exists(), 5, "access log recreated by the worker")
    server.get("/after")
    wait_for(lambda: "/after" in access.read_text(), 5, "new access line in the new file")
    assert "/after" not in (tmp_path / "access.log.1").read_text()


def test_winch_is_ignored_when_not_daemonized(start_server) -> None:
    server = start_server("testapps:route", "--workers", "2")
    before = server.workers()
    server.signal(signal.SIGWINCH)
    # A later signal is handled, so WINCH was read and nothing came of it.
    server.signal(signal.SIGTTIN)
    server.wait_for_workers(lambda pids: len(pids) == 3, "TTIN after WINCH")
    assert set(before) <= set(server.workers())


def test_winch_stops_workers_of_a_daemon(start_server, tmp_path: Path) -> None:
    server = start_server("testapps:route", "--workers", "2", "--daemon", ready=False)
    assert server.wait_exit(timeout=10) == 0  # the launcher returns at once
    master = int(wait_for(lambda: server.pidfile.exists() and server.pidfile.read_text().strip(),
                          10, "the daemon's pidfile"))
    try:
        server.wait_for_log(r"server ready", launcher_exits=True)
        assert len(server.workers(master)) == 2
        os.kill(master, signal.SIGWINCH)
        server.wait_for_workers(lambda pids: pids == [], "workers stopped", master=master)
        assert is_alive(master)
        os.kill(master, signal.SIGTTIN)
        server.wait_for_workers(lambda pids: len(pids) == 1, "a worker after TTIN", master=master)
    finally:
        os.kill(master, signal.SIGQUIT)
        wait_for(lambda: not is_alive(master), 10, "the daemon to exit")


def test_killed_worker_is_reaped_and_replaced(start_server, tmp_path: Path) -> None:
    marker = tmp_path / "child_exit"
    server = start_server(
        "testapps:route", "--workers", "2",
        config=f"def child_exit(server, worker):\n"
               f"    open({str(marker)!r}, 'a').write(f'{{worker.pid}}\\n')\n",
    )
    victim = server.workers()[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_for_log(rf"worker exited pid={victim} code=- reason=killed by SIGKILL")
    server.wait_for_workers(lambda pids: len(pids) == 2 and victim not in pids, "a replacement")
    wait_for(lambda: marker.exists() and str(victim) in marker.read_text(), 5, "child_exit hook")
    assert not is_alive(victim)


def test_worker_ignores_hup_sent_to_the_whole_group(start_server) -> None:
    server = start_server("testapps:route", "--workers", "2")
    workers = server.workers()
    for pid in workers:
        os.kill(pid, signal.SIGHUP)
    server.signal(signal.SIGTTIN)  # a round trip through the master after the HUPs
    server.wait_for_workers(lambda pids: len(pids) == 3, "TTIN handled")
    assert all(is_alive(pid) for pid in workers)


def test_workers_exit_when_the_master_dies(start_server) -> None:
    server = start_server("testapps:route", "--workers", "2")
    workers = server.workers()
    server.signal(signal.SIGKILL)
    server.wait_exit()
    wait_for(lambda: not any(is_alive(pid) for pid in workers), 10, "orphaned workers to exit")


def test_stuck_worker_is_aborted_then_replaced(start_server, tmp_path: Path) -> None:
    marker = tmp_path / "aborted"
    server = start_server(
        "testapps:hang", "--timeout", "2",
        config=f"def worker_abort(worker):\n"
               f"    open({str(marker)!r}, 'w').write(str(worker.pid))\n",
    )
    stuck = server.workers()[0]
    threading.Thread(target=lambda: _ignore_errors(server.get, "/", 10), daemon=True).start()
    server.wait_for_log(rf"WORKER TIMEOUT \(pid:{stuck}\)", timeout=15)
    server.wait_for_workers(lambda pids: len(pids) == 1 and stuck not in pids, "a replacement")
    wait_for(lambda: marker.exists() and marker.read_text() == str(stuck), 5, "worker_abort hook")


def test_max_requests_restarts_the_worker(start_server) -> None:
    server = start_server("testapps:route", "--max-requests", "3")
    first = server.workers()[0]
    answers = {server.get("/")[1] for _ in range(3)}
    assert answers == {str(first)}
    server.wait_for_workers(lambda pids: len(pids) == 1 and first not in pids, "restart")
    assert server.get("/")[1] != str(first)


def test_app_import_failure_exits_4(start_server) -> None:
    server = start_server("broken_import:app", ready=False)
    assert server.wait_exit() == 4
    log = server.log()
    assert "this app cannot be imported" in log
    assert log.count("app failed to load") == 1


def test_worker_boot_failure_exits_3(start_server) -> None:
    server = start_server(
        "testapps:route", ready=False,
        config="def post_worker_init(worker):\n    raise RuntimeError('cannot boot')\n",
    )
    assert server.wait_exit() == 3
    assert "cannot boot" in server.log()


def test_a_raising_master_hook_is_logged_not_fatal(start_server, tmp_path: Path) -> None:
    server = start_server(
        "testapps:route", config="def on_reload(server):\n    raise ValueError('hook bug')\n"
    )
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert "hook failed hook=on_reload" in server.log()
    assert server.get("/")[0] == 200


def test_process_titles_name_master_and_workers(start_server) -> None:
    server = start_server("testapps:route", "--name", "shop")

    def title(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()

    assert title(server.pid).startswith("unitcorn: master [shop]")
    assert all(title(pid).startswith("unitcorn: worker [shop]") for pid in server.workers())


def test_hup_opens_new_binds_and_closes_dropped_ones(start_server, tmp_path: Path) -> None:
    first, second = tmp_path / "first.sock", tmp_path / "second.sock"
    config = tmp_path / "unitcorn.conf.py"
    server = start_server("testapps:route", config=f"bind = ['unix:{first}']\n", bind_socket=False)
    assert _get_unix(first) == 200
    config.write_text(f"bind = ['unix:{second}']\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert _get_unix(second) == 200
    assert not first.exists()


def _get_unix(path: Path) -> int:
    import socket as socket_module

    with socket_module.socket(socket_module.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_term_kills_workers_still_busy_when_the_graceful_timeout_ends(start_server) -> None:
    server = start_server("testapps:route", "--graceful-timeout", "1")
    worker = server.workers()[0]
    threading.Thread(target=lambda: _ignore_errors(server.get, "/slow?30", 40), daemon=True).start()
    wait_for(lambda: _has_connection(server), 5, "the slow request to be accepted")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=15) == 0
    assert time.monotonic() - started < 10  # not the 30 s the request wanted
    server.wait_for_log(r"graceful timeout reached; killing workers count=1", launcher_exits=True)
    server.wait_for_log(rf"worker exited pid={worker} code=- reason=killed by SIGKILL",
                        launcher_exits=True)
    assert not is_alive(worker)


def test_hup_updates_the_process_title(start_server, tmp_path: Path) -> None:
    config = tmp_path / "unitcorn.conf.py"
    server = start_server("testapps:route", config="proc_name = 'before'\n")

    def title() -> str:
        return Path(f"/proc/{server.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    assert title().startswith("unitcorn: master [before]")
    config.write_text("proc_name = 'after'\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert title().startswith("unitcorn: master [after]")

    def workers_renamed() -> bool:  # the old generation may still be on its way out
        titles = []
        for pid in server.workers():
            try:
                titles.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except FileNotFoundError:
                continue
        return bool(titles) and all(t.startswith(b"unitcorn: worker [after]") for t in titles)

    wait_for(workers_renamed, 10, "only workers of the new generation, named 'after'")
