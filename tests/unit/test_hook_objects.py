"""gunicorn's request, response, worker.tmp and worker.app objects, as hooks get them."""

from __future__ import annotations

import io
import os
import stat
from types import SimpleNamespace

import pytest

from unitcorn.http.request import Request
from unitcorn.workers.hook_objects import HeartbeatFile, HookApp, HookRequest, HookResponse


def _request(target: str = "/a%20b?x=1&y=2", keep_alive: bool = True) -> Request:
    path, _, query = target.partition("?")
    return Request(method="POST", target=target, path=path, query=query, version=(1, 0),
                   headers=[("HOST", "example.com"), ("CONTENT-LENGTH", "3")], content_length=3,
                   is_chunked=False, keep_alive=keep_alive, expects_continue=False)


def test_the_request_has_gunicorns_attributes() -> None:
    body = io.BytesIO(b"abc")
    environ = {"wsgi.input": body, "wsgi.url_scheme": "https"}
    req = HookRequest(_request(), environ, ("192.0.2.1", 40000), cfg="settings")
    assert (req.method, req.uri, req.path, req.query, req.fragment) == (
        "POST", "/a%20b?x=1&y=2", "/a%20b", "x=1&y=2", "")
    assert req.version == (1, 0) and req.headers[0] == ("HOST", "example.com")
    assert req.body.read() == b"abc" and req.scheme == "https" and req.cfg == "settings"
    assert req.remote_addr == req.peer_addr == ("192.0.2.1", 40000)
    assert req.should_close() is False
    req.force_close()
    assert req.should_close() is True
    req.start_time = 12.5  # hooks keep their own state on it
    assert HookRequest(_request(keep_alive=False), {}, "", None).should_close() is True


def test_the_response_has_gunicorns_attributes() -> None:
    resp = HookResponse(None, "404 Not Found", [("Content-Length", "9"), ("X-A", "b")], 9)
    assert (resp.status, resp.status_code, resp.sent, resp.response_length) == ("404 Not Found", 404, 9, 9)
    assert resp.headers_sent and not resp.chunked
    chunked = HookResponse(None, "200 OK", [("Transfer-Encoding", "chunked")], 1234)
    assert chunked.response_length is None and chunked.chunked and chunked.sent == 1234
    assert HookResponse(None, "garbage", [], 0).status_code is None


def test_worker_tmp_beats_and_has_an_in_memory_descriptor() -> None:
    beats: list[int] = []
    tmp = HeartbeatFile(lambda: beats.append(1))
    tmp.notify()
    assert beats == [1]
    fd = tmp.fileno()
    assert fd == tmp.fileno()  # one descriptor, made on first use
    assert stat.S_ISREG(os.fstat(fd).st_mode)
    os.utime(fd, (1.0, 1.0))  # what gunicorn's own notify() does: harmless here
    tmp.close()
    tmp.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_worker_app_exposes_the_callable() -> None:
    def wsgi(environ, start_response):  # noqa: ANN001, ANN202
        return [b"ok"]

    worker = SimpleNamespace(wsgi=None, cfg="settings")
    app = HookApp(worker)
    assert app.callable is None  # not loaded yet, as in gunicorn before load_wsgi
    worker.wsgi = wsgi
    assert app.callable is wsgi and app.wsgi() is wsgi and app.cfg == "settings"
    assert app({}, None) == [b"ok"]
