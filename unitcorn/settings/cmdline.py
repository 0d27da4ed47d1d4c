"""Derive the argparse parser from the declarations; parse argv into raw values, never exiting."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from unitcorn.settings.catalog import IGNORED, SETTINGS
from unitcorn.settings.errors import UsageError
from unitcorn.settings.setting import Action

APP_DEST = "wsgi_app"  # the positional MODULE:CALLABLE is the wsgi_app setting
_HELP_DEST = "show_help"
_VERSION_DEST = "show_version"


class _RaisingParser(argparse.ArgumentParser):
    """argparse would print and sys.exit(2); library code raises instead, and the CLI decides."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # Only reachable through a printing action, and this parser defines none.
        raise UsageError(message or f"argument parsing stopped with status {status}")


def build_parser() -> argparse.ArgumentParser:
    """The unitcorn command line, gunicorn's flags, generated from SETTINGS and IGNORED.

    Every option defaults to "absent" (argparse.SUPPRESS), so a parse says exactly what was
    given; -h and -v set show_help / show_version rather than printing, so the CLI prints.
    """
    parser = _RaisingParser(
        prog="unitcorn",
        usage="%(prog)s [OPTIONS] [MODULE:CALLABLE]",
        description="A pre-fork WSGI HTTP server; gunicorn's flags and gunicorn.conf.py work.",
        add_help=False,
    )
    parser.add_argument(
        APP_DEST, nargs="?", metavar="MODULE:CALLABLE", default=argparse.SUPPRESS,
        help="the WSGI application, e.g. myproject.wsgi:application",
    )
    parser.add_argument(
        "-h", "--help", dest=_HELP_DEST, action="store_true", default=argparse.SUPPRESS,
        help="show this help message and exit",
    )
    parser.add_argument(
        "-v", "--version", dest=_VERSION_DEST, action="store_true", default=argparse.SUPPRESS,
        help="show the version and exit",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        if not setting.flags:
            continue
        if setting.section not in groups:
            groups[setting.section] = parser.add_argument_group(setting.section)
        _add_option(
            groups[setting.section], setting.name, setting.flags, setting.action,
            setting.metavar, setting.help, setting.const,
        )
    ignored = parser.add_argument_group(
        "gunicorn options accepted and ignored", "unitcorn does not implement these."
    )
    for item in IGNORED:
        if item.flags:
            _add_option(ignored, item.name, item.flags, item.action, item.metavar, "ignored")
    return parser


def _add_option(
    group: argparse._ArgumentGroup,
    dest: str,
    flags: tuple[str, ...],
    action: Action,
    metavar: str | None,
    help: str,
    const: object = None,
) -> None:
    options: dict[str, object] = {"dest": dest, "action": action, "default": argparse.SUPPRESS}
    if action in ("store", "append"):
        options["metavar"] = metavar
    if const is not None:  # e.g. a bare --proxy-protocol
        options["nargs"] = "?"
        options["const"] = const
    # argparse %-formats help text; gunicorn's log atoms like %(h)s must survive that.
    options["help"] = help.replace("%", "%%")
    group.add_argument(*flags, **options)  # type: ignore[arg-type]


@dataclass
class CommandLine:
    """What one command line (argv, or UNITCORN_CMD_ARGS split) gave: raw values by name."""

    values: dict[str, object] = field(default_factory=dict)
    show_help: bool = False
    show_version: bool = False


def parse_command_line(args: Sequence[str], source: str) -> CommandLine:
    """Parse args; a UsageError names the source when it is not the real command line."""
    try:
        namespace = build_parser().parse_args(list(args))
    except UsageError as exc:
        if source == "command line":
            raise
        raise UsageError(f"{source}: {exc}") from None
    values = vars(namespace)
    return CommandLine(
        show_help=bool(values.pop(_HELP_DEST, False)),
        show_version=bool(values.pop(_VERSION_DEST, False)),
        values=values,
    )
