"""A gunicorn.conf.py written like real public ones reads gunicorn's attributes off its hook objects."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from harness import wait_for

# In the style of the configs projects publish: log through server.log/worker.log, time requests
# with an attribute stored on req, read resp.status_code, touch worker.tmp.
REAL_STYLE_CONFIG = '''
import json
import os
import time

workers = 1
timeout = 30
loglevel = "debug"

RECORD = {record!r}


def _note(event, **values):
    with open(RECORD, "a") as handle:
        handle.write(json.dumps(dict(values, event=event, process=os.getpid()), default=repr) + "\\n")


def nworkers_changed(server, new_value, old_value):
    _note("nworkers_changed", new=new_value, old=old_value)


def on_starting(server):
    server.log.info("Starting server with %s workers", server.num_workers)
    _note("on_starting", pid=server.pid, cfg_workers=server.cfg.workers)


def when_ready(server):
    server.log.info("Server is ready. Spawning workers on %s", server.address)
    _note("when_ready", address=server.address, timeout=server.timeout, pid=server.pid,
          workers=list(server.WORKERS), listeners=[str(s) for s in server.LISTENERS],
          proc_name=server.proc_name, worker_class=server.worker_class.__name__)


def pre_fork(server, worker):
    _note("pre_fork", age=worker.age, ppid=worker.ppid, booted=worker.booted)


def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)
    _note("post_fork", pid=worker.pid, timeout=worker.timeout, alive=worker.alive,
          sockets=len(worker.sockets), tmp_fileno=worker.tmp.fileno() >= 0)
    worker.tmp.notify()


def post_worker_init(worker):
    _note("post_worker_init", pid=worker.pid, callable=worker.app.callable.__name__,
          booted=worker.booted, nr=worker.nr, max_requests=worker.max_requests,
          aborted=worker.aborted, cfg_timeout=worker.cfg.timeout)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.uri)
    req.start_time = time.time()
    _note("pre_request", method=req.method, uri=req.uri, path=req.path, query=req.query,
          version=list(req.version), headers=dict(req.headers), scheme=req.scheme,
          remote_addr=list(req.remote_addr), peer_addr=list(req.peer_addr),
          body=req.body.read())


def post_request(worker, req, environ, resp):
    duration = time.time() - req.start_time
    worker.log.info("%s %s %s %.3f", req.method, req.path, resp.status_code, duration)
    _note("post_request", status=resp.status, status_code=resp.status_code,
          headers=dict(resp.headers), sent=resp.sent, length=resp.response_length,
          nr=worker.nr, remote=environ["REMOTE_ADDR"], started=req.start_time > 0)


def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal (pid: %s)", worker.pid)
    _note("worker_int", pid=worker.pid, alive=worker.alive)
'''


def _events(path: Path) -> dict[str, list[dict]]:
    events: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            events.setdefault(record["event"], []).append(record)
    return events


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_hooks_read_gunicorns_attributes(start_server, tmp_path: Path, worker_class: str) -> None:
    record = tmp_path / "hooks.jsonl"
    server = start_server("testapps:route", "-k", worker_class,
                          config=REAL_STYLE_CONFIG.format(record=str(record)))
    master = server.pid
    worker = server.workers()[0]
    wait_for(lambda: "post_worker_init" in _events(record), 5, "post_worker_init")
    assert server.get("/hello?x=1")[0] == 200
    wait_for(lambda: "post_request" in _events(record), 5, "post_request")
    server.signal(signal.SIGINT, worker)
    wait_for(lambda: "worker_int" in _events(record), 5, "worker_int")
    events = _events(record)

    # gunicorn's Arbiter sets its worker count before on_starting: old_value is None.
    assert list(events)[0] == "nworkers_changed"
    assert events["nworkers_changed"][0] | {"process": 0} == {
        "event": "nworkers_changed", "new": 1, "old": None, "process": 0}
    assert events["on_starting"][0]["cfg_workers"] == 1
    ready = events["when_ready"][0]
    assert ready["process"] == ready["pid"] == master
    assert len(ready["address"]) == 1 and isinstance(ready["address"][0], int)  # --bind fd://N
    assert ready["timeout"] == 30
    assert ready["workers"] == [worker]
    assert ready["worker_class"].endswith("Worker")
    assert events["pre_fork"][0]["ppid"] == master
    assert events["pre_fork"][0]["booted"] is False

    fork = events["post_fork"][0]
    assert fork["pid"] == fork["process"] == worker
    assert fork["timeout"] == 15.0
    assert fork["alive"] is True and fork["sockets"] == 1 and fork["tmp_fileno"] is True
    init = events["post_worker_init"][0]
    assert init["callable"] == "route"
    assert init["nr"] == 0 and init["aborted"] is False and init["cfg_timeout"] == 30

    before = events["pre_request"][0]
    assert before["method"] == "GET" and before["uri"] == "/hello?x=1"
    assert before["path"] == "/hello" and before["query"] == "x=1"
    assert before["version"] == [1, 1] and before["scheme"] == "http"
    assert before["headers"]["HOST"].startswith("127.0.0.1:")
    assert before["remote_addr"][0] == "127.0.0.1" and before["remote_addr"] == before["peer_addr"]
    assert before["body"] == "b''"

    after = events["post_request"][0]
    assert after["status"] == "200 OK" and after["status_code"] == 200
    assert after["sent"] == int(after["headers"]["Content-Length"]) == after["length"]
    assert after["nr"] == 1 and after["remote"] == "127.0.0.1" and after["started"] is True
    assert events["worker_int"][0]["pid"] == worker

    log = server.log()
    assert f"Worker spawned (pid: {worker})" in log
    assert "GET /hello?x=1" in log
    assert "GET /hello 200" in log
    assert "hook failed" not in log
