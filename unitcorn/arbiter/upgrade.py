"""USR2: start a new master on the same sockets, hand over to it (MAINPID under systemd), retire.

Both sides talk over a socketpair. The new master says "ready" once its workers serve; the old
one announces it to systemd (MAINPID) and answers "main"; the new master opens the control
socket and answers "taken"; only then does the old master report success to `ctl upgrade` and
retire — so the control socket path never goes missing. The new master also learns at once (a
pidfd) when the old one exits.

The handshake's rules are `decisions.upgrade_step` over the phases of state.py; this module
holds only the effects, with explicit arguments: start the new master, read and write the
channel, watch the old master.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Callable

from unitcorn.arbiter.decisions import HANDLED_SIGNALS
from unitcorn.process.signals import fork_with_signals_blocked


def start_new_master(
    is_detached: bool,
    leave_master: Callable[[], None],
    exec_new_master: Callable[[socket.socket], None],
) -> tuple[int, socket.socket]:
    """Fork the process that execs the new master; returns (its pid, our end of the channel).

    In the child, `leave_master` drops what only the master may hold, then `exec_new_master`
    execs (given the new master's end of the channel); the child never returns. `is_detached`
    (under systemd): the new master is started through a child that exits at once, so it is
    reparented to systemd before we announce it — systemd 252 treats a MAINPID that is not its
    own child as "alien" and, on stop, SIGKILLs the whole unit instead of draining. Raises
    OSError when out of descriptors, memory or processes: the upgrade did not start.
    """
    ours, theirs = socket.socketpair()
    try:
        pid, saved_mask = fork_with_signals_blocked(HANDLED_SIGNALS)
    except OSError:
        ours.close()
        theirs.close()
        raise
    if pid:
        theirs.close()
        if is_detached:
            try:
                pid = _read_pid(ours)  # the intermediate child tells us the new master's pid
            except (OSError, ValueError) as exc:
                ours.close()
                raise OSError(str(exc)) from exc
        ours.setblocking(False)
        return pid, ours
    try:
        ours.close()
        leave_master()
        if is_detached:
            new_master = os.fork()
            if new_master:
                theirs.sendall(f"{new_master}\n".encode())
                os._exit(0)
        # exec keeps the signal mask: the new master must start with nothing blocked.
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        exec_new_master(theirs)
    finally:
        os._exit(1)


def receive(channel: socket.socket) -> bytes | None:
    """What arrived on the channel: b"" at end-of-file (or a broken channel), None if nothing yet."""
    try:
        return channel.recv(4096)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def send(channel: socket.socket, message: bytes) -> OSError | None:
    """Send one message; a failure is returned (the peer may be gone), never raised."""
    try:
        channel.sendall(message)
    except OSError as exc:
        return exc
    return None


def watch_old_master(old_master_pid: int) -> int | None:
    """A pidfd that becomes readable when the old master exits; None if it already has."""
    try:
        fd = os.pidfd_open(old_master_pid)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return None
        raise
    os.set_inheritable(fd, False)
    return fd


def _read_pid(channel: socket.socket) -> int:
    """The first line on the channel: the pid of the new master, from the intermediate child."""
    channel.settimeout(10)
    line = b""
    while not line.endswith(b"\n"):
        byte = channel.recv(1)  # byte by byte: nothing after this line may be consumed here
        if not byte:
            raise OSError("the upgrade's intermediate process exited without a pid")
        line += byte
    return int(line)
