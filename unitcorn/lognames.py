"""The names of the server's loggers: unitcorn's own, and gunicorn's that configs and apps use.

Its own module, below everything that logs, so that modules logs.py imports (statsd) can name
the error log too.
"""

ERROR_LOGGER = "unitcorn.error"
ACCESS_LOGGER = "unitcorn.access"
# gunicorn's names for the same two logs: configs and apps written for gunicorn use them.
GUNICORN_ERROR_LOGGER = "gunicorn.error"
GUNICORN_ACCESS_LOGGER = "gunicorn.access"
SERVER_LOGGERS = (ERROR_LOGGER, ACCESS_LOGGER, GUNICORN_ERROR_LOGGER, GUNICORN_ACCESS_LOGGER)
