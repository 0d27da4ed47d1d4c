"""Load the WSGI application: import ``MODULE:CALLABLE``, or build it from a PasteDeploy ini."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from unitcorn import pastedeploy
from unitcorn.settings.values import Settings


class AppLoadError(Exception):
    """The application could not be imported or is not a WSGI callable (exit code 4)."""


def load_configured_app(settings: Settings) -> Callable[..., Any]:
    """The application the settings name: --paste's ini if given, else MODULE:CALLABLE."""
    if not settings.paste:
        return load_app(settings.app_uri, settings.pythonpath, settings.chdir)
    add_search_paths(settings.pythonpath, settings.chdir)  # the ini's `use = egg:`/`call:` code
    try:
        app = pastedeploy.load_paste_app(settings.paste, settings.raw_paste_global_conf)
    except Exception as exc:
        detail = "".join(traceback.format_exception(exc)).rstrip()
        raise AppLoadError(f"paste {settings.paste!r}: cannot load the application:\n{detail}") from exc
    if not callable(app):
        raise AppLoadError(f"paste {settings.paste!r}: the ini made {type(app).__name__}, not a callable")
    return app


def load_app(
    uri: str | None, pythonpath: str | list[str] | None = None, chdir: str | None = None
) -> Callable[..., Any]:
    """Import ``module:attribute`` (the attribute may be a dotted path or a factory call ``create()``).

    The working directory comes first on ``sys.path``, as gunicorn does, so ``unitcorn app:app``
    finds ``./app.py`` without extra flags.
    """
    add_search_paths(pythonpath, chdir)
    if not uri:
        raise AppLoadError("no application given: expected MODULE:CALLABLE")
    module_name, _, attribute = uri.partition(":")
    if not module_name:
        raise AppLoadError(f"app {uri!r}: expected MODULE:CALLABLE")
    attribute = attribute or "application"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        # Keep the whole traceback: "failed to import" alone does not help an operator at 3 a.m.
        detail = "".join(traceback.format_exception(exc)).rstrip()
        raise AppLoadError(f"app {uri!r}: cannot import {module_name!r}:\n{detail}") from exc
    app = _resolve(module, attribute, uri)
    if not callable(app):
        raise AppLoadError(f"app {uri!r}: {attribute!r} is not callable")
    return app


def add_search_paths(pythonpath: str | list[str] | None, chdir: str | None) -> None:
    for path in reversed(search_paths(pythonpath, chdir)):
        if path not in sys.path:
            sys.path.insert(0, path)


def search_paths(pythonpath: str | list[str] | None, chdir: str | None) -> list[str]:
    if isinstance(pythonpath, str):
        pythonpath = pythonpath.split(",")
    paths = [p for p in pythonpath or [] if p]
    if chdir:
        paths.append(chdir)
    return paths


def _resolve(module: Any, attribute: str, uri: str) -> Any:
    """Follow ``a.b`` or call ``factory(args)`` with literal arguments only (never eval)."""
    try:
        expression = ast.parse(attribute, mode="eval").body
    except SyntaxError as exc:
        raise AppLoadError(f"app {uri!r}: {attribute!r} is not a valid attribute name") from exc
    call_args: list[Any] = []
    call_kwargs: dict[str, Any] = {}
    is_call = isinstance(expression, ast.Call)
    if isinstance(expression, ast.Call):
        try:
            call_args = [ast.literal_eval(a) for a in expression.args]
            call_kwargs = {k.arg: ast.literal_eval(k.value) for k in expression.keywords if k.arg}
        except ValueError as exc:
            raise AppLoadError(f"app {uri!r}: factory arguments must be literals") from exc
        expression = expression.func
    names: list[str] = []
    while isinstance(expression, ast.Attribute):
        names.insert(0, expression.attr)
        expression = expression.value
    if not isinstance(expression, ast.Name):
        raise AppLoadError(f"app {uri!r}: {attribute!r} is not an attribute path")
    names.insert(0, expression.id)
    target: Any = module
    for name in names:
        try:
            target = getattr(target, name)
        except AttributeError as exc:
            raise AppLoadError(f"app {uri!r}: no attribute {name!r} in {module.__name__}") from exc
    if is_call:
        try:
            target = target(*call_args, **call_kwargs)
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc)).rstrip()
            raise AppLoadError(f"app {uri!r}: factory raised:\n{detail}") from exc
    return target


def purge_app_modules(pythonpath: str | list[str] | None, chdir: str | None) -> None:
    """Forget modules loaded from the application's own directories, so a reload imports fresh code.

    Only the operator's code is dropped: modules from site-packages (and C extensions, which
    cannot be imported twice) stay, which is also what makes a preload reload fast.
    """
    roots = tuple(os.path.abspath(p) + os.sep for p in search_paths(pythonpath, chdir))
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if not path.startswith(roots) or "-packages" + os.sep in path:
            continue
        if name == "unitcorn" or name.startswith("unitcorn."):
            continue
        del sys.modules[name]
