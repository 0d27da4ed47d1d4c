"""USR2: a new master from the installed code, on the same sockets, then the handover."""

from __future__ import annotations

import signal

from harness import is_alive, wait_for
from test_signals import Clients


def _new_master(server) -> int:
    return int(wait_for(lambda: server.pidfile.with_name("unitcorn.pid.2").exists()
                        and server.pidfile.with_name("unitcorn.pid.2").read_text().strip(),
                        15, "PIDFILE.2"))


def test_usr2_starts_a_new_master_that_takes_over(start_server) -> None:
    server = start_server("testapps:route", "--workers", "2")
    old_workers = server.workers()
    with Clients(server) as clients:
        server.signal(signal.SIGUSR2)
        new_master = _new_master(server)
        assert new_master in server.workers()  # a child of the old master, not a worker
        new_workers = server.wait_for_workers(
            lambda pids: len(pids) == 2, "the new master's workers", master=new_master
        )
        server.wait_for_log(r"server ready", count=2)
        # Both masters serve the same socket; a second USR2 to either is refused.
        server.signal(signal.SIGUSR2)
        server.wait_for_log(r"USR2 ignored: an upgraded master is already running")
        server.signal(signal.SIGUSR2, pid=new_master)
        server.wait_for_log(r"USR2 ignored: this master is itself an upgrade")
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        wait_for(lambda: server.pidfile.exists()
                 and server.pidfile.read_text().strip() == str(new_master),
                 10, "PIDFILE taken over")
        second = server.pidfile.with_name("unitcorn.pid.2")
        wait_for(lambda: not second.exists(), 5, "PIDFILE.2 gone")
        wait_for(lambda: clients.pids & {str(p) for p in new_workers}, 10, "new workers answering")
    assert clients.failures == []
    assert not any(is_alive(pid) for pid in old_workers)
    assert is_alive(new_master)
    server.wait_for_log(r"master promoted", launcher_exits=True)
    # The promoted master may upgrade again.
    upgrades = server.log().count("upgrade started")
    server.signal(signal.SIGUSR2, pid=new_master)
    server.wait_for_log(r"upgrade started", count=upgrades + 1, launcher_exits=True)
