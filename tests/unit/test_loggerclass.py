"""--logger-class: which names mean unitcorn's logging, and how a bad class is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from unitcorn.loggerclass import GunicornConfigView, LoggerClassError, build_logger
from unitcorn.settings import load_settings


def _settings(tmp_path: Path, logger_class: str):
    return load_settings(["--logger-class", logger_class, "app:app"], environ={}, cwd=str(tmp_path))


@pytest.mark.parametrize("name", ["gunicorn.glogging.Logger", "simple", "gunicorn.instrument.statsd.Statsd"])
def test_gunicorns_own_classes_mean_the_built_in_logging(tmp_path: Path, name: str) -> None:
    assert build_logger(_settings(tmp_path, name)) is None


def test_the_default_is_gunicorns(tmp_path: Path) -> None:
    settings = load_settings(["app:app"], environ={}, cwd=str(tmp_path))
    assert settings.logger_class == "gunicorn.glogging.Logger"


def test_a_class_gets_the_settings_as_gunicorn_shapes_them(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_loggers.py").write_text(
        "class Recording:\n    def __init__(self, cfg):\n        self.cfg = cfg\n"
        "class Broken:\n    def __init__(self, cfg):\n        raise RuntimeError('no handlers')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    logger = build_logger(_settings(tmp_path, "my_loggers.Recording"))
    assert isinstance(logger.cfg, GunicornConfigView)
    assert logger.cfg.proc_name == "app:app" and logger.cfg.loglevel == "info"
    assert isinstance(logger.cfg.user, int) and isinstance(logger.cfg.group, int)
    with pytest.raises(LoggerClassError, match="building it failed: RuntimeError: no handlers"):
        build_logger(_settings(tmp_path, "my_loggers.Broken"))
    with pytest.raises(LoggerClassError, match="cannot import it"):
        build_logger(_settings(tmp_path, "my_loggers.Missing"))
    with pytest.raises(LoggerClassError, match="not a dotted path"):
        build_logger(_settings(tmp_path, "Logger"))
