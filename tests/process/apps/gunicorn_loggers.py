"""Logger classes in the style of real deployments' --logger-class (gunicorn.glogging.Logger subclasses)."""

from __future__ import annotations

from gunicorn.glogging import Logger


class SkipHealthChecks(Logger):
    """The most common override: no access line for the load balancer's health checks."""

    def access(self, resp, req, environ, request_time):
        if req.path in ("/health", "/healthz"):
            return
        super().access(resp, req, environ, request_time)


class TaggedAccess(Logger):
    """Adds its own atom, as deployments do for request ids or durations."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["tag"] = f"{req.method}:{resp.status_code}:{req.remote_addr[0]}"
        return atoms
