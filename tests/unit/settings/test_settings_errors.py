"""Every converter's rejection, as the operator sees it: setting, value, source, reason."""

from __future__ import annotations

import pytest

from unitcorn.settings import ConfigError
from unitcorn.settings.catalog import SETTINGS

# (argv after the app, exact str(ConfigError))
FROM_COMMAND_LINE = [
    (["-w", "0"], "workers = 0 (from command line): must be at least 1"),
    (["-w", "-2"], "workers = -2 (from command line): must be at least 1"),
    (["--workers", "two"], "workers = two (from command line): must be a whole number"),
    (["-w", "2.5"], "workers = 2.5 (from command line): must be a whole number"),
    (["--threads", "0"], "threads = 0 (from command line): must be at least 1"),
    (["--backlog", "0"], "backlog = 0 (from command line): must be at least 1"),
    (["--worker-connections", "0"],
     "worker_connections = 0 (from command line): must be at least 1"),
    (["--max-requests", "-1"], "max_requests = -1 (from command line): must be at least 0"),
    (["--max-requests-jitter", "-1"],
     "max_requests_jitter = -1 (from command line): must be at least 0"),
    (["-t", "-1"], "timeout = -1 (from command line): must be at least 0"),
    (["--graceful-timeout", "x"],
     "graceful_timeout = x (from command line): must be a whole number"),
    (["--keep-alive", "-3"], "keepalive = -3 (from command line): must be at least 0"),
    (["--upgrade-timeout", "0"], "upgrade_timeout = 0 (from command line): must be at least 1"),
    (["--limit-request-line", "8191"],
     "limit_request_line = 8191 (from command line): must be at most 8190"),
    (["--limit-request-line", "-1"],
     "limit_request_line = -1 (from command line): must be at least 0"),
    (["--limit-request-fields", "32769"],
     "limit_request_fields = 32769 (from command line): must be at most 32768"),
    (["--limit-request-field_size", "-1"],
     "limit_request_field_size = -1 (from command line): must be at least 0"),
    (["--limit-request-field-size", "big"],
     "limit_request_field_size = big (from command line): must be a whole number"),
    (["-b", "::1:80"],
     "bind = ['::1:80'] (from command line): an IPv6 address needs brackets, e.g. [::1]:8000"),
    (["-b", "127.0.0.1:99999"],
     "bind = ['127.0.0.1:99999'] (from command line): port 99999 is out of range (0-65535)"),
    (["-k", "tornado"],
     ("worker_class = tornado (from command line): must be one of sync, gthread, asgi, gevent "
     "(or gunicorn's name for one of them)")),
    (["--log-level", "verbose"],
     ("loglevel = verbose (from command line): must be one of debug, info, warning, error, "
     "critical")),
    (["-e", "NOVALUE"], "raw_env = ['NOVALUE'] (from command line): 'NOVALUE' is not KEY=VALUE"),
    (["-e", "=1"], "raw_env = ['=1'] (from command line): '=1' is not KEY=VALUE"),
    (["-m", "0o1000"], "umask = 0o1000 (from command line): must be between 0 and 0o777"),
    (["-m", "rwx"], "umask = rwx (from command line): must be a number such as 0o22, 022 or 18"),
    (["-m", "089"], "umask = 089 (from command line): must be a number such as 0o22, 022 or 18"),
    (["-u", "no-such-user-xyz"], "user = no-such-user-xyz (from command line): no such user"),
    (["-g", "no-such-group-xyz"], "group = no-such-group-xyz (from command line): no such group"),
    (["--forwarded-allow-ips", "10.0.0.1,proxy"],
     ("forwarded_allow_ips = 10.0.0.1,proxy (from command line): "
     "'proxy' is not an IP address, a network or '*'")),
    (["--root-path", "app"],
     "root_path = app (from command line): must be empty or start with '/'"),
    (["--chdir", "no/such/dir"], "chdir = no/such/dir (from command line): no such directory"),
    (["--error-logfile", ""], "errorlog = '' (from command line): must not be empty"),
    (["-p", ""], "pidfile = '' (from command line): must not be empty"),
]


