"""Converters: turn a raw setting value (argv text or a config-file Python object) into its type.

Every converter takes one value and returns the converted value, or raises ValueError (TypeError
for a value of the wrong type, e.g. from a config file) whose message completes the sentence
"<setting> = <value> (from <source>): ..." — so messages start lower-case and never repeat the
setting name or the value.
"""

from __future__ import annotations

import grp
import importlib.util
import ipaddress
import os
import pwd
import re
from collections.abc import Callable, Iterable
from typing import Any

from unitcorn import pastedeploy
from unitcorn.binds import Bind, parse_bind
from unitcorn.statsd import parse_address as parse_statsd_address
from unitcorn.syslog import FACILITIES as SYSLOG_FACILITIES
from unitcorn.syslog import parse_address as parse_syslog_address

Converter = Callable[[object], object]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def to_bool(value: object) -> bool:
    # Real gunicorn.conf.py files say `reload = os.environ.get(..., "false")`, so text counts.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


def _to_int(value: object) -> int:
    # bool is an int subclass, but `workers = True` is a mistake, not 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError("must be a whole number")


def to_int(minimum: int | None = None, maximum: int | None = None) -> Converter:
    """Make a converter to int with an inclusive range check."""

    def convert(value: object) -> int:
        number = _to_int(value)
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}")
        return number

    return convert


def to_text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError("must not be empty")
    return value


def to_optional_text(value: object) -> str | None:
    return None if value is None else to_text(value)


def to_optional_file_name(value: object) -> str | None:
    """A file name, or None; '' is unset too (gunicorn's TLS files: `keyfile = ''` is off)."""
    return None if value is None or value == "" else to_text(value)


def to_any_text(value: object) -> str:
    """A string that may be empty (e.g. root_path, access_log_format)."""
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    return value


def to_statsd_address(value: object) -> tuple[str, int] | str | None:
    """None, or gunicorn's form of HOST[:PORT] / unix://PATH: (host, port) or the path."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:  # gunicorn's own (host, port) form
        return (str(value[0]), int(value[1]))
    return parse_statsd_address(to_text(value))


def show_statsd_address(value: object) -> str:
    """As the operator writes it (--print-config output loads back)."""
    if isinstance(value, tuple):
        host, port = value
        return repr(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return repr(f"unix://{value}") if isinstance(value, str) else repr(value)


def to_syslog_address(value: object) -> str:
    """unix://PATH[#dgram|#stream], udp://HOST[:PORT] or tcp://HOST[:PORT], checked, kept as text."""
    text = to_text(value)
    parse_syslog_address(text)
    return text


def to_syslog_facility(value: object) -> str:
    """A syslog facility name (user, daemon, local0…), as gunicorn accepts them."""
    name = to_text(value).lower()
    if name not in SYSLOG_FACILITIES:
        raise ValueError(f"unknown facility; one of {', '.join(sorted(SYSLOG_FACILITIES))}")
    return name


