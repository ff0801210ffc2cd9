"""Imports point one way: base <- grammar <- compiler <- runtime <- api <- cli. Every import in
`dlc/` (function-level ones too: a lazy import is still an arrow) is read from the syntax tree;
an import of a module in a higher layer, or a circle of modules, fails here, naming the arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dlc"

# The modules every stage may use. Spans, diagnostics, the message table and suggestions are base
# modules that still live beside the parser and the checker (the parser words its syntax errors with
# the table too); the layer goes by module, not by folder.
BASE = {"dlc.version", "dlc.grammar.nodes", "dlc.compiler.diagnostics", "dlc.compiler.messages",
        "dlc.compiler.suggest"}
# The command line: its verbs, their grammar, and what it prints.
CLI = {"dlc.cli", "dlc.command_line", "dlc.terminal"}
LAYERS = ("base", "grammar", "compiler", "runtime", "api", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    if module in BASE:
        return LAYERS.index("base")
    if module in ("dlc", "dlc.api", "dlc.arguments"):  # the package is the API's facade
        return LAYERS.index("api")
    if module in CLI:
        return LAYERS.index("cli")
    return LAYERS.index(module.split(".")[1] if module.count(".") > 1 else module.removeprefix("dlc."))


def _typing_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under `if TYPE_CHECKING:`: names for annotations, never run."""
    return {id(inner) for node in ast.walk(tree)
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            for statement in node.body for inner in ast.walk(statement)}


def imports(module: str) -> set[str]:
    """The dlc modules `module` imports, wherever the import statement is (but for annotations)."""
    found = set()
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    typing_only = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("dlc")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dlc"):
            # `from dlc import api` imports the module dlc.api; `from dlc.api import load` dlc.api.
            named = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= named or {node.module}
    return found - {module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        assert 0 <= layer(module) < len(LAYERS), module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    upward = sorted(other for other in GRAPH[module] if layer(other) > layer(module))
    assert upward == [], f"{module} ({LAYERS[layer(module)]}) imports " + ", ".join(
        f"{other} ({LAYERS[layer(other)]})" for other in upward)


def test_no_circle_of_modules():
    done, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError("a circle of imports: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for other in sorted(GRAPH[module]):
            if other in MODULES:
                visit(other)
        path.pop()
        done.add(module)

    for module in sorted(MODULES):
        visit(module)
