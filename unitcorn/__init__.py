"""unitcorn: a pre-fork WSGI HTTP server that honours the whole systemd service contract."""

__version__ = "0.1.0"
