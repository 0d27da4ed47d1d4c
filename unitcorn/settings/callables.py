"""Check that a server hook from a config file can be called with gunicorn's arguments."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable


def no_op(*_args: object) -> None:
    """The default for every hook: does nothing."""


def default_ssl_context(config: object, default_ssl_context_factory: Callable[[], object]) -> object:
    """gunicorn's default ssl_context hook: the context the TLS settings describe, unchanged."""
    return default_ssl_context_factory()


def to_hook(params: tuple[str, ...]) -> Callable[[object], Callable[..., object]]:
    """Make a converter accepting a callable (or "module.name" text) that takes ``params``."""

    def convert(value: object) -> Callable[..., object]:
        hook = _import(value) if isinstance(value, str) else value
        if not callable(hook):
            raise TypeError(f"must be a function taking ({', '.join(params)})")
        _check_arity(hook, params)
        return hook

    return convert


def _import(dotted: str) -> object:
    # gunicorn accepts "package.module.function"; "package.module:function" is accepted too.
    module_name, sep, attribute = dotted.replace(":", ".").rpartition(".")
    if not sep or not module_name or not attribute:
        raise ValueError("must be a function or 'module.function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the operator's module may fail in any way
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None


def _check_arity(hook: Callable[..., object], params: tuple[str, ...]) -> None:
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return  # some builtins have no signature; they get the benefit of the doubt
    try:
        # Binding placeholders proves the call the server will make succeeds, while still
        # allowing extra parameters with defaults and *args (which gunicorn's count rejects).
        signature.bind(*params)
    except TypeError:
        count = len(params)
        plural = "" if count == 1 else "s"
        raise ValueError(
            f"must accept {count} positional argument{plural} ({', '.join(params)}), "
            f"but its signature is {signature}"
        ) from None
