"""Each source of settings, and their precedence: default < env < file < *_CMD_ARGS < argv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from unitcorn.binds import Bind
from unitcorn.settings import ConfigError, UsageError, load_settings


def test_defaults(load) -> None:
    s = load("app:app")
    assert s.app_uri == "app:app"
    assert s.bind == [Bind("tcp", host="127.0.0.1", port=8000)]
    assert (s.workers, s.threads, s.worker_class) == (1, 1, "sync")
    assert (s.timeout, s.graceful_timeout, s.keepalive, s.backlog) == (30, 30, 2, 2048)
    assert (s.max_requests, s.max_requests_jitter, s.worker_connections) == (0, 0, 1000)
    assert (s.limit_request_line, s.limit_request_fields) == (4094, 100)
    assert s.limit_request_field_size == 8190
    assert s.upgrade_timeout == 60
    assert s.raw_env == [] and s.env == {}
    assert (s.preload_app, s.daemon, s.reuse_port, s.capture_output) == (False,) * 4
    assert (s.pidfile, s.proc_name, s.user, s.group, s.accesslog) == (None,) * 5
    assert (s.errorlog, s.loglevel, s.umask, s.root_path) == ("-", "info", 0, "")
    assert s.access_log_format == '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    assert s.forwarded_allow_ips == frozenset({"127.0.0.1", "::1"})
    assert s.pythonpath == []
    assert s.config is None and s.config_source is None
    assert s.ignored == []
    assert all(s.origin(name) == "default" for name in s.as_dict() if name != "wsgi_app")
    assert s.origin("wsgi_app") == "command line"


def test_chdir_defaults_to_launch_directory(load, tmp_path: Path) -> None:
    assert load("app:app").chdir == str(tmp_path)


def test_relative_chdir_is_relative_to_launch_directory(load, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    assert load("app:app", "--chdir", "site").chdir == str(tmp_path / "site")


def test_config_file_beats_default(load, write, tmp_path: Path) -> None:
    path = write("unitcorn.conf.py", "workers = 4\nbind = 'unix:/tmp/a.sock'\n")
    s = load("app:app")
    assert s.workers == 4
    assert s.bind == [Bind("unix", path="/tmp/a.sock")]
    assert s.origin("workers") == str(path)
    assert s.config_source == str(path) == s.config
    assert s.origin("config") == "default"
    assert s.origin("timeout") == "default"


def test_unitcorn_conf_preferred_over_gunicorn_conf(load, write) -> None:
    write("gunicorn.conf.py", "workers = 2\n")
    assert load("app:app").workers == 2
    write("unitcorn.conf.py", "workers = 3\n")
    assert load("app:app").workers == 3


def test_explicit_config_file(load, write, tmp_path: Path) -> None:
    write("unitcorn.conf.py", "workers = 3\n")
    path = write("etc/site.conf.py", "workers = 5\n")
    s = load("-c", "etc/site.conf.py", "app:app")
    assert s.workers == 5
    assert s.config_source == str(path)
    assert s.origin("config") == "command line"
    assert load("--config", f"file:{path}", "app:app").workers == 5


def test_cmd_args_beat_config_file(load, write) -> None:
    path = write("unitcorn.conf.py", "workers = 4\ntimeout = 9\n")
    s = load("app:app", env={"UNITCORN_CMD_ARGS": "--workers=6 -k gthread"})
    assert (s.workers, s.worker_class, s.timeout) == (6, "gthread", 9)
    assert s.origin("workers") == "UNITCORN_CMD_ARGS"
    assert s.origin("timeout") == str(path)


def test_argv_beats_cmd_args(load, write) -> None:
    write("unitcorn.conf.py", "workers = 4\n")
    s = load("app:app", "-w", "8", env={"UNITCORN_CMD_ARGS": "--workers 6 --threads 3"})
    assert (s.workers, s.threads) == (8, 3)
    assert s.origin("workers") == "command line"
    assert s.origin("threads") == "UNITCORN_CMD_ARGS"


def test_gunicorn_cmd_args_used_when_ours_unset(load) -> None:
    s = load("app:app", env={"GUNICORN_CMD_ARGS": "--bind=127.0.0.1 --workers=3"})
    assert s.workers == 3 and s.origin("workers") == "GUNICORN_CMD_ARGS"
    assert s.bind == [Bind("tcp", host="127.0.0.1", port=8000)]


def test_ours_wins_over_gunicorn_cmd_args_even_empty(load) -> None:
    env = {"GUNICORN_CMD_ARGS": "--workers=3", "UNITCORN_CMD_ARGS": ""}
    assert load("app:app", env=env).workers == 1


def test_cmd_args_can_name_the_config_file(load, write) -> None:
    write("other.py", "workers = 7\n")
    s = load("app:app", env={"UNITCORN_CMD_ARGS": "-c other.py"})
    assert s.workers == 7 and s.origin("config") == "UNITCORN_CMD_ARGS"
    write("argv.py", "workers = 2\n")
    s = load("app:app", "-c", "argv.py", env={"UNITCORN_CMD_ARGS": "-c other.py"})
    assert s.workers == 2 and s.origin("config") == "command line"


def test_cmd_args_usage_errors_name_the_variable(load) -> None:
    with pytest.raises(UsageError, match="^UNITCORN_CMD_ARGS: unrecognized arguments: --nope"):
        load("app:app", env={"UNITCORN_CMD_ARGS": "--nope"})
    with pytest.raises(UsageError, match="^GUNICORN_CMD_ARGS: No closing quotation"):
        load("app:app", env={"GUNICORN_CMD_ARGS": "--name 'x"})


def test_append_settings_replace_lower_sources(load, write) -> None:
    write("unitcorn.conf.py", "bind = ['127.0.0.1:1', '127.0.0.1:2']\nraw_env = ['A=1']\n")
    s = load("app:app", "-b", "127.0.0.1:3", "-b", "unix:/tmp/x", "-e", "B=2", "--env", "C=x=y")
    assert [str(b) for b in s.bind] == ["127.0.0.1:3", "unix:/tmp/x"]
    assert s.raw_env == ["B=2", "C=x=y"]
    assert s.env == {"B": "2", "C": "x=y"}


def test_web_concurrency(load, write) -> None:
    s = load("app:app", env={"WEB_CONCURRENCY": "5"})
    assert s.workers == 5 and s.origin("workers") == "environment (WEB_CONCURRENCY)"
    write("unitcorn.conf.py", "workers = 2\n")
    assert load("app:app", env={"WEB_CONCURRENCY": "5"}).workers == 2


def test_web_concurrency_read_per_call_not_at_import(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert load_settings(["app:app"], cwd=str(tmp_path)).workers == 3
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert load_settings(["app:app"], cwd=str(tmp_path)).workers == 4


def test_empty_environment_variable_counts_as_unset(load) -> None:
    s = load("app:app", env={"WEB_CONCURRENCY": "", "PORT": ""})
    assert s.workers == 1 and s.origin("workers") == "default"
    assert str(s.bind[0]) == "127.0.0.1:8000"


def test_port(load) -> None:
    s = load("app:app", env={"PORT": "5000"})
    assert s.bind == [Bind("tcp", host="0.0.0.0", port=5000)]
    assert s.origin("bind") == "environment (PORT)"
    assert str(load("app:app", "-b", ":1", env={"PORT": "5000"}).bind[0]) == "0.0.0.0:1"


def test_forwarded_allow_ips_and_script_name_from_environment(load) -> None:
    s = load("app:app", env={"FORWARDED_ALLOW_IPS": "10.0.0.1, 10.1.0.0/16", "SCRIPT_NAME": "/x/"})
    assert s.forwarded_allow_ips == frozenset({"10.0.0.1", "10.1.0.0/16"})
    assert s.root_path == "/x"
    assert s.origin("root_path") == "environment (SCRIPT_NAME)"


def test_python_module_config(load, write, tmp_path: Path) -> None:
    write("confpkg/__init__.py", "")
    write("confpkg/web.py", "workers = 3\nwsgi_app = 'site:app'\n")
    s = load("-c", "python:confpkg.web")
    assert s.workers == 3 and s.app_uri == "site:app"
    assert s.config_source == "python:confpkg.web"
    assert s.origin("workers") == "python:confpkg.web"
    assert str(tmp_path) not in sys.path  # the launch directory was added only while importing
    # Executed afresh each time, so a reload sees the edited module.
    write("confpkg/web.py", "workers = 9\n")
    assert load("-c", "python:confpkg.web", "app:app").workers == 9


def test_python_module_missing(load) -> None:
    with pytest.raises(ConfigError) as info:
        load("-c", "python:no_such_config_module_xyz", "app:app")
    assert str(info.value) == (
        "config = python:no_such_config_module_xyz (from command line): no such module"
    )
    with pytest.raises(ConfigError, match="python: needs a module name"):
        load("-c", "python:", "app:app")


def test_python_module_that_raises(load, write) -> None:
    write("badconf.py", "workers = 2\nraise RuntimeError('boom')\n")
    with pytest.raises(ConfigError) as info:
        load("-c", "python:badconf", "app:app")
    assert str(info.value).endswith(
        "(from command line): raised RuntimeError at line 2: boom"
    )


def test_missing_explicit_config_file(load, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load("-c", "nope.conf.py", "app:app")
    error = info.value
    assert (error.setting, error.value, error.source) == ("config", "nope.conf.py", "command line")
    assert str(error) == "config = nope.conf.py (from command line): no such file"


def test_unreadable_config(load, tmp_path: Path) -> None:
    (tmp_path / "dir.py").mkdir()
    with pytest.raises(ConfigError, match=r"^config = dir.py \(from command line\): cannot read"):
        load("-c", "dir.py", "app:app")


def test_config_file_that_raises_names_file_line_and_exception(load, write) -> None:
    path = write("site.conf.py", "import os\n\nworkers = 1 / 0\n")
    with pytest.raises(ConfigError) as info:
        load("-c", str(path), "app:app")
    assert str(info.value) == (
        f"config = {path} (from command line): raised ZeroDivisionError at line 3: "
        "division by zero"
    )


def test_config_file_syntax_error(load, write) -> None:
    write("unitcorn.conf.py", "workers = = 2\n")
    with pytest.raises(ConfigError, match=r"\(from default\): raised SyntaxError at line 1"):
        load("app:app")


def test_config_file_sys_exit_is_reported_not_obeyed(load, write) -> None:
    write("unitcorn.conf.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match="raised SystemExit at line 2: 3"):
        load("app:app")


def test_config_file_sees_its_own_path(load, write) -> None:
    path = write("unitcorn.conf.py", "import os\nproc_name = os.path.basename(__file__)\n")
    assert load("app:app").proc_name == path.name


def test_config_file_helpers_and_unknown_names_are_skipped(load, write) -> None:
    write(
        "gunicorn.conf.py",
        """
        import multiprocessing
        CORES = 2
        def _double(n):
            return 2 * n
        workers = _double(CORES) + 1
        my_own_thing = {"x": 1}
        """,
    )
    s = load("app:app")
    assert s.workers == 5
    assert s.ignored == []


def test_gunicorn_only_keys_are_ignored_and_recorded(load, write) -> None:
    path = write(
        "gunicorn.conf.py",
        """
        worker_tmp_dir = "/dev/shm"
        spew = True
        tmp_upload_dir = "/tmp"
        certfile = None
        config = "elsewhere.py"
        """,
    )
    s = load("app:app", "--worker-tmp-dir", "/dev/shm", "--spew")
    assert sorted(s.ignored) == sorted([
        ("worker_tmp_dir", str(path)),
        ("spew", str(path)),
        ("tmp_upload_dir", str(path)),
        ("config", str(path)),
        ("worker_tmp_dir", "command line"),
        ("spew", "command line"),
    ])
    assert s.config_source == str(path)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("protocol", "'uwsgi'", "speaks HTTP only"),
    ],
)
def test_refused_gunicorn_keys(load, write, key: str, value: str, reason: str) -> None:
    path = write("gunicorn.conf.py", f"{key} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load("app:app")
    assert str(info.value).startswith(f"{key} = {value.strip(chr(39))} (from {path}): ")
    assert reason in str(info.value)


def test_wsgi_app_from_config_and_argv_wins(load, write) -> None:
    path = write("unitcorn.conf.py", "wsgi_app = 'site.wsgi:application'\n")
    s = load()
    assert s.app_uri == "site.wsgi:application" and s.origin("wsgi_app") == str(path)
    assert load("other:app").app_uri == "other:app"


def test_missing_app_is_a_usage_error(load) -> None:
    with pytest.raises(UsageError, match="no application module specified"):
        load()
    with pytest.raises(UsageError, match="no application module specified"):
        load("--check-config")


def test_print_config_needs_no_app(load) -> None:
    s = load("--print-config")
    assert s.print_config and s.app_uri is None


def test_config_values_go_through_converters(load, write) -> None:
    # Real gunicorn.conf.py files pass text taken from os.environ.
    write(
        "unitcorn.conf.py",
        """
        workers = "3"
        preload_app = "true"
        umask = "022"
        worker_class = "gunicorn.workers.gthread.ThreadWorker"
        forwarded_allow_ips = ["10.0.0.1", "*"]
        loglevel = "DEBUG"
        pythonpath = "/a, /b"
        """,
    )
    s = load("app:app")
    assert (s.workers, s.preload_app, s.umask, s.worker_class) == (3, True, 0o22, "gthread")
    assert s.forwarded_allow_ips == frozenset({"10.0.0.1", "*"})
    assert s.loglevel == "debug"
    assert s.pythonpath == ["/a", "/b"]


def test_help_and_version_load_only_defaults(load, write) -> None:
    write("unitcorn.conf.py", "raise RuntimeError('broken config')\n")
    s = load("--help", env={"WEB_CONCURRENCY": "zero"})
    assert s.show_help and not s.show_version and s.workers == 1
    s = load("-v")
    assert s.show_version and not s.show_help


def test_does_not_touch_os_environ_or_cwd(write, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    write("unitcorn.conf.py", "raw_env = ['SECRET=1']\n")
    environ_before = dict(os.environ)
    cwd_before = os.getcwd()
    path_before = list(sys.path)
    given = {"PORT": "5000", "UNITCORN_CMD_ARGS": "-e X=1"}
    s = load_settings(["app:app", "-e", "Y=2", "--chdir", str(tmp_path)], given, str(tmp_path))
    assert s.raw_env == ["Y=2"]
    assert dict(os.environ) == environ_before
    assert given == {"PORT": "5000", "UNITCORN_CMD_ARGS": "-e X=1"}
    assert os.getcwd() == cwd_before
    assert sys.path == path_before


def test_reload_from_scratch_sees_edited_file(load, write) -> None:
    write("unitcorn.conf.py", "workers = 2\n")
    first = load("app:app")
    write("unitcorn.conf.py", "timeout = 5\n")
    second = load("app:app")
    assert (first.workers, first.timeout) == (2, 30)
    assert (second.workers, second.timeout) == (1, 5)


def test_settings_are_read_only(load) -> None:
    s = load("app:app")
    with pytest.raises(AttributeError, match="read-only"):
        s.workers = 3
    with pytest.raises(AttributeError, match="no setting named 'nope'"):
        s.nope  # noqa: B018
    with pytest.raises(KeyError):
        s.origin("nope")
    s.as_dict()["workers"] = 99
    assert s.workers == 1


def test_effective_worker_class(load) -> None:
    assert load("app:app").effective_worker_class == "sync"
    assert load("app:app", "--threads", "4").effective_worker_class == "gthread"
    assert load("app:app", "-k", "gthread").effective_worker_class == "gthread"
    assert load("app:app", "--threads", "4").worker_class == "sync"
