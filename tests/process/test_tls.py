"""TLS on a real server: certificates made by the openssl CLI, real clients (curl, httpx, ssl).

Every worker class answers https with wsgi.url_scheme https; keep-alive and pipelining work over
TLS; a client that never handshakes holds no worker and is dropped at header_timeout; a plain
HTTP request to a TLS port is closed; client certificates are required when cert_reqs says so;
a bad certificate or key is a configuration error at start, from --check-config and from a
reload (which keeps the old generation serving); a reload costs a kept-alive TLS client nothing.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from harness import APPS, REPO, WORKER_CLASSES, wait_for
from http_wire import Wire

from unitcorn.settings import ConfigError, load_settings
from unitcorn.settings.tls import server_context
from unitcorn.tls import ServerTLS

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

CLASSES = {**WORKER_CLASSES, "asgi": ("-k", "asgi")}


@dataclass(frozen=True)
class Certs:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_key: str  # belongs to no certificate here
    encrypted_key: str  # the server's key, under a passphrase

    @property
    def args(self) -> tuple[str, ...]:
        return ("--certfile", self.server_cert, "--keyfile", self.server_key)

    def client(self, with_certificate: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if with_certificate:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)


def _issue(directory: Path, name: str, subject: str, extensions: str) -> None:
    """NAME.key and NAME.pem: an EC key and its certificate, signed by ca.pem."""
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=unitcorn test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _issue(d, "server", "/CN=localhost",
           "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _issue(d, "client", "/CN=test client", "extendedKeyUsage=clientAuth\n")
    _openssl(d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", "other.key")
    _openssl(d, "pkey", "-in", "server.key", "-aes256", "-passout", "pass:secret",
             "-out", "encrypted.key")
    return Certs(*(str(d / name) for name in (
        "ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other.key",
        "encrypted.key")))


def _app(name: str) -> str:
    return "tlsapps:scheme_asgi" if name == "asgi" else "tlsapps:scheme"


def _https_get(port: int, context: ssl.SSLContext, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


# -- real clients ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CLASSES)
def test_curl_gets_https_and_reuses_the_connection(start_server, certs: Certs, name: str) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    server = start_server(_app(name), *CLASSES[name], *certs.args)
    url = f"https://localhost:{server.port}/"
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", certs.ca,
         "--write-out", " connects=%{num_connects}\n", url, url],
        capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    scheme, https, pid, connects = first.split()
    assert (scheme, connects) == ("https", "connects=1")
    assert https == ("-" if name == "asgi" else "on")  # HTTPS=on in a WSGI environ
    assert second == f"{scheme} {https} {pid} connects=0"  # the same connection, kept alive


@pytest.mark.parametrize("name", ["sync", "gthread-4", "asgi"])
def test_httpx_verifies_the_server_and_keeps_the_connection(start_server, certs: Certs,
                                                           name: str) -> None:
    server = start_server(_app(name), *CLASSES[name], *certs.args)
    body = os.urandom(200_000).hex().encode()  # larger than a TLS record, and than 64 KiB
    with httpx.Client(verify=certs.client(), timeout=10) as client:
        base = f"https://localhost:{server.port}"
        first = client.get(f"{base}/")
        echoed = client.post(f"{base}/", content=body)
        again = client.get(f"{base}/")
    assert first.status_code == echoed.status_code == again.status_code == 200
    assert first.text.startswith("https ") and first.text == again.text
    assert echoed.content == body
    assert first.http_version == "HTTP/1.1"


@pytest.mark.parametrize("name", ["sync", "gthread-4", "gevent"])
def test_a_file_wrapper_goes_through_tls_not_sendfile(start_server, certs: Certs,
                                                     tmp_path: Path, name: str) -> None:
    # os.sendfile would write the file's plain bytes past OpenSSL: the client would fail.
    payload = os.urandom(3 << 20)
    (tmp_path / "payload.bin").write_bytes(payload)
    server = start_server(_app(name), *CLASSES[name], *certs.args)
    connection = http.client.HTTPSConnection("localhost", server.port, context=certs.client(),
                                             timeout=10)
    try:
        connection.request("GET", f"/file?{tmp_path / 'payload.bin'}")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, payload)
    finally:
        connection.close()


@pytest.mark.parametrize("name", CLASSES)
def test_pipelined_requests_over_tls_in_one_segment(start_server, certs: Certs,
                                                    name: str) -> None:
    """Three requests, each its own TLS record, in one TCP segment: whatever OpenSSL has
    decrypted but not yet returned must be answered, not left waiting for epoll."""
    server = start_server(_app(name), *CLASSES[name], *certs.args)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = certs.client().wrap_bio(incoming, outgoing, server_hostname="localhost")

    def pump_until(step):
        while True:
            try:
                return step()
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                if not data:
                    raise EOFError("server closed the connection") from None
                incoming.write(data)

    try:
        pump_until(tls.do_handshake)
        sock.sendall(outgoing.read())
        for number in range(3):
            body = f"request {number}".encode()
            tls.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.sendall(outgoing.read())  # three records, one send
        received = b""
        while received.count(b"request ") < 3:
            received += pump_until(lambda: tls.read(65536))
    finally:
        sock.close()
    bodies = [part.split(b"\r\n\r\n", 1)[1][:9] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"request 0", b"request 1", b"request 2"]


def test_a_websocket_over_tls_is_wss(start_server, certs: Certs) -> None:
    pytest.importorskip("wsproto")
    from websockets.sync.client import connect

    server = start_server("asgiapps:websocket_echo", "-k", "asgi", *certs.args)
    with connect(f"wss://localhost:{server.port}/", ssl=certs.client(), open_timeout=10) as ws:
        ws.send("hello over tls")
        assert ws.recv(timeout=10) == "hello over tls"
        ws.send(b"\x00" * 100_000)
        assert ws.recv(timeout=10) == b"\x00" * 100_000


# -- clients that do not speak TLS properly ------------------------------------------------------

@pytest.mark.parametrize("name", ["sync", "gthread-4", "gevent", "asgi"])
def test_a_client_that_never_handshakes_holds_nothing_and_is_dropped(start_server, certs: Certs,
                                                                     name: str) -> None:
    server = start_server(_app(name), *CLASSES[name], "--header-timeout", "2", *certs.args)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    half = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        half.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
        connected_at = time.monotonic()
        # One worker, and it is not waiting on either of them.
        assert _https_get(server.port, certs.client())[1].startswith("https ")
        for sock in (silent, half):
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
        waited = time.monotonic() - connected_at
    finally:
        silent.close()
        half.close()
    assert 1.5 <= waited < 8, waited


@pytest.mark.parametrize("name", ["sync", "gthread-4", "gevent", "asgi"])
def test_a_client_that_never_handshakes_does_not_delay_a_retiring_worker(
    start_server, certs: Certs, name: str,
) -> None:
    # --timeout 4: the gevent worker looks at its idle connections every half of it.
    server = start_server(_app(name), *CLASSES[name], "--header-timeout", "25", "-t", "4",
                          *certs.args)
    old_worker = server.workers()[0]
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        _https_get(server.port, certs.client())  # accepted after the silent one: both are in
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"reload complete generation=2")
        # Gone after the short grace a connection that never carried a request gets, long
        # before header_timeout.
        server.wait_for_workers(lambda pids: old_worker not in pids, "the old worker to exit",
                                timeout=12)
        try:
            assert silent.recv(1) == b""
        except ConnectionResetError:
            pass
    finally:
        silent.close()
    assert "Traceback" not in server.log() + server.output_path.read_text(errors="replace")


@pytest.mark.parametrize("name", CLASSES)
def test_plain_http_to_a_tls_port_is_closed(start_server, certs: Certs, name: str) -> None:
    server = start_server(_app(name), *CLASSES[name], *certs.args)
    with Wire(server.port, timeout=5) as wire:
        wire.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        try:  # closed within the timeout (perhaps after a TLS alert): no hang
            answer = wire.read_to_eof()
        except ConnectionResetError:
            answer = b""
        assert b"HTTP/" not in answer
    assert _https_get(server.port, certs.client())[0] == 200  # and the worker serves on


@pytest.mark.parametrize("name", ["sync", "gthread-4", "asgi"])
def test_client_certificates_are_required_with_cert_reqs_2(start_server, certs: Certs,
                                                          name: str) -> None:
    server = start_server(_app(name), *CLASSES[name], *certs.args,
                          "--cert-reqs", "2", "--ca-certs", certs.ca)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        _https_get(server.port, certs.client(with_certificate=False))
    status, body = _https_get(server.port, certs.client(with_certificate=True))
    assert status == 200 and body.startswith("https ")


# -- configuration -------------------------------------------------------------------------------

def _load(*args: str) -> object:
    return load_settings([*args, "app:app"], environ={}, cwd="/")


def test_the_settings_build_the_context_gunicorn_builds(certs: Certs) -> None:
    settings = _load(*certs.args, "--cert-reqs", "1", "--ca-certs", certs.ca,
                     "--ciphers", "ECDHE+AESGCM")
    context = server_context(settings)
    assert context is not None and context is server_context(settings)  # built once
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert all("GCM" in cipher["name"] or cipher["protocol"] == "TLSv1.3"
               for cipher in context.get_ciphers())
    assert server_context(_load()) is None  # no certfile: plain HTTP


def test_an_ssl_context_hook_adjusts_the_default_context(certs: Certs, tmp_path: Path) -> None:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "import ssl\n"
        "def ssl_context(config, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return context\n"
    )
    context = server_context(_load("-c", str(config), *certs.args))
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--certfile", "/nonexistent.pem"), "certfile = /nonexistent.pem (from command line): "
                                             "no such file"),
        (("--keyfile", "{server_key}"), "keyfile = {server_key} (from command line): a keyfile "
                                        "needs a certfile"),
        (("--certfile", "{server_cert}", "--keyfile", "{other_key}"),
         "keyfile = {other_key} (from command line): cannot load the certificate and its key: "
         "key values mismatch"),
        (("--certfile", "{server_cert}"),
         "certfile = {server_cert} (from command line): no PEM private key in it (set keyfile)"),
        (("--certfile", "{server_key}", "--keyfile", "{server_key}"),
         "certfile = {server_key} (from command line): not a PEM certificate"),
        (("--certfile", "{server_cert}", "--keyfile", "{ca}"),
         "keyfile = {ca} (from command line): not a PEM private key"),
        (("--certfile", "{server_cert}", "--keyfile", "{encrypted_key}"),
         "keyfile = {encrypted_key} (from command line): the private key is encrypted"),
        (("--certfile", "{server_cert}", "--keyfile", "{server_key}", "--ciphers", "NOPE"),
         "ciphers = NOPE (from command line): no cipher can be selected"),
        (("--certfile", "{server_cert}", "--keyfile", "{server_key}", "--ca-certs", "{server_key}"),
         "ca_certs = {server_key} (from command line): cannot load CA certificates"),
        (("--certfile", "{server_cert}", "--keyfile", "{server_key}", "--cert-reqs", "3"),
         "cert_reqs = 3 (from command line): must be at most 2"),
    ],
)
def test_a_bad_tls_setting_is_a_configuration_error(certs: Certs, args: tuple[str, ...],
                                                    message: str) -> None:
    names = vars(certs)
    with pytest.raises(ConfigError) as info:
        _load(*(arg.format(**names) for arg in args))
    assert str(info.value).startswith(message.format(**names))


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("    raise RuntimeError('no')\n", "raised RuntimeError: no"),
        ("    return None\n", "returned NoneType, not an ssl.SSLContext"),
    ],
)
def test_a_failing_ssl_context_hook_is_a_configuration_error(certs: Certs, tmp_path: Path,
                                                             hook: str, message: str) -> None:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(f"def ssl_context(config, factory):\n{hook}")
    with pytest.raises(ConfigError) as info:
        _load("-c", str(config), *certs.args)
    assert str(info.value).startswith("ssl_context = ") and str(info.value).endswith(message)


def test_tls_settings_without_a_certificate_are_a_warning() -> None:
    settings = _load("--cert-reqs", "2", "--ciphers", "HIGH")
    assert settings.warnings == [
        f"{name} = {value} (from command line): ignored: TLS is off (set certfile and keyfile "
        "to turn it on)" for name, value in (("cert_reqs", 2), ("ciphers", "HIGH"))
    ]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"}
    return subprocess.run([sys.executable, "-m", "unitcorn", *args], capture_output=True,
                          text=True, timeout=20, cwd=cwd, env=env)


@pytest.mark.parametrize("check", [False, True], ids=["start", "check-config"])
def test_a_key_that_does_not_match_exits_78_in_one_line(certs: Certs, tmp_path: Path,
                                                        check: bool) -> None:
    result = _run(*(["--check-config"] if check else []), "--certfile", certs.server_cert,
                  "--keyfile", certs.other_key, "tlsapps:scheme", cwd=tmp_path)
    assert result.returncode == 78
    assert result.stderr == (
        f"unitcorn: configuration error: keyfile = {certs.other_key} (from command line): "
        "cannot load the certificate and its key: key values mismatch\n"
    )


def test_check_config_accepts_a_good_certificate(certs: Certs, tmp_path: Path) -> None:
    result = _run("--check-config", *certs.args, "tlsapps:scheme", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_reload_with_a_broken_key_keeps_the_old_generation_serving(
    start_server, certs: Certs, tmp_path: Path,
) -> None:
    config = tmp_path / "tls.conf.py"
    config.write_text(f"certfile = {certs.server_cert!r}\nkeyfile = {certs.server_key!r}\n")
    server = start_server("tlsapps:scheme", "-c", str(config))
    before = _https_get(server.port, certs.client())[1]
    config.write_text(f"certfile = {certs.server_cert!r}\nkeyfile = {certs.other_key!r}\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, old generation keeps serving reason=configuration: "
                        r"keyfile = ")
    assert _https_get(server.port, certs.client())[1] == before  # the same worker, serving
    # A renewed certificate goes live the same way: HUP.
    config.write_text(f"certfile = {certs.server_cert!r}\nkeyfile = {certs.server_key!r}\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert _https_get(server.port, certs.client())[1] != before


# -- no request lost across a reload -------------------------------------------------------------

@pytest.mark.parametrize("name", ["sync", "gthread-4", "asgi"])
def test_kept_alive_tls_clients_lose_nothing_across_a_reload(start_server, certs: Certs,
                                                             name: str) -> None:
    """Clients reuse their connections and never retry (as a proxy with a POST): 0 lost."""
    server = start_server(_app(name), *CLASSES[name], "-w", "2", *certs.args)
    context = certs.client()
    stop = threading.Event()
    served: list[int] = []
    failures: list[str] = []

    def client(number: int) -> None:
        connection = http.client.HTTPSConnection("localhost", server.port, context=context,
                                                 timeout=10)
        try:
            while not stop.is_set():
                body = os.urandom(600 + number * 100).hex().encode()
                try:
                    connection.request("POST", "/", body=body)
                    response = connection.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    failures.append(repr(exc))
                    connection.close()  # a new connection for the next request, not a retry
                    continue
                if (response.status, answer) != (200, body):
                    failures.append(f"{response.status} {answer[:40]!r}")
                served.append(1)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(served) >= 50, 15, "requests before the reload")
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"reload complete generation=2", timeout=20)
        after = len(served)
        wait_for(lambda: len(served) >= after + 50, 15, "requests after the reload")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert failures == []


# -- the socket shape Connection relies on ---------------------------------------------------------

def test_a_tls_socket_steps_its_handshake_and_reads_what_openssl_holds(certs: Certs) -> None:
    settings = _load(*certs.args)
    context = server_context(settings)
    assert context is not None
    server_side, client_side = socket.socketpair()
    tls_socket = ServerTLS(context, True).wrap(server_side)
    client = certs.client()
    client.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    peer = client.wrap_bio(incoming, outgoing)
    try:
        with pytest.raises(BlockingIOError):
            tls_socket.recv(100)  # nothing yet: would block, like a plain socket
        assert not tls_socket.is_handshaken
        for _ in range(10):
            try:
                peer.do_handshake()
            except ssl.SSLWantReadError:
                pass
            client_side.sendall(outgoing.read())
            if tls_socket.handshake_step() == 0:
                break
            client_side.setblocking(False)
            try:
                incoming.write(client_side.recv(65536))
            except BlockingIOError:
                pass
            client_side.setblocking(True)
        assert tls_socket.is_handshaken
        # A record larger than one recv: the rest is decrypted, held by OpenSSL, invisible to
        # epoll; recv returns it all.
        peer.write(b"x" * 10_000)
        client_side.sendall(outgoing.read())
        assert tls_socket.recv(4096) == b"x" * 10_000
        assert not hasattr(tls_socket, "sendmsg")  # so Connection joins buffers: one send
    finally:
        tls_socket.close()
        client_side.close()
