"""docs/language.md is generated from the registry: it must be current, complete, its links must
land, and every example the registry gives (and the reference shows) must parse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlc.compiler import reference
from dlc.compiler import registry as reg
from dlc.grammar.parse import parse

REPO = Path(__file__).resolve().parents[2]
LANGUAGE_MD = REPO / "docs" / "language.md"
DOC = reference.markdown()


def _section(heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    lines = DOC.splitlines()
    assert heading in lines, f"no heading `{heading}` in the reference"
    start = lines.index(heading) + 1
    level = heading.split(" ")[0]
    end = next((i for i in range(start, len(lines))
                if re.match(rf"#{{1,{len(level)}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def test_language_md_is_current():
    written = LANGUAGE_MD.read_text(encoding="utf-8") if LANGUAGE_MD.exists() else ""
    assert written == DOC, f"docs/language.md is stale: regenerate it with `{reference.COMMAND}`"


def test_generator_command_prints_the_reference():
    result = subprocess.run([sys.executable, "-m", "dlc.compiler.reference"], cwd=REPO,
                            capture_output=True, check=True)
    assert result.stdout.decode("utf-8") == DOC


def test_generating_the_reference_imports_no_array_library():
    script = ("import sys; from dlc.compiler import reference; reference.markdown(); "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'numpy', 'flax', 'optax'}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


ENTRIES = [(table, entry) for table, entries in reg.TABLES.items() for entry in entries]


@pytest.mark.parametrize(("table", "entry"), ENTRIES, ids=[f"{t}:{e.name}" for t, e in ENTRIES])
def test_every_name_is_listed_in_its_section(table, entry):
    section = _section(f"## {reference.SECTIONS[table]}")
    for name in (entry.name, *entry.aliases):
        assert f"`{name}`" in section


# Every parameter, under the heading of the entry that owns it; options every optimizer takes
# are listed at the head of the optimizers, data options under the `data` statement.
OWNED_PARAMS = list(dict.fromkeys(
    [(f"### `{entry.name}` {table}", p) for table, entry in ENTRIES for p in entry.params]
    + [(f"## {reference.SECTIONS['optimizer']}", p) for p in reg.OPTIMIZER_COMMON]
    + [("### `data` statement", p) for p in reg.DATA_OPTIONS]))


@pytest.mark.parametrize(("heading", "param"), OWNED_PARAMS, ids=[f"{h}:{p.name}" for h, p in OWNED_PARAMS])
def test_every_parameter_is_documented_with_its_range(heading, param):
    cell = f"| `{param.name}` (positional" if param.positional else f"| `{param.name}=` |"
    rows = [line for line in _section(heading).splitlines() if line.startswith(cell)]
    assert len(rows) == 1, f"`{param.name}` should have one row under `{heading}`"
    if param.range is not None:
        assert param.range.describe() in rows[0]


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_internal_links_land_on_one_heading():
    anchors = [_github_anchor(h) for h in re.findall(r"^#+ (.+)$", DOC, re.M)]
    assert len(anchors) == len(set(anchors)), "two headings share an anchor; links would land on the first"
    targets = set(re.findall(r"\]\(#([^)]+)\)", DOC))
    assert targets, "the reference links its sections"
    assert targets <= set(anchors)


EXAMPLES = [(table, entry) for table, entry in ENTRIES if entry.example]


@pytest.mark.parametrize(("table", "entry"), EXAMPLES, ids=[f"{t}:{e.name}" for t, e in EXAMPLES])
def test_registry_example_parses(table, entry):
    _, diagnostics = parse(entry.example)
    assert diagnostics == [], f"the example of {table} `{entry.name}` does not parse: {entry.example!r}"
    assert f"`{entry.example}`" in DOC
