"""gunicorn's --log-config, logconfig_dict and --log-config-json, with real config files."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from unitcorn.logs import SERVER_LOGGERS, access_enabled, close_logging, configure_logging, reopen_logs
from unitcorn.settings import ConfigError, load_settings
from unitcorn.settings.values import Settings

# As gunicorn's docs and many deployments write it: the two gunicorn loggers to their own files.
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
level=DEBUG
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
datefmt=%Y-%m-%d %H:%M:%S
class=logging.Formatter

[formatter_access]
format=%(message)s
class=logging.Formatter
"""


def _dict_config(path: Path, level: str = "DEBUG") -> dict:
    # "root" too: its key replaces gunicorn's default, whose handler this "handlers" replaces.
    return {
        "version": 1,
        "root": {"level": "WARNING", "handlers": []},
        "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}},
        "loggers": {"gunicorn.error": {"level": level, "handlers": ["file"], "propagate": False}},
    }


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """Leave logging as found: other tests rely on unitcorn.error propagating to pytest's caplog."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    saved = [(logger.propagate, logger.level, logger.disabled) for logger in loggers]
    yield
    close_logging()
    for logger, (propagate, level, disabled) in zip(loggers, saved, strict=True):
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(level)
    for handler in list(root.handlers):
        if handler not in saved_root[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_root[1])


def _settings(tmp_path: Path, *argv: str, config: str | None = None) -> Settings:
    if config is not None:
        (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent(config))
        argv = ("-c", str(tmp_path / "gunicorn.conf.py"), *argv)
    return load_settings([*argv, "app:app"], environ={}, cwd=str(tmp_path))


def test_an_ini_file_configures_both_logs_through_gunicorns_names(tmp_path: Path) -> None:
    (tmp_path / "logging.ini").write_text(INI)
    unused = str(tmp_path / "unused.log")
    configure_logging(_settings(tmp_path, "--log-config", "logging.ini", "--error-logfile", unused))
    logging.getLogger("unitcorn.error").debug("booting worker pid=%d", 42)
    logging.getLogger("unitcorn.access").info('127.0.0.1 - - "GET / HTTP/1.1" 200')
    assert access_enabled()  # as in gunicorn: a logging config turns the access log on
    close_logging()
    error = (tmp_path / "error.log").read_text()
    assert "[DEBUG] gunicorn.error: booting worker pid=42" in error
    assert (tmp_path / "access.log").read_text() == '127.0.0.1 - - "GET / HTTP/1.1" 200\n'
    assert not (tmp_path / "unused.log").exists()  # gunicorn.error is the config's, not errorlog's


def test_logconfig_dict_sets_handlers_and_level(tmp_path: Path) -> None:
    target = tmp_path / "dict.log"
    configure_logging(_settings(tmp_path, config=f"logconfig_dict = {_dict_config(target, 'WARNING')!r}\n"))
    error = logging.getLogger("unitcorn.error")
    error.info("not at warning")
    error.warning("invalid request peer=1.2.3.4")
    assert target.read_text() == "WARNING gunicorn.error invalid request peer=1.2.3.4\n"


def test_logconfig_json_and_precedence(tmp_path: Path) -> None:
    (tmp_path / "log.json").write_text(json.dumps(_dict_config(tmp_path / "json.log")))
    (tmp_path / "logging.ini").write_text(INI)
    configure_logging(_settings(tmp_path, "--log-config-json", "log.json", "--log-config", "logging.ini"))
    logging.getLogger("unitcorn.error").info("from json")
    assert (tmp_path / "json.log").read_text() == "INFO gunicorn.error from json\n"
    assert not (tmp_path / "error.log").exists()  # the ini lost: JSON wins, as in gunicorn

    dict_target = tmp_path / "dict.log"
    config = f"logconfig_dict = {_dict_config(dict_target)!r}\n"
    configure_logging(_settings(tmp_path, "--log-config-json", "log.json", config=config))
    logging.getLogger("unitcorn.error").info("from dict")
    assert dict_target.read_text() == "INFO gunicorn.error from dict\n"
    assert "from dict" not in (tmp_path / "json.log").read_text()


def test_without_a_config_gunicorns_loggers_share_ours(tmp_path: Path) -> None:
    """Flask apps copy `logging.getLogger("gunicorn.error").handlers` to log like the server."""
    configure_logging(_settings(tmp_path, "--error-logfile", str(tmp_path / "error.log"),
                                "--log-level", "warning", "--access-logfile", str(tmp_path / "access.log")))
    ours, theirs = logging.getLogger("unitcorn.error"), logging.getLogger("gunicorn.error")
    assert theirs.handlers == ours.handlers and theirs.handlers
    assert theirs.level == ours.level == logging.WARNING
    assert logging.getLogger("gunicorn.access").handlers == logging.getLogger("unitcorn.access").handlers
    theirs.warning("from the app")
    close_logging()
    assert "[WARNING] from the app" in (tmp_path / "error.log").read_text()


def test_a_config_naming_unitcorns_loggers_is_taken_as_written(tmp_path: Path) -> None:
    target = tmp_path / "ours.log"
    config = _dict_config(target)
    config["loggers"] = {"unitcorn.error": config["loggers"]["gunicorn.error"]}
    configure_logging(_settings(tmp_path, config=f"logconfig_dict = {config!r}\n"))
    logging.getLogger("unitcorn.error").debug("direct")
    assert target.read_text() == "DEBUG unitcorn.error direct\n"


def test_disabling_existing_loggers_does_not_silence_the_server(tmp_path: Path) -> None:
    target = tmp_path / "dict.log"
    config = _dict_config(target) | {"disable_existing_loggers": True}
    configure_logging(_settings(tmp_path, config=f"logconfig_dict = {config!r}\n"))
    logging.getLogger("unitcorn.error").info("still here")
    assert target.read_text() == "INFO gunicorn.error still here\n"


@pytest.mark.parametrize(("argv", "config", "expected"), [
    (("--log-config", "missing.ini"), None,
     "logconfig = missing.ini \\(from command line\\): no such file"),
    (("--log-config-json", "missing.json"), None, "logconfig_json = missing.json .*: no such file"),
    ((), "logconfig_dict = {'version': 1, 'handlers': {'h': {'class': 'no.such.Handler'}}}\n",
     "logconfig_dict = .*the logging configuration failed"),
])
def test_a_bad_config_is_a_config_error(tmp_path: Path, argv: tuple[str, ...], config: str | None,
                                        expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        configure_logging(_settings(tmp_path, *argv, config=config))


def test_as_in_gunicorn_a_key_replaces_the_defaults_whole(tmp_path: Path) -> None:
    """gunicorn lays the dict over its defaults with update(): new "handlers" without the
    default root's "console" leave root pointing at a handler that is gone."""
    config = _dict_config(tmp_path / "x.log")
    del config["root"]
    with pytest.raises(ConfigError, match="Unable to configure root logger.*console"):
        configure_logging(_settings(tmp_path, config=f"logconfig_dict = {config!r}\n"))


