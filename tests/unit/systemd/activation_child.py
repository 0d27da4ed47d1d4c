"""Receive sockets the way a service started by systemd does, then report what listen_fds() saw.

Run by test_systemd_activation.py, never collected by pytest. Stage "exec" moves the descriptors
it was given to 3, 4, … (inheritable, as systemd leaves them), sets LISTEN_* with LISTEN_PID as
its own pid (plus an offset, to test a mismatch) and execs stage "adopt" in the same process,
which calls listen_fds() and prints JSON. The test process's own descriptors are never touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys

VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def move_to_listen_fds(fds: list[int]) -> None:
    # Out of the way first, so that a source already numbered 3 or 4 is not overwritten early.
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for fd in fds:
        os.close(fd)
    for target, fd in enumerate(parked, start=3):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def exec_stage(spec: dict) -> None:
    move_to_listen_fds(spec["fds"])
    os.environ.update(spec["env"])
    os.environ["LISTEN_PID"] = str(os.getpid() + spec["pid_offset"])
    os.execv(sys.executable, [sys.executable, __file__, "adopt", json.dumps(spec)])


def adopt_stage(spec: dict) -> None:
    from unitcorn.systemd.activation import listen_fds, socket_address_key

    passed = range(3, 3 + len(spec["fds"]))
    inheritable_before = [os.get_inheritable(fd) for fd in passed]
    sockets = listen_fds(unset_environment=spec["unset"])
    report = {
        "inheritable_before": inheritable_before,
        "inheritable_after": [os.get_inheritable(fd) for fd in passed],
        "sockets": [{"fd": s.fd, "name": s.name, "key": socket_address_key(s.fd)} for s in sockets],
        "environ": {name: os.environ.get(name) for name in VARIABLES},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    stage, spec = sys.argv[1], json.loads(sys.argv[2])
    exec_stage(spec) if stage == "exec" else adopt_stage(spec)
