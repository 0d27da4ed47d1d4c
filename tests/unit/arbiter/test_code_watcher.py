"""--reload's watcher: what it watches, and kernel events arriving as lines on a pipe."""

from __future__ import annotations

import select
import types
from pathlib import Path

import pytest

from unitcorn.arbiter import code_watcher
from unitcorn.arbiter.code_watcher import extra_files, uses_file_events, watched_directories

pytestmark = pytest.mark.timeout(20)


def _settings(**values: object) -> types.SimpleNamespace:
    defaults: dict[str, object] = {"reload_extra_files": [], "paste": None}
    return types.SimpleNamespace(**{**defaults, **values})


def test_the_paste_ini_is_an_extra_file(tmp_path: Path) -> None:
    settings = _settings(reload_extra_files=["page.html"], paste=f"{tmp_path}/site.ini#admin")
    assert extra_files(settings)[1] == f"{tmp_path}/site.ini"
    assert extra_files(settings)[0].endswith("/page.html")


def test_watched_directories_skip_caches_and_environments_and_are_bounded(
    tmp_path: Path, monkeypatch,
) -> None:
    for name in ("app", "app/sub", "__pycache__", ".git", "node_modules", "venv"):
        (tmp_path / name).mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    templates = tmp_path / "templates"
    templates.mkdir()
    found = watched_directories([str(tmp_path)], [str(templates / "base.html"), "/nowhere/x"])
    assert found == sorted(str(tmp_path / d) for d in ("", "app", "app/sub", "templates"))
    monkeypatch.setattr(code_watcher, "MAX_DIRECTORIES", 2)
    assert len(watched_directories([str(tmp_path)], [])) == 2


def test_engine_choice(monkeypatch) -> None:
    assert uses_file_events("inotify") and not uses_file_events("poll")
    monkeypatch.setattr(code_watcher.file_events, "is_available", lambda: False)
    assert not uses_file_events("auto")
    monkeypatch.setattr(code_watcher.file_events, "is_available", lambda: True)
    assert uses_file_events("auto")


def test_a_wanted_change_arrives_on_the_pipe_and_close_ends_the_thread(tmp_path: Path) -> None:
    file_events = pytest.importorskip("unitcorn.arbiter.file_events")
    pytest.importorskip("watchfiles")
    events = file_events.FileEvents([str(tmp_path)], lambda path: path.endswith(".py"))
    try:
        (tmp_path / "notes.txt").write_text("not wanted")
        (tmp_path / "app.py").write_text("x = 1\n")
        readable, _, _ = select.select([events.reader], [], [], 10)
        assert readable, "no event within 10 s"
        paths, has_failed = events.read_changes()
        assert (paths, has_failed) == ([str(tmp_path / "app.py")], False)
        assert events.read_changes() == ([], False)  # nothing more, and no blocking
    finally:
        events.close(wait=5)
    assert not events.is_running


class _BrokenNotify:
    """Stands in for watchfiles' RustNotify: its watch fails, as a kernel error would."""

    def __init__(self, *args: object) -> None:
        pass

    def watch(self, *args: object) -> object:
        raise RuntimeError("inotify gave up")

    def close(self) -> None:
        pass


def test_a_failed_watch_is_reported_on_the_pipe(monkeypatch, tmp_path: Path) -> None:
    file_events = pytest.importorskip("unitcorn.arbiter.file_events")
    rust_notify = pytest.importorskip("watchfiles._rust_notify")
    monkeypatch.setattr(rust_notify, "RustNotify", _BrokenNotify)
    events = file_events.FileEvents([str(tmp_path)], lambda path: True)
    try:
        events._thread.join(10)  # it writes the failure, closes its end, and ends
        assert not events.is_running
        paths, has_failed = events.read_changes()
        assert (paths, has_failed) == ([], True)
    finally:
        events.close(wait=5)
