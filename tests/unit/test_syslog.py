"""--log-syslog and friends: gunicorn's addresses and entry format, on real sockets."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from unitcorn.logs import SERVER_LOGGERS, access_enabled, close_logging, configure_logging
from unitcorn.settings import ConfigError, load_settings
from unitcorn.settings.values import Settings
from unitcorn.syslog import parse_address


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    yield
    close_logging()
    for logger, (propagate, level) in zip(loggers, saved, strict=True):
        logger.propagate = propagate
        logger.setLevel(level)


def _settings(tmp_path: Path, *argv: str) -> Settings:
    return load_settings([*argv, "--error-logfile", str(tmp_path / "error.log"), "shop.wsgi:app"],
                         environ={}, cwd=str(tmp_path))


@pytest.mark.parametrize(("text", "expected"), [
    ("udp://localhost:514", (socket.SOCK_DGRAM, ("localhost", 514))),
    ("udp://", (socket.SOCK_DGRAM, ("localhost", 514))),
    ("tcp://LogHost:601", (socket.SOCK_STREAM, ("loghost", 601))),
    ("udp://[::1]:5514", (socket.SOCK_DGRAM, ("::1", 5514))),
    ("unix:///dev/log", (None, "/dev/log")),
    ("unix:///dev/log#dgram", (socket.SOCK_DGRAM, "/dev/log")),
    ("unix:///run/syslog#stream", (socket.SOCK_STREAM, "/run/syslog")),
])
def test_gunicorns_syslog_addresses(text: str, expected: object) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(("argv", "message"), [
    (("--log-syslog-to", "localhost:514"), "syslog_addr = localhost:514 .*must start with unix://"),
    (("--log-syslog-to", "udp://host:x"), "port 'x' is not a port number"),
    (("--log-syslog-to", "unix:///dev/log#seqpacket"), "unknown socket type"),
    (("--log-syslog-facility", "local9"), "syslog_facility = local9 .*unknown facility"),
])
def test_bad_syslog_settings(tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, *argv)


def test_both_logs_go_to_syslog_as_gunicorn_formats_them(
    tmp_path: Path, udp_receiver: socket.socket
) -> None:
    host, port = udp_receiver.getsockname()
    configure_logging(_settings(tmp_path, "--log-syslog", "--log-syslog-to", f"udp://{host}:{port}",
                                "--log-syslog-facility", "local0"))
    assert access_enabled()  # as in gunicorn: syslog takes the access log too
    logging.getLogger("unitcorn.error").error("worker exited pid=12 code=3")
    entry = udp_receiver.recv(1000).decode()
    # local0 (16) * 8 + error (3) = 131; the program name is gunicorn.PROC_NAME.error
    assert entry == f"<131>gunicorn.shop.wsgi.app.error: [{os.getpid()}] worker exited pid=12 code=3\x00"
    logging.getLogger("unitcorn.access").info('127.0.0.1 - - "GET / HTTP/1.1" 200')
    assert udp_receiver.recv(1000).decode().startswith("<134>gunicorn.shop.wsgi.app.access: [")


def test_the_prefix_and_keeping_the_access_log_out(tmp_path: Path, udp_receiver: socket.socket) -> None:
    host, port = udp_receiver.getsockname()
    configure_logging(_settings(tmp_path, "--log-syslog", "--log-syslog-to", f"udp://{host}:{port}",
                                "--log-syslog-prefix", "shop", "--disable-redirect-access-to-syslog"))
    assert not access_enabled()
    logging.getLogger("unitcorn.error").warning("careful")
    assert udp_receiver.recv(1000).decode() == f"<12>gunicorn.shop.error: [{os.getpid()}] careful\x00"
    assert "careful" in (tmp_path / "error.log").read_text()  # the error log file still gets it


def test_a_unix_datagram_socket_like_dev_log(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        configure_logging(_settings(tmp_path, "--log-syslog", "--log-syslog-to", f"unix://{path}#dgram",
                                    "--log-syslog-prefix", "shop"))
        logging.getLogger("unitcorn.error").info("hello")
        assert server.recv(1000).decode() == f"<14>gunicorn.shop.error: [{os.getpid()}] hello\x00"
    finally:
        server.close()


def test_a_syslog_socket_that_appears_later_gets_the_next_records(tmp_path: Path, capsys) -> None:
    path = str(tmp_path / "log")
    configure_logging(_settings(tmp_path, "--log-syslog", "--log-syslog-to", f"unix://{path}#dgram",
                                "--log-syslog-prefix", "shop"))
    error = logging.getLogger("unitcorn.error")
    for _ in range(20):
        error.info("lost")  # no syslog yet: lost, reported once, no traceback per record
    assert capsys.readouterr().err.count(f"log write failed pid={os.getpid()} path=syslog {path}") == 1
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        error.info("found")
        assert server.recv(1000).decode() == f"<14>gunicorn.shop.error: [{os.getpid()}] found\x00"
    finally:
        server.close()
