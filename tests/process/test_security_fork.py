"""A worker holds nothing of the master's but what it serves with (issue 11, finding A).

The application runs in the worker, maybe as `--user nobody`: any descriptor of the master's it
inherits is a way to act as the master — answer root's `ctl reload --wait`, accept on the
control socket, write into the signal pipe.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from harness import wait_for
from test_ctl import ctl

SOCKET = re.compile(r"socket:\[(\d+)\]")
PIPE = re.compile(r"pipe:\[(\d+)\]")


# /proc/net/unix's Flags column: __SO_ACCEPTCON, a listening socket (its accepted connections
# carry the same path).
LISTENING = 0x10000


def unix_socket_inodes() -> dict[int, tuple[str, bool]]:
    """Every AF_UNIX socket of this network namespace: inode → (path or "", is listening)."""
    found = {}
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        path = fields[7] if len(fields) > 7 else ""
        found[int(fields[6])] = (path, bool(int(fields[3], 16) & LISTENING))
    return found


def descriptors_of(pid: int) -> dict[int, str]:
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return found


def inodes(pattern: re.Pattern[str], targets: object) -> set[int]:
    return {int(m.group(1)) for t in targets if (m := pattern.fullmatch(str(t)))}


def test_a_worker_forked_during_ctl_reload_wait_holds_only_its_own_descriptors(
    start_server, tmp_path: Path
) -> None:
    control = tmp_path / "control.sock"
    access_log = tmp_path / "access.log"
    server = start_server("securityapps:descriptors", "--control-socket", str(control),
                          "--workers", "1", "--access-logfile", str(access_log))
    # A reload by signal first: whatever a reload leaves behind in the master is inherited too.
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    # The workers of generation 3 are forked while this ctl's connection is open in the master.
    result = ctl(control, "reload", "--wait", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "reload complete generation=3" in result.stdout
    (worker,) = server.wait_for_workers(lambda pids: len(pids) == 1, "generation 2 to retire")

    status, body = server.get("/")
    assert status == 200
    answer = json.loads(body)
    assert answer["pid"] == worker
    worker_fds = {int(fd): target for fd, target in answer["fds"].items()}
    master_fds = descriptors_of(server.pid)

    # Sockets: the listener (the test handed it over as the same fd number) and the request's
    # own connection — both TCP. No unix socket at all: not the control socket, not a ctl client.
    unix = unix_socket_inodes()
    # /proc/net/unix names the path bound, and the master binds beside the final path then
    # renames (see ControlServer.open).
    bound_as = (str(control), f"{control}.{server.pid}")
    control_inode = next(ino for ino, (path, listening) in unix.items()
                         if path in bound_as and listening)
    assert control_inode in inodes(SOCKET, master_fds.values())  # the probe sees the master's
    held_sockets = inodes(SOCKET, worker_fds.values())
    assert control_inode not in held_sockets
    listener_fd = int(re.search(r"fd://(\d+)", " ".join(server.process.args)).group(1))
    assert worker_fds[listener_fd] == master_fds[listener_fd]
    # The only socket shared with the master is the listener; any other is the worker's own
    # (a gthread worker's wake-up socketpair, the request's connection).
    shared = held_sockets & inodes(SOCKET, master_fds.values())
    assert shared == inodes(SOCKET, [master_fds[listener_fd]]), worker_fds
    assert all(unix[ino] == ("", False) for ino in (held_sockets & set(unix)) - shared), worker_fds
    assert held_sockets - set(unix) <= set(answer["tcp"]), worker_fds

    # Pipes shared with the master: the boot pipe's write end and the life pipe's read end,
    # nothing more (the master's signal wakeup pipe would let the app send it any command).
    # The worker's own signal wakeup pipe is the only other one.
    shared_pipes = inodes(PIPE, worker_fds.values()) & inodes(PIPE, master_fds.values())
    assert len(shared_pipes) == 2, worker_fds
    pipe_ends = [t for t in worker_fds.values() if PIPE.fullmatch(t)]
    assert len(pipe_ends) == 2 + 2, worker_fds

    # Files: stdio as the master has it, and the log files, which still work.
    files = {t for t in worker_fds.values() if t.startswith("/")}
    log_files = {str(server.log_path), str(access_log)}
    assert files <= {master_fds[fd] for fd in (0, 1, 2)} | log_files, worker_fds
    assert log_files <= files
    # Written after the answer was sent.
    wait_for(lambda: '"GET / HTTP/1.1" 200' in access_log.read_text(), 5, "the access log line")
    # Anything else is the worker's own (its epoll instance); nothing of the master's kind.
    others = {t for t in worker_fds.values()
              if not t.startswith(("/", "socket:", "pipe:"))}
    assert others <= {"anon_inode:[eventpoll]"}, worker_fds
