"""A real reverse proxy for the tests: Debian's nginx, run in the foreground from a prefix in
tmp_path, forwarding to unitcorn over kept-alive upstream connections (TCP and a unix socket).

nginx listens on a socket the test bound itself (port 0) and hands over, as it does to its own
new binary on an upgrade: the fd is inherited and named in the `NGINX` environment variable, and
nginx adopts the inherited socket whose address matches `listen` — no port race.

What nginx says about an upstream goes to its error log: a request it could not forward or
whose answer it lost ("upstream prematurely closed connection", "recv() failed (104: Connection
reset by peer)", "connect() failed") is logged at [error], a retry on the next connection at
[warn]. `problems()` returns those lines.

`ProxyClients` is the user behind the proxy: client threads POSTing bodies through nginx on
persistent connections, never retrying, each checking that its own body came back.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from harness import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROBLEM = re.compile(r"^\S+ \S+ \[(warn|error|crit|alert|emerg)\] .*$", re.M)

CONFIG = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}

http {{
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    log_format upstreams '$status $request_method $uri upstream=$upstream_addr '
                         'upstream_status=$upstream_status';
    access_log {dir}/access.log upstreams;

    # nginx must give up an idle upstream connection before unitcorn's keepalive interval ends
    # (the usual rule for a proxy in front of any keep-alive server): a server may close a
    # connection idle for its whole interval, and nginx reusing it at that very moment would
    # be a race no server can win.
    upstream over_tcp {{
        server 127.0.0.1:{port};
        keepalive 32;
        keepalive_timeout {upstream_idle}s;
    }}
    upstream over_unix {{
        server unix:{unix_path};
        keepalive 32;
        keepalive_timeout {upstream_idle}s;
    }}

    server {{
        listen 127.0.0.1:{listen_port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_read_timeout 30s;
        client_max_body_size 1m;
        location /tcp/ {{ proxy_pass http://over_tcp/echo; }}
        location /unix/ {{ proxy_pass http://over_unix/echo; }}
    }}
}}
"""


def is_available() -> bool:
    return os.access(NGINX, os.X_OK)


class Nginx:
    """One nginx master and its worker, in their own session; `close()` leaves nothing behind."""

    def __init__(self, directory: Path, upstream_port: int, upstream_unix: Path,
                 upstream_idle: float) -> None:
        self.directory = directory
        for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / "temp" / temp).mkdir(parents=True, exist_ok=True)
        self.error_log = directory / "error.log"
        self.access_log = directory / "access.log"
        self.pidfile = directory / "nginx.pid"
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        self.port = listener.getsockname()[1]
        config = directory / "nginx.conf"
        config.write_text(CONFIG.format(
            # As root, nginx would run its worker as `nobody`, which cannot use tmp_path.
            user="user root;\n" if os.geteuid() == 0 else "",
            dir=directory, port=upstream_port, unix_path=upstream_unix,
            listen_port=self.port, upstream_idle=upstream_idle,
        ))
        environment = dict(os.environ, NGINX=f"{listener.fileno()};")
        self.output = open(directory / "output.log", "wb")
        try:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(directory), "-c", str(config), "-e", str(self.error_log),
                 "-g", "daemon off;"],
                env=environment, pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL,
                stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            listener.close()  # nginx holds it now

    def wait_ready(self, timeout: float = 15) -> Nginx:
        """nginx writes its pid file once its configuration is loaded and the socket adopted
        (connections made before its worker runs wait in the backlog)."""
        def written() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited ({self.process.returncode}):\n{self.output_text()}"
                                     f"\n{self.error_text()}")
            with contextlib.suppress(FileNotFoundError):
                return self.pidfile.read_text().strip() == str(self.process.pid)
            return False

        wait_for(written, timeout, "nginx's pid file")
        return self

    def error_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output_text(self) -> str:
        return (self.directory / "output.log").read_text(errors="replace")

    def problems(self) -> list[str]:
        """Lines nginx logged at [warn] or worse."""
        return [match.group(0) for match in PROBLEM.finditer(self.error_text())]

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGQUIT)  # graceful: finish, then exit
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            if self.process.poll() is None:
                self.process.wait(timeout=10)
            self.output.close()


class ProxyClients:
    """`clients` closed-loop threads POSTing 1-2 KiB bodies to nginx on persistent connections.

    A request fails when its answer is not a 200 carrying the same body (a 502/504 from nginx, a
    reset, a timeout). Nothing is retried. A response that says `Connection: close` (nginx's
    `keepalive_requests`) only means the next request goes on a new connection. Threads take the
    `paths` in turn, so each upstream gets its share.
    """

    def __init__(self, port: int, paths: list[str], clients: int = 8, seed: int = 0,
                 timeout: float = 20.0) -> None:
        self.port = port
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.ok: Counter = Counter()  # per path
        self.failures: list[str] = []
        self.pids: set[str] = set()
        self._threads = [
            threading.Thread(target=self._client, args=(paths[n % len(paths)], seed * 1000 + n),
                             daemon=True, name=f"proxy-client-{n}")
            for n in range(clients)
        ]
        self.started = self.stopped = 0.0

    def __enter__(self) -> ProxyClients:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        wait_for(lambda: self.count("ok") >= 2 * len(self._threads) or self.failures, 20,
                 "first answers through nginx")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, kind: str = "ok") -> int:
        """Answers so far (`kind` "ok"; the torture Operator paces itself with this)."""
        with self._lock:
            return sum(self.ok.values()) if kind == "ok" else len(self.failures)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
            if thread.is_alive():
                raise AssertionError(f"{thread.name} did not finish")
        self.stopped = time.monotonic()

    def _client(self, path: str, seed: int) -> None:
        rng = random.Random(seed)
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            body = rng.randbytes(rng.randint(1024, 2048))
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                            timeout=self.timeout)
                connection.request("POST", path, body=body,
                                   headers={"Content-Type": "application/octet-stream"})
                response = connection.getresponse()
                answer = response.read()
                with self._lock:
                    if response.status == 200 and answer == body:
                        self.ok[path] += 1
                        self.pids.add(response.getheader("X-Pid", "?"))
                    else:
                        self.failures.append(f"{path} status {response.status}, "
                                             f"{len(answer)} of {len(body)} bytes back")
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failures.append(f"{path} {type(exc).__name__}: {exc}")
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()
