"""Every gunicorn setting and flag has a counterpart here, read from gunicorn's own table.

gunicorn is a test-only dependency (the `test` extra): when a gunicorn release adds a setting
or a flag, or changes one's arity, a test here goes red and names it. Skipped without gunicorn
(a distribution's package build runs the unit tests with only its own packages).
"""

from __future__ import annotations

import argparse

import pytest

gunicorn = pytest.importorskip("gunicorn", reason="gunicorn (the test extra) is not installed")

from gunicorn.config import KNOWN_SETTINGS, Config  # noqa: E402

from unitcorn.settings import build_parser  # noqa: E402
from unitcorn.settings.catalog import (  # noqa: E402
    IGNORED,
    IGNORED_BY_NAME,
    REFUSED,
    REFUSED_BY_NAME,
    SETTINGS,
    SETTINGS_BY_NAME,
)
from unitcorn.settings.setting import IgnoredSetting  # noqa: E402

GUNICORN = {setting.name: setting for setting in KNOWN_SETTINGS}
OURS = {
    **{setting.name: setting for setting in SETTINGS if setting.gunicorn},
    **IGNORED_BY_NAME,
    **REFUSED_BY_NAME,
}
# gunicorn's own options that are not settings.
NOT_SETTINGS = {"help", "version", "args"}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return dict(parser._option_string_actions)


def _arity(action: argparse.Action) -> str:
    """What follows the flag: nothing, one value, an optional value; repeatable or not."""
    if action.nargs == 0:
        return "flag"
    kind = "repeated " if isinstance(action, argparse._AppendAction) else ""
    return kind + {None: "one value", "?": "optional value"}.get(action.nargs, str(action.nargs))


def test_gunicorn_is_the_version_the_catalog_follows() -> None:
    # Bump deliberately: read the new release's settings, then this number.
    assert gunicorn.__version__.split(".")[0] == "27"


def test_every_gunicorn_setting_has_a_counterpart() -> None:
    missing = sorted(GUNICORN.keys() - OURS.keys())
    assert not missing, f"gunicorn settings unitcorn neither implements, ignores nor refuses: {missing}"


def test_nothing_claims_to_be_gunicorns_that_is_not() -> None:
    stale = sorted(OURS.keys() - GUNICORN.keys())
    assert not stale, f"marked as gunicorn settings but gunicorn has none such: {stale}"
    ours_only = [setting.name for setting in SETTINGS if not setting.gunicorn]
    assert not set(ours_only) & GUNICORN.keys(), "gunicorn has these now: set gunicorn=True"


def test_a_name_is_declared_once() -> None:
    names = [s.name for s in SETTINGS] + [i.name for i in IGNORED] + [r.name for r in REFUSED]
    assert len(names) == len(set(names))


def test_every_gunicorn_flag_is_ours_with_the_same_setting_and_arity() -> None:
    theirs = _options(Config().parser())
    ours = _options(build_parser())
    problems = []
    for flag, action in sorted(theirs.items()):
        if action.dest in NOT_SETTINGS:
            continue
        mine = ours.get(flag)
        if mine is None:
            problems.append(f"{flag} ({action.dest}): not accepted")
        elif mine.dest != action.dest:
            problems.append(f"{flag}: sets {mine.dest}, gunicorn's sets {action.dest}")
        elif _arity(mine) != _arity(action):
            problems.append(f"{flag}: takes {_arity(mine)}, gunicorn's takes {_arity(action)}")
    assert not problems, "\n".join(problems)


def test_gunicorn_config_only_settings_are_config_only_here_too() -> None:
    # A flag we add that gunicorn lacks is fine (e.g. --limit-request-field-size), but a flag
    # on an ignored or refused setting must be gunicorn's, or it invites a command line that
    # gunicorn would reject.
    for item in (*IGNORED, *REFUSED):
        assert set(item.flags) <= set(GUNICORN[item.name].cli or ()), item.name


@pytest.mark.parametrize("item", [*IGNORED, *REFUSED], ids=lambda item: item.name)
def test_gunicorns_default_counts_as_unset(item: IgnoredSetting) -> None:
    default = GUNICORN[item.name].default
    if callable(default):  # a hook: any function set is a change
        assert item.default is None
        return
    assert item.is_default(default), f"{item.name}: gunicorn's default is {default!r}"


@pytest.mark.parametrize(
    "item",
    [item for item in (*IGNORED, *REFUSED) if item.flags and item.action == "store"],
    ids=lambda item: item.name,
)
def test_gunicorns_default_on_the_command_line_is_quiet(load, item: IgnoredSetting) -> None:
    default = GUNICORN[item.name].default
    if default is None:
        pytest.skip("no default to give")
    s = load(item.flags[0], str(int(default) if isinstance(default, int) else default), "app:app")
    assert s.warnings == []


def test_store_true_flags_at_gunicorns_default_are_quiet(load) -> None:
    # --suppress-ragged-eofs is on by default in gunicorn: giving it changes nothing.
    assert load("--suppress-ragged-eofs", "app:app").warnings == []


def test_implemented_settings_keep_gunicorns_flags_for_their_name() -> None:
    for name, setting in SETTINGS_BY_NAME.items():
        if setting.gunicorn:
            assert set(GUNICORN[name].cli or ()) <= set(setting.flags), name


def test_a_config_file_of_every_gunicorn_default_loads_without_a_word(load, write) -> None:
    lines = []
    for setting in KNOWN_SETTINGS:
        if callable(setting.default) or setting.name == "config":
            continue  # hooks: gunicorn's no-ops; config: not read from a config file
        default = setting.default
        if type(default).__module__ == "ssl":  # ssl_version, cert_reqs: IntEnums, as numbers
            default = int(default)
        lines.append(f"{setting.name} = {default!r}\n")
    write("gunicorn.conf.py", "".join(lines))
    assert load("app:app").warnings == []
