"""What fuzzing feeds dlc and what it holds dlc to, shared by `test_fuzz.py` (seconds, in the suite)
and `scripts/fuzz.py` (minutes, by hand).

Inputs: specs printed from registry-shaped ASTs (the grammar), and the shipped specs (`specs/`,
`../shared/contract/`) after a few random edits: characters and language fragments inserted,
ranges deleted, swapped or duplicated, bytes overwritten or cut (so that some are not UTF-8).

The promise (`answer`): the front end returns diagnostics whose spans lie in the text; the API
returns a program or raises `SpecError`, and a program it returns can be summarised and written
as IR; `dlc check`, in-process, exits 0 or 1 with diagnostics, in text and in JSON. Anything else
is a crash.
"""

from __future__ import annotations

import json
from pathlib import Path

from hostile import assert_no_crash, dlc
from hypothesis import strategies as st
from strategies import CONTRACT, REPO, mutated, specs

import dlc as api
from dlc.cli import EXIT_ERRORS, EXIT_OK
from dlc.compiler.check import check_bytes
from dlc.compiler.codes import BY_CODE
from dlc.grammar.printer import print_spec

SHIPPED = sorted((REPO / "specs").rglob("*.dl")) + sorted(CONTRACT.glob("*/*.dl"))
# Each shipped spec's text and folder: relative data paths in a mutated spec still find their files.
SOURCES = tuple((path.read_text(encoding="utf-8"), path.parent) for path in SHIPPED)


@st.composite
def byte_edits(draw: st.DrawFn, text: str) -> bytes:
    """`text` as UTF-8, with up to two bytes overwritten and sometimes cut short."""
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(draw(st.integers(0, 2))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def shipped_mutations(draw: st.DrawFn) -> tuple[bytes, Path]:
    """(bytes, folder): a shipped spec after character edits, then perhaps byte edits."""
    text, folder = draw(st.sampled_from(SOURCES))
    edited = draw(mutated((text,)))
    return (draw(byte_edits(edited)) if draw(st.booleans()) else edited.encode("utf-8", "surrogatepass")), folder


def grammar_specs() -> st.SearchStrategy[tuple[bytes, Path]]:
    """(bytes, folder): registry-shaped specs as `dlc fmt` would print them, values of any range."""
    return specs().map(lambda spec: (print_spec(spec).encode("utf-8"), REPO / "specs"))


def spans_agree(text: str, diagnostics) -> None:
    for d in diagnostics:
        assert d.code in BY_CODE, d
        for span in (d.span, *(label.span for label in d.labels)):
            assert 0 <= span.start <= span.end <= len(text), d
            before = text[:span.start].split("\n")
            assert (span.line, span.col) == (len(before), len(before[-1]) + 1), d


def answer(data: bytes, folder: Path, scratch: Path) -> None:
    """Hold every front door to its promise for these bytes; an AssertionError or any other
    exception is a crash. The API reads data paths from `folder` (where the spec came from, so that
    they are found); `dlc check` and the front end from `scratch`, where the spec file is written."""
    spec = scratch / "fuzz.dl"
    spec.write_bytes(data)
    program, diagnostics, text = check_bytes(data, str(spec), scratch)
    assert (program is None) == any(d.is_error for d in diagnostics)
    spans_agree(text, diagnostics)

    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        source = None
    if source is not None:
        try:
            compiled = api.compile(source, path="fuzz.dl", base_dir=folder)
        except api.SpecError as e:
            assert any(d.is_error for d in e.diagnostics) and str(e)
        else:
            assert compiled.summary()
            json.dumps(compiled.ir.to_json())

    shown = dlc("check", str(spec))
    assert_no_crash(shown)
    assert shown.status == (EXIT_OK if program is not None else EXIT_ERRORS), shown.err
    listed = dlc("check", "--format", "json", str(spec))
    assert_no_crash(listed)
    assert [d["code"] for d in json.loads(listed.out)] == [d.code for d in diagnostics]

