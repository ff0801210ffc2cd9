"""Every code's failing example from `dlc/compiler/codes.py`, rendered as `dlc check` prints it,
against `tests/golden/CODE.txt`; and every fixed example free of its code.

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


def bad_source(code: Code) -> bytes:
    return NOT_UTF8 if code.bad is None else code.bad.encode()


def checked(code: Code, source: bytes, data_dir: Path) -> tuple[list[Diagnostic], str]:
    _, diagnostics, text = check_bytes(source, SHOWN_PATH, data_dir, training=code.training)
    return diagnostics, text


def rendered(code: Code, data_dir: Path) -> str:
    """The text `dlc check` prints for the failing example; the data folder shows as `$DIR`."""
    diagnostics, text = checked(code, bad_source(code), data_dir)
    return render_text(diagnostics, {SHOWN_PATH: text}).replace(str(data_dir), "$DIR")


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_rendering_matches_golden(code: Code, data_dir: Path) -> None:
    golden = GOLDEN / f"{code.code}.txt"
    text = rendered(code, data_dir)
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no {golden.name}: run with DLC_UPDATE_GOLDENS=1 to write it"
    assert text == golden.read_text(encoding="utf-8"), \
        f"{code.code} renders differently; if that is meant, rerun with DLC_UPDATE_GOLDENS=1 and read the diff"


def test_no_golden_without_a_code() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(c.code for c in CODES)


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_bad_example_gets_its_code(code: Code, data_dir: Path) -> None:
    diagnostics, _ = checked(code, bad_source(code), data_dir)
    assert code.code in {d.code for d in diagnostics}


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_good_example_has_no_errors(code: Code, data_dir: Path) -> None:
    diagnostics, _ = checked(code, code.good.encode(), data_dir)
    assert code.code not in {d.code for d in diagnostics}
    assert [d for d in diagnostics if d.is_error] == []