def to_dict(value: object) -> dict[str, Any]:
    """A dictionary (logconfig_dict): None and {} both mean "not set"."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"must be a dict, not {type(value).__name__}")
    return value


def _to_text_list(value: object, what: str) -> list[str]:
    # gunicorn lets a config file give a single string where a list is expected.
    items: Iterable[object] = [value] if isinstance(value, str) else _iterable(value, what)
    return [to_text(item) for item in items]


def _iterable(value: object, what: str) -> Iterable[object]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    raise ValueError(f"must be {what} or a list of them, not {type(value).__name__}")


def to_binds(value: object) -> list[Bind]:
    texts = _to_text_list(value, "an address")
    if not texts:
        raise ValueError("needs at least one address")
    binds = []
    for text in texts:
        try:
            binds.append(parse_bind(text))
        except ValueError as exc:
            # With several addresses, say which one is wrong.
            raise ValueError(f"{text!r}: {exc}" if len(texts) > 1 else str(exc)) from None
    return binds


def port_to_bind(port: str) -> list[str]:
    """Heroku-style $PORT: listen on every IPv4 address, as gunicorn does."""
    return [f"0.0.0.0:{port}"]


# Our worker classes, and the spellings a gunicorn user may already have in their config.
WORKER_CLASSES: dict[str, tuple[str, ...]] = {
    "sync": ("egg:gunicorn#sync", "egg:unitcorn#sync", "gunicorn.workers.sync.SyncWorker"),
    "gthread": (
        "egg:gunicorn#gthread",
        "egg:unitcorn#gthread",
        "gunicorn.workers.gthread.ThreadWorker",
    ),
    # The ASGI servers' gunicorn workers, and gunicorn 27's own: all served by unitcorn's asgi
    # worker (the start-up line "Using worker: asgi" says so).
    "asgi": (
        "egg:gunicorn#asgi",
        "egg:unitcorn#asgi",
        "gunicorn.workers.gasgi.ASGIWorker",
        "uvicorn.workers.UvicornWorker",
        "uvicorn.workers.UvicornH11Worker",
        "uvicorn_worker.UvicornWorker",
        "uvicorn_worker.UvicornH11Worker",
    ),
    "gevent": (
        "egg:gunicorn#gevent",
        "egg:unitcorn#gevent",
        "gunicorn.workers.ggevent.GeventWorker",
        "gevent_wsgi",
        "gevent_pywsgi",
        "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    ),
}
# gunicorn 26 removed its eventlet worker (eventlet is unmaintained); say so, not "unknown".
_REMOVED_WORKERS = ("eventlet", "egg:gunicorn#eventlet", "gunicorn.workers.geventlet.EventletWorker")
_WORKER_ALIASES = {alias: name for name, aliases in WORKER_CLASSES.items() for alias in aliases}


def to_worker_class(value: object) -> str:
    text = to_text(value).strip()
    if text in WORKER_CLASSES:
        return text
    if text in _WORKER_ALIASES:
        return _WORKER_ALIASES[text]
    if text in _REMOVED_WORKERS:
        raise ValueError("the eventlet worker is gone (gunicorn 26 removed it; eventlet is "
                         "unmaintained): use gevent, gthread or asgi")
    choices = ", ".join(WORKER_CLASSES)
    raise ValueError(f"must be one of {choices} (or gunicorn's name for one of them)")


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def to_loglevel(value: object) -> str:
    level = to_text(value).strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def to_uid(value: object) -> int | None:
    """A user name or uid; None keeps the current user."""
    return _to_id(value, "user", lambda name: pwd.getpwnam(name).pw_uid)


def to_gid(value: object) -> int | None:
    """A group name or gid; None keeps the current group."""
    return _to_id(value, "group", lambda name: grp.getgrnam(name).gr_gid)


def _to_id(value: object, what: str, lookup: Callable[[str], int]) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        name = to_text(value).strip()
        if not (name.isascii() and name.isdigit()):
            try:
                return lookup(name)
            except KeyError:
                raise ValueError(f"no such {what}") from None
        number = int(name)
    if number < 0:
        raise ValueError(f"a {what} id must be at least 0")
    return number


def to_umask(value: object) -> int:
    # gunicorn reads "022" as octal (a leading 0 means octal, as in a shell's umask), and
    # "0o22", "0x12" and plain decimal "18" as Python does.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"0[0-7]+", text):
            text = "0o" + text[1:]
        try:
            number = int(text, 0)
        except ValueError:
            raise ValueError("must be a number such as 0o22, 022 or 18") from None
    else:
        raise TypeError("must be a number such as 0o22, 022 or 18")
    if not 0 <= number <= 0o777:
        raise ValueError("must be between 0 and 0o777")
    return number


def to_sendfile(value: object) -> bool:
    """gunicorn's sendfile: None (its default) means use it."""
    return True if value is None else to_bool(value)


def to_control_socket_mode(value: object) -> int:
    """An octal file mode for the control socket: owner and group only (ctl can stop the server)."""
    mode = to_umask(value)
    if mode & 0o007:
        raise ValueError("must not give other users access (ctl can stop and upgrade the server)")
    return mode


def show_octal(value: object) -> str:
    return oct(value) if isinstance(value, int) else repr(value)


_ENV_NAME = re.compile(r"[^=\0]+")


def to_raw_env(value: object) -> list[str]:
    pairs = _to_text_list(value, "a KEY=VALUE string")
    for pair in pairs:
        key, sep, _ = pair.partition("=")
        if not sep or not _ENV_NAME.fullmatch(key) or "\0" in pair:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
    return pairs


