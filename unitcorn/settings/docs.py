"""Write the settings reference from the declarations: docs/settings.md and the unitcorn(1) page."""

from __future__ import annotations

from collections.abc import Iterator

from unitcorn.settings.catalog import IGNORED, REFUSED, SETTINGS
from unitcorn.settings.configfile import DEFAULT_CONFIG_FILES
from unitcorn.settings.load import CMD_ARGS_VARIABLES
from unitcorn.settings.report import format_value, show
from unitcorn.settings.setting import IgnoredSetting, Setting

REGENERATE = (
    "python -c 'from unitcorn.settings import render_markdown; "
    "print(render_markdown(), end=\"\")' > docs/settings.md"
)

_INTRO = f"""\
Every setting can be given in the config file under its name; most also have a command-line
flag. Later sources win: defaults < environment defaults (the variables named below) < config
file < `{CMD_ARGS_VARIABLES[0]}` (or `{CMD_ARGS_VARIABLES[1]}` when that is unset) < the command
line. `unitcorn --print-config MODULE:CALLABLE` shows each value and where it came from.

The config file is Python: `-c FILE`, or `-c python:MODULE`; without `-c`,
`./{DEFAULT_CONFIG_FILES[0]}`, else `./{DEFAULT_CONFIG_FILES[1]}`, is loaded when it exists.
Its module-level names that are setting names are taken; other names are ignored (one close to
a setting's name is a warning). Names and flags are gunicorn's, so a gunicorn command line and
`gunicorn.conf.py` work unchanged.

A log file, pidfile or `unix:` socket whose directory is missing or not writable is a
configuration error (exit 78) at start and from `--check-config`; relative paths are taken
from `chdir`."""


def _sections() -> dict[str, list[Setting]]:
    sections: dict[str, list[Setting]] = {}
    for setting in SETTINGS:
        sections.setdefault(setting.section, []).append(setting)
    return sections


def _default_text(setting: Setting) -> str:
    return setting.default_doc or show(setting, setting.default)


def _flag_forms(setting: Setting) -> list[str]:
    suffix = f" {setting.metavar}" if setting.action in ("store", "append") else ""
    return [flag + suffix for flag in setting.flags]


def render_markdown() -> str:
    """docs/settings.md; deterministic (never reads the environment)."""
    return "\n".join(_markdown_lines()) + "\n"


def _markdown_lines() -> Iterator[str]:
    yield "# Settings"
    yield ""
    yield f"<!-- Generated from unitcorn/settings/catalog.py; regenerate with: {REGENERATE} -->"
    yield ""
    yield _INTRO
    for section, settings in _sections().items():
        yield ""
        yield f"## {section}"
        for setting in settings:
            yield ""
            yield from _markdown_setting(setting)
    yield ""
    yield from _compatibility_lines()


def _compatibility_lines() -> Iterator[str]:
    yield "## gunicorn settings"
    yield ""
    yield "Every gunicorn 27 setting, and what unitcorn does with it. Each is accepted under its"
    yield "gunicorn name and flags: *implemented* settings are described above; *ignored* ones"
    yield "load but change nothing, and set to anything but gunicorn's default each logs one"
    yield "warning at start (also shown by `--check-config` and `--print-config`); *refused*"
    yield "ones stop unitcorn with a configuration error (exit 78) unless left at gunicorn's"
    yield "default, because ignoring them would silently change what clients get."
    yield ""
    yield "| Setting | Status |"
    yield "|---|---|"
    statuses = {setting.name: "implemented" for setting in SETTINGS if setting.gunicorn}
    statuses.update({item.name: "ignored" for item in IGNORED})
    statuses.update({item.name: "refused" for item in REFUSED})
    for name in sorted(statuses):
        yield f"| `{name}` | {statuses[name]} |"
    yield ""
    yield "### Ignored"
    yield ""
    yield "| Setting | Command line | No warning at | Why ignored |"
    yield "|---|---|---|---|"
    for item in IGNORED:
        yield f"| `{item.name}` | {_gunicorn_flags(item)} | {_quiet_value(item)} | {item.why} |"
    yield ""
    yield "### Refused"
    yield ""
    yield "| Setting | Command line | Accepted at | Why refused |"
    yield "|---|---|---|---|"
    for item in REFUSED:
        yield f"| `{item.name}` | {_gunicorn_flags(item)} | {_quiet_value(item)} | {item.why} |"


def _gunicorn_flags(item: IgnoredSetting) -> str:
    return ", ".join(f"`{flag}`" for flag in item.flags) or "config file only"


