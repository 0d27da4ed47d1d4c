"""How loading settings fails: a bad value (ConfigError) or a bad command line (UsageError)."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting's value is unacceptable; says which setting, which value and where it came from.

    ``str(e)`` reads ``workers = -2 (from /etc/unitcorn/site.conf.py): must be at least 1``.
    The CLI turns it into exit status 78 (EX_CONFIG).
    """

    def __init__(self, setting: str, value: object, source: str, message: str) -> None:
        super().__init__(setting, value, source, message)
        self.setting = setting
        self.value = value
        self.source = source
        self.message = message

    def __str__(self) -> str:
        return f"{self.setting} = {show_value(self.value)} (from {self.source}): {self.message}"


class UsageError(Exception):
    """The command line itself is wrong (unknown flag, missing app); the CLI exits 2."""


def show_value(value: object) -> str:
    """Show a value as an operator typed it: bare text when unambiguous, else repr()."""
    # Text from argv or the environment reads best unquoted ("workers = abc"); quoting only when
    # the bare text would hide something (empty, surrounding blanks, control characters).
    if isinstance(value, str) and value and value == value.strip() and value.isprintable():
        return value
    return repr(value)
