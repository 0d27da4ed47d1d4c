"""What unitcorn says about gunicorn settings it does not apply, and about misspelt keys."""

from __future__ import annotations

import pytest

from unitcorn.settings import ConfigError
from unitcorn.settings.catalog import IGNORED_BY_NAME


def test_an_ignored_setting_given_a_value_is_one_warning_naming_it_and_why(load) -> None:
    s = load("--enable-backlog-metric", "--spew", "app:app")
    assert s.warnings == [
        "enable_backlog_metric = True (from command line): ignored: "
        f"{IGNORED_BY_NAME['enable_backlog_metric'].why}",
        f"spew = True (from command line): ignored: {IGNORED_BY_NAME['spew'].why}",
    ]


def test_the_last_source_is_named_once(load, write) -> None:
    write("gunicorn.conf.py", "http_protocols = 'h2'\nspew = True\n")
    s = load("--http-protocols", "h2,h1", "app:app")
    assert [w.partition(": ignored")[0] for w in s.warnings] == [
        f"spew = True (from {s.config_source})",
        "http_protocols = h2,h1 (from command line)",
    ]


def test_a_later_source_back_at_the_default_silences_it(load, write) -> None:
    write("gunicorn.conf.py", "http_protocols = 'h2,h1'\n")
    assert load("--http-protocols", "h1", "app:app").warnings == []


@pytest.mark.parametrize(
    "text",
    [
        "proxy_protocol = 'off'\n",
        "proxy_protocol = False\n",
        "protocol = 'http'\n",
        "http_protocols = 'h1'\n",
        "sendfile = None\n",
        "sendfile = True\n",  # what unitcorn does anyway
        "suppress_ragged_eofs = True\n",
        "secure_scheme_headers = {'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https',"
        " 'X-FORWARDED-SSL': 'on'}\n",
        "logconfig_dict = {}\n",
        "certfile = None\nkeyfile = ''\n",
        "control_socket_mode = 0o600\n",
        "dirty_workers = 0\n",
        "forwarder_headers = 'SCRIPT_NAME,PATH_INFO'\n",
        "forwarder_headers = ['SCRIPT_NAME', 'PATH_INFO']\n",
    ],
)
def test_gunicorns_defaults_load_without_a_word(load, write, text: str) -> None:
    write("gunicorn.conf.py", text)
    assert load("app:app").warnings == []


def test_defaults_on_the_command_line_are_quiet(load) -> None:
    s = load("--proxy-protocol", "off", "--http-protocols", "h1", "--protocol", "http",
             "--cert-reqs", "0", "--header-map", "drop", "--http-parser", "auto", "app:app")
    assert s.warnings == []


def test_a_hook_set_for_a_missing_feature_is_named_by_its_function(load, write) -> None:
    path = write("gunicorn.conf.py", "def on_dirty_starting(arbiter):\n    pass\n")
    assert load("app:app").warnings == [
        f"on_dirty_starting = __config__.on_dirty_starting (from {path}): ignored: "
        f"{IGNORED_BY_NAME['on_dirty_starting'].why}"
    ]


def test_no_sendfile_is_a_setting_now(load) -> None:
    settings = load("--no-sendfile", "app:app")
    assert (settings.sendfile, settings.warnings) == (False, [])
    assert load("app:app").sendfile is True


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--protocol", "uwsgi"], "protocol = uwsgi (from command line): "),
    ],
)
def test_refused_flags_parse_then_stop(load, args: list[str], start: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", *args)
    assert str(info.value).startswith(start)


def test_only_the_last_source_of_a_refused_setting_counts(load, write) -> None:
    write("gunicorn.conf.py", "protocol = 'uwsgi'\n")
    assert load("--protocol", "http", "app:app").warnings == []
    with pytest.raises(ConfigError, match=r"^protocol = uwsgi \(from /"):
        load("app:app")


def test_refused_in_gunicorn_cmd_args(load) -> None:
    with pytest.raises(ConfigError, match=r"^protocol = uwsgi \(from GUNICORN_CMD_ARGS\): "):
        load("app:app", env={"GUNICORN_CMD_ARGS": "--protocol uwsgi"})


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("worker = 4\n", "worker (from {path}): not a setting, ignored; did you mean workers?"),
        ("binds = [':80']\n", "binds (from {path}): not a setting, ignored; did you mean bind?"),
        ("keep_alive = 5\n", "keep_alive (from {path}): not a setting, ignored; did you mean keepalive?"),
        ("preload = True\n", "preload (from {path}): not a setting, ignored; did you mean reload?"),
        (
            "def post_forks(server, worker):\n    pass\n",
            "post_forks (from {path}): not a setting, ignored; did you mean post_fork?",
        ),
        (
            "statsd_hosts = 'x:1'\n",
            "statsd_hosts (from {path}): not a setting, ignored; did you mean statsd_host?",
        ),
    ],
)
def test_a_misspelt_key_warns_with_the_nearest_setting(load, write, text: str, warning: str) -> None:
    path = write("gunicorn.conf.py", text)
    assert load("app:app").warnings == [warning.format(path=path)]


def test_helpers_imports_and_constants_are_not_misspellings(load, write) -> None:
    write(
        "gunicorn.conf.py",
        """
        import os
        import multiprocessing
        from os import path as paths
        WORKERS = 3
        _worker = 2
        cores = multiprocessing.cpu_count()
        workers = cores * 2 + 1
        def worker_count():
            return 2
        def threading():
            pass
        class Timeout:
            pass
        timeouts = Timeout
        """,
    )
    assert load("app:app").warnings == []
