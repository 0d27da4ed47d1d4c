"""journald logging: native fields (systemd.journal.send captured) and <N>-prefixed stderr lines."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import types
from collections.abc import Iterator

import pytest

from unitcorn.systemd.journal import (
    NEWLINE_MARK,
    JournalHandler,
    PriorityPrefixFormatter,
    journal_available,
    stderr_is_journal,
    syslog_priority,
)

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def journal_module(monkeypatch) -> types.ModuleType:
    """systemd.journal, or a stand-in with the same send() when systemd-python is absent."""
    try:
        import systemd.journal as module
    except ImportError:
        package = types.ModuleType("systemd")
        package.__path__ = []
        module = types.ModuleType("systemd.journal")
        package.journal = module  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "systemd", package)
        monkeypatch.setitem(sys.modules, "systemd.journal", module)
    return module


@pytest.fixture
def entries(monkeypatch, journal_module) -> list[dict]:
    captured: list[dict] = []

    def send(MESSAGE, **fields):
        captured.append({"MESSAGE": MESSAGE, **fields})

    monkeypatch.setattr(journal_module, "send", send, raising=False)
    return captured


@pytest.fixture
def logger(entries) -> Iterator[logging.Logger]:
    logger = logging.getLogger("unitcorn.test.journal")
    handler = JournalHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.removeHandler(handler)
    logger.propagate = True


def test_an_entry_carries_message_priority_identifier_and_code_location(logger, entries):
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    logger.info("worker booted pid=%d", 812)
    assert entries == [
        {
            "MESSAGE": "worker booted pid=812",
            "CODE_FILE": __file__,
            "CODE_LINE": line,
            "CODE_FUNC": "test_an_entry_carries_message_priority_identifier_and_code_location",
            "PRIORITY": "6",
            "SYSLOG_IDENTIFIER": "unitcorn",
            "LOGGER": "unitcorn.test.journal",
        }
    ]


def test_unitcorn_and_http_attributes_become_fields(logger, entries):
    extra = {
        "UNITCORN_WORKER_PID": 812,
        "UNITCORN_GENERATION": 3,
        "HTTP_METHOD": "GET",
        "HTTP_PATH": "/health",
        "HTTP_STATUS": 200,
        "HTTP_DURATION_USEC": 1534,
        "UNITCORN_PEER": None,
        "http_lowercase": "no",
        "REMOTE_ADDR": "no",
        "HTTP_": "no",
    }
    logger.info("GET /health 200", extra=extra)
    [entry] = entries
    assert {k: v for k, v in entry.items() if k.startswith(("UNITCORN_", "HTTP_"))} == {
        "UNITCORN_WORKER_PID": "812",
        "UNITCORN_GENERATION": "3",
        "HTTP_METHOD": "GET",
        "HTTP_PATH": "/health",
        "HTTP_STATUS": "200",
        "HTTP_DURATION_USEC": "1534",
    }
    assert "http_lowercase" not in entry and "REMOTE_ADDR" not in entry


def test_a_traceback_is_one_entry(logger, entries):
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("app failed")
    [entry] = entries
    assert entry["PRIORITY"] == "3"
    assert entry["MESSAGE"].startswith("app failed\nTraceback (most recent call last):\n")
    assert entry["MESSAGE"].endswith("ZeroDivisionError: division by zero")
    assert entry["EXCEPTION"].startswith("Traceback (most recent call last):\n")
    assert entry["EXCEPTION"].endswith("ZeroDivisionError: division by zero")


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, "7"),
        (logging.INFO, "6"),
        (logging.WARNING, "4"),
        (logging.ERROR, "3"),
        (logging.CRITICAL, "2"),
    ],
)
def test_priority_follows_the_level(logger, entries, level, priority):
    logger.log(level, "x")
    assert [e["PRIORITY"] for e in entries] == [priority]


def test_a_failing_send_does_not_raise(logger, journal_module, monkeypatch, capsys):
    def send(MESSAGE, **fields):
        raise OSError("journal socket gone")

    monkeypatch.setattr(journal_module, "send", send)
    logger.error("still running")
    assert "journal socket gone" in capsys.readouterr().err


def test_journal_available_with_systemd_python(journal_module, entries):
    assert journal_available()


def test_without_systemd_python(monkeypatch):
    # None in sys.modules makes the import raise ImportError, as when the package is absent.
    monkeypatch.setitem(sys.modules, "systemd.journal", None)
    assert not journal_available()
    with pytest.raises(ImportError, match="systemd-python"):
        JournalHandler()


def test_an_unrelated_systemd_module_is_not_enough(monkeypatch):
    monkeypatch.setitem(sys.modules, "systemd.journal", types.ModuleType("systemd.journal"))
    assert not journal_available()


@pytest.mark.parametrize(
    ("levelno", "priority"),
    [
        (0, 7),
        (5, 7),
        (10, 7),
        (15, 7),
        (20, 6),
        (25, 6),
        (30, 4),
        (35, 4),
        (40, 3),
        (45, 3),
        (50, 2),
        (60, 2),
    ],
)
def test_syslog_priority(levelno, priority):
    assert syslog_priority(levelno) == priority


def make_record(level: int, message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("unitcorn", level, __file__, 1, message, None, exc_info)


def test_prefix_formatter_prefixes_the_priority():
    formatter = PriorityPrefixFormatter("%(levelname)s %(message)s")
    assert formatter.format(make_record(logging.WARNING, "slow")) == "<4>WARNING slow"
    assert formatter.format(make_record(logging.DEBUG, "")) == "<7>DEBUG "


def test_prefix_formatter_keeps_a_multi_line_message_on_one_line():
    formatter = PriorityPrefixFormatter()
    text = formatter.format(make_record(logging.INFO, "first\nsecond\r\nthird\n"))
    assert text == f"<6>first{NEWLINE_MARK}second{NEWLINE_MARK}third"


def test_prefix_formatter_keeps_a_traceback_on_one_line():
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = make_record(logging.ERROR, "app failed", sys.exc_info())
    text = PriorityPrefixFormatter().format(record)
    assert "\n" not in text and "\r" not in text
    assert text.startswith(f"<3>app failed{NEWLINE_MARK}Traceback (most recent call last):")
    assert text.endswith(f"{NEWLINE_MARK}ZeroDivisionError: division by zero")


def stderr_stream() -> str:
    stat = os.fstat(2)
    return f"{stat.st_dev}:{stat.st_ino}"


def test_stderr_is_journal_when_the_stream_matches():
    assert stderr_is_journal({"JOURNAL_STREAM": stderr_stream()})


@pytest.mark.parametrize("value", [None, "", "garbage", "1:", ":2", "0:0"])
def test_stderr_is_not_journal_otherwise(value):
    environ = {} if value is None else {"JOURNAL_STREAM": value}
    assert not stderr_is_journal(environ)


def test_stderr_is_not_journal_when_only_the_device_matches():
    device, inode = stderr_stream().split(":")
    assert not stderr_is_journal({"JOURNAL_STREAM": f"{device}:{int(inode) + 1}"})


def test_stderr_is_journal_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", stderr_stream())
    assert stderr_is_journal()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not stderr_is_journal()
