"""Every setting unitcorn knows, declared once; plus the gunicorn keys we ignore or refuse."""

from __future__ import annotations

import importlib.util

from unitcorn.accesslog import DEFAULT_ACCESS_LOG_FORMAT
from unitcorn.settings import convert as c
from unitcorn.settings.callables import default_ssl_context, no_op, to_hook
from unitcorn.settings.setting import IgnoredSetting, Setting


def _hook(name: str, params: tuple[str, ...], help: str) -> Setting:
    return Setting(
        name=name,
        section="Server Hooks",
        default=no_op,
        convert=to_hook(params),
        help=help,
        hook_params=params,
    )


# -- the asgi worker's event loop (gunicorn 27's asgi_loop; uvicorn calls it --loop) --
ASGI_LOOPS = ("auto", "asyncio", "uvloop")


def _to_asgi_loop(value: object) -> str:
    loop = c.to_text(value).strip().lower()
    if loop not in ASGI_LOOPS:
        raise ValueError(f"must be one of {', '.join(ASGI_LOOPS)}")
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ValueError("uvloop is not installed (pip install 'unitcorn[uvloop]')")
    return loop


_ASGI_LOOP = Setting(
    name="asgi_loop", section="Worker Processes", default="auto", convert=_to_asgi_loop,
    flags=("--asgi-loop",), metavar="STRING",
    help="The asgi worker's event loop: auto (uvloop when it is installed, else asyncio), "
    "asyncio, or uvloop (which must be installed: the `uvloop` extra).",
)

ASGI_LIFESPANS = ("auto", "on", "off")


def _to_asgi_lifespan(value: object) -> str:
    mode = c.to_text(value).strip().lower()
    if mode not in ASGI_LIFESPANS:
        raise ValueError(f"must be one of {', '.join(ASGI_LIFESPANS)}")
    return mode


