"""Which descriptors logging writes to: a forked worker keeps exactly these of the master's."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from unitcorn.logs import log_descriptors


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("test_log_descriptors.app")
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_any_loggers_file_handler_counts(app_logger: logging.Logger, tmp_path: Path) -> None:
    handler = logging.FileHandler(tmp_path / "app.log")
    app_logger.addHandler(handler)
    assert handler.stream.fileno() in log_descriptors([])


def test_an_unnamed_unconnected_datagram_socket_counts_as_journald() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal_like:
        assert journal_like.fileno() in log_descriptors([journal_like.fileno()])


def test_named_connected_or_stream_sockets_do_not_count(tmp_path: Path) -> None:
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bound.bind(str(tmp_path / "bound"))
    pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sockets = [bound, *pair, stream]
    try:
        fds = [s.fileno() for s in sockets]
        assert log_descriptors(fds).isdisjoint(fds)
        # Looking did not close them.
        assert all(s.fileno() >= 0 for s in sockets)
        pair[0].send(b"still open")
        assert pair[1].recv(16) == b"still open"
    finally:
        for s in sockets:
            s.close()


def test_a_closed_descriptor_is_ignored(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as handle:
        fd = handle.fileno()
    assert fd not in log_descriptors([fd])
