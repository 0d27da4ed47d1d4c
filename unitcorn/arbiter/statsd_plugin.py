"""The master's statsd metric, as a lifecycle plug-in: gunicorn.workers when the count changes."""

from __future__ import annotations

from unitcorn.arbiter.lifecycle import Lifecycle, MasterStatus
from unitcorn.settings.values import Settings
from unitcorn.statsd import StatsdClient, client_for


class WorkerCountGauge(Lifecycle):
    """The master's side (a lifecycle plug-in): `gunicorn.workers` when the count changes."""

    def __init__(self) -> None:
        super().__init__()
        self.client: StatsdClient | None = None
        self.settings: Settings | None = None
        self.last_count = -1

    def status_changed(self, status: MasterStatus) -> None:
        if status.settings is not self.settings:  # a reload may have changed the address
            self.settings = status.settings
            if self.client is not None:
                self.client.close()
            self.client = client_for(status.settings)
            self.last_count = -1
        count = len(status.worker_pids)
        if self.client is not None and count != self.last_count:
            self.last_count = count
            self.client.gauge("gunicorn.workers", count)

    def tick(self, status: MasterStatus, now: float) -> None:
        self.status_changed(status)
