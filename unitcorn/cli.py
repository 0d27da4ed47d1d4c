"""argv → settings → run: the only place that prints usage or picks the process exit status.

Exit statuses: 0 ok, 1 unexpected, 2 usage, 3 a worker failed to boot, 4 the app failed to load,
78 (EX_CONFIG) bad configuration.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence

from unitcorn import __version__
from unitcorn.app import AppLoadError, load_configured_app
from unitcorn.arbiter.reexec import OLD_MASTER_VAR, UPGRADE_CHANNEL_VAR
from unitcorn.arbiter.systemd_plugin import SystemdLifecycle
from unitcorn.logs import ERROR_LOGGER, configure_logging
from unitcorn.process.environment import apply_environment
from unitcorn.process.exit_codes import APP_LOAD_ERROR, EX_CONFIG, EX_USAGE
from unitcorn.settings import (
    ConfigError,
    UsageError,
    build_parser,
    load_settings,
    render_print_config,
)
from unitcorn.sockets import BindError, inherited_from_environment, inherited_from_systemd


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["ctl"]:
        from unitcorn.ctl import main as ctl_main

        return ctl_main(args[1:])
    try:
        return serve(args)
    except UsageError as exc:
        print(f"unitcorn: error: {exc}\nTry 'unitcorn --help'.", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        print(f"unitcorn: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except AppLoadError as exc:
        print(f"unitcorn: {exc}", file=sys.stderr)
        return APP_LOAD_ERROR
    except BindError as exc:
        print(f"unitcorn: cannot listen: {exc}", file=sys.stderr)
        return 1


def serve(args: list[str]) -> int:
    # Our control variables are taken out first, so the app, the workers and a reload never see
    # them; what remains is the operator's original environment.
    master_pid = int(os.environ.pop(OLD_MASTER_VAR, "0") or 0)
    upgrade_link = _upgrade_link(os.environ.pop(UPGRADE_CHANNEL_VAR, ""))
    inherited = inherited_from_environment(os.environ) + inherited_from_systemd(os.environ)
    lifecycle = SystemdLifecycle.from_environ(os.environ, is_upgrade=bool(master_pid))
    # What came back from the fd store is in the store: the plug-in must know, to remove what
    # no bind wants any more.
    lifecycle.stored_fds = {
        lst.name: -1 for lst in inherited if lst.is_from_systemd and not lst.is_from_socket_unit
    }
    environ_orig = dict(os.environ)
    start_cwd = os.getcwd()

    try:
        settings = load_settings(args, environ_orig, cwd=start_cwd)
    except ConfigError:
        lifecycle.exiting(EX_CONFIG)  # EXIT_STATUS=78 to systemd
        raise
    if settings.show_help:
        print(build_parser().format_help(), end="")
        return 0
    if settings.show_version:
        print(f"unitcorn {__version__}")
        return 0
    if settings.print_config:
        print(render_print_config(settings))
        return 0
    if not settings.app_uri:
        raise UsageError("no application given: unitcorn [OPTIONS] MODULE:CALLABLE")
    if settings.check_config:
        for warning in settings.warnings:
            print(f"unitcorn: configuration warning: {warning}", file=sys.stderr)
        load_configured_app(settings)
        print(f"configuration OK (from {settings.config_source or 'defaults and flags'})")
        return 0
    apply_environment(environ_orig, settings)
    if settings.daemon:
        daemonize()
    configure_logging(settings)
    for warning in settings.warnings:
        logging.getLogger(ERROR_LOGGER).warning("configuration warning: %s", warning)

    from unitcorn.arbiter.master import Master

    master = Master(
        settings,
        args,
        environ_orig,
        inherited,
        start_cwd=start_cwd,
        old_master_pid=master_pid,
        upgrade_link=upgrade_link,
        lifecycle=lifecycle,
    )
    try:
        return master.run()
    except AppLoadError:
        lifecycle.exiting(APP_LOAD_ERROR)  # EXIT_STATUS=4 to systemd
        raise
    except BindError:
        raise
    except Exception:
        logging.getLogger(ERROR_LOGGER).exception("master failed")
        return 1


def _upgrade_link(fd_text: str) -> socket.socket | None:
    """Our end of the socketpair an old master gave us when it started us (USR2)."""
    if not fd_text.isdigit():
        return None
    link = socket.socket(fileno=int(fd_text))
    link.set_inheritable(False)
    link.setblocking(False)
    return link


def daemonize() -> None:
    """Detach from the terminal (-D): fork twice, new session, stdio to /dev/null."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
