"""Format one access-log line from gunicorn's access_log_format atoms.

A format is compiled once into the list of atoms it uses, so a request only computes those.
"""

import base64
import binascii
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

_ATOM_NAME = re.compile(r"(?<!%)%\(([^)]*)\)")

# (environ, status, response_headers, response_length, duration_s, pid) -> value
Getter = Callable[[dict, str, list, int, float, int], Any]


def format_access(
    fmt: str,
    environ: dict,
    status: str,
    response_headers: list,
    response_length: int,
    duration_s: float,
    pid: int,
) -> str:
    """Return the access-log line for one response, as gunicorn's `access_log_format` would."""
    values = {}
    for name, getter in _compile(fmt):
        value = getter(environ, status, response_headers, response_length, duration_s, pid)
        # Like gunicorn: a quote in a value must not end the quoted field it is logged in.
        values[name] = value.replace('"', '\\"') if type(value) is str else value
    return fmt % values


@lru_cache(maxsize=64)
def _compile(fmt: str) -> tuple[tuple[str, Getter], ...]:
    return tuple((name, _getter(name)) for name in dict.fromkeys(_ATOM_NAME.findall(fmt)))


def _getter(name: str) -> Getter:
    simple = _ATOMS.get(name)
    if simple is not None:
        return simple
    if name.startswith("{") and len(name) > 3 and name[-2] == "}":
        key, kind = name[1:-2], name[-1]
        if kind == "i":
            return _request_header(key)
        if kind == "o":
            return _response_header(key)
        if kind == "e":
            return _environ_variable(key)
    return lambda *_: "-"


def _request_header(name: str) -> Getter:
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    return lambda environ, *_: environ.get(key, "-")


def _response_header(name: str) -> Getter:
    lower = name.lower()

    def get(environ: dict, status: str, headers: list, *_: Any) -> Any:
        found = "-"
        for header, value in headers:
            if header.lower() == lower:
                found = value  # the last one, as gunicorn's dict would keep
        return found

    return get


def _environ_variable(name: str) -> Getter:
    lower = name.lower()

    def get(environ: dict, *_: Any) -> Any:
        if name in environ:
            return environ[name]
        for key, value in environ.items():  # gunicorn matches case-insensitively
            if key.lower() == lower:
                return value
        return "-"

    return get


def _user(environ: dict, *_: Any) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "-"
    return user.partition(":")[0] or "-"


_now_second = -1
_now_text = ""


def _now(*_: Any) -> str:
    """Apache common-log time, formatted at most once per second."""
    global _now_second, _now_text
    now = int(time.time())
    if now != _now_second:
        _now_text = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now))
        _now_second = now
    return _now_text


_ATOMS: dict[str, Getter] = {
    "h": lambda e, *_: e.get("REMOTE_ADDR") or "-",
    "l": lambda *_: "-",
    "u": _user,
    "t": _now,
    "r": lambda e, *_: f"{e['REQUEST_METHOD']} {e.get('RAW_URI', '')} {e['SERVER_PROTOCOL']}",
    "s": lambda e, status, *_: status.split(None, 1)[0] if status else "-",
    "m": lambda e, *_: e.get("REQUEST_METHOD", "-"),
    "U": lambda e, *_: e.get("PATH_INFO", "-"),
    "q": lambda e, *_: e.get("QUERY_STRING", "-"),
    "H": lambda e, *_: e.get("SERVER_PROTOCOL", "-"),
    "b": lambda e, s, h, length, *_: "-" if length is None else str(length),
    "B": lambda e, s, h, length, *_: length,
    "f": lambda e, *_: e.get("HTTP_REFERER", "-"),
    "a": lambda e, *_: e.get("HTTP_USER_AGENT", "-"),
    "T": lambda e, s, h, n, duration, pid: int(duration),
    "D": lambda e, s, h, n, duration, pid: int(duration * 1_000_000),
    "M": lambda e, s, h, n, duration, pid: int(duration * 1_000),
    "L": lambda e, s, h, n, duration, pid: f"{duration:.6f}",
    "p": lambda e, s, h, n, duration, pid: f"<{pid}>",
}
