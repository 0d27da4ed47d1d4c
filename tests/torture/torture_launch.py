"""Start a program the way systemd's socket activation does: listening socket at fd 3,
LISTEN_PID set to the program's own pid (known only here, just before exec).

Usage: python torture_launch.py PROGRAM-ARGS...  with TORTURE_LISTEN_FD=N in the environment.
"""

import os
import sys

fd = int(os.environ.pop("TORTURE_LISTEN_FD"))
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="web")
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
