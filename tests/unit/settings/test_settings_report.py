"""--print-config lines, docs/settings.md kept in step with the code, and the man page."""

from __future__ import annotations

from pathlib import Path

from unitcorn.settings import SETTINGS, render_manpage, render_markdown, render_print_config
from unitcorn.settings.catalog import IGNORED, REFUSED
from unitcorn.settings.docs import REGENERATE

REPO = Path(__file__).resolve().parents[3]


def test_print_config_lines(load, write) -> None:
    path = write(
        "gunicorn.conf.py",
        "workers = 3\nworker_tmp_dir = '/dev/shm'\ndef on_starting(server):\n    pass\n",
    )
    s = load("app:app", "-b", "[::1]:9000", "-b", "unix:/tmp/a.sock", "-m", "022",
             env={"UNITCORN_CMD_ARGS": "--timeout 9"})
    lines = render_print_config(s).splitlines()
    setting_lines = [line for line in lines if not line.startswith("#")]
    assert len(setting_lines) == len(SETTINGS)
    assert setting_lines == sorted(setting_lines)
    assert f"workers = 3  ({path})" in lines
    assert "bind = [[::1]:9000, unix:/tmp/a.sock]  (command line)" in lines
    assert "timeout = 9  (UNITCORN_CMD_ARGS)" in lines
    assert "umask = 0o22  (command line)" in lines
    assert "wsgi_app = 'app:app'  (command line)" in lines
    assert "graceful_timeout = 30  (default)" in lines
    assert "forwarded_allow_ips = {'127.0.0.1', '::1'}  (default)" in lines
    assert f"on_starting = __config__.on_starting  ({path})" in lines
    assert "on_exit = (no-op)  (default)" in lines
    assert f"config = '{path}'  (default)" in lines
    assert lines[-2] == f"# ignored: worker_tmp_dir  ({path})"
    assert lines[-1] == (
        f"# warning: worker_tmp_dir = /dev/shm (from {path}): ignored: worker heartbeats are in "
        "shared memory, not in temporary files"
    )
    assert render_print_config(s).endswith("\n")


def test_print_config_shows_environment_origin(load) -> None:
    text = render_print_config(load("app:app", env={"WEB_CONCURRENCY": "6"}))
    assert "workers = 6  (environment (WEB_CONCURRENCY))\n" in text


def test_docs_settings_md_is_up_to_date() -> None:
    committed = (REPO / "docs" / "settings.md").read_text()
    assert committed == render_markdown(), f"docs/settings.md is stale; run: {REGENERATE}"


def test_markdown_covers_everything(monkeypatch) -> None:
    text = render_markdown()
    for setting in SETTINGS:
        assert f"### `{setting.name}" in text
        for flag in setting.flags:
            assert flag in text
    for item in IGNORED:
        assert f"`{item.name}`" in text
    for item in REFUSED:
        assert f"`{item.name}`" in text
    assert "### `post_request(worker, req, environ, resp)`" in text
    # Deterministic: the environment of whoever generates it does not leak in.
    monkeypatch.setenv("WEB_CONCURRENCY", "17")
    monkeypatch.setenv("PORT", "1234")
    assert render_markdown() == text


def test_manpage() -> None:
    page = render_manpage("1.2.3")
    assert page.startswith('.TH UNITCORN 1 "" "unitcorn 1.2.3" "User Commands"\n')
    for heading in ("NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", "FILES"):
        assert f"\n.SH {heading}\n" in page
    assert "\\fB\\-w\\fR \\fIINT\\fR, \\fB\\-\\-workers\\fR \\fIINT\\fR" in page
    assert "\\fB\\-\\-preload\\fR\n" in page
    assert ".B WEB_CONCURRENCY" in page and ".B UNITCORN_CMD_ARGS" in page
    # No line may start a roff request by accident.
    for line in page.splitlines():
        assert not line.startswith("'")
        if line.startswith("."):
            assert line.split()[0] in {".TH", ".SH", ".B", ".BR", ".I", ".TP", ".PP"}, line
