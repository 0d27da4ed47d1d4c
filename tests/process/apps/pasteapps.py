"""A PasteDeploy application factory and filter factory, named by tests' ini files (`call:`)."""

from __future__ import annotations

import logging


def make_app(global_conf, message="", **local_conf):
    """paste.app_factory: answer `message`, the --paste-global FOO, and the ini's directory."""
    log = logging.getLogger("pasteapps")

    def app(environ, start_response):
        log.warning("pasteapps served message=%s", message)
        body = f"{message} foo={global_conf.get('FOO', '-')} here={global_conf['here']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def make_tag_filter(global_conf, tag="filtered", **local_conf):
    """paste.filter_factory: prefix every answer with [tag], so the pipeline shows in the body."""

    def wrap(app):
        def tagged(environ, start_response):
            body = b"".join(app(environ, _with_length_of(start_response, tag)))
            return [f"[{tag}] ".encode() + body]

        return tagged

    return wrap


def _with_length_of(start_response, tag):
    extra = len(tag) + 3  # "[", "]" and a space

    def start(status, headers, exc_info=None):
        headers = [(name, str(int(value) + extra) if name.lower() == "content-length" else value)
                   for name, value in headers]
        return start_response(status, headers, exc_info)

    return start
