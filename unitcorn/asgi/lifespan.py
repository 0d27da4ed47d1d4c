"""ASGI lifespan: the app's startup before the worker reports booted, its shutdown as it retires.

`asgi_lifespan` (gunicorn's setting; uvicorn's --lifespan): in `auto` an app that raises or
returns before it answers the startup event does not speak the lifespan protocol (plain ASGI
apps often assert the scope type) and is served anyway; in `on` that fails the worker's boot;
`off` never runs it. An app that answers `lifespan.startup.failed` fails the boot (exit 3), as
gunicorn's post_worker_init failing does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from unitcorn.logs import ERROR_LOGGER

log = logging.getLogger(ERROR_LOGGER)

SHUTDOWN_TIMEOUT = 30.0  # the master's graceful timeout bounds it anyway


class LifespanFailed(Exception):
    """The app answered lifespan.startup.failed."""


class Lifespan:
    def __init__(self, app: Any, mode: str = "auto") -> None:
        self._app = app
        self._mode = mode
        self.state: dict[str, Any] = {}  # copied into every request's scope["state"]
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.is_supported = False

    async def startup(self) -> None:
        if self._mode == "off":
            return
        self._task = asyncio.ensure_future(self._run())
        await self._events.put({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer is None:
            if self._mode == "on":
                raise LifespanFailed("lifespan startup failed: the app does not support the "
                                     "lifespan protocol (asgi_lifespan = on)")
            log.info("ASGI lifespan not supported by the app; serving without it")
            return
        if answer["type"] == "lifespan.startup.failed":
            raise LifespanFailed(f"lifespan startup failed: {answer.get('message', '')}")
        self.is_supported = True

    async def shutdown(self) -> None:
        if not self.is_supported:
            return
        await self._events.put({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(self._answer(), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.warning("ASGI lifespan shutdown did not complete within %g s", SHUTDOWN_TIMEOUT)
            return
        if answer is not None and answer["type"] == "lifespan.shutdown.failed":
            log.error("ASGI lifespan shutdown failed: %s", answer.get("message", ""))

    async def _answer(self) -> dict[str, Any] | None:
        """The app's next lifespan message, or None if the app returned or raised first."""
        assert self._task is not None
        getting = asyncio.ensure_future(self._answers.get())
        await asyncio.wait({getting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getting.done():
            return getting.result()
        getting.cancel()
        return None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self._app(scope, self._events.get, self._answers.put)
        except Exception:
            if self.is_supported:  # it spoke the protocol, then broke
                log.exception("ASGI lifespan task failed")
