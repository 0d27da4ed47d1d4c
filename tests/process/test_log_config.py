"""A real server logging through a gunicorn-style --log-config ini file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from harness import APPS, REPO, wait_for

INI = """\
[loggers]
keys=root, gunicorn.error, gunicorn.access

[handlers]
keys=error_file, access_file

[formatters]
keys=generic, access

[logger_root]
level=INFO
handlers=

[logger_gunicorn.error]
level=INFO
handlers=error_file
propagate=0
qualname=gunicorn.error

[logger_gunicorn.access]
level=INFO
handlers=access_file
propagate=0
qualname=gunicorn.access

[handler_error_file]
class=logging.FileHandler
formatter=generic
args=('%(here)s/error.log',)

[handler_access_file]
class=logging.FileHandler
formatter=access
args=('%(here)s/access.log',)

[formatter_generic]
format=%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s
class=logging.Formatter

[formatter_access]
format=ACCESS %(message)s
class=logging.Formatter
"""


def test_the_ini_files_loggers_get_the_error_and_access_logs(start_server, tmp_path: Path) -> None:
    # The harness reads tmp_path/error.log: the ini's gunicorn.error handler writes there.
    (tmp_path / "logging.ini").write_text(INI)
    server = start_server("testapps:route", "--log-config", str(tmp_path / "logging.ini"))
    assert server.get("/hello")[0] == 200
    access = tmp_path / "access.log"
    wait_for(lambda: access.exists() and "/hello" in access.read_text(), 5, "access line")
    assert access.read_text().startswith('ACCESS 127.0.0.1 - - [')
    assert '"GET /hello HTTP/1.1" 200' in access.read_text()
    assert "[INFO] gunicorn.error: Listening at: " in server.log()
    assert "[DEBUG]" not in server.log()  # the ini's level, not the harness's --log-level debug


def test_a_reload_naming_a_missing_log_config_fails_as_a_whole(start_server, tmp_path: Path) -> None:
    server = start_server("testapps:route", config="workers = 1\n")
    (tmp_path / "unitcorn.conf.py").write_text("workers = 1\nlogconfig = 'missing.ini'\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, old generation keeps serving reason=configuration: "
                        r"logconfig = \S*missing.ini .*: no such file")
    assert "unexpected error" not in server.log()
    assert server.get("/")[0] == 200


def test_a_missing_log_config_fails_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unitcorn", "--log-config", "missing.ini", "--bind", "127.0.0.1:0",
         "testapps:route"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env={"PYTHONPATH": f"{REPO}:{APPS}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 78
    assert "logconfig = " in result.stderr and "missing.ini" in result.stderr


def test_a_reload_whose_log_config_does_not_apply_fails_as_a_whole(start_server, tmp_path: Path) -> None:
    """It reads well (a dict) but fails when applied: the reload fails before anything changed."""
    server = start_server("testapps:route", config="workers = 1\n")
    workers = server.workers()
    (tmp_path / "unitcorn.conf.py").write_text(
        "workers = 2\n"
        "logconfig_dict = {'version': 1, 'root': {'handlers': ['file']}, 'handlers': {'file': {\n"
        "    'class': 'logging.FileHandler', 'filename': '/nonexistent-directory/app.log'}}}\n"
    )
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, old generation keeps serving reason=logging: logconfig_dict")
    assert "unexpected error" not in server.log()
    assert server.get("/")[0] == 200
    assert server.workers() == workers  # the old generation, at its old size
    (tmp_path / "unitcorn.conf.py").write_text("workers = 2\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert len(server.workers()) == 2
