"""Every setting unitcorn knows, declared once; plus the gunicorn keys we ignore or refuse."""

from __future__ import annotations

from unitcorn.settings import convert as c
from unitcorn.settings.callables import no_op, to_hook
from unitcorn.settings.setting import IgnoredSetting, Setting

DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def _hook(name: str, params: tuple[str, ...], help: str) -> Setting:
    return Setting(
        name=name,
        section="Server Hooks",
        default=no_op,
        convert=to_hook(params),
        help=help,
        hook_params=params,
    )


SETTINGS: tuple[Setting, ...] = (
    # -- Config File --
    Setting(
        name="config", section="Config File", default=None, convert=c.to_optional_text,
        flags=("-c", "--config"), metavar="CONFIG",
        default_doc="./unitcorn.conf.py, else ./gunicorn.conf.py, if either exists",
        help="The Python config file to load (PATH), or python:MODULE to load a module. Its "
        "module-level names that are setting names become settings.",
    ),
    Setting(
        name="wsgi_app", section="Config File", default=None, convert=c.to_optional_text,
        help="The application, as MODULE:CALLABLE, when none is given on the command line.",
    ),
    # -- Server Socket --
    Setting(
        name="bind", section="Server Socket", default=["127.0.0.1:8000"], convert=c.to_binds,
        flags=("-b", "--bind"), action="append", metavar="ADDRESS",
        env="PORT", from_env=c.port_to_bind,
        default_doc="127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set",
        help="An address to listen on: HOST:PORT, [IPV6]:PORT, HOST (port 8000), unix:PATH or "
        "fd://N. Repeat to listen on several.",
    ),
    Setting(
        name="backlog", section="Server Socket", default=2048, convert=c.to_int(1),
        flags=("--backlog",), metavar="INT",
        help="The most connections that may wait to be accepted.",
    ),
    Setting(
        name="reuse_port", section="Server Socket", default=False, convert=c.to_bool,
        flags=("--reuse-port",), action="store_true",
        help="Set SO_REUSEPORT on listening sockets.",
    ),
    # -- Worker Processes --
    Setting(
        name="workers", section="Worker Processes", default=1, convert=c.to_int(1),
        flags=("-w", "--workers"), metavar="INT", env="WEB_CONCURRENCY",
        default_doc="$WEB_CONCURRENCY, else 1",
        help="The number of worker processes.",
    ),
    Setting(
        name="max_workers", section="Worker Processes", default=256, convert=c.to_int(1, 4096),
        flags=("--max-workers",), metavar="INT", gunicorn=False,
        help="The most workers the master will run: `workers`, TTIN and `unitcorn ctl scale` "
        "cannot go above it, and the master's shared heartbeat memory is sized for it at start "
        "(a reload may lower it, not raise it above its starting value).",
    ),
    Setting(
        name="worker_class", section="Worker Processes", default="sync",
        convert=c.to_worker_class, flags=("-k", "--worker-class"), metavar="STRING",
        help="The worker type: sync (one request at a time) or gthread (a thread pool). "
        "gunicorn's names for these, such as gunicorn.workers.gthread.ThreadWorker, also work.",
    ),
    Setting(
        name="threads", section="Worker Processes", default=1, convert=c.to_int(1),
        flags=("--threads",), metavar="INT",
        help="Threads per gthread worker. More than 1 with the sync worker class selects "
        "gthread, as in gunicorn.",
    ),
    Setting(
        name="worker_connections", section="Worker Processes", default=1000,
        convert=c.to_int(1), flags=("--worker-connections",), metavar="INT",
        help="The most simultaneous connections one worker holds (sync and gthread).",
    ),
    Setting(
        name="max_requests", section="Worker Processes", default=0, convert=c.to_int(0),
        flags=("--max-requests",), metavar="INT",
        help="Restart a worker gracefully after this many requests; 0 never restarts.",
    ),
    Setting(
        name="max_requests_jitter", section="Worker Processes", default=0, convert=c.to_int(0),
        flags=("--max-requests-jitter",), metavar="INT",
        help="Add a random 0..N to max_requests per worker, so workers do not restart together.",
    ),
    Setting(
        name="timeout", section="Worker Processes", default=30, convert=c.to_int(0),
        flags=("-t", "--timeout"), metavar="INT",
        help="Seconds a worker may go without a heartbeat before it is aborted and replaced; "
        "0 disables the check.",
    ),
    Setting(
        name="graceful_timeout", section="Worker Processes", default=30, convert=c.to_int(0),
        flags=("--graceful-timeout",), metavar="INT",
        help="Seconds workers get to finish in-flight requests after a stop or restart "
        "signal before they are killed.",
    ),
    Setting(
        name="keepalive", section="Worker Processes", default=2, convert=c.to_int(0),
        flags=("--keep-alive",), metavar="INT",
        help="Seconds a kept-alive connection may sit idle before the server closes it; 0 turns "
        "keep-alive off.",
    ),
    Setting(
        name="header_timeout", section="Worker Processes", default=30, convert=c.to_int(1),
        flags=("--header-timeout",), metavar="INT", gunicorn=False,
        help="Seconds a client has to send a whole request head, once its first byte arrived "
        "(408 after that). Separate from --timeout, which is the worker heartbeat.",
    ),
    Setting(
        name="body_timeout", section="Worker Processes", default=60, convert=c.to_int(1),
        flags=("--body-timeout",), metavar="INT", gunicorn=False,
        help="Seconds a client has to send a whole request body, counted from the end of its "
        "head; a slower upload is dropped (408 if no response has started), so a trickling "
        "client cannot hold a worker.",
    ),
    Setting(
        name="send_timeout", section="Worker Processes", default=30, convert=c.to_int(1),
        flags=("--send-timeout",), metavar="INT", gunicorn=False,
        help="A client must accept at least 64 KiB of a response (or all of it, if less) every "
        "this many seconds; a slower reader is dropped, so it cannot hold a worker.",
    ),
    Setting(
        name="upgrade_timeout", section="Worker Processes", default=60, convert=c.to_int(1),
        flags=("--upgrade-timeout",), metavar="INT", gunicorn=False,
        help="Seconds a new master started by USR2 has to become ready.",
    ),
    Setting(
        name="control_socket", section="Worker Processes", default=None,
        convert=c.to_optional_text, flags=("--control-socket",), metavar="PATH",
        env="RUNTIME_DIRECTORY", from_env=c.runtime_directory_to_control_socket, gunicorn=False,
        default_doc="$RUNTIME_DIRECTORY/control.sock when RUNTIME_DIRECTORY is set, else none",
        help="The unix socket `unitcorn ctl` talks to the master on (status, reload --wait, "
        "scale, upgrade).",
    ),
    # -- Security --
    Setting(
        name="limit_request_line", section="Security", default=4094,
        convert=c.to_int(0, 8190), flags=("--limit-request-line",), metavar="INT",
        help="The longest request line in bytes, 0..8190; 0 means the maximum, 8190.",
    ),
    Setting(
        name="limit_request_fields", section="Security", default=100,
        convert=c.to_int(0, 32768), flags=("--limit-request-fields",), metavar="INT",
        help="The most header fields in a request (and trailer fields after a chunked body), "
        "up to 32768; 0 means the maximum, 32768.",
    ),
    Setting(
        name="limit_request_field_size", section="Security", default=8190, convert=c.to_int(0),
        flags=("--limit-request-field_size", "--limit-request-field-size"), metavar="INT",
        help="The longest header field line in bytes; 0 means the default maximum, 8190 (never "
        "unlimited: a whole head is also refused past about limit_request_fields times this).",
    ),
    # -- Server Mechanics --
    Setting(
        name="preload_app", section="Server Mechanics", default=False, convert=c.to_bool,
        flags=("--preload",), action="store_true",
        help="Import the application in the master, before forking workers.",
    ),
    Setting(
        name="chdir", section="Server Mechanics", default=".", convert=c.to_directory,
        flags=("--chdir",), metavar="DIR", relative_to_cwd=True,
        default_doc="the directory unitcorn was started in",
        help="Change to this directory before loading the application.",
    ),
    Setting(
        name="daemon", section="Server Mechanics", default=False, convert=c.to_bool,
        flags=("-D", "--daemon"), action="store_true",
        help="Detach from the terminal and run in the background.",
    ),
    Setting(
        name="raw_env", section="Server Mechanics", default=[], convert=c.to_raw_env,
        flags=("-e", "--env"), action="append", metavar="ENV",
        help="Set an environment variable, KEY=VALUE, for the application. Repeatable.",
    ),
    Setting(
        name="pidfile", section="Server Mechanics", default=None, convert=c.to_optional_text,
        flags=("-p", "--pid"), metavar="FILE",
        help="Write the master's pid to this file.",
    ),
    Setting(
        name="user", section="Server Mechanics", default=None, convert=c.to_uid,
        flags=("-u", "--user"), metavar="USER", default_doc="the current user",
        help="Run workers as this user (a name or a uid).",
    ),
    Setting(
        name="group", section="Server Mechanics", default=None, convert=c.to_gid,
        flags=("-g", "--group"), metavar="GROUP", default_doc="the current group",
        help="Run workers as this group (a name or a gid).",
    ),
    Setting(
        name="umask", section="Server Mechanics", default=0, convert=c.to_umask,
        flags=("-m", "--umask"), metavar="INT", show=c.show_octal,
        help="The file mode creation mask, e.g. 0o22, 022 (octal) or 18 (decimal). It also "
        "sets the permissions of unix sockets.",
    ),
    Setting(
        name="forwarded_allow_ips", section="Server Mechanics", default="127.0.0.1,::1",
        convert=c.to_ip_set, flags=("--forwarded-allow-ips",), metavar="STRING",
        env="FORWARDED_ALLOW_IPS", default_doc="$FORWARDED_ALLOW_IPS, else 127.0.0.1,::1",
        help="Comma-separated front-end addresses or networks trusted to set the scheme "
        "(X-Forwarded-Proto, X-Forwarded-Ssl, Forwarded proto=); * trusts every peer. "
        "REMOTE_ADDR is always the socket peer: the client address a proxy forwards is left "
        "to the application (HTTP_X_FORWARDED_FOR, HTTP_FORWARDED).",
    ),
    Setting(
        name="root_path", section="Server Mechanics", default="", convert=c.to_root_path,
        flags=("--root-path",), metavar="PATH", env="SCRIPT_NAME", gunicorn=False,
        default_doc="$SCRIPT_NAME, else empty",
        help="The URL prefix the application is mounted at (the WSGI SCRIPT_NAME).",
    ),
    Setting(
        name="pythonpath", section="Server Mechanics", default=None, convert=c.to_path_list,
        flags=("--pythonpath",), metavar="STRING",
        help="Comma-separated directories to add to the Python path.",
    ),
    # -- Logging --
    Setting(
        name="accesslog", section="Logging", default=None, convert=c.to_optional_text,
        flags=("--access-logfile",), metavar="FILE",
        help="Where to write the access log; - means stdout. None (the default) writes none.",
    ),
    Setting(
        name="access_log_format", section="Logging", default=DEFAULT_ACCESS_LOG_FORMAT,
        convert=c.to_any_text, flags=("--access-logformat",), metavar="STRING",
        help="The access log line, in gunicorn's %(atom)s format.",
    ),
    Setting(
        name="errorlog", section="Logging", default="-", convert=c.to_text,
        flags=("--error-logfile", "--log-file"), metavar="FILE",
        help="Where to write the error log; - means stderr.",
    ),
    Setting(
        name="loglevel", section="Logging", default="info", convert=c.to_loglevel,
        flags=("--log-level",), metavar="LEVEL",
        help="The least severe error log level written: debug, info, warning, error or "
        "critical.",
    ),
    Setting(
        name="capture_output", section="Logging", default=False, convert=c.to_bool,
        flags=("--capture-output",), action="store_true",
        help="Send the application's stdout and stderr to the error log.",
    ),
    # -- Logging: the operator's logging config, syslog, statsd (gunicorn's) --
    Setting(
        name="logconfig", section="Logging", default=None, convert=c.to_optional_readable_file,
        flags=("--log-config",), metavar="FILE", relative_to_cwd=True,
        help="A logging.config.fileConfig ini file, applied after the settings above; it may "
        "configure gunicorn.error and gunicorn.access (see unitcorn's logging in the docs).",
    ),
    Setting(
        name="logconfig_dict", section="Logging", default={}, convert=c.to_dict,
        help="A logging.config.dictConfig dictionary, laid over gunicorn's defaults (its "
        "top-level keys replace theirs); wins over logconfig_json and logconfig.",
    ),
    Setting(
        name="logconfig_json", section="Logging", default=None, convert=c.to_optional_readable_file,
        flags=("--log-config-json",), metavar="FILE", relative_to_cwd=True,
        help="A JSON file holding a logconfig_dict dictionary; wins over logconfig.",
    ),
    Setting(
        name="logger_class", section="Logging", default="gunicorn.glogging.Logger",
        convert=c.to_text, flags=("--logger-class",), metavar="STRING",
        help="A gunicorn-style logger class (e.g. a gunicorn.glogging.Logger subclass "
        "overriding access()), as package.module.Class; gunicorn's own classes mean "
        "unitcorn's built-in logging.",
    ),
    Setting(
        name="syslog", section="Logging", default=False, convert=c.to_bool,
        flags=("--log-syslog",), action="store_true",
        help="Send the error log, and the access log, to syslog as well.",
    ),
    Setting(
        name="syslog_addr", section="Logging", default="udp://localhost:514",
        convert=c.to_syslog_address, flags=("--log-syslog-to",), metavar="SYSLOG_ADDR",
        help="Where syslog listens: unix://PATH[#dgram|#stream], udp://HOST:PORT or "
        "tcp://HOST:PORT (journald's is unix:///dev/log#dgram).",
    ),
    Setting(
        name="syslog_prefix", section="Logging", default=None, convert=c.to_optional_text,
        flags=("--log-syslog-prefix",), metavar="SYSLOG_PREFIX",
        help="The program name in syslog entries, gunicorn.PREFIX.error and "
        "gunicorn.PREFIX.access; default: the process name.",
    ),
    Setting(
        name="syslog_facility", section="Logging", default="user", convert=c.to_syslog_facility,
        flags=("--log-syslog-facility",), metavar="SYSLOG_FACILITY",
        help="The syslog facility: user, daemon, local0 … local7, …",
    ),
    Setting(
        name="disable_redirect_access_to_syslog", section="Logging", default=False,
        convert=c.to_bool, flags=("--disable-redirect-access-to-syslog",), action="store_true",
        help="With --log-syslog, keep the access log out of syslog.",
    ),
    Setting(
        name="statsd_host", section="Logging", default=None, convert=c.to_statsd_address,
        flags=("--statsd-host",), metavar="STATSD_ADDR", show=c.show_statsd_address,
        help="Send gunicorn's statsd metrics to HOST[:PORT] (UDP, port 8125 by default) or "
        "unix://PATH (a datagram socket); none by default.",
    ),
    Setting(
        name="statsd_prefix", section="Logging", default="", convert=c.to_any_text,
        flags=("--statsd-prefix",), metavar="STATSD_PREFIX",
        help="A prefix for every statsd metric name (a trailing . is added if missing).",
    ),
    Setting(
        name="dogstatsd_tags", section="Logging", default="", convert=c.to_any_text,
        flags=("--dogstatsd-tags",), metavar="DOGSTATSD_TAGS",
        help="Comma-separated dogstatsd tags appended to every metric, e.g. env:prod,app:shop.",
    ),
    # -- Process Naming --
    Setting(
        name="proc_name", section="Process Naming", default=None, convert=c.to_optional_text,
        flags=("-n", "--name"), metavar="STRING",
        help="The name in process titles (ps, top); default: the application.",
    ),
    # -- Debugging --
    Setting(
        name="print_config", section="Debugging", default=False, convert=c.to_bool,
        flags=("--print-config",), action="store_true",
        help="Print every setting with its value and origin, then exit.",
    ),
    Setting(
        name="check_config", section="Debugging", default=False, convert=c.to_bool,
        flags=("--check-config",), action="store_true",
        help="Check the configuration and that the application loads, then exit.",
    ),
    # -- Server Hooks (config file only, as in gunicorn) --
    _hook("on_starting", ("server",), "Called just before the master initializes."),
    _hook("on_reload", ("server",), "Called when the master reloads on HUP."),
    _hook("when_ready", ("server",), "Called just after the server has started."),
    _hook("pre_fork", ("server", "worker"), "Called just before a worker is forked."),
    _hook("post_fork", ("server", "worker"), "Called in the worker just after it is forked."),
    _hook("post_worker_init", ("worker",), "Called after a worker has loaded the application."),
    _hook("worker_int", ("worker",), "Called in a worker that received INT or QUIT."),
    _hook("worker_abort", ("worker",), "Called in a worker that received ABRT (a timeout)."),
    _hook("pre_exec", ("server",), "Called just before a new master is executed on USR2."),
    _hook("pre_request", ("worker", "req"), "Called just before a worker handles a request."),
    _hook(
        "post_request", ("worker", "req", "environ", "resp"),
        "Called after a worker has handled a request.",
    ),
    _hook("child_exit", ("server", "worker"), "Called in the master after a worker exited."),
    _hook("worker_exit", ("server", "worker"), "Called in a worker just before it exits."),
    _hook(
        "nworkers_changed", ("server", "new_value", "old_value"),
        "Called after the number of workers changed; old_value is None the first time.",
    ),
    _hook("on_exit", ("server",), "Called just before the master exits."),
)

