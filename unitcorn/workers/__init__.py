"""Worker processes: the contract (`base`) and its implementations (`sync`, `gthread`, `asgi`, `gevent`)."""

from __future__ import annotations

from typing import Any

from unitcorn.settings.values import Settings


def worker_class_for(settings: Settings) -> Any:
    """The worker class for these settings (imported lazily: the master needs only one)."""
    if settings.effective_worker_class == "gevent":
        from unitcorn.workers.gevent import GeventWorker

        return GeventWorker
    if settings.effective_worker_class == "asgi":
        from unitcorn.workers.asgi import AsgiWorker

        return AsgiWorker
    if settings.effective_worker_class == "gthread":
        from unitcorn.workers.gthread import ThreadWorker

        return ThreadWorker
    from unitcorn.workers.sync import SyncWorker

    return SyncWorker
