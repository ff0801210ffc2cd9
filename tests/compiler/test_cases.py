"""Case files: a spec per diagnostic code under `tests/cases/`, with inline expectations (a code
whose messages one spec cannot show together, as each needs a `data` statement of its own, has a
case per message).

A line that must get a diagnostic ends in a comment naming its codes (`# E203`, or `# E203 E301`;
a code named twice must be reported twice); no other line may get one. Errors and warnings count alike, so a case also proves that nothing
cascades from its faults. A case whose first line is `# mode: training` is checked the way
`dlc run` and `fit` check a spec before training. Data files are looked up in the `data_dir`
fixture's folder.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from dlc.compiler.check import check_bytes
from dlc.compiler.codes import BY_CODE

CASES = Path(__file__).resolve().parent.parent / "cases"
CASE_FILES = sorted(CASES.glob("*.dl"))
EXPECTATION = re.compile(r"#\s*((?:[EW]\d{3}\s*)+)$")
TRAINING = "# mode: training"


def expected(text: str) -> Counter[tuple[int, str]]:
    """How often each (line, code) is named in the trailing expectation comments."""
    return Counter((number, code)
                   for number, line in enumerate(text.splitlines(), 1)
                   if (match := EXPECTATION.search(line.rstrip()))
                   for code in match.group(1).split())


@pytest.mark.parametrize("case", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case_gets_exactly_the_marked_diagnostics(case: Path, data_dir: Path) -> None:
    data = case.read_bytes()
    text = data.decode("utf-8", errors="replace")
    _, diagnostics, _ = check_bytes(data, case.name, data_dir, training=text.startswith(TRAINING))
    got = Counter((d.span.line, d.code) for d in diagnostics)
    want = expected(text)
    said = {(d.span.line, d.code): f"{d.severity}: {d.message}" for d in diagnostics}
    missing = [f"line {line}: {code} expected, not reported" for line, code in sorted((want - got).elements())]
    unexpected = [f"line {line}: {code} not marked ({said[line, code]})" for line, code in sorted((got - want).elements())]
    assert not missing + unexpected, "\n".join(missing + unexpected)


def test_every_code_has_a_case_and_each_case_expects_its_code() -> None:
    by_code: dict[str, list[str]] = {}
    for case in CASE_FILES:
        by_code.setdefault(case.stem.split("_")[0], []).append(case.name)
    assert sorted(by_code) == sorted(BY_CODE), "case files must be named CODE_title.dl, at least one per code"
    for code, names in by_code.items():
        for name in names:
            text = (CASES / name).read_bytes().decode("utf-8", errors="replace")
            assert code in {c for _, c in expected(text)}, f"{name} never expects {code}"


def test_expectation_comments_are_read() -> None:
    text = "input 64\ndense 0 rleu   # E301 E203 E203\n# E203 in prose is not an expectation\nloss mse  #W101\n"
    assert expected(text) == Counter({(2, "E203"): 2, (2, "E301"): 1, (4, "W101"): 1})
