"""--paste: name a WSGI application by a PasteDeploy ini file, as gunicorn's ``--paste site.ini``.

Building the application from the ini's [app:…], [pipeline:…] and [filter:…] sections is
PasteDeploy's job, so PasteDeploy is an optional extra (``pip install 'unitcorn[paste]'``) and is
imported only when --paste is given. What gunicorn takes from the ini, and so do we: the
application, and the logging sections when there is a [loggers] section (unless a logging
config is given otherwise). Like gunicorn's --paste, the [server:…] sections are not read: the
server is configured by flags and the config file.

Standard library only at import time: settings/ uses this module to check the value.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

INSTALL_HINT = "needs PasteDeploy, which is not installed: pip install 'unitcorn[paste]'"

# `config:` is PasteDeploy's URI scheme for an ini file; gunicorn's own form is the bare path.
# After the launch directory is joined to a relative value, the scheme sits after a slash.
_CONFIG_SCHEME = re.compile(r"(?:^|(?<=/))config:")
# --paste-global KEY=VALUE splits at the first `=` that is not written `\=` (gunicorn's rule).
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def normalise_target(value: str) -> str:
    """``site.ini``, ``config:site.ini#admin`` … as gunicorn's app_uri: ``/abs/site.ini#admin``.

    A relative value has already been joined to the launch directory by the settings loader;
    with the scheme that gives ``/launch/config:site.ini``, hence the scheme is looked for
    after the last path separator before it, not only at the start.
    """
    match = _CONFIG_SCHEME.search(value)
    if match:
        before, after = value[: match.start()], value[match.end():]
        value = after if os.path.isabs(after) else before + after
    path, sep, name = value.partition("#")
    return os.path.abspath(path) + (sep + name if name else "")


def split_target(target: str) -> tuple[str, str | None]:
    """``/abs/site.ini#admin`` → (``/abs/site.ini``, ``admin``); no name means PasteDeploy's main."""
    path, _, name = target.partition("#")
    return path, name or None


def is_installed() -> bool:
    try:
        return importlib.util.find_spec("paste.deploy") is not None
    except ModuleNotFoundError:  # no `paste` package at all
        return False


def has_logging_config(path: str) -> bool:
    """Whether the ini configures logging (gunicorn's test: a [loggers] section)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return False  # PasteDeploy will say what is wrong with it, when it loads the app
    return parser.has_section("loggers")


def split_global_conf(pair: str) -> tuple[str, str] | None:
    """One --paste-global ``KEY=VALUE`` (``\\=`` is a literal `=`), or None if it has no `=`."""
    parts = _UNESCAPED_EQUALS.split(pair, maxsplit=1)
    if len(parts) != 2:
        return None
    key, value = parts
    return key.replace("\\=", "="), value.replace("\\=", "=")


def global_conf(pairs: Iterable[str]) -> dict[str, str]:
    """--paste-global's pairs as PasteDeploy's global_conf; a later KEY wins."""
    conf: dict[str, str] = {}
    for pair in pairs:
        split = split_global_conf(pair)
        if split is not None:
            conf[split[0]] = split[1]
    return conf


def load_paste_app(target: str, global_pairs: Iterable[str]) -> Callable[..., Any]:
    """Build the application (the ini's main app, or the one named after `#`); raises what
    PasteDeploy raises (LookupError for a missing section, ImportError for a bad `use`…)."""
    from paste.deploy import loadapp

    path, name = split_target(target)
    app: Callable[..., Any] = loadapp(
        f"config:{path}", name=name, relative_to=os.path.dirname(path),
        global_conf=global_conf(global_pairs),
    )
    return app
