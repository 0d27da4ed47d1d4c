"""Every gunicorn server hook runs, in the right process, with gunicorn's arguments."""

from __future__ import annotations

import signal
from pathlib import Path

from harness import wait_for

HOOKS_CONFIG = '''
import os

RECORD = {record!r}

def _note(name, *details):
    with open(RECORD, "a") as handle:
        handle.write(" ".join([name, str(os.getpid()), *map(str, details)]) + "\\n")

def on_starting(server):
    _note("on_starting", server.pid)

def on_reload(server):
    _note("on_reload", server.pid)

def when_ready(server):
    _note("when_ready", server.pid, server.num_workers)

def pre_fork(server, worker):
    _note("pre_fork", worker.age)

def post_fork(server, worker):
    _note("post_fork", worker.pid)

def post_worker_init(worker):
    _note("post_worker_init", worker.pid)

def pre_request(worker, req):
    _note("pre_request", req.method, req.path)

def post_request(worker, req, environ, resp):
    _note("post_request", req.path, resp.status)

def child_exit(server, worker):
    _note("child_exit", worker.pid)

def worker_exit(server, worker):
    _note("worker_exit", worker.pid)

def nworkers_changed(server, new_value, old_value):
    _note("nworkers_changed", new_value, old_value)

def pre_exec(server):
    _note("pre_exec", server.pid)

def on_exit(server):
    _note("on_exit", server.pid)
'''


def _records(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _names(path: Path) -> list[str]:
    return [fields[0] for fields in _records(path)]


def test_every_hook_runs_in_the_right_process(start_server, tmp_path: Path) -> None:
    record = tmp_path / "hooks.log"
    server = start_server("testapps:route", config=HOOKS_CONFIG.format(record=str(record)))
    master = str(server.pid)
    worker = str(server.workers()[0])
    assert server.get("/hello")[0] == 200
    wait_for(lambda: "post_request" in _names(record), 5, "post_request")
    server.signal(signal.SIGTTIN)
    wait_for(lambda: "nworkers_changed" in _names(record), 5, "nworkers_changed")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    server.signal(signal.SIGUSR2)
    wait_for(lambda: "pre_exec" in _names(record), 10, "pre_exec")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    records = _records(record)
    by_name: dict[str, list[list[str]]] = {}
    for fields in records:
        by_name.setdefault(fields[0], []).append(fields)
    # Master-side hooks run in the master (pre_exec in the forked child that becomes the new one).
    for name in ("on_starting", "when_ready", "pre_fork", "nworkers_changed", "on_reload",
                 "child_exit", "on_exit"):
        assert by_name[name][0][1] == master, name
    # Worker-side hooks run in the worker, and post_fork already knows its pid.
    assert ["post_fork", worker, worker] in by_name["post_fork"]
    assert ["post_worker_init", worker, worker] in by_name["post_worker_init"]
    assert ["pre_request", worker, "GET", "/hello"] in by_name["pre_request"]
    assert ["post_request", worker, "/hello", "200", "OK"] in by_name["post_request"]
    assert ["worker_exit", worker, worker] in by_name["worker_exit"]
    assert by_name["pre_exec"][0][1] != master
    assert by_name["when_ready"][0][3] == "1"
    # As gunicorn's Arbiter: first when the count is set at start (old value None), before
    # on_starting; then on TTIN.
    assert [fields[2:] for fields in by_name["nworkers_changed"]][:2] == [["1", "None"], ["2", "1"]]
    assert _names(record)[:2] == ["nworkers_changed", "on_starting"]
