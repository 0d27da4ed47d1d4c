"""Behind a real front-end: HAProxy (Debian's) sends PROXY v1/v2 headers and scheme headers to a
real unitcorn; raw PROXY bytes from a peer not allowed are refused."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from http_wire import Wire

pytestmark = pytest.mark.timeout(60)

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
CLIENT_ADDRESS = "127.0.0.2"  # the client's own loopback address, so it differs from HAProxy's


def _config(listen_fd: int, backend_port: int, send_proxy: str, mode: str) -> str:
    # The frontend listens on a socket the test bound (fd@N): no port race, no readiness wait.
    extra = "    http-request set-header X-Forwarded-Proto https\n" if mode == "http" else ""
    return (
        "global\n    maxconn 64\n"
        f"defaults\n    mode {mode}\n    timeout connect 5s\n    timeout client 10s\n"
        "    timeout server 10s\n"
        f"frontend front\n    bind fd@{listen_fd}\n{extra}    default_backend back\n"
        f"backend back\n    server unitcorn 127.0.0.1:{backend_port} {send_proxy}\n"
    )


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Callable[[int, str, str], int]]:
    """haproxy(backend_port, "send-proxy" | "send-proxy-v2", mode) -> the port clients use."""
    if HAPROXY is None:
        if os.environ.get("UNITCORN_REQUIRE_SYSTEM"):  # CI installs it: a skip would hide a gap
            pytest.fail("haproxy is not installed (apt-get install haproxy)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    started: list[subprocess.Popen] = []

    def start(backend_port: int, send_proxy: str, mode: str = "tcp") -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        config = tmp_path / "haproxy.cfg"
        config.write_text(_config(listener.fileno(), backend_port, send_proxy, mode))
        output = open(tmp_path / "haproxy.log", "wb")
        # -db: stay in the foreground.  The listener keeps its descriptor number in the child.
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),), start_new_session=True,
        )
        started.append(process)
        port = listener.getsockname()[1]
        listener.close()
        return port

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=10)


def _get(port: int, path: str = "/") -> dict:
    address = ("127.0.0.1", port)
    with socket.create_connection(address, timeout=10, source_address=(CLIENT_ADDRESS, 0)) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    seen = json.loads(body)
    seen["client_port"] = str(client_port)
    return seen


@pytest.mark.parametrize(("send_proxy", "mode", "protocol"), [
    ("send-proxy", "v1", "TCP4"),
    ("send-proxy-v2", "v2", "TCP4"),
    ("send-proxy", "auto", "TCP4"),
    ("send-proxy-v2", "auto", "TCP4"),
])
def test_haproxy_client_becomes_remote_addr(start_server, haproxy, send_proxy, mode, protocol) -> None:
    server = start_server("proxyapps:peer", "--workers", "1", "--proxy-protocol", mode)
    front = haproxy(server.port, send_proxy)
    seen = _get(front)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == (CLIENT_ADDRESS, seen["client_port"])
    assert (seen["PROXY_ADDR"], seen["PROXY_PORT"]) == ("127.0.0.1", str(front))
    assert seen["PROXY_PROTOCOL"] == protocol


def test_haproxy_http_mode_scheme_and_proxy(start_server, haproxy) -> None:
    """HAProxy terminating HTTP, adding X-Forwarded-Proto: https, from 127.0.0.1 (trusted by
    default) with a bare --proxy-protocol (auto)."""
    # A bare flag takes no value from the next option (as with gunicorn, it would take the app).
    server = start_server("proxyapps:peer", "--proxy-protocol", "--workers", "1")
    front = haproxy(server.port, "send-proxy-v2", "http")
    seen = _get(front)
    assert (seen["wsgi.url_scheme"], seen["REMOTE_ADDR"]) == ("https", CLIENT_ADDRESS)


def test_haproxy_not_allowed_is_forbidden(start_server, haproxy) -> None:
    server = start_server("proxyapps:peer", "--workers", "1", "--proxy-protocol", "v1",
                          "--proxy-allow-from", "10.0.0.1")
    front = haproxy(server.port, "send-proxy")
    with socket.create_connection(("127.0.0.1", front), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    server.wait_for_log(r"invalid request peer=127\.0\.0\.1 status=403")


def test_raw_proxy_lines(start_server) -> None:
    """Exact bytes, no HAProxy: a v1 line sets the peer; a malformed one is a 400 and a close."""
    server = start_server("proxyapps:peer", "--workers", "1", "--proxy-protocol", "auto")
    with Wire(server.port) as wire:
        wire.send(b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        seen = json.loads(wire.read_response().body)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("2001:db8::7", "4711")
    assert seen["PROXY_PROTOCOL"] == "TCP6"
    with Wire(server.port) as wire:
        wire.send(b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = wire.read_response()
        assert answer.status == 400 and answer.closes and wire.is_closed_by_server()
