"""Every code's failing example from `dlc/compiler/codes.py`, rendered as `dlc check` prints it,
against `tests/golden/CODE.txt`; and every fixed example free of its code. Messages of a code that
its example does not show are rendered from specs of their own (`VARIANTS`), against
`tests/golden/CODE_what.txt`.

When a message is improved on purpose, rewrite the goldens and read the diff:

    DLC_UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/compiler/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlc.compiler.check import check_bytes
from dlc.compiler.codes import CODES, Code
from dlc.compiler.diagnostics import Diagnostic, render_text

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("DLC_UPDATE_GOLDENS") == "1"
SHOWN_PATH = "example.dl"
# E111's fault cannot be written as text: `model café` saved as Latin-1.
NOT_UTF8 = b"model caf\xe9\n"
_TOKEN_MODEL = "embedding 10 4\nlstm 8\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n"
VARIANTS = {
    # `classes.npz` holds float32 in `x`: numbers, known from the array's header.
    "E407_float_npz": 'data "classes.npz"\n' + _TOKEN_MODEL,
    # The layer's E407 too (the file's `x` is floats): both are said, each where its fix goes.
    "E607_normalized_ids": 'data "classes.npz" normalize=standard\n' + _TOKEN_MODEL,
}


def bad_source(code: Code) -> bytes:
    return NOT_UTF8 if code.bad is None else code.bad.encode()


def checked(code: Code, source: bytes, data_dir: Path) -> tuple[list[Diagnostic], str]:
    _, diagnostics, text = check_bytes(source, SHOWN_PATH, data_dir, training=code.training)
    return diagnostics, text


def rendered(diagnostics: list[Diagnostic], text: str, data_dir: Path) -> str:
    """The text `dlc check` prints for these diagnostics; the data folder shows as `$DIR`."""
    return render_text(diagnostics, {SHOWN_PATH: text}).replace(str(data_dir), "$DIR")


def matches_golden(name: str, text: str) -> None:
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no {golden.name}: run with DLC_UPDATE_GOLDENS=1 to write it"
    assert text == golden.read_text(encoding="utf-8"), \
        f"{name} renders differently; if that is meant, rerun with DLC_UPDATE_GOLDENS=1 and read the diff"


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_rendering_matches_golden(code: Code, data_dir: Path) -> None:
    matches_golden(code.code, rendered(*checked(code, bad_source(code), data_dir), data_dir))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_renders_its_code_as_its_golden(name: str, data_dir: Path) -> None:
    _, diagnostics, text = check_bytes(VARIANTS[name].encode(), SHOWN_PATH, data_dir)
    assert name.split("_")[0] in {d.code for d in diagnostics}
    matches_golden(name, rendered(diagnostics, text, data_dir))


def test_no_golden_without_a_code() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted([c.code for c in CODES] + list(VARIANTS))


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_bad_example_gets_its_code(code: Code, data_dir: Path) -> None:
    diagnostics, _ = checked(code, bad_source(code), data_dir)
    assert code.code in {d.code for d in diagnostics}


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_good_example_has_no_errors(code: Code, data_dir: Path) -> None:
    diagnostics, _ = checked(code, code.good.encode(), data_dir)
    assert code.code not in {d.code for d in diagnostics}
    assert [d for d in diagnostics if d.is_error] == []
