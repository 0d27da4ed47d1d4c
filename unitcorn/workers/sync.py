"""The sync worker: the app runs one request at a time, in the worker's only thread.

This keeps gunicorn's meaning for the application (no threads, wsgi.multithread False), but
not gunicorn's way of getting there.  A process that serves one connection at a time must
choose between closing every connection after its response (gunicorn: slow for clients that
reuse connections) and closing an idle kept-alive connection when somebody else queues —
which loses the request a client sends on it at that moment: a proxy never retries a POST.

So the sync worker is the gthread worker's loop without a pool: one epoll loop owns accepting
and every idle connection, and runs the app inline for whichever connection has a complete
request.  An idle kept-alive connection costs a file descriptor, never the worker; a client
sending its head slowly costs a buffer; the body and the response are bounded by
body_timeout and send_timeout.  Connections are closed by the rules in ThreadWorker._drain.
"""

from __future__ import annotations

from unitcorn.workers.gthread import ThreadWorker


class SyncWorker(ThreadWorker):
    def pool_size(self) -> int:
        return 1  # --threads belongs to gthread; here the loop itself runs the app
