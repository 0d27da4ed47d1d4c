"""unitcorn's settings: each declared once (catalog.py), resolved from every source (load.py).

Modules: setting (the declaration's shape), catalog (the declarations), convert and callables
(value checks), cmdline (argparse), configfile (executing the config), load (precedence),
paths (files settings name must be creatable), values (Settings), report (--print-config),
docs (settings.md, the man page).
"""

from unitcorn.settings.catalog import SETTINGS, hook_names
from unitcorn.settings.cmdline import build_parser
from unitcorn.settings.docs import render_manpage, render_markdown
from unitcorn.settings.errors import ConfigError, UsageError
from unitcorn.settings.load import load_settings
from unitcorn.settings.report import render_print_config
from unitcorn.settings.setting import Setting
from unitcorn.settings.values import Settings

__all__ = [
    "SETTINGS",
    "ConfigError",
    "Setting",
    "Settings",
    "UsageError",
    "build_parser",
    "hook_names",
    "load_settings",
    "render_manpage",
    "render_markdown",
    "render_print_config",
]
