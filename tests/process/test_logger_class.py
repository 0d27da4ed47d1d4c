"""--logger-class with gunicorn.glogging.Logger subclasses, run by a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO, wait_for

pytest.importorskip("gunicorn.glogging")


def test_a_subclass_overriding_access_writes_the_access_log(start_server, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = start_server("testapps:route", "--logger-class", "gunicorn_loggers.SkipHealthChecks",
                          "--access-logfile", str(access))
    for path in ("/health", "/shop", "/healthz", "/cart"):
        assert server.get(path)[0] == 200
    wait_for(lambda: access.exists() and "/cart" in access.read_text(), 5, "access line for /cart")
    lines = access.read_text().splitlines()
    assert len(lines) == 2, lines
    assert '"GET /shop HTTP/1.1" 200' in lines[0] and '"GET /cart HTTP/1.1" 200' in lines[1]
    assert lines[0].startswith("127.0.0.1 - - [")
    # gunicorn's Logger set up the error log (its own format), and unitcorn's lines reach it.
    assert "[INFO] Listening at: " in server.log()


def test_a_subclass_adding_an_atom(start_server, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = start_server("testapps:route", "--logger-class", "gunicorn_loggers.TaggedAccess",
                          "--access-logfile", str(access), "--access-logformat", "%(tag)s %(U)s %(s)s")
    assert server.get("/boom")[0] == 500
    wait_for(lambda: access.exists() and access.read_text(), 5, "an access line")
    assert access.read_text() == "GET:500:127.0.0.1 /boom 500\n"


def test_a_class_that_cannot_be_imported_is_a_config_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unitcorn", "--logger-class", "no_such_module.Logger",
         "--bind", "127.0.0.1:0", "testapps:route"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env={"PYTHONPATH": f"{REPO}:{APPS}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 78
    assert "logger_class = no_such_module.Logger (from command line): cannot import it" in result.stderr