def to_ip_set(value: object) -> frozenset[str]:
    """Comma-separated addresses or networks, or "*" for any."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
    else:
        items = [to_text(item).strip() for item in _iterable(value, "an address")]
    for item in items:
        if item == "*":
            continue
        try:
            # strict, as in gunicorn: 10.0.0.1/8 is a mistake for 10.0.0.0/8.
            ipaddress.ip_network(item)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address, a network or '*'") from None
    return frozenset(items)


def to_header_dict(value: object) -> dict[str, str]:
    """gunicorn's secure_scheme_headers: {"UPPER-CASE-NAME": "exact value", ...}."""
    if not isinstance(value, dict):
        raise TypeError(f"must be a dict of header names to values, not {type(value).__name__}")
    for name, expected in value.items():
        if not isinstance(name, str) or not isinstance(expected, str):
            raise ValueError(f"{name!r}: {expected!r}: names and values must be strings")
    return dict(value)


def to_name_list(value: object) -> list[str]:
    """Comma-separated names (or a list of them in a config file); empty items are skipped."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [to_text(item).strip() for item in _iterable(value, "a name")]


# gunicorn's spellings for proxy_protocol; True (and a bare --proxy-protocol) mean auto.
_PROXY_PROTOCOL = {
    "false": "off", "off": "off", "0": "off", "none": "off",
    "true": "auto", "auto": "auto", "1": "auto", "v1": "v1", "v2": "v2",
}


def to_proxy_protocol(value: object) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "auto" if value else "off"
    if not isinstance(value, str):
        raise TypeError(f"must be off, v1, v2 or auto, not {type(value).__name__}")
    mode = _PROXY_PROTOCOL.get(value.strip().lower())
    if mode is None:
        raise ValueError("must be off, v1, v2 or auto")
    return mode


HEADER_MAPS = ("drop", "refuse", "dangerous")


def to_header_map(value: object) -> str:
    policy = to_text(value).strip().lower()
    if policy not in HEADER_MAPS:
        raise ValueError(f"must be one of {', '.join(HEADER_MAPS)}")
    return policy


def to_root_path(value: object) -> str:
    path = to_any_text(value).strip()
    if path and not path.startswith("/"):
        raise ValueError("must be empty or start with '/'")
    # SCRIPT_NAME never ends in "/": the request path carries that slash.
    return path.rstrip("/")


def to_path_list(value: object) -> list[str]:
    """gunicorn's --pythonpath: comma-separated directories (or a list in a config file)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [to_text(item) for item in _iterable(value, "a directory")]


def to_file_list(value: object) -> list[str]:
    """A list of files (a repeated flag, or a list in a config file; one name per item)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [to_text(item) for item in _iterable(value, "a file")]


RELOAD_ENGINES = ("auto", "poll", "inotify")


def to_reload_engine(value: object) -> str:
    engine = to_text(value).strip().lower()
    if engine not in RELOAD_ENGINES:
        raise ValueError(f"must be one of {', '.join(RELOAD_ENGINES)}")
    if engine == "inotify" and importlib.util.find_spec("watchfiles") is None:
        raise ValueError("needs watchfiles, which is not installed: pip install 'unitcorn[reload]'")
    return engine


def to_paste_target(value: object) -> str | None:
    """--paste: an ini file that can be read now, as ``/abs/site.ini#name`` (see pastedeploy)."""
    if value is None:
        return None
    target = pastedeploy.normalise_target(to_text(value))
    path, _ = pastedeploy.split_target(target)
    if not os.path.isfile(path):
        raise ValueError("no such file")
    if not os.access(path, os.R_OK):
        raise ValueError("not readable")
    if not pastedeploy.is_installed():
        raise ValueError(pastedeploy.INSTALL_HINT)
    return target


def to_paste_global_conf(value: object) -> list[str]:
    pairs = _to_text_list(value, "a KEY=VALUE string")
    for pair in pairs:
        if pastedeploy.split_global_conf(pair) is None:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
    return pairs


def to_directory(value: object) -> str:
    # The loader has already joined a relative path to the launch directory.
    path = os.path.normpath(to_text(value))
    if not os.path.isdir(path):
        raise ValueError("no such directory")
    return path


def to_optional_readable_file(value: object) -> str | None:
    """None, or a file that can be read now (a logging config): a reload naming a missing
    one fails as a whole, before anything changes."""
    if value is None:
        return None
    path = os.path.normpath(to_text(value))
    if not os.path.isfile(path):
        raise ValueError("no such file")
    if not os.access(path, os.R_OK):
        raise ValueError("not readable")
    return path


def runtime_directory_to_control_socket(runtime_directory: str) -> str:
    """systemd's RuntimeDirectory= may list several directories; the first one is ours."""
    return runtime_directory.split(":")[0].rstrip("/") + "/control.sock"