def test_a_config_failing_half_way_leaves_the_built_in_logging(tmp_path: Path) -> None:
    config = "logconfig_dict = {'version': 1, 'handlers': {'h': {'class': 'no.such.Handler'}}}\n"
    with pytest.raises(ConfigError):
        configure_logging(_settings(tmp_path, "--error-logfile", str(tmp_path / "error.log"), config=config))
    logging.getLogger("unitcorn.error").error("reload failed, old generation keeps serving")
    close_logging()
    assert "[ERROR] reload failed" in (tmp_path / "error.log").read_text()


def test_an_unreadable_ini_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "logging.ini").write_text("[loggers]\n")  # no keys=
    with pytest.raises(ConfigError, match="logconfig = .*logging.ini .*: cannot read it: No option 'keys'"):
        configure_logging(_settings(tmp_path, "--log-config", "logging.ini"))


def test_a_json_file_must_hold_an_object(tmp_path: Path) -> None:
    (tmp_path / "log.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        configure_logging(_settings(tmp_path, "--log-config-json", "log.json"))


def test_usr1_reopens_the_files_of_a_config(tmp_path: Path) -> None:
    (tmp_path / "logging.ini").write_text(INI)
    configure_logging(_settings(tmp_path, "--log-config", "logging.ini"))
    error = logging.getLogger("unitcorn.error")
    error.info("before")
    (tmp_path / "error.log").rename(tmp_path / "error.log.1")
    reopen_logs()
    error.info("after")
    close_logging()
    assert "before" in (tmp_path / "error.log.1").read_text()
    assert "after" in (tmp_path / "error.log").read_text()
