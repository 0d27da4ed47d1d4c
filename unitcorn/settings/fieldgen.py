"""Write fields.py: every setting in the catalogue as a typed attribute, so mypy knows Settings.

A setting's type is what its converter returns (its return annotation), so the declaration stays
the one place a setting is described. Regenerate after changing catalog.py:

    python3 -m unitcorn.settings.fieldgen

tests/unit/settings/test_settings_typing.py fails while fields.py disagrees with the catalogue.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from unitcorn.settings.catalog import SETTINGS
from unitcorn.settings.setting import Setting

FIELDS_PATH = Path(__file__).with_name("fields.py")
REGENERATE = "python3 -m unitcorn.settings.fieldgen"

_HEADER = f'''\
"""The type of every setting, as its converter returns it; mypy reads these for Settings.

Generated from catalog.py by fieldgen.py; do not edit. Regenerate with:
    {REGENERATE}
"""

from __future__ import annotations'''

_CLASS = '''\
class SettingFields:
    """Settings' attributes: one per setting in catalog.py.

    Annotations only: at run time the values come from Settings.__getattr__.
    """
'''


def setting_type(setting: Setting) -> object:
    """The converted value's type: the converter's return annotation, which every one has."""
    hints = typing.get_type_hints(setting.convert)
    if "return" not in hints:
        raise TypeError(f"{setting.name}: its converter {setting.convert.__qualname__} "
                        "has no return annotation")
    return hints["return"]


def render_fields() -> str:
    """fields.py's text; deterministic."""
    imports: set[tuple[str, str]] = set()
    lines = [f"    {setting.name}: {_spell(setting_type(setting), imports)}" for setting in SETTINGS]
    return "\n".join([_HEADER, *_import_lines(imports), "", "", _CLASS, *lines, ""])


def _spell(annotation: object, imports: set[tuple[str, str]]) -> str:
    """The annotation as source text, noting in ``imports`` what that text needs imported."""
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    if annotation is typing.Any:
        imports.add(("typing", "Any"))
        return "Any"
    if isinstance(annotation, list):  # a Callable's parameter list
        return "[" + ", ".join(_spell(item, imports) for item in annotation) + "]"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_spell(arg, imports) for arg in args)
    if origin is not None:
        return f"{_spell(origin, imports)}[{', '.join(_spell(arg, imports) for arg in args)}]"
    if isinstance(annotation, type):
        if annotation.__module__ != "builtins":
            imports.add((annotation.__module__, annotation.__qualname__))
        return annotation.__qualname__
    raise TypeError(f"cannot write the annotation {annotation!r}")


def _import_lines(imports: set[tuple[str, str]]) -> Iterator[str]:
    # Grouped and sorted as ruff's isort rules want: the standard library, then everything else.
    def is_stdlib(module: str) -> bool:
        return module.partition(".")[0] in sys.stdlib_module_names

    for group in (True, False):
        modules = sorted({module for module, _ in imports if is_stdlib(module) is group})
        if modules:
            yield ""
        for module in modules:
            names = sorted(name for owner, name in imports if owner == module)
            yield f"from {module} import {', '.join(names)}"


def main() -> None:
    FIELDS_PATH.write_text(render_fields())
    print(f"wrote {FIELDS_PATH}")


if __name__ == "__main__":
    main()
