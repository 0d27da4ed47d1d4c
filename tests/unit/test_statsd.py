"""The statsd client: gunicorn's wire formats, on a real datagram socket; never raising."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from unitcorn.settings import ConfigError, load_settings
from unitcorn.statsd import StatsdClient, StatsdLogHandler, normalize_prefix, parse_address


def _received(sock: socket.socket) -> list[str]:
    return sock.recv(65536).decode().split("\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("localhost:9125", ("localhost", 9125)),
    ("Statsd.Example", ("statsd.example", 8125)),
    ("udp://10.0.0.1:8126", ("10.0.0.1", 8126)),
    ("[::1]:8125", ("::1", 8125)),
    ("[::1]", ("::1", 8125)),
    ("unix:///run/statsd.sock", "/run/statsd.sock"),
    ("unix:/run/statsd.sock", "/run/statsd.sock"),
])
def test_addresses(text: str, expected: object) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    (":8125", "host is empty"),
    ("::1:8125", "needs brackets"),
    ("host:http", "not a port number"),
    ("host:70000", "not a port number"),
    ("unix://", "path is empty"),
])
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


@pytest.mark.parametrize("text", ["localhost:1234", "[::1]:8125", "unix:///run/statsd.sock"])
def test_print_config_shows_what_loads_back(tmp_path: Path, text: str) -> None:
    from unitcorn.settings.catalog import SETTINGS
    from unitcorn.settings.report import show

    setting = next(s for s in SETTINGS if s.name == "statsd_host")
    value = load_settings(["--statsd-host", text, "app:app"], environ={}, cwd=str(tmp_path)).statsd_host
    assert show(setting, value) == repr(text)
    assert setting.convert(("localhost", 1234)) == ("localhost", 1234)  # gunicorn's form, in a config


def test_the_setting_says_what_is_wrong(tmp_path: Path) -> None:
    settings = load_settings(["--statsd-host", "localhost:1234", "app:app"], environ={}, cwd=str(tmp_path))
    assert settings.statsd_host == ("localhost", 1234)
    with pytest.raises(ConfigError, match=r"statsd_host = host:x \(from command line\): port 'x'"):
        load_settings(["--statsd-host", "host:x", "app:app"], environ={}, cwd=str(tmp_path))


@pytest.mark.parametrize(("prefix", "expected"), [
    ("", ""), ("app", "app."), ("app.", "app."), ("app...", "app."), ("my.app", "my.app."),
])
def test_prefix_as_gunicorn_normalizes_it(prefix: str, expected: str) -> None:
    assert normalize_prefix(prefix) == expected


def test_gunicorns_wire_formats(udp_receiver: socket.socket) -> None:
    client = StatsdClient(udp_receiver.getsockname(), prefix="shop", tags="env:prod,app:shop")
    client.gauge("gunicorn.workers", 4)
    assert _received(udp_receiver) == ["shop.gunicorn.workers:4|g|#env:prod,app:shop"]
    client.increment("gunicorn.requests", 1)
    assert _received(udp_receiver) == ["shop.gunicorn.requests:1|c|@1.0|#env:prod,app:shop"]
    client.decrement("x", 2)
    assert _received(udp_receiver) == ["shop.x:-2|c|@1.0|#env:prod,app:shop"]
    client.histogram("gunicorn.backlog", 3)
    assert _received(udp_receiver) == ["shop.gunicorn.backlog:3|h|#env:prod,app:shop"]
    client.close()


def test_one_datagram_per_request(udp_receiver: socket.socket) -> None:
    client = StatsdClient(udp_receiver.getsockname())
    client.request("404 Not Found", 0.0125)
    assert _received(udp_receiver) == [
        "gunicorn.request.duration:12.5|ms", "gunicorn.requests:1|c|@1.0",
        "gunicorn.request.status.404:1|c|@1.0",
    ]
    client.close()


def test_nobody_listening_never_raises(udp_receiver: socket.socket, caplog) -> None:
    address = udp_receiver.getsockname()
    udp_receiver.close()  # the port answers with ICMP unreachable: the next send fails, quietly
    client = StatsdClient(address)
    with caplog.at_level(logging.WARNING, logger="unitcorn.error"):
        for _ in range(50):
            client.request("200 OK", 0.001)
    failures = [r for r in caplog.records if "statsd send failed" in r.getMessage()]
    assert len(failures) <= 1  # reported once a minute, not per request
    client.close()


def test_an_unresolvable_host_disables_statsd_in_this_process(caplog) -> None:
    client = StatsdClient(("no-such-host.invalid", 8125))
    with caplog.at_level(logging.WARNING, logger="unitcorn.error"):
        client.increment("gunicorn.requests")
        client.increment("gunicorn.requests")
    messages = [r.getMessage() for r in caplog.records if "statsd" in r.getMessage()]
    assert len(messages) == 1  # one attempt per process, not one per metric
    expected = "statsd disabled in this process address=('no-such-host.invalid', 8125) error="
    assert messages[0].startswith(expected)


def test_a_unix_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "statsd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    client = StatsdClient(parse_address(f"unix://{path}"))
    client.gauge("gunicorn.workers", 2)
    assert server.recv(100) == b"gunicorn.workers:2|g"
    client.close()
    server.close()


def test_log_records_are_counted_like_gunicorns(udp_receiver: socket.socket) -> None:
    logger = logging.getLogger("test_statsd.log")
    logger.propagate = False
    handler = StatsdLogHandler(StatsdClient(udp_receiver.getsockname()))
    logger.addHandler(handler)
    try:
        logger.info("not counted")
        logger.warning("w")
        logger.error("e")
        try:
            raise RuntimeError("x")
        except RuntimeError:
            logger.exception("x")
        logger.critical("c")
        got = [_received(udp_receiver)[0] for _ in range(4)]
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert got == [f"gunicorn.log.{kind}:1|c|@1.0" for kind in ("warning", "error", "exception", "critical")]
