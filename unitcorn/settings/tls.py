"""The server's SSLContext, built from the TLS settings as gunicorn builds it, checked at load.

TLS is on when certfile (or keyfile) is set, as in gunicorn. The context is built once per
Settings, in the process that loads them: the master (or --check-config), before any worker is
forked. So a missing certificate, a key that does not match it, a bad cipher string or an
ssl_context hook that fails is a ConfigError at start, from --check-config and from a reload
(which then keeps the old generation serving); and workers inherit the loaded key through fork,
so it may be readable by root only even when workers run as another user.
"""

from __future__ import annotations

import os
import ssl
import weakref
from typing import NoReturn

from unitcorn.settings.errors import ConfigError
from unitcorn.settings.values import Settings

# Settings that only mean something with TLS on; each set without certfile gets a warning.
TLS_ONLY = {"cert_reqs": 0, "ca_certs": None, "ciphers": None}

_contexts: weakref.WeakKeyDictionary[Settings, ssl.SSLContext] = weakref.WeakKeyDictionary()


def is_tls(settings: Settings) -> bool:
    return bool(settings.certfile or settings.keyfile)


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The SSLContext for these settings (None when TLS is off); built once, then shared."""
    if not is_tls(settings):
        return None
    context = _contexts.get(settings)
    if context is None:
        context = _contexts[settings] = _build(settings)
    return context


def check_tls(settings: Settings) -> None:
    """Raise ConfigError if the TLS settings cannot make a context; warn about TLS settings
    given while TLS is off (gunicorn ignores them without a word)."""
    if server_context(settings) is not None:
        return
    for name, default in TLS_ONLY.items():
        value = getattr(settings, name)
        if value != default:
            settings.warnings.append(
                f"{name} = {value} (from {settings.origin(name)}): ignored: TLS is off "
                "(set certfile and keyfile to turn it on)"
            )


def _build(settings: Settings) -> ssl.SSLContext:
    base = str(settings.chdir)  # relative paths: from chdir, where gunicorn opens them too
    certfile = _readable(settings, "certfile", base)
    keyfile = _readable(settings, "keyfile", base)
    cafile = _readable(settings, "ca_certs", base)
    if certfile is None:
        _fail(settings, "keyfile", "a keyfile needs a certfile (the certificate it belongs to)")
    try:  # the certificate alone first, so that a bad one is not blamed on the key
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(certfile)
    except ssl.SSLError:
        _fail(settings, "certfile", "not a PEM certificate")

    def default_ssl_context_factory() -> ssl.SSLContext:
        # gunicorn's recipe: a server context with Python's defaults (TLS 1.2 at least, its
        # strong ciphers), the chain and key, client certificates as cert_reqs says.
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cafile)
        except ssl.SSLError as exc:
            _fail(settings, "ca_certs", f"cannot load CA certificates: {_reason(exc)}")
        try:
            context.load_cert_chain(certfile, keyfile, password=_no_passphrase)
        except _EncryptedKey:
            _fail(settings, "keyfile" if keyfile else "certfile",
                  "the private key is encrypted; unitcorn cannot ask for its passphrase "
                  "(decrypt it, or load it in an ssl_context hook)")
        except ssl.SSLError as exc:
            name = "keyfile" if keyfile else "certfile"
            if "PEM lib" in str(exc):  # the certificate itself loaded: the key did not
                problem = "not a PEM private key" if keyfile else "no PEM private key in it " \
                    "(set keyfile)"
            else:
                problem = f"cannot load the certificate and its key: {_reason(exc)}"
            _fail(settings, name, problem)
        context.verify_mode = ssl.VerifyMode(settings.cert_reqs)
        if settings.ciphers:
            try:
                context.set_ciphers(settings.ciphers)
            except ssl.SSLError as exc:
                _fail(settings, "ciphers", _reason(exc))
        return context

    try:
        context = settings.ssl_context(settings, default_ssl_context_factory)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the operator's hook may fail in any way
        _fail(settings, "ssl_context", f"raised {type(exc).__name__}: {exc}")
    if not isinstance(context, ssl.SSLContext):
        _fail(settings, "ssl_context", f"returned {type(context).__name__}, not an ssl.SSLContext")
    return context


def _readable(settings: Settings, name: str, base: str) -> str | None:
    value = getattr(settings, name)
    if not value:
        return None
    path = os.path.join(base, value)
    if not os.path.isfile(path):
        _fail(settings, name, "no such file")
    if not os.access(path, os.R_OK):
        _fail(settings, name, "not readable")
    return path


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    # Without a password callback OpenSSL would prompt on the terminal, and a service would hang.
    raise _EncryptedKey()


def _reason(exc: ssl.SSLError) -> str:
    # OpenSSL's reason code ("KEY_VALUES_MISMATCH") when it gave one, read as words.
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    return str(exc.args[-1] if exc.args else exc).rstrip(".").lower()


def _fail(settings: Settings, name: str, message: str) -> NoReturn:
    raise ConfigError(name, getattr(settings, name), settings.origin(name), message)
