"""--reload: saving a source file (or a --reload-extra-file) starts a new generation."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["poll", "inotify"])
def engine(request) -> str:
    """Each test runs with polling and with kernel events (the `reload` extra: watchfiles)."""
    if request.param == "inotify":
        pytest.importorskip("watchfiles")
    return request.param


@pytest.fixture(autouse=True)
def _bytecode_as_on_a_users_machine(monkeypatch) -> None:
    """The server writes .pyc files as it would for a user (a test runner may have said not to)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)

APP = '''
def app(environ, start_response):
    body = b"{version}"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def _wait_for_generation(generation: int, server) -> None:
    """The reload completed, and the generation before it is gone: until it has handled its
    TERM, an old worker may still accept a connection and answer it with the old code."""
    server.wait_for_log(rf"reload complete generation={generation}")
    server.wait_for_log(rf"worker exited pid=\d+ code=\S+ reason=\S+ generation={generation - 1}")


_SAVES = itertools.count(1)
_SECOND = 1_700_000_000 * 1_000_000_000


def _write(path: Path, text: str) -> None:
    """Save as a fast editor does: every save within one whole second, a millisecond apart —
    the case where a cached .pyc (which records whole seconds) would look current."""
    path.write_text(text)
    stamp = _SECOND + next(_SAVES) * 1_000_000
    os.utime(path, ns=(stamp, stamp))


def test_saving_the_app_reloads_it(start_server, tmp_path: Path, engine: str) -> None:
    code = tmp_path / "site"
    code.mkdir()
    _write(code / "editme.py", APP.format(version="v1"))
    server = start_server("editme:app", "--reload", "--reload-engine", engine,
                          "--pythonpath", str(code))
    assert server.get("/") == (200, "v1")
    _write(code / "editme.py", APP.format(version="v2"))
    server.wait_for_log(r"reload: source changed path=.*editme\.py")
    _wait_for_generation(2, server)
    assert server.get("/") == (200, "v2")


def test_a_broken_save_fails_the_reload_and_the_old_code_serves(
    start_server, tmp_path: Path, engine: str,
) -> None:
    code = tmp_path / "site"
    code.mkdir()
    _write(code / "editme.py", APP.format(version="v1"))
    server = start_server("editme:app", "--reload", "--reload-engine", engine,
                          "--pythonpath", str(code))
    _write(code / "editme.py", "def app(:\n")
    server.wait_for_log(r"reload failed, old generation keeps serving")
    assert server.get("/") == (200, "v1")


def test_an_extra_file_reloads_too(start_server, tmp_path: Path, engine: str) -> None:
    code = tmp_path / "site"
    code.mkdir()
    _write(code / "editme.py", APP.format(version="v1"))
    template = tmp_path / "page.html"
    _write(template, "<p>one</p>")
    server = start_server("editme:app", "--reload", "--reload-engine", engine,
                          "--pythonpath", str(code),
                          "--reload-extra-file", str(template))
    _write(template, "<p>two</p>")
    server.wait_for_log(r"reload: source changed path=.*page\.html")
    server.wait_for_log(r"reload complete generation=2")


def test_events_keep_coming_after_a_reload_and_see_new_packages(start_server, tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    code = tmp_path / "site"
    code.mkdir()
    _write(code / "editme.py", APP.format(version="v1"))
    server = start_server("editme:app", "--reload", "--reload-engine", "inotify",
                          "--pythonpath", str(code))
    server.wait_for_log(r"reload: watching \d+ directories under .* engine=inotify")
    _write(code / "editme.py", APP.format(version="v2"))
    _wait_for_generation(2, server)
    assert server.get("/") == (200, "v2")
    # A package made after start: its directory is a change, and from then on it is watched.
    (code / "pkg").mkdir()
    server.wait_for_log(r"reload complete generation=3")
    _write(code / "pkg" / "__init__.py", "VERSION = 'v3'\n")
    _write(code / "editme.py", APP.format(version="v3").replace('b"v3"', "pkg.VERSION.encode()")
           .replace("def app", "import pkg\n\ndef app"))
    _wait_for_generation(4, server)
    assert server.get("/") == (200, "v3")
    _write(code / "pkg" / "__init__.py", "VERSION = 'v4'\n")
    server.wait_for_log(r"reload: source changed path=.*pkg/__init__\.py")
    _wait_for_generation(5, server)
    assert server.get("/") == (200, "v4")


def test_without_watchfiles_auto_polls_and_inotify_is_a_config_error(
    start_server, tmp_path: Path,
) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    # As if not installed: a module set to None in sys.modules is one Python will not import.
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['watchfiles'] = None\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{hide}:{REPO}:{APPS}"}
    for args in (["--check-config"], []):
        result = subprocess.run(
            [sys.executable, "-m", "unitcorn", *args, "--reload", "--reload-engine", "inotify",
             "testapps:route"], capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env,
        )
        assert (result.returncode, result.stderr) == (78, (
            "unitcorn: configuration error: reload_engine = inotify (from command line): needs "
            "watchfiles, which is not installed: pip install 'unitcorn[reload]'\n"
        ))
    server = start_server("testapps:route", "--reload",
                          env={"PYTHONPATH": f"{hide}:{REPO}:{APPS}"})
    server.wait_for_log(r"reload: watching \d+ files under .* engine=poll")
