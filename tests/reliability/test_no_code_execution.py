"""Nothing in a spec, a data file or a run folder is ever imported, evaluated, unpickled or used as
an attribute name. Two halves: the source of `dlc/` holds no call that could do it (each exception
is listed below with why it is safe), and names that mean something to Python are, in a spec,
unknown names like any other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dlc.compiler.check import check_text

PACKAGE = Path(__file__).resolve().parents[2] / "dlc"

# Builtins that run code or reach objects by a computed name.
RUNS_CODE = {"eval", "exec", "compile", "__import__", "breakpoint"}
BY_NAME = {"getattr", "setattr", "delattr", "hasattr"}
# Modules that unpickle, run programs or import by name.
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "yaml", "subprocess",
                  "importlib", "runpy", "code", "ctypes"}
UNSAFE_CALLS = {("os", "system"), ("os", "popen"), ("importlib", "import_module"), ("importlib", "util")}

# Each use of the above that is safe, by file and source text, with the reason.
SAFE = {
    ("__init__.py", "getattr(api, name)"):
        "`name` is one of the constant names of `_API`, checked just before",
    ("runtime/session.py", "getattr(self.prepared, name)"):
        "`name` runs over the constant tuple (\"train\", \"val\", \"test\")",
    ("runtime/sources.py", "import importlib.util"):
        "finds where scikit-learn is installed, to read its bundled CSVs, without importing it",
    ("runtime/sources.py", 'importlib.util.find_spec("sklearn")'):
        "a constant module name, never one from a spec",
}


def findings(path: Path) -> list[tuple[str, str]]:
    """(file, source text) of every use in `path` of something that could run code or reach an
    attribute by a computed name."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    where = str(path.relative_to(PACKAGE))
    flagged = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in RUNS_CODE:
                flagged.append(node)
            if node.func.id in BY_NAME and not (len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                flagged.append(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and (receiver.id, node.func.attr) in UNSAFE_CALLS:
                flagged.append(node)
            if isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name) \
                    and (receiver.value.id, receiver.attr) in UNSAFE_CALLS:
                flagged.append(node)
            if node.func.attr == "load" and isinstance(receiver, ast.Name) and receiver.id in ("np", "numpy"):
                keywords = {k.arg: k.value for k in node.keywords}
                allowed = keywords.get("allow_pickle")
                if not (isinstance(allowed, ast.Constant) and allowed.value is False):
                    flagged.append(node)  # NumPy must be told, every time, never to unpickle
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in UNSAFE_MODULES for m in modules):
                flagged.append(node)
    found = [(where, ast.get_source_segment(source, node)) for node in flagged]
    return found


def test_the_package_holds_no_way_to_run_what_it_reads():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in findings(path)]
    assert [hit for hit in found if hit not in SAFE] == []
    assert sorted(set(found)) == sorted(SAFE), "a listed exception is gone: remove it from SAFE"


def test_the_scan_finds_what_it_looks_for(tmp_path, monkeypatch):
    """The scan is not blind: a file with each forbidden use is flagged for each."""
    package = tmp_path / "dlc"
    package.mkdir()
    bad = package / "bad.py"
    bad.write_text("import pickle\nfrom importlib import import_module\nimport numpy as np\n"
                   "eval(text)\ngetattr(module, name)\nnp.load(path)\nnp.load(path, allow_pickle=True)\n"
                   "os.system(command)\ngetattr(module, 'fixed')\n", encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", package)
    assert [text for _, text in findings(bad)] == [
        "import pickle", "from importlib import import_module", "eval(text)", "getattr(module, name)",
        "np.load(path)", "np.load(path, allow_pickle=True)", "os.system(command)"]


PYTHON_NAMES = ["__class__", "__import__", "__builtins__", "__dict__", "__init__", "__call__", "__globals__",
                "os", "system", "eval", "exec", "open", "print", "mro", "__subclasses__", "keys", "get", "items"]


@pytest.mark.parametrize("name", PYTHON_NAMES)
def test_python_names_in_a_spec_are_unknown_names(name):
    """Every place a spec names something is looked up in the registry's tables, nowhere else."""
    text = (f"data {name}\ninput 4\nlayer {name} 4\ndense 4 {name} init={name}\n{name} 4\n"
            f"loss {name}\noptimizer {name}\nschedule {name}\nmetrics {name}\nearly_stop 3 monitor={name}\n"
            f"dense 4 {name}=1\nactivation {name}\n")
    program, diagnostics = check_text(text)
    assert program is None
    codes = sorted({d.code for d in diagnostics if d.is_error})
    assert set(codes) <= {"E200", "E201", "E202", "E203", "E505"}, codes
    assert len([d for d in diagnostics if d.is_error]) >= 10
