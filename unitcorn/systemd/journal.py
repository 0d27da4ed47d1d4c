"""Log to journald: natively with systemd-python, or as ``<N>``-prefixed lines on stderr.

Under systemd, stderr is usually a stream to journald (``JOURNAL_STREAM`` says so). journald turns
a leading ``<N>`` into the entry's priority and makes one entry per line; the native protocol
(``systemd.journal.send``) also carries structured fields and multi-line messages. systemd-python
is optional, so it is imported only when a JournalHandler is made.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import traceback
from collections.abc import Mapping
from types import ModuleType

SYSLOG_IDENTIFIER = "unitcorn"

# Record attributes with these names (e.g. from ``logger.info(..., extra={...})``) become journal
# fields; journald accepts upper-case letters, digits and "_" in field names, up to 64 characters.
_FIELD_NAME = re.compile(r"(?:UNITCORN|HTTP)_[A-Z0-9_]{1,58}")

# Python levels to syslog(3) priorities, highest first; a level between two maps to the lower one.
_PRIORITIES = (
    (logging.CRITICAL, 2),  # crit
    (logging.ERROR, 3),  # err
    (logging.WARNING, 4),  # warning
    (logging.INFO, 6),  # info
)
_DEBUG_PRIORITY = 7

# What stands for a line break in a stderr line, so that a traceback stays one journal entry.
# Not a literal "\n": string reprs in tracebacks often contain one, so it would be ambiguous;
# "↵" is rare in messages and reads as a line break in `journalctl`.
NEWLINE_MARK = " ↵ "


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0 emerg … 7 debug) for a logging level."""
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return _DEBUG_PRIORITY


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether fd 2 is the journald stream that ``JOURNAL_STREAM`` ("dev:ino") names.

    Comparing with fd 2 itself matters: the variable is inherited by processes whose stderr was
    redirected elsewhere, and they must not write ``<N>`` prefixes into a file.
    """
    if environ is None:
        environ = os.environ
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        expected = (int(device), int(inode))
        stat = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (stat.st_dev, stat.st_ino) == expected


def journal_available() -> bool:
    """Whether systemd-python's ``systemd.journal`` can be imported."""
    return _load_journal() is not None


def _load_journal() -> ModuleType | None:
    try:
        module = importlib.import_module("systemd.journal")
    except ImportError:
        return None
    # An unrelated PyPI package is also called "systemd"; only systemd-python has send().
    return module if callable(getattr(module, "send", None)) else None


class JournalHandler(logging.Handler):
    """Sends each record to journald as one entry with structured fields.

    Raises ImportError when systemd-python is absent; check ``journal_available()`` first.
    """

    def __init__(self, level: int = logging.NOTSET, identifier: str = SYSLOG_IDENTIFIER) -> None:
        super().__init__(level)
        journal = _load_journal()
        if journal is None:
            raise ImportError("systemd-python (systemd.journal.send) is not available")
        self._journal = journal
        self._identifier = identifier

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The formatted message includes any traceback: one entry, newlines and all.
            message = self.format(record)
            # Looked up on each call rather than bound once, so tests can replace it.
            self._journal.send(
                message,
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
                **self.fields(record),
            )
        except Exception:  # noqa: BLE001 - a log call must never raise; logging reports it
            self.handleError(record)

    def fields(self, record: logging.LogRecord) -> dict[str, str | bytes]:
        """The journal fields of ``record`` besides MESSAGE and CODE_*."""
        fields: dict[str, str | bytes] = {
            "PRIORITY": str(syslog_priority(record.levelno)),
            "SYSLOG_IDENTIFIER": self._identifier,
            "LOGGER": record.name,
        }
        if record.exc_info and record.exc_info[0] is not None:
            fields["EXCEPTION"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        for name, value in vars(record).items():
            if value is not None and _FIELD_NAME.fullmatch(name):
                fields[name] = value if isinstance(value, bytes) else str(value)
        return fields


class PriorityPrefixFormatter(logging.Formatter):
    """Formats a record as ONE line prefixed with ``<N>``, for stderr read by journald.

    journald strips the prefix into PRIORITY= and makes an entry per line, so every line break of
    the formatted record (a traceback, a multi-line message) is replaced by ``NEWLINE_MARK``.
    journald still splits lines longer than its LineMax= (48K by default).
    """

    def format(self, record: logging.LogRecord) -> str:
        text = NEWLINE_MARK.join(super().format(record).splitlines())
        return f"<{syslog_priority(record.levelno)}>{text}"
