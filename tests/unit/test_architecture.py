"""Imports point down: the layering of STYLE.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "unitcorn"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


RULES = [
    # (folder, forbidden import prefixes, why)
    ("http", ("unitcorn.",), "the HTTP parser is sans-IO and standard library only"),
    ("arbiter", ("unitcorn.http", "unitcorn.wsgi"), "the master never speaks HTTP"),
    ("workers", ("unitcorn.arbiter",),
     "workers never import the master: what both need lives in unitcorn/process/"),
    ("process", ("unitcorn.",),
     "the layer below the master, the workers and cli.py imports nothing else from unitcorn"),
    ("settings", ("unitcorn.arbiter", "unitcorn.workers", "unitcorn.http", "unitcorn.wsgi"),
     "settings are data; they know nothing of processes"),
    ("wsgi", ("unitcorn.workers", "unitcorn.arbiter", "unitcorn.asgi"),
     "the WSGI layer serves one connection; workers schedule it, never the other way"),
]


@pytest.mark.parametrize(("folder", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_layering(folder: str, forbidden: tuple[str, ...], why: str) -> None:
    offenders = []
    for path in modules_under(folder):
        for name in imports_of(path):
            own = name.startswith(f"unitcorn.{folder}")
            if not own and name.startswith(forbidden):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == [], why


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from unitcorn.wsgi import Connection\nimport unitcorn.http.parser\n")
    assert {"unitcorn.wsgi", "unitcorn.http.parser"} <= imports_of(sample)


def test_only_the_cli_imports_the_master() -> None:
    """The arbiter sits just below cli.py: nothing else reaches up into it."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE.parent)
        if module.parts[1] == "arbiter" or module == Path("unitcorn/cli.py"):
            continue
        offenders += [f"{module} imports {n}" for n in imports_of(path) if n.startswith("unitcorn.arbiter")]
    assert offenders == []


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(folder: str) -> dict[str, set[str]]:
    """Module → the modules of the same folder it imports (at any depth: TYPE_CHECKING and
    imports inside functions count too, as they are a dependency all the same)."""
    modules = {module_name(path): path for path in modules_under(folder)}
    return {name: {n for n in imports_of(path) if n in modules and n != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle in `graph` as a list of modules, or [] if there is none."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return []
        visiting.append(node)
        for target in sorted(graph[node]):
            if cycle := visit(target):
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return []


@pytest.mark.parametrize("folder", ["arbiter", "process", "workers", "http"])
def test_no_import_circle(folder: str) -> None:
    assert find_cycle(import_graph(folder)) == []


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