def _quiet_value(item: IgnoredSetting) -> str:
    """The values that change nothing: unset, and gunicorn's default."""
    if item.default is None:
        return "unset"
    return f"unset, `{format_value(item.default)}`"


def _markdown_setting(setting: Setting) -> Iterator[str]:
    if setting.is_hook:
        yield f"### `{setting.name}({', '.join(setting.hook_params)})`"
        yield ""
        yield setting.help
        yield ""
        yield "Config file only; the default does nothing."
        return
    yield f"### `{setting.name}`"
    yield ""
    flags = ", ".join(f"`{form}`" for form in _flag_forms(setting))
    yield f"- Command line: {flags or 'none (config file only)'}"
    yield f"- Default: `{_default_text(setting)}`"
    if setting.env:
        yield f"- Environment: `{setting.env}`"
    if not setting.gunicorn:
        yield "- unitcorn only (gunicorn has no such setting)"
    yield ""
    yield setting.help


def render_manpage(version: str) -> str:
    """The unitcorn(1) man page in roff, for packaging."""
    return "\n".join(_man_lines(version)) + "\n"


def _roff(text: str) -> str:
    # Backslashes and hyphens are special in roff; a leading . or ' would start a request.
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _man_lines(version: str) -> Iterator[str]:
    yield f'.TH UNITCORN 1 "" "unitcorn {_roff(version)}" "User Commands"'
    yield ".SH NAME"
    yield "unitcorn \\- a pre\\-fork WSGI HTTP server"
    yield ".SH SYNOPSIS"
    yield ".B unitcorn"
    yield "[\\fIOPTIONS\\fR] [\\fIMODULE\\fB:\\fICALLABLE\\fR]"
    yield ".SH DESCRIPTION"
    yield _roff(
        "unitcorn serves a WSGI application from a master process that supervises worker "
        "processes and is driven by Unix signals. Its flags and configuration file are "
        "gunicorn's."
    )
    yield ".SH OPTIONS"
    yield ".TP"
    yield "\\fB\\-h\\fR, \\fB\\-\\-help\\fR"
    yield "Show a summary of the options and exit."
    yield ".TP"
    yield "\\fB\\-v\\fR, \\fB\\-\\-version\\fR"
    yield "Show the version and exit."
    for setting in SETTINGS:
        if setting.flags:
            yield ".TP"
            yield _man_flags(setting)
            yield _roff(f"{setting.help} Default: {_default_text(setting)}.")
    for title, items in (("GUNICORN OPTIONS IGNORED", IGNORED), ("GUNICORN OPTIONS REFUSED", REFUSED)):
        yield f".SH {title}"
        yield _roff(
            "Accepted, and ignored with a warning at start unless at gunicorn's default."
            if items is IGNORED else "A configuration error (exit 78) unless at gunicorn's default."
        )
        for item in items:
            if item.flags:
                yield ".TP"
                yield ", ".join(f"\\fB{_roff(flag)}\\fR" for flag in item.flags)
                yield _roff(item.why + ".")
    yield ".SH CONFIGURATION FILE"
    yield _roff(_INTRO.replace("`", "").replace("\n", " "))
    yield ".PP"
    yield _roff("Server hooks, set only in the config file: " + ", ".join(
        f"{s.name}({', '.join(s.hook_params)})" for s in SETTINGS if s.is_hook
    ) + ".")
    yield ".SH ENVIRONMENT"
    for name in CMD_ARGS_VARIABLES:
        yield ".TP"
        yield f".B {name}"
        yield _roff("Extra command-line options, parsed like the command line, which wins.")
    for setting in SETTINGS:
        if setting.env:
            yield ".TP"
            yield f".B {setting.env}"
            yield _roff(f"The default for {setting.name}; see {_flag_forms(setting)[0]}.")
    yield ".SH FILES"
    for name in DEFAULT_CONFIG_FILES:
        yield ".TP"
        yield f".I ./{_roff(name)}"
        yield "Loaded when no \\fB\\-c\\fR is given and the file exists."
    yield ".SH SEE ALSO"
    yield ".BR gunicorn (1)"


def _man_flags(setting: Setting) -> str:
    parts = []
    for flag in setting.flags:
        part = f"\\fB{_roff(flag)}\\fR"
        if setting.action in ("store", "append"):
            part += f" \\fI{_roff(setting.metavar or 'VALUE')}\\fR"
        parts.append(part)
    return ", ".join(parts)
