"""unitcorn.systemd imports nothing else from unitcorn, so it stays usable and testable alone."""

from __future__ import annotations

import ast
from pathlib import Path

import unitcorn.systemd

PACKAGE = "unitcorn.systemd"
PACKAGE_DIR = Path(unitcorn.systemd.__file__).parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``; relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # "from . import x" in unitcorn/systemd/y.py is unitcorn.systemd.x, ".." leaves it.
                parts = PACKAGE.split(".")
                base = parts[: max(len(parts) - (node.level - 1), 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found += [(node.lineno, module)]
    return found


def is_outside(module: str) -> bool:
    inside_unitcorn = module == "unitcorn" or module.startswith("unitcorn.") or module == ""
    inside_package = module == PACKAGE or module.startswith(PACKAGE + ".")
    return inside_unitcorn and not inside_package


def test_systemd_package_imports_nothing_else_from_unitcorn():
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"activation.py", "notify.py", "journal.py"}
    offending = [
        f"{path.name}:{line} imports {module or '(top of the tree)'}"
        for path in files
        for line, module in imported_modules(path)
        if is_outside(module)
    ]
    assert offending == []


def test_the_check_catches_what_it_should(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import unitcorn.http\n"
        "from unitcorn import settings\n"
        "from .. import arbiter\n"
        "from ..workers import base\n"
        "from . import notify\n"
        "from unitcorn.systemd.notify import Notifier\n"
        "import unitcorn.systemdx\n"
        "import os\n"
    )
    outside = [module for _, module in imported_modules(sample) if is_outside(module)]
    assert outside == [
        "unitcorn.http",
        "unitcorn",
        "unitcorn",
        "unitcorn.workers",
        "unitcorn.systemdx",
    ]
