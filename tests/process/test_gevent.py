"""The gevent worker: monkey-patched before the app loads, many waiting requests at once.

Its HTTP behaviour (keep-alive, refusals, slow clients, retiring) is checked with the other WSGI
classes (harness.WORKER_CLASSES); this file holds what is gevent's own.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from harness import APPS, REPO

pytest.importorskip("gevent")
pytestmark = pytest.mark.timeout(60)


def test_the_app_is_imported_after_monkey_patching(start_server) -> None:
    server = start_server("geventapps:app", "-k", "gevent")
    assert "Using worker: gevent" in server.log()
    assert server.get("/patched") == (200, "True")


def test_one_worker_serves_many_waiting_requests_at_once(start_server) -> None:
    """20 requests that each wait 2 s, one worker: served together (one by one would be 40 s)."""
    server = start_server("geventapps:app", "-k", "gevent", "--workers", "1",
                          "--worker-connections", "100")
    url = f"http://127.0.0.1:{server.port}/sleep?2"
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: requests.get(url, timeout=15), range(20)))
    assert [a.text for a in answers] == ["slept"] * 20


@pytest.mark.parametrize("name", ["gunicorn.workers.ggevent.GeventWorker", "gevent_pywsgi"])
def test_gunicorns_names_for_it(start_server, name: str) -> None:
    server = start_server("geventapps:app", "-k", name)
    assert "Using worker: gevent" in server.log()


@pytest.mark.parametrize("name", ["eventlet", "gunicorn.workers.geventlet.EventletWorker"])
def test_eventlet_is_refused_with_a_clear_error(tmp_path, name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unitcorn", "-k", name, "geventapps:app"],
        capture_output=True, text=True, timeout=20, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"},
    )
    assert result.returncode == 78
    assert "gunicorn 26 removed it" in result.stderr
    assert result.stderr.count("\n") == 1
