"""A command line using every gunicorn 27 flag starts unitcorn, or stops it with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO

from unitcorn.settings.catalog import IGNORED_BY_NAME
from unitcorn.settings.tls import TLS_ONLY

# gunicorn's own settings table is the list of flags to try (the `test` extra installs it).
KNOWN_SETTINGS = pytest.importorskip("gunicorn.config").KNOWN_SETTINGS

# A value an operator might really give, per gunicorn setting with a valued flag; ignored
# settings get one other than gunicorn's default, so that each must produce its warning.
# Paths are relative to the launch directory (the test's tmp_path).
PLAUSIBLE = {
    "backlog": "64", "workers": "2", "worker_class": "gthread", "threads": "2",
    "worker_connections": "100", "max_requests": "1000", "max_requests_jitter": "10",
    "timeout": "30", "graceful_timeout": "5", "keepalive": "2", "limit_request_line": "4094",
    "limit_request_fields": "100", "limit_request_field_size": "8190",
    "reload_engine": "poll", "reload_extra_files": "templates/base.html",
    "chdir": ".", "raw_env": "DJANGO_SETTINGS_MODULE=site.settings", "worker_tmp_dir": "/dev/shm",
    "user": str(os.getuid()), "group": str(os.getgid()), "umask": "022",
    "forwarded_allow_ips": "127.0.0.1", "accesslog": "access.log",
    "access_log_format": '%(h)s "%(r)s" %(s)s', "errorlog": "error.log", "loglevel": "debug",
    "logger_class": "site.logging.Logger", "logconfig": "logging.conf",
    "logconfig_json": "logging.json", "syslog_addr": "unix:///dev/log",
    "syslog_prefix": "site", "syslog_facility": "local0", "statsd_host": "localhost:8125",
    "dogstatsd_tags": "env:prod", "statsd_prefix": "site", "proc_name": "site",
    "pythonpath": ".", "proxy_allow_ips": "10.0.0.1", "proxy_protocol": "v1",
    "uwsgi_allow_ips": "10.0.0.1", "ssl_version": "TLSv1_2", "cert_reqs": "2",
    "ca_certs": "/etc/ssl/certs/ca-certificates.crt", "ciphers": "TLSv1.2",
    "http_protocols": "h1,h2", "http2_cleartext": "prior-knowledge",
    "http2_max_concurrent_streams": "50", "http2_initial_window_size": "131070",
    "http2_max_frame_size": "32768", "http2_max_header_list_size": "32768",
    "raw_paste_global_conf": "FOO=bar", "forwarder_headers": "SCRIPT_NAME",
    "header_map": "refuse", "asgi_loop": "asyncio", "asgi_lifespan": "off",
    "asgi_disconnect_grace_period": "5", "websocket_max_message_size": "1048576",
    "http_parser": "python", "root_path": "/site", "dirty_apps": "site.tasks:Tasks",
    "dirty_workers": "2", "dirty_timeout": "60", "dirty_threads": "2",
    "dirty_graceful_timeout": "10", "control_socket": "control.sock",
    "control_socket_mode": "0o660",
    # Refused settings, at gunicorn's default: accepted without a word.
    "protocol": "http",
}
# Flags a starting server cannot take: each would stop it, detach it, or only print.
NOT_FOR_A_START = {"daemon", "print_config", "check_config", "config", "bind", "pidfile",
                   # Implemented, with tests of their own (test_log_config.py,
                   # test_logger_class.py): they replace the logging this test reads.
                   "logconfig", "logconfig_json", "logger_class",
                   # Implemented, in test_paste.py: it replaces the application.
                   "paste",
                   # They turn TLS on, and need real files: test_tls.py.
                   "certfile", "keyfile"}
# Refused unless at gunicorn's default; each gets its own test below.
REFUSED = {
    "protocol": "uwsgi",
}
def _gunicorn_command_line() -> tuple[list[str], set[str]]:
    """Every gunicorn flag (its first spelling) with a plausible value; the names given."""
    args: list[str] = []
    names: set[str] = set()
    for setting in KNOWN_SETTINGS:
        if not setting.cli or setting.name in NOT_FOR_A_START:
            continue
        if setting.name in REFUSED and setting.name not in PLAUSIBLE:
            continue
        flag = setting.cli[0]
        names.add(setting.name)
        if setting.action in ("store_true", "store_const"):
            args.append(flag)
        else:
            assert setting.name in PLAUSIBLE, f"add a plausible value for {flag} to PLAUSIBLE"
            args += [flag, PLAUSIBLE[setting.name]]
    return args, names


def test_every_gunicorn_flag_at_once_starts_and_warns_once_per_ignored_setting(
    start_server, tmp_path: Path,
) -> None:
    args, names = _gunicorn_command_line()
    server = start_server("testapps:route", *args)
    assert server.get("/")[0] == 200
    log = server.log()
    assert "unrecognized arguments" not in log
    warned = [line.split("configuration warning: ", 1)[1].split(" = ")[0]
              for line in log.splitlines() if "configuration warning: " in line]
    assert len(warned) == len(set(warned)), "one warning per setting"
    expected = {name for name in names if name in IGNORED_BY_NAME}
    # --suppress-ragged-eofs is gunicorn's default: giving it changes nothing.
    expected.discard("suppress_ragged_eofs")
    # TLS settings without certfile: TLS is off, so they are ignored, and say so.
    expected |= names & TLS_ONLY.keys()
    assert set(warned) == expected


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{APPS}"}
    return subprocess.run([sys.executable, "-m", "unitcorn", *args], capture_output=True,
                          text=True, timeout=20, cwd=cwd, env=env)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_flag_exits_78_with_one_line_naming_it(tmp_path: Path, name: str) -> None:
    setting = next(s for s in KNOWN_SETTINGS if s.name == name)
    for flag in setting.cli:
        result = _run(flag, REFUSED[name], "testapps:route", cwd=tmp_path)
        assert result.returncode == 78, result.stderr
        assert result.stderr.startswith(
            f"unitcorn: configuration error: {name} = {REFUSED[name]} (from command line): "
        )
        assert result.stderr.count("\n") == 1


def test_check_config_reports_warnings_and_path_errors(tmp_path: Path) -> None:
    ok = _run("--check-config", "--spew", "--proxy-protocol", "off", "testapps:route",
              cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.startswith("unitcorn: configuration warning: spew = True (from command line)")
    assert ok.stderr.count("\n") == 1
    bad = _run("--check-config", "--pid", "run/app.pid", "testapps:route", cwd=tmp_path)
    assert bad.returncode == 78
    assert bad.stderr == (
        "unitcorn: configuration error: pidfile = run/app.pid (from command line): "
        f"directory {tmp_path}/run does not exist\n"
    )


def test_a_log_file_in_a_missing_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = _run("--access-logfile", "/nonexistent/access.log", "testapps:route", cwd=tmp_path)
    assert result.returncode == 78
    assert result.stderr == (
        "unitcorn: configuration error: accesslog = /nonexistent/access.log "
        "(from command line): directory /nonexistent does not exist\n"
    )


def test_a_reload_logs_the_new_configurations_warnings(start_server, tmp_path: Path) -> None:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("workers = 1\n")
    server = start_server("testapps:route", "-c", str(config))
    assert "configuration warning" not in server.log()
    config.write_text("workers = 1\nspew = True\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload complete generation=2")
    assert f"configuration warning: spew = True (from {config})" in server.log()
