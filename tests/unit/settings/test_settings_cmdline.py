"""The argparse parser derived from SETTINGS: gunicorn's flags, and errors raised, never exited."""

from __future__ import annotations

import argparse

import pytest

from unitcorn.settings import SETTINGS, UsageError, build_parser
from unitcorn.settings.catalog import IGNORED

# Every gunicorn flag spelling for the settings we implement (from gunicorn's settings reference).
GUNICORN_FLAGS = {
    "config": ("-c", "--config"),
    "bind": ("-b", "--bind"),
    "backlog": ("--backlog",),
    "workers": ("-w", "--workers"),
    "worker_class": ("-k", "--worker-class"),
    "threads": ("--threads",),
    "worker_connections": ("--worker-connections",),
    "max_requests": ("--max-requests",),
    "max_requests_jitter": ("--max-requests-jitter",),
    "timeout": ("-t", "--timeout"),
    "graceful_timeout": ("--graceful-timeout",),
    "keepalive": ("--keep-alive",),
    "limit_request_line": ("--limit-request-line",),
    "limit_request_fields": ("--limit-request-fields",),
    "limit_request_field_size": ("--limit-request-field_size",),
    "reuse_port": ("--reuse-port",),
    "raw_env": ("-e", "--env"),
    "preload_app": ("--preload",),
    "pidfile": ("-p", "--pid"),
    "daemon": ("-D", "--daemon"),
    "proc_name": ("-n", "--name"),
    "chdir": ("--chdir",),
    "user": ("-u", "--user"),
    "group": ("-g", "--group"),
    "umask": ("-m", "--umask"),
    "accesslog": ("--access-logfile",),
    "access_log_format": ("--access-logformat",),
    "errorlog": ("--error-logfile", "--log-file"),
    "loglevel": ("--log-level",),
    "capture_output": ("--capture-output",),
    "forwarded_allow_ips": ("--forwarded-allow-ips",),
    "pythonpath": ("--pythonpath",),
    "print_config": ("--print-config",),
    "check_config": ("--check-config",),
}


def _option_dests(parser: argparse.ArgumentParser) -> dict[str, str]:
    return {flag: action.dest for action in parser._actions for flag in action.option_strings}


def test_every_gunicorn_flag_reaches_its_setting() -> None:
    dests = _option_dests(build_parser())
    for name, flags in GUNICORN_FLAGS.items():
        for flag in flags:
            assert dests.get(flag) == name, flag


def test_parser_is_derived_from_settings() -> None:
    dests = _option_dests(build_parser())
    for setting in SETTINGS:
        for flag in setting.flags:
            assert dests[flag] == setting.name
    for item in IGNORED:
        for flag in item.flags:
            assert dests[flag] == item.name
    assert dests["-h"] == "show_help" and dests["-v"] == "show_version"
    assert dests["--limit-request-field-size"] == "limit_request_field_size"
    assert dests["--upgrade-timeout"] == "upgrade_timeout"
    assert dests["--root-path"] == "root_path"


def test_flags_are_unique() -> None:
    flags = [flag for setting in SETTINGS for flag in setting.flags]
    flags += [flag for item in IGNORED for flag in item.flags]
    assert len(flags) == len(set(flags))


def test_gunicorn_command_line(load) -> None:
    s = load(
        "--bind=0.0.0.0:8080", "-w", "4", "-k", "gthread", "--threads", "2",
        "--timeout", "120", "--graceful-timeout", "10", "--keep-alive", "5",
        "--max-requests", "1000", "--max-requests-jitter", "50", "--preload",
        "--access-logfile", "-", "--error-logfile", "-", "--log-level", "debug",
        "--forwarded-allow-ips=*", "--capture-output", "--reuse-port", "-D",
        "-p", "/run/app.pid", "-n", "site", "-u", "0", "-g", "0", "-m", "007",
        "--access-logformat", "%(h)s %(r)s", "--pythonpath", "/srv/lib",
        "--limit-request-line", "0", "--backlog", "64",
        "project.wsgi:application",
    )
    assert s.app_uri == "project.wsgi:application"
    assert str(s.bind[0]) == "0.0.0.0:8080"
    assert (s.workers, s.worker_class, s.threads, s.timeout) == (4, "gthread", 2, 120)
    assert (s.graceful_timeout, s.keepalive, s.max_requests, s.max_requests_jitter) == (
        10, 5, 1000, 50,
    )
    assert s.preload_app and s.capture_output and s.reuse_port and s.daemon
    assert (s.accesslog, s.errorlog, s.loglevel) == ("-", "-", "debug")
    assert s.forwarded_allow_ips == frozenset({"*"})
    assert (s.pidfile, s.proc_name, s.user, s.group, s.umask) == ("/run/app.pid", "site", 0, 0, 7)
    assert s.access_log_format == "%(h)s %(r)s"
    assert s.pythonpath == ["/srv/lib"]
    assert (s.limit_request_line, s.backlog) == (0, 64)


def test_app_may_come_before_options(load) -> None:
    s = load("app:app", "-w", "3")
    assert s.app_uri == "app:app" and s.workers == 3


def test_user_and_group_by_name(load) -> None:
    s = load("app:app", "-u", "root", "-g", "root")
    assert (s.user, s.group) == (0, 0)


@pytest.mark.parametrize(
    ("text", "mask"), [("0o22", 0o22), ("022", 0o22), ("18", 18), ("0", 0), ("0x1f", 0x1F)]
)
def test_umask_forms(load, text: str, mask: int) -> None:
    assert load("app:app", "--umask", text).umask == mask


@pytest.mark.parametrize(
    "alias",
    ["gthread", "egg:gunicorn#gthread", "egg:unitcorn#gthread",
     "gunicorn.workers.gthread.ThreadWorker"],
)
def test_worker_class_aliases(load, alias: str) -> None:
    assert load("app:app", "-k", alias).worker_class == "gthread"


def test_sync_aliases(load) -> None:
    for alias in ("sync", "egg:gunicorn#sync", "gunicorn.workers.sync.SyncWorker"):
        assert load("app:app", "-k", alias).worker_class == "sync"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["b:app"], "unrecognized arguments: b:app"),
        (["-w"], "argument -w/--workers: expected one argument"),
        (["--certfile"], "argument --certfile: expected one argument"),
    ],
)
def test_usage_errors_raise_without_exiting(load, args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        load("app:app", *args)
    assert message in str(info.value)


def test_help_text_mentions_every_flag_and_survives_percent_signs() -> None:
    text = build_parser().format_help()
    for setting in SETTINGS:
        for flag in setting.flags:
            assert flag in text
    assert "%(atom)s" in text

