"""WSGI apps for the hostile-input process tests."""

from __future__ import annotations


def peer(environ, start_response):
    """Answers with "REMOTE_ADDR REMOTE_PORT wsgi.url_scheme" as the server set them."""
    body = " ".join(
        (environ.get("REMOTE_ADDR", "-"), environ.get("REMOTE_PORT", "-"), environ["wsgi.url_scheme"])
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