# gunicorn settings that are harmless to leave out: a gunicorn.conf.py (or command line)
# using them still loads, and each use is recorded in Settings.ignored.
IGNORED: tuple[IgnoredSetting, ...] = (
    IgnoredSetting("worker_tmp_dir", ("--worker-tmp-dir",), metavar="DIR"),
    IgnoredSetting("tmp_upload_dir"),
    IgnoredSetting("secure_scheme_headers"),
    IgnoredSetting("forwarder_headers", ("--forwarder-headers",), metavar="STRING"),
    IgnoredSetting(
        "enable_stdio_inheritance", ("-R", "--enable-stdio-inheritance"), action="store_true"
    ),
    IgnoredSetting("reload", ("--reload",), action="store_true"),
    IgnoredSetting("reload_engine", ("--reload-engine",), metavar="STRING"),
    IgnoredSetting("reload_extra_files", ("--reload-extra-file",), "append", "FILES"),
    IgnoredSetting("spew", ("--spew",), action="store_true"),
    IgnoredSetting("sendfile", ("--no-sendfile",), action="store_false"),
    IgnoredSetting("initgroups", ("--initgroups",), action="store_true"),
    IgnoredSetting("default_proc_name"),
    IgnoredSetting("proxy_allow_ips", ("--proxy-allow-from",), metavar="STRING"),
    IgnoredSetting("strip_header_spaces"),
    IgnoredSetting("permit_obsolete_folding"),
    IgnoredSetting("permit_unconventional_http_method"),
    IgnoredSetting("permit_unconventional_http_version"),
    IgnoredSetting("casefold_http_method"),
    IgnoredSetting("header_map"),
    IgnoredSetting("ssl_context"),
    IgnoredSetting("ssl_version"),
    IgnoredSetting("cert_reqs"),
    IgnoredSetting("ca_certs"),
    IgnoredSetting("suppress_ragged_eofs"),
    IgnoredSetting("do_handshake_on_connect"),
    IgnoredSetting("ciphers"),
)

# gunicorn settings whose silent absence would change what clients get (plain HTTP instead of
# TLS; PROXY lines parsed as requests; a different application). Set to anything but a false
# value, they are a ConfigError rather than a surprise.
REFUSED: dict[str, str] = {
    "certfile": "unitcorn does not terminate TLS; put a TLS proxy in front of it",
    "keyfile": "unitcorn does not terminate TLS; put a TLS proxy in front of it",
    "proxy_protocol": "unitcorn does not speak the PROXY protocol",
    "paste": "unitcorn does not load PasteDeploy applications; give MODULE:CALLABLE",
}

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
IGNORED_BY_NAME: dict[str, IgnoredSetting] = {ignored.name: ignored for ignored in IGNORED}


def hook_names() -> tuple[str, ...]:
    """The server hooks, in declaration order."""
    return tuple(setting.name for setting in SETTINGS if setting.is_hook)
