"""Find and execute the Python config file (or python:module); return its module-level names."""

from __future__ import annotations

import builtins
import importlib.util
import os
import sys
import traceback
from types import TracebackType

# Looked for in the launch directory when no -c is given; ours first, then gunicorn's, so a
# gunicorn deployment works unchanged.
DEFAULT_CONFIG_FILES = ("unitcorn.conf.py", "gunicorn.conf.py")
MODULE_PREFIX = "python:"
FILE_PREFIX = "file:"


def find_default_config(cwd: str) -> str | None:
    for name in DEFAULT_CONFIG_FILES:
        path = os.path.join(cwd, name)
        if os.path.isfile(path):
            return path
    return None


def read_config(location: str, cwd: str) -> tuple[str, dict[str, object]]:
    """Execute PATH, file:PATH or python:MODULE in a fresh namespace.

    Returns (label, names): the label is what errors and origins call this source (an absolute
    path, or "python:MODULE"). Raises ValueError saying why the config could not be read.
    Every call executes the code again, so a reload sees the file as it is now.
    """
    if location.startswith(MODULE_PREFIX):
        name = location[len(MODULE_PREFIX):]
        return location, _run_module(name, cwd)
    path = os.path.normpath(os.path.join(cwd, location.removeprefix(FILE_PREFIX)))
    return path, _run_file(path)


def _run_file(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as file:
            source = file.read()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror}") from None
    namespace: dict[str, object] = {
        "__file__": path,
        "__name__": "__config__",
        "__builtins__": builtins,
    }
    try:
        # Executing the operator's own file is the point: gunicorn's config format is Python.
        exec(compile(source, path, "exec"), namespace)  # noqa: S102
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - report any failure of their code
        raise ValueError(_describe_failure(exc, path)) from None
    return namespace


def _run_module(name: str, cwd: str) -> dict[str, object]:
    if not name:
        raise ValueError("python: needs a module name")
    # The console script's sys.path[0] is its bin directory, not where the operator started
    # us, so look in the launch directory too — but only while finding and running the module.
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return _exec_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _exec_module(name: str) -> dict[str, object]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"cannot import it: {exc}") from None
    if spec is None or spec.loader is None:
        raise ValueError("no such module")
    # A fresh module object, not the one in sys.modules, so a reload re-reads the source.
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - report any failure of their code
        raise ValueError(_describe_failure(exc, spec.origin or name)) from None
    return vars(module)


def _describe_failure(exc: BaseException, path: str) -> str:
    line = exc.lineno if isinstance(exc, SyntaxError) else _failing_line(exc.__traceback__, path)
    where = f" at line {line}" if line else ""
    return f"raised {type(exc).__name__}{where}: {exc}"


def _failing_line(tb: TracebackType | None, path: str) -> int | None:
    # The innermost frame in the config file itself, not in whatever it called.
    lines = [frame.lineno for frame in traceback.extract_tb(tb) if frame.filename == path]
    return lines[-1] if lines else None
