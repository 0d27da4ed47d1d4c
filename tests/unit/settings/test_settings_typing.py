"""Settings are typed: fields.py follows the catalogue, its types are true, and mypy uses them."""

from __future__ import annotations

import collections.abc
import os
import subprocess
import sys
import textwrap
import types
import typing
from pathlib import Path

import pytest

from unitcorn.settings import SETTINGS, Setting
from unitcorn.settings.fieldgen import FIELDS_PATH, REGENERATE, render_fields, setting_type
from unitcorn.settings.fields import SettingFields

REPO = Path(__file__).resolve().parents[3]


def test_fields_py_is_up_to_date() -> None:
    assert FIELDS_PATH.read_text() == render_fields(), f"fields.py is stale; run: {REGENERATE}"


def test_every_setting_is_a_field_and_nothing_else() -> None:
    assert list(SettingFields.__annotations__) == [setting.name for setting in SETTINGS]


def conforms(value: object, annotation: object) -> bool:
    """Whether value has the annotated type, as far as the catalogue's types go."""
    if annotation is None or annotation is type(None):
        return value is None
    if annotation is typing.Any:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(conforms(value, arg) for arg in args)
    if origin is collections.abc.Callable:
        return callable(value)
    if origin in (list, frozenset):
        return isinstance(value, origin) and all(conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            conforms(key, args[0]) and conforms(item, args[1]) for key, item in value.items())
    if origin is tuple:
        return isinstance(value, tuple) and len(value) == len(args) and all(
            conforms(item, arg) for item, arg in zip(value, args, strict=True))
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    assert isinstance(annotation, type), f"teach conforms() about {annotation!r}"
    return isinstance(value, annotation)


def _sample_values(setting: Setting, tmp_path: Path) -> list[object]:
    """Raw values that exercise each branch a converter's type names (None, a tuple, …)."""
    samples = {
        "statsd_host": [None, "localhost:8125", "unix:///run/statsd.sock"],
        "user": [None, 0, "0"],
        "group": [None, 0, "0"],
        "logconfig": [None],
        "logconfig_json": [None],
        "chdir": [str(tmp_path)],
        "logconfig_dict": [{"version": 1}],
    }
    return samples.get(setting.name, [setting.default])


@pytest.mark.parametrize("setting", SETTINGS, ids=[setting.name for setting in SETTINGS])
def test_converted_values_have_the_declared_type(setting: Setting, tmp_path: Path) -> None:
    declared = setting_type(setting)
    for raw in _sample_values(setting, tmp_path):
        value = setting.convert(raw)
        assert conforms(value, declared), f"{setting.name} = {value!r} is not {declared}"


def test_conforms_sees_a_wrong_type() -> None:
    assert not conforms(["a", 1], list[str])
    assert not conforms(True, int)
    assert not conforms(("h", "p"), tuple[str, int])
    assert conforms(("h", 1), tuple[str, int] | str | None)


def test_mypy_rejects_a_misspelt_setting(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""\
        from unitcorn.settings import Settings


        def stop_after(settings: Settings) -> int:
            reveal_type(settings.graceful_timeout)
            return settings.graceful_timout
    """))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
         sample.name],
        cwd=tmp_path, env={**os.environ, "MYPYPATH": str(REPO)},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # mypy spells int as "builtins.int" or, from 1.16 on, as "int".
    # Only the sample's lines: without the project's mypy config, optional extras unitcorn
    # imports (PasteDeploy …) may add notes of their own.
    lines = result.stdout.replace('"builtins.int"', '"int"').splitlines()
    revealed, error = [line for line in lines if line.startswith("sample.py:")]
    assert revealed == 'sample.py:5: note: Revealed type is "int"'
    assert error.startswith('sample.py:6: error: "Settings" has no attribute "graceful_timout"')
    assert error.endswith("[attr-defined]")
