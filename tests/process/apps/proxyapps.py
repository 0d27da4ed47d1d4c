"""App for the proxy process tests: what the server believed about the client."""

from __future__ import annotations

import json

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "PROXY_PROTOCOL", "PROXY_ADDR", "PROXY_PORT", "wsgi.url_scheme",
        "SCRIPT_NAME", "PATH_INFO")


def peer(environ, start_response):
    """Answers with the environ keys a front-end can influence, as JSON."""
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