@pytest.mark.parametrize(("args", "message"), FROM_COMMAND_LINE)
def test_command_line_errors(load, args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", *args)
    assert str(info.value) == message


def test_error_attributes(load) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", "-w", "-2")
    error = info.value
    assert (error.setting, error.value, error.source) == ("workers", "-2", "command line")
    assert error.message == "must be at least 1"


# (config-file line, message after "<setting> = <value> (from <path>): ")
FROM_CONFIG_FILE = [
    ("workers = -2", "workers = -2", "must be at least 1"),
    ("workers = True", "workers = True", "must be a whole number"),
    ("workers = 2.0", "workers = 2.0", "must be a whole number"),
    ("workers = None", "workers = None", "must be a whole number"),
    ("timeout = '30s'", "timeout = 30s", "must be a whole number"),
    ("daemon = 'maybe'", "daemon = maybe", "must be true or false"),
    ("preload_app = 1", "preload_app = 1", "must be true or false"),
    ("bind = 8000", "bind = 8000", "must be an address or a list of them, not int"),
    ("bind = []", "bind = []", "needs at least one address"),
    ("bind = [8000]", "bind = [8000]", "must be a string, not int"),
    ("worker_class = 'eventlet'", "worker_class = eventlet", "gunicorn 26 removed it"),
    ("raw_env = {'A': '1'}", "raw_env = {'A': '1'}",
     "must be a KEY=VALUE string or a list of them, not dict"),
    ("umask = 1.5", "umask = 1.5", "must be a number such as 0o22, 022 or 18"),
    ("user = -1", "user = -1", "a user id must be at least 0"),
    ("group = -5", "group = -5", "a group id must be at least 0"),
    ("loglevel = 10", "loglevel = 10", "must be a string, not int"),
    ("accesslog = ''", "accesslog = ''", "must not be empty"),
    ("access_log_format = None", "access_log_format = None", "must be a string, not NoneType"),
    ("forwarded_allow_ips = ['300.1.1.1']", "forwarded_allow_ips = ['300.1.1.1']",
     "'300.1.1.1' is not an IP address, a network or '*'"),
    ("forwarded_allow_ips = 5", "forwarded_allow_ips = 5",
     "must be an address or a list of them, not int"),
    ("root_path = None", "root_path = None", "must be a string, not NoneType"),
    ("pythonpath = 3", "pythonpath = 3", "must be a directory or a list of them, not int"),
    ("chdir = 3", "chdir = 3", "must be a string, not int"),
    ("proc_name = 3", "proc_name = 3", "must be a string, not int"),
    ("wsgi_app = ''", "wsgi_app = ''", "must not be empty"),
    ("max_requests = '-5'", "max_requests = -5", "must be at least 0"),
]


@pytest.mark.parametrize(("line", "shown", "reason"), FROM_CONFIG_FILE)
def test_config_file_errors_name_the_file(load, write, line: str, shown: str, reason: str) -> None:
    path = write("site.conf.py", line + "\n")
    with pytest.raises(ConfigError) as info:
        load("-c", "site.conf.py", "app:app")
    message = str(info.value)
    assert message.startswith(f"{shown} (from {path}): ")
    assert reason in message
    assert info.value.source == str(path)


def test_example_from_the_style_guide(load, write) -> None:
    path = write("etc/unitcorn/site.conf.py", "workers = -2\n")
    with pytest.raises(ConfigError) as info:
        load("-c", str(path), "app:app")
    assert str(info.value) == f"workers = -2 (from {path}): must be at least 1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_CONCURRENCY": "lots"},
         "workers = lots (from environment (WEB_CONCURRENCY)): must be a whole number"),
        ({"WEB_CONCURRENCY": "0"},
         "workers = 0 (from environment (WEB_CONCURRENCY)): must be at least 1"),
        ({"PORT": "http"},
         "bind = ['0.0.0.0:http'] (from environment (PORT)): port 'http' is not a number"),
        ({"FORWARDED_ALLOW_IPS": "a.b"},
         ("forwarded_allow_ips = a.b (from environment (FORWARDED_ALLOW_IPS)): "
         "'a.b' is not an IP address, a network or '*'")),
        ({"SCRIPT_NAME": "app"},
         "root_path = app (from environment (SCRIPT_NAME)): must be empty or start with '/'"),
        ({"UNITCORN_CMD_ARGS": "--workers -1"},
         "workers = -1 (from UNITCORN_CMD_ARGS): must be at least 1"),
        ({"GUNICORN_CMD_ARGS": "--timeout=soon"},
         "timeout = soon (from GUNICORN_CMD_ARGS): must be a whole number"),
    ],
)
def test_environment_errors_name_the_variable(load, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", env=env)
    assert str(info.value) == message


def test_first_error_in_declaration_order(load) -> None:
    with pytest.raises(ConfigError, match="^workers"):
        load("app:app", "--timeout", "x", "-w", "0")


def test_text_values_that_need_quoting_are_quoted(load) -> None:
    with pytest.raises(ConfigError, match=r"^workers = ' 2x' \(from"):
        load("app:app", "-w", " 2x")


def test_every_default_converts() -> None:
    for setting in SETTINGS:
        if setting.name != "chdir":  # relative to the launch directory; covered elsewhere
            setting.convert(setting.default)


def test_bad_bind_among_several_is_named(load) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", "-b", "127.0.0.1:1", "-b", "unix:")
    assert str(info.value) == (
        "bind = ['127.0.0.1:1', 'unix:'] (from command line): 'unix:': unix socket path is empty"
    )
