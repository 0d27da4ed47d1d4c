"""The paste, raw_paste_global_conf and reload_engine settings: values, errors, sources."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from unitcorn import pastedeploy
from unitcorn.settings import ConfigError

INI = "[app:main]\nuse = call:site:make\n"
LOGGING = "[loggers]\nkeys = root\n[handlers]\nkeys =\n[formatters]\nkeys =\n[logger_root]\nhandlers =\n"


@pytest.fixture
def paste_installed(monkeypatch) -> None:
    """Whether PasteDeploy is installed does not matter to these (package builds lack it)."""
    monkeypatch.setattr(pastedeploy, "is_installed", lambda: True)


def test_paste_names_the_app_and_the_process(load, write, tmp_path: Path, paste_installed) -> None:
    write("site.ini", INI)
    for value in ("site.ini", "config:site.ini", f"config:{tmp_path}/site.ini"):
        settings = load("--paste", value)
        assert settings.paste == settings.app_uri == f"{tmp_path}/site.ini"
    assert load("--paster", "site.ini#admin", "ignored:app").app_uri == f"{tmp_path}/site.ini#admin"


def test_paste_from_a_config_file_is_relative_to_the_launch_directory(
    load, write, tmp_path: Path, paste_installed,
) -> None:
    write("site.ini", INI)
    config = write("gunicorn.conf.py", "paste = 'site.ini'\nraw_paste_global_conf = ['A=1']\n")
    settings = load()
    assert (settings.paste, settings.origin("paste")) == (f"{tmp_path}/site.ini", str(config))
    assert settings.raw_paste_global_conf == ["A=1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--paste", "nosuch.ini"], "paste = nosuch.ini (from command line): no such file"),
        (["--paste", "dir"], "paste = dir (from command line): no such file"),
        (["--paste-global", "NOEQUALS"],
         "raw_paste_global_conf = ['NOEQUALS'] (from command line): 'NOEQUALS' is not KEY=VALUE"),
    ],
)
def test_paste_errors(load, write, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError) as info:
        load(*args, "app:app")
    assert str(info.value) == message


def test_without_paste_deploy_the_error_says_what_to_install(load, write, monkeypatch) -> None:
    write("site.ini", INI)
    monkeypatch.setitem(sys.modules, "paste.deploy", None)  # as if not installed
    with pytest.raises(ConfigError) as info:
        load("--paste", "site.ini")
    assert str(info.value) == (
        "paste = site.ini (from command line): needs PasteDeploy, which is not installed: "
        "pip install 'unitcorn[paste]'"
    )


def test_the_ini_is_the_logging_config_only_when_it_has_loggers_and_none_is_given(
    load, write, tmp_path: Path, paste_installed,
) -> None:
    write("plain.ini", INI)
    assert load("--paste", "plain.ini").logconfig is None
    write("logged.ini", INI + LOGGING)
    settings = load("--paste", "logged.ini")
    assert settings.logconfig == f"{tmp_path}/logged.ini"
    assert settings.origin("logconfig") == "paste (command line)"
    write("other.conf", LOGGING)
    assert load("--paste", "logged.ini", "--log-config", "other.conf").logconfig == (
        f"{tmp_path}/other.conf"
    )


def test_reload_engine_values(load, monkeypatch) -> None:
    assert load("app:app").reload_engine == "auto"
    assert load("--reload-engine", "POLL", "app:app").reload_engine == "poll"
    with pytest.raises(ConfigError, match="must be one of auto, poll, inotify"):
        load("--reload-engine", "kqueue", "app:app")
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # as if not installed
    assert load("--reload-engine", "auto", "app:app").reload_engine == "auto"  # it will poll
    with pytest.raises(ConfigError) as info:
        load("--reload-engine", "inotify", "app:app")
    assert str(info.value) == (
        "reload_engine = inotify (from command line): needs watchfiles, which is not "
        "installed: pip install 'unitcorn[reload]'"
    )
