"""USR2: replace this program with a fresh master that inherits the listening sockets.

Runs in a child forked from the master and ends in `os.execvpe`. The new master is started as
``python -m unitcorn ARGS`` with the interpreter we run under: that works the same whether we
were launched by the console script or by ``python -m unitcorn`` (gunicorn broke on the latter
because it re-ran ``sys.argv[0]``, which is then a path to ``__main__.py``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from typing import Any

from unitcorn.hooks import call_hook
from unitcorn.sockets import INHERITED_FDS_VAR

OLD_MASTER_VAR = "UNITCORN_PID"
# The new master's end of a socketpair with the old one: "ready" goes out, "main" comes back.
UPGRADE_CHANNEL_VAR = "UNITCORN_UPGRADE_FD"
SD_LISTEN_FDS_START = 3
# Listeners are first copied above this number so renumbering them to 3, 4, … never overwrites
# another listener that still has to be copied.
_PARKING_FD = 100


def new_master_environment(
    master: Any,
    child_pid: int,
    systemd_names: list[str],
    other_fds: list[int],
    channel_fd: int,
    extra: dict[str, str],
) -> dict[str, str]:
    env = {**master.environ_orig, **master.settings.env}
    env[OLD_MASTER_VAR] = str(master.state.own_pid)
    env[UPGRADE_CHANNEL_VAR] = str(channel_fd)
    env.update(extra)
    if systemd_names:
        # The sockets came from systemd: say so the way systemd does, for our own pid.
        env["LISTEN_PID"] = str(child_pid)
        env["LISTEN_FDS"] = str(len(systemd_names))
        env["LISTEN_FDNAMES"] = ":".join(systemd_names)
    if other_fds:
        env[INHERITED_FDS_VAR] = ",".join(map(str, other_fds))
    return env


def exec_new_master(master: Any, channel: socket.socket, extra_env: dict[str, str]) -> None:
    """Never returns: exec the new master (the caller `os._exit`s if exec fails)."""
    call_hook(master.settings, "pre_exec", master)
    # Parked first, like the listeners, so renumbering to 3, 4, … cannot overwrite it.
    channel_fd = fcntl.fcntl(channel.fileno(), fcntl.F_DUPFD, _PARKING_FD)
    channel.close()
    from_systemd = [lst for lst in master.listeners if lst.is_from_systemd]
    others = [lst for lst in master.listeners if not lst.is_from_systemd]
    parked = {
        id(lst): fcntl.fcntl(lst.fileno(), fcntl.F_DUPFD, _PARKING_FD) for lst in master.listeners
    }
    for index, listener in enumerate(from_systemd):
        os.dup2(parked[id(listener)], SD_LISTEN_FDS_START + index, inheritable=True)
        os.close(parked[id(listener)])
    # Other listeners keep their numbers where they can, so a `--bind fd://N` still names them.
    systemd_range = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + len(from_systemd))
    other_fds = []
    for listener in others:
        fd = listener.fileno()
        if fd in systemd_range:
            fd = parked[id(listener)]
        else:
            os.set_inheritable(fd, True)
            os.close(parked[id(listener)])
        os.set_inheritable(fd, True)
        other_fds.append(fd)
    env = new_master_environment(
        master,
        os.getpid(),
        [lst.name or "unknown" for lst in from_systemd],
        other_fds,
        channel_fd,
        extra_env,
    )
    os.chdir(master.start_cwd)
    argv = [sys.executable, "-m", "unitcorn", *master.argv]
    os.execvpe(argv[0], argv, env)
