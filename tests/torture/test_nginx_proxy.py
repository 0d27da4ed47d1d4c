"""Behind a real reverse proxy, no request is lost: nginx forwards POSTs to unitcorn over kept-alive
upstream connections (TCP and a unix socket) while the server reloads, scales, upgrades and
recycles workers.

nginx does not retry a POST it already sent (non-idempotent), so a kept-alive upstream
connection that unitcorn closes just as nginx reuses it costs the user a 502 — and nginx logs
"upstream prematurely closed connection" or "recv() failed (104: Connection reset by peer)".
The server may close a connection nginx may reuse only after a response that said
`Connection: close`, after the connection sat idle for the whole `keepalive` interval, or when a
stop's graceful timeout ends. Asserted: every answer a 200 carrying the request's own body, and
nothing at [warn] or worse in nginx's error log.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from torture_config import WORKER_CLASSES_WITH_ASGI, app_for
from torture_nginx import Nginx, ProxyClients, is_available
from torture_ops import Operator

WORKERS = 2
CLIENTS = 8
HUPS = 10
SCALE_PAIRS = 10
MAX_REQUESTS = 50
KEEPALIVE = 5  # unitcorn's idle interval, seconds
UPSTREAM_IDLE = 2  # nginx's (keepalive_timeout in the upstream block): shorter, as it must be
PACE = 500  # answers through the proxy between two signals
SEED = int(os.environ.get("TORTURE_SEED", "20240601"))


def _require_nginx() -> None:
    if is_available():
        return
    # CI installs nginx-light; there a missing nginx is a broken runner, not a reason to skip.
    if os.environ.get("UNITCORN_REQUIRE_SYSTEM") == "1":
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    pytest.skip("nginx is not installed (apt-get install nginx-light)")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES_WITH_ASGI)
def test_no_request_lost_behind_nginx(start_torture, tmp_path: Path, worker_class: str,
                                      figures) -> None:
    _require_nginx()
    unix_path = tmp_path / "unitcorn.sock"
    server = start_torture(
        app_for("tortureapps:mirror", worker_class), "--workers", str(WORKERS), "--bind", f"unix:{unix_path}",
        "--max-requests", str(MAX_REQUESTS), "--keep-alive", str(KEEPALIVE),
        "--graceful-timeout", "20", "--timeout", "20", worker_class=worker_class,
    )
    nginx = Nginx(tmp_path / "nginx", server.port, unix_path, UPSTREAM_IDLE)
    try:
        nginx.wait_ready()
        operator = Operator(server, WORKERS, seed=SEED)
        started = time.monotonic()
        with ProxyClients(nginx.port, ["/tcp/", "/unix/"], CLIENTS, seed=SEED) as clients:
            operator.load = clients
            for _ in range(max(HUPS, SCALE_PAIRS)):
                if operator.done["hup"] < HUPS:
                    operator.pace(PACE)
                    operator.hup()
                if operator.done["ttin/ttou"] < SCALE_PAIRS:
                    operator.pace(PACE)
                    operator.scale_pair()
            operator.pace(PACE)
            operator.upgrade("signal")
            operator.pace(PACE)
        figures.update(operator.settle())
        figures.update(
            seconds=round(time.monotonic() - started, 2),
            actions=dict(operator.done),
            ok_by_upstream=dict(clients.ok),
            failed=len(clients.failures),
            answering_pids=len(clients.pids),
            nginx_statuses=_statuses(nginx.access_log),
            nginx_problems=len(nginx.problems()),
        )
        assert clients.failures == [], (
            f"{len(clients.failures)} requests failed through nginx: {clients.failures[:10]}; "
            f"nginx says: {nginx.problems()[:5]}")
        assert nginx.problems() == [], nginx.problems()[:10]
        assert all(clients.ok.values()) and len(clients.ok) == 2, clients.ok
    finally:
        nginx.close()


def _statuses(access_log: Path) -> dict[str, int]:
    """nginx's answers by status (its access log line starts with the status)."""
    try:
        text = access_log.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    return dict(Counter(re.findall(r"^(\d{3}) ", text, re.M)))