# The asgi worker's other settings, under gunicorn 27's names.
_ASGI_SETTINGS = (
    Setting(
        name="asgi_lifespan", section="Worker Processes", default="auto",
        convert=_to_asgi_lifespan, flags=("--asgi-lifespan",), metavar="STRING",
        help="The ASGI lifespan protocol: auto (run it if the app speaks it), on (an app that "
        "does not is a boot failure, exit 3), off (never). With auto and on, an app that "
        "answers lifespan.startup.failed fails the boot.",
    ),
    Setting(
        name="asgi_disconnect_grace_period", section="Worker Processes", default=3,
        convert=c.to_int(0, 3600), flags=("--asgi-disconnect-grace-period",), metavar="INT",
        help="Seconds an ASGI request may run on after its client disconnected (the app has "
        "been told: http.disconnect); then its task is cancelled. 0 cancels at once.",
    ),
    Setting(
        name="websocket_max_message_size", section="Worker Processes", default=16 << 20,
        convert=c.to_int(0), flags=("--websocket-max-message-size",), metavar="INT",
        help="The largest WebSocket message, in bytes, the asgi worker holds for the app; a "
        "larger one closes the connection with 1009. 0: no limit (each message is held whole "
        "in memory: keep a limit for clients you do not trust).",
    ),
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
        help="The worker type: sync (one request at a time), gthread (a thread pool), gevent "
        "(a greenlet per connection; needs gevent) or asgi (an asyncio event loop for ASGI 3 "
        "apps). gunicorn's names for these, such as gunicorn.workers.gthread.ThreadWorker, and "
        "uvicorn.workers.UvicornWorker for asgi, also work; eventlet is refused.",
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
        help="The most simultaneous connections one worker holds (every worker class).",
    ),
    _ASGI_LOOP,
    *_ASGI_SETTINGS,
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
        "this many seconds that the worker waits on it (the app's own time does not count); a "
        "slower reader is dropped, so it cannot hold a worker.",
    ),
    Setting(
        name="upgrade_timeout", section="Worker Processes", default=60, convert=c.to_int(1),
        flags=("--upgrade-timeout",), metavar="INT", gunicorn=False,
        help="Seconds a new master started by USR2 has to become ready.",
    ),
    Setting(
        name="control_socket", section="Worker Processes", default=None,
        convert=c.to_optional_text, flags=("--control-socket",), metavar="PATH",
        env="RUNTIME_DIRECTORY", from_env=c.runtime_directory_to_control_socket,
        default_doc="$RUNTIME_DIRECTORY/control.sock when RUNTIME_DIRECTORY is set, else none",
        help="The unix socket `unitcorn ctl` talks to the master on (status, reload --wait, "
        "scale, upgrade). gunicorn 27 has one too, always on, for its own gunicornc; "
        "unitcorn's is off unless set, and speaks to `unitcorn ctl`.",
    ),
    Setting(
        name="control_socket_mode", section="Worker Processes", default=0o600,
        convert=c.to_control_socket_mode, flags=("--control-socket-mode",), metavar="INT",
        show=c.show_octal,
        help="The control socket's file mode: 0o600 lets only its owner in, 0o660 its group "
        "too. Modes that let other users in are refused.",
    ),
    Setting(
        name="control_socket_disable", section="Worker Processes", default=False,
        convert=c.to_bool, flags=("--no-control-socket",), action="store_true",
        help="No control socket, even when control_socket or RUNTIME_DIRECTORY is set.",
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
        name="paste", section="Server Mechanics", default=None, convert=c.to_paste_target,
        flags=("--paste", "--paster"), metavar="STRING", relative_to_cwd=True,
        help="Load the application from a PasteDeploy ini file instead of MODULE:CALLABLE: "
        "`site.ini`, `config:site.ini` or `site.ini#name` for an [app:name] or [pipeline:name] "
        "section other than main. As in gunicorn, the ini's logging sections configure logging "
        "when it has a [loggers] section and logconfig is not set; its [server:…] sections are "
        "not read. Needs PasteDeploy: pip install 'unitcorn[paste]'.",
    ),
    Setting(
        name="raw_paste_global_conf", section="Server Mechanics", default=[],
        convert=c.to_paste_global_conf, flags=("--paste-global",), action="append",
        metavar="CONF",
        help="A PasteDeploy global config variable for --paste, KEY=VALUE (write a `=` in the "
        "key as `\\=`). Repeatable.",
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
        help="Comma-separated front-end addresses or networks (10.0.0.0/8) whose "
        "secure_scheme_headers and forwarder_headers are believed; * trusts every peer, and a "
        "unix-socket peer is always trusted. REMOTE_ADDR is always the socket peer (or what a "
        "PROXY header says, see proxy_protocol): X-Forwarded-For is left to the application.",
    ),
    # -- behind a proxy: gunicorn's header policy, PROXY protocol and parser knobs --
    Setting(
        name="secure_scheme_headers", section="Server Mechanics",
        default={"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"},
        convert=c.to_header_dict,
        help="Headers (upper-case names) and the exact value by which a front-end in "
        "forwarded_allow_ips says a request came over HTTPS: wsgi.url_scheme becomes https when "
        "one is present with its value, http when present with another; listed headers that "
        "disagree are refused (400).",
    ),
    Setting(
        name="forwarder_headers", section="Server Mechanics", default="SCRIPT_NAME,PATH_INFO",
        convert=c.to_name_list, flags=("--forwarder-headers",), metavar="STRING",
        help="Comma-separated header names with _ (upper-case) that a front-end in "
        "forwarded_allow_ips may send despite header_map; a SCRIPT_NAME header then sets "
        "SCRIPT_NAME, the others arrive as HTTP_ keys (HTTP_PATH_INFO, HTTP_REMOTE_USER).",
    ),
    Setting(
        name="header_map", section="Server Mechanics", default="drop", convert=c.to_header_map,
        flags=("--header-map",), metavar="STRING",
        help="What becomes of a header whose name has _ (it would share its environ key with "
        "its - twin): drop it, refuse the request (400), or dangerous: keep it.",
    ),
    Setting(
        name="proxy_protocol", section="Server Mechanics", default="off",
        convert=c.to_proxy_protocol, flags=("--proxy-protocol",), metavar="MODE", nargs="?",
        const="auto",
        help="Read a PROXY protocol header (v1, v2, or auto for either; a bare --proxy-protocol "
        "or True means auto) at the start of a connection from a peer in proxy_allow_ips: its "
        "client becomes REMOTE_ADDR/REMOTE_PORT. The header stays optional; from another peer "
        "it is refused (403).",
    ),
    Setting(
        name="proxy_allow_ips", section="Server Mechanics", default="127.0.0.1,::1",
        convert=c.to_ip_set, flags=("--proxy-allow-from",), metavar="STRING",
        help="Comma-separated addresses or networks allowed to send a PROXY header; * allows "
        "every peer, and a unix-socket peer is always allowed.",
    ),
    Setting(
        name="permit_obsolete_folding", section="Server Mechanics", default=False,
        convert=c.to_bool, flags=("--permit-obsolete-folding",), action="store_true",
        help="Join obsolete folded header lines (a line starting with a space or tab) instead "
        "of refusing the request.",
    ),
    Setting(
        name="strip_header_spaces", section="Server Mechanics", default=False,
        convert=c.to_bool, flags=("--strip-header-spaces",), action="store_true",
        help="Accept spaces between a header name and its colon (a request smuggling risk) "
        "instead of refusing the request.",
    ),
    Setting(
        name="permit_unconventional_http_method", section="Server Mechanics", default=False,
        convert=c.to_bool, flags=("--permit-unconventional-http-method",), action="store_true",
        help="Accept any token as a method; otherwise a method must be 3 to 20 upper-case "
        "letters, digits or symbols other than #.",
    ),
    Setting(
        name="permit_unconventional_http_version", section="Server Mechanics", default=False,
        convert=c.to_bool, flags=("--permit-unconventional-http-version",), action="store_true",
        help="Accept any HTTP/D.D version (1.1 and above served as 1.1, below as 1.0); "
        "otherwise only 1.0 and 1.1.",
    ),
    Setting(
        name="casefold_http_method", section="Server Mechanics", default=False,
        convert=c.to_bool, flags=("--casefold-http-method",), action="store_true",
        help="Upper-case the method after checking it (lower-case methods also need "
        "permit_unconventional_http_method).",
    ),
    Setting(
        name="root_path", section="Server Mechanics", default="", convert=c.to_root_path,
        flags=("--root-path",), metavar="PATH", env="SCRIPT_NAME",
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
        name="initgroups", section="Security", default=False, convert=c.to_bool,
        flags=("--initgroups",), action="store_true",
        help="With user and group set, give workers the user's supplementary groups from the "
        "group database too, not only group.",
    ),
    Setting(
        name="sendfile", section="Server Mechanics", default=True, convert=c.to_sendfile,
        flags=("--no-sendfile",), action="store_false",
        help="Send a wsgi.file_wrapper of a real file with sendfile(); --no-sendfile copies it "
        "through the process instead (some network filesystems and FUSE mounts need that).",
    ),
    Setting(
        name="reload", section="Debugging", default=False, convert=c.to_bool,
        flags=("--reload",), action="store_true",
        help="Start a new generation of workers (as HUP does) when a source file of the app "
        "changes: every *.py under pythonpath, chdir or else the working directory, the "
        "--paste ini, and reload_extra_files; seen as reload_engine says. No .pyc files are "
        "written meanwhile, so two saves within one second are never served from a stale "
        "cache. For development.",
    ),
    Setting(
        name="reload_engine", section="Debugging", default="auto", convert=c.to_reload_engine,
        flags=("--reload-engine",), metavar="STRING",
        help="How --reload sees a change: inotify (kernel events through watchfiles: pip "
        "install 'unitcorn[reload]'), poll (a scan once a second, no dependency), or auto "
        "(inotify when watchfiles is installed, else poll). If events fail (say, the kernel's "
        "watch limit), it polls.",
    ),
    Setting(
        name="reload_extra_files", section="Debugging", default=[], convert=c.to_file_list,
        flags=("--reload-extra-file",), action="append", metavar="FILES",
        help="More files whose change means a reload with --reload (templates, config files).",
    ),
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
    # -- SSL: TLS terminated by the workers (docs/tls.md) --
    Setting(
        name="certfile", section="SSL", default=None, convert=c.to_optional_file_name,
        flags=("--certfile",), metavar="FILE",
        help="The server's certificate chain (PEM): setting it turns TLS on for every bind, as "
        "in gunicorn. Read by the master at start and on reload (a bad one is a configuration "
        "error); relative to chdir.",
    ),
    Setting(
        name="keyfile", section="SSL", default=None, convert=c.to_optional_file_name,
        flags=("--keyfile",), metavar="FILE",
        help="The certificate's private key (PEM, not encrypted); unset: it is in certfile. "
        "Loaded by the master, so it may be readable by root only.",
    ),
    Setting(
        name="cert_reqs", section="SSL", default=0, convert=c.to_int(0, 2),
        flags=("--cert-reqs",), metavar="INT",
        help="Client certificates: 0 not asked for, 1 verified if sent (ssl.CERT_OPTIONAL), 2 "
        "required (ssl.CERT_REQUIRED), verified against ca_certs.",
    ),
    Setting(
        name="ca_certs", section="SSL", default=None, convert=c.to_optional_file_name,
        flags=("--ca-certs",), metavar="FILE",
        help="The CA certificates (PEM) client certificates are verified against; unset: the "
        "system's.",
    ),
    Setting(
        name="ciphers", section="SSL", default=None, convert=c.to_optional_text,
        flags=("--ciphers",), metavar="STRING",
        help="An OpenSSL cipher list for TLS 1.2 and older (TLS 1.3's suites are OpenSSL's); "
        "unset: Python's ssl defaults.",
    ),
    Setting(
        name="suppress_ragged_eofs", section="SSL", default=True, convert=c.to_bool,
        flags=("--suppress-ragged-eofs",), action="store_true",
        help="Treat a client that closes without a TLS close_notify like one that closed "
        "cleanly (see ssl.SSLContext.wrap_socket).",
    ),
    Setting(
        name="ssl_context", section="SSL", default=default_ssl_context,
        convert=to_hook(("config", "default_ssl_context_factory")),
        default_doc="the context the settings above describe",
        help="Config file only: a function (config, default_ssl_context_factory) returning "
        "the ssl.SSLContext to serve with, as in gunicorn; call the factory for the one the "
        "settings above describe and adjust it (e.g. minimum_version). Called once per "
        "configuration, in the master.",
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

# Why an ignored setting changes nothing here; shared by the settings that share a reason.
_NOT_YET = "not implemented yet"
_HTTP2 = "unitcorn speaks HTTP/1.0 and HTTP/1.1 only"
_DIRTY = "unitcorn has no dirty arbiters (gunicorn 27's separate pool for long-running tasks)"
_LOCALHOST = "127.0.0.1,::1"

# gunicorn settings that are harmless to leave out: a gunicorn.conf.py (or command line)
# using them still loads; each use is recorded in Settings.ignored, and a value other than
# gunicorn's default is a warning (at start and from --check-config) that says `why`.
IGNORED: tuple[IgnoredSetting, ...] = (
    IgnoredSetting(
        "worker_tmp_dir", ("--worker-tmp-dir",), metavar="DIR",
        why="worker heartbeats are in shared memory, not in temporary files",
    ),
    IgnoredSetting(
        "tmp_upload_dir", why="unitcorn keeps request bodies in the socket, never in files",
    ),
    IgnoredSetting(
        "enable_stdio_inheritance", ("-R", "--enable-stdio-inheritance"), action="store_true",
        default=False,
        why="with --daemon, stdout and stderr go to /dev/null; capture_output sends them to "
        "the error log",
    ),
    IgnoredSetting(
        "spew", ("--spew",), action="store_true", default=False,
        why="unitcorn does not trace executed lines; use a debugger or sys.settrace in the app",
    ),
    IgnoredSetting(
        "default_proc_name", default="gunicorn",
        why="process titles use proc_name, else the application",
    ),
    IgnoredSetting(
        "ssl_version", ("--ssl-version",), metavar="STRING", default=2,
        why="deprecated and ignored by gunicorn too; the protocol is negotiated (TLS 1.2 at "
        "least): set ssl_context to change that",
    ),
    IgnoredSetting(
        "do_handshake_on_connect", ("--do-handshake-on-connect",), action="store_true",
        default=False,
        why="the TLS handshake always completes in the worker's event loop before the first "
        "request is read, never blocking the worker; both values behave alike",
    ),
    # -- gunicorn 27's additions --
    IgnoredSetting(
        "uwsgi_allow_ips", ("--uwsgi-allow-from",), metavar="STRING", default=_LOCALHOST,
        why="it applies only to protocol = uwsgi, which unitcorn refuses",
    ),
    IgnoredSetting(
        "http_protocols", ("--http-protocols",), metavar="STRING", default="h1", why=_HTTP2,
    ),
    IgnoredSetting(
        "http2_cleartext", ("--http2-cleartext",), metavar="STRING", default="off", why=_HTTP2,
    ),
    IgnoredSetting(
        "http2_max_concurrent_streams", ("--http2-max-concurrent-streams",), metavar="INT",
        default=100, why=_HTTP2,
    ),
    IgnoredSetting(
        "http2_initial_window_size", ("--http2-initial-window-size",), metavar="INT",
        default=65535, why=_HTTP2,
    ),
    IgnoredSetting(
        "http2_max_frame_size", ("--http2-max-frame-size",), metavar="INT", default=16384,
        why=_HTTP2,
    ),
    IgnoredSetting(
        "http2_max_header_list_size", ("--http2-max-header-list-size",), metavar="INT",
        default=65536, why=_HTTP2,
    ),
    IgnoredSetting(
        "http_parser", ("--http-parser",), metavar="STRING", default="auto",
        why="unitcorn has one HTTP parser, its own",
    ),
    IgnoredSetting("dirty_apps", ("--dirty-app",), "append", "STRING", default=[], why=_DIRTY),
    IgnoredSetting("dirty_workers", ("--dirty-workers",), metavar="INT", default=0, why=_DIRTY),
    IgnoredSetting("dirty_timeout", ("--dirty-timeout",), metavar="INT", default=300, why=_DIRTY),
    IgnoredSetting("dirty_threads", ("--dirty-threads",), metavar="INT", default=1, why=_DIRTY),
    IgnoredSetting(
        "dirty_graceful_timeout", ("--dirty-graceful-timeout",), metavar="INT", default=30,
        why=_DIRTY,
    ),
    IgnoredSetting("on_dirty_starting", why=_DIRTY),
    IgnoredSetting("dirty_post_fork", why=_DIRTY),
    IgnoredSetting("dirty_worker_init", why=_DIRTY),
    IgnoredSetting("dirty_worker_exit", why=_DIRTY),
    IgnoredSetting(
        "enable_backlog_metric", ("--enable-backlog-metric",), action="store_true",
        default=False, why=f"{_NOT_YET}; the statsd metrics leave out the listen backlog",
    ),
)

# gunicorn settings whose silent absence would change what clients get (uwsgi framing parsed
# as requests). Set to anything but a false value or gunicorn's
# default, they are a ConfigError rather than a surprise.
REFUSED: tuple[IgnoredSetting, ...] = (
    IgnoredSetting(
        "protocol", ("--protocol",), metavar="STRING", default="http",
        why="unitcorn speaks HTTP only, not uwsgi",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
IGNORED_BY_NAME: dict[str, IgnoredSetting] = {ignored.name: ignored for ignored in IGNORED}
REFUSED_BY_NAME: dict[str, IgnoredSetting] = {refused.name: refused for refused in REFUSED}


def hook_names() -> tuple[str, ...]:
    """The server hooks, in declaration order."""
    return tuple(setting.name for setting in SETTINGS if setting.is_hook)
