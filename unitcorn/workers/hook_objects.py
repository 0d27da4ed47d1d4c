"""gunicorn's request, response, worker.tmp and worker.app objects, as server hooks see them.

Real gunicorn.conf.py files read `req.uri`, `req.remote_addr`, `resp.status_code`,
`worker.tmp.notify()`, `worker.app.callable`… These adapters give them the same attributes,
built from unitcorn's own objects. They cost something, so the worker builds them only when a
pre_request or post_request hook is configured (see Worker.connection_callbacks).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from unitcorn.settings.values import Settings


class HookRequest:
    """gunicorn's `http.message.Request`: what pre_request and post_request receive.

    A plain object on purpose: configs store their own attributes on it in pre_request
    (`req.start_time = time.time()`) and read them back in post_request.
    """

    def __init__(self, request: Any, environ: dict[str, Any], peer: Any, cfg: Settings) -> None:
        self.source = request  # unitcorn's Request this one describes
        self.cfg = cfg
        self.method = request.method
        self.uri = request.target
        self.path = request.path
        self.query = request.query
        self.fragment = request.target.partition("#")[2]
        self.version = request.version
        self.headers = request.headers  # (NAME, value) pairs, names upper-cased, as gunicorn's
        self.trailers: list[tuple[str, str]] = []
        self.body = environ.get("wsgi.input")
        self.scheme = environ.get("wsgi.url_scheme", "http")
        # gunicorn's remote_addr is the socket peer as accept() returned it ((host, port) for
        # TCP), never a value from X-Forwarded-For.
        self.peer_addr = peer
        self.remote_addr = peer
        self.must_close = not request.keep_alive
        self.proxy_protocol_info = None

    def force_close(self) -> None:
        self.must_close = True

    def should_close(self) -> bool:
        return self.must_close


class HookResponse:
    """gunicorn's `http.wsgi.Response` after the response went out: what post_request receives."""

    def __init__(self, req: HookRequest | None, status: str, headers: list[tuple[str, str]],
                 sent: int) -> None:
        self.req = req
        self.status = status
        code = status.split(" ", 1)[0]
        self.status_code: int | None = int(code) if code.isdigit() else None
        self.headers = headers
        self.headers_sent = True
        self.sent = sent
        self.response_length: int | None = _content_length(headers)
        self.chunked = any(
            name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in headers
        )


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


class HeartbeatFile:
    """`worker.tmp`: gunicorn's heartbeat file, kept for the hooks and apps that touch it.

    unitcorn beats in shared memory, not in a file: `notify()` writes the real heartbeat;
    `fileno()` gives a descriptor of an anonymous in-memory file (created on first use, never
    on disk, read by nobody) so that code calling `os.fstat` or `os.utime` on it still works.
    """

    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._fd: int | None = None

    def notify(self) -> None:
        self._notify()

    def fileno(self) -> int:
        if self._fd is None:
            self._fd = os.memfd_create("unitcorn-worker-tmp", os.MFD_CLOEXEC)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class HookApp:
    """`worker.app`: gunicorn's Application, of which hooks read `.callable` and `.cfg`."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker

    @property
    def callable(self) -> Any:
        """The WSGI callable (None until the worker has loaded it, as in gunicorn)."""
        return self._worker.wsgi

    @property
    def cfg(self) -> Any:
        return self._worker.cfg

    def wsgi(self) -> Any:
        return self._worker.wsgi

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._worker.wsgi(environ, start_response)
