"""The process exit statuses that carry meaning between a worker, the master, cli.py and systemd.

A worker exits with WORKER_BOOT_ERROR or APP_LOAD_ERROR to tell the master the server cannot
work at all (gunicorn's numbers, which gunicorn configs also use: `sys.exit(3)` in a hook); the
master then halts with the same status, and the shipped unit lists 3, 4 and 78 in
RestartPreventExitStatus=, so systemd does not restart a server that cannot start.
"""

from __future__ import annotations

# 0 ok and 1 unexpected need no name.
EX_USAGE = 2
WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4
EX_CONFIG = 78  # sysexits.h: bad configuration
