"""--paste: an application from a PasteDeploy ini (a pipeline with a filter), as gunicorn serves it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO, wait_for

pytest.importorskip("paste.deploy")  # the `paste` extra; the `test` extra installs it
pytestmark = pytest.mark.timeout(60)

INI = """\
[DEFAULT]
greeting = unused

[pipeline:main]
pipeline = tag site

[filter:tag]
use = call:pasteapps:make_tag_filter
tag = {tag}

[app:site]
use = call:pasteapps:make_app
message = {message}

[app:admin]
use = call:pasteapps:make_app
message = admin

[server:main]
use = egg:gunicorn#main
port = 1

[loggers]
keys = root, pasteapps

[handlers]
keys = app_file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers =

[logger_pasteapps]
level = INFO
handlers = app_file
qualname = pasteapps

[handler_app_file]
class = logging.FileHandler
formatter = plain
args = ('%(here)s/app.log',)

[formatter_plain]
format = APP %(message)s
"""


def _write_ini(path: Path, message: str = "v1", tag: str = "filtered") -> Path:
    path.write_text(INI.format(message=message, tag=tag))
    return path


def test_the_pipeline_is_served_with_the_ini_logging(start_server, tmp_path: Path) -> None:
    _write_ini(tmp_path / "site.ini")
    server = start_server("--paste=site.ini", "--paste-global", "FOO=bar")
    assert server.get("/") == (200, f"[filtered] v1 foo=bar here={tmp_path}")
    # The ini's [loggers]: the app's logger writes where the ini says.
    wait_for(lambda: "APP pasteapps served message=v1" in _read(tmp_path / "app.log"), 10,
             "the app's log line in app.log")
    # [server:main] is not read, as in gunicorn (port = 1 would have failed the start), and
    # unitcorn's own log still reaches the error log: the ini configured only its loggers.
    assert f"Listening at: 127.0.0.1:{server.port} " in server.log()


def test_a_named_app_and_the_config_scheme(start_server, tmp_path: Path) -> None:
    _write_ini(tmp_path / "site.ini")
    server = start_server("--paste=config:site.ini#admin")
    assert server.get("/") == (200, f"admin foo=- here={tmp_path}")


def test_hup_reads_the_ini_again(start_server, tmp_path: Path) -> None:
    ini = _write_ini(tmp_path / "site.ini")
    server = start_server("--paste=site.ini")
    assert server.get("/")[1].startswith("[filtered] v1 ")
    _write_ini(ini, message="v2", tag="retagged")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    server.wait_for_log(r"worker exited pid=\d+ code=0 reason=\S+ generation=1")
    assert server.get("/")[1].startswith("[retagged] v2 ")


def test_preload_and_reload_on_change_of_the_ini(start_server, tmp_path: Path) -> None:
    ini = _write_ini(tmp_path / "site.ini")
    server = start_server("--paste=site.ini", "--preload", "--reload", "--reload-engine", "poll")
    assert server.get("/")[1].startswith("[filtered] v1 ")
    _write_ini(ini, message="v2")
    server.wait_for_log(r"reload: source changed path=.*site\.ini")
    server.wait_for_log(r"reload complete generation=2")
    server.wait_for_log(r"worker exited pid=\d+ code=0 reason=\S+ generation=1")
    assert server.get("/")[1].startswith("[filtered] v2 ")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _run(*args: str, cwd: Path, pythonpath: str = f"{REPO}:{APPS}") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, "-m", "unitcorn", *args], capture_output=True,
                          text=True, timeout=30, cwd=cwd, env=env)


def test_check_config_loads_the_ini_and_names_its_errors(tmp_path: Path) -> None:
    _write_ini(tmp_path / "site.ini")
    ok = _run("--check-config", "--paste", "site.ini", cwd=tmp_path)
    assert (ok.returncode, ok.stdout.startswith("configuration OK")) == (0, True), ok.stderr

    missing = _run("--check-config", "--paste", "nosuch.ini", cwd=tmp_path)
    assert missing.returncode == 78
    assert missing.stderr == (
        "unitcorn: configuration error: paste = nosuch.ini (from command line): no such file\n"
    )

    no_section = _run("--check-config", "--paste", "site.ini#nosuch", cwd=tmp_path)
    assert no_section.returncode == 4, no_section.stderr
    assert "nosuch" in no_section.stderr


def test_without_paste_deploy_the_error_says_what_to_install(tmp_path: Path) -> None:
    # As if not installed: a module set to None in sys.modules is one Python will not import.
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(
        "import sys\nsys.modules['paste.deploy'] = None\n"
    )
    _write_ini(tmp_path / "site.ini")
    for args in (["--check-config"], []):
        result = _run(*args, "--paste", "site.ini", cwd=tmp_path,
                      pythonpath=f"{tmp_path / 'hide'}:{REPO}:{APPS}")
        assert result.returncode == 78
        assert result.stderr.startswith("unitcorn: configuration error: paste = ")
        assert "(from command line): needs PasteDeploy, which is not installed: " \
               "pip install 'unitcorn[paste]'\n" in result.stderr
        assert result.stderr.count("\n") == 1
