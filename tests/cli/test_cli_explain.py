"""`dlc explain`: one code's explanation, the list of codes, and docs/errors.md generated from them."""

from __future__ import annotations

from pathlib import Path

from dlc.cli import EXIT_OK, EXIT_USAGE, main
from dlc.compiler.codes import BY_CODE, CODES

ERRORS_MD = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_explain_a_code_shows_its_title_explanation_and_both_examples(capsys) -> None:
    assert main(["explain", "E203"]) == EXIT_OK
    out = capsys.readouterr().out
    code = BY_CODE["E203"]
    assert out.startswith(f"E203: {code.title}\n")
    assert code.explanation in out
    failing, fixed = out.split("Fails:")[1].split("Fixed:")
    assert all(f"    {line}" in failing for line in code.bad.splitlines())
    assert all(f"    {line}" in fixed for line in code.good.splitlines())


def test_codes_are_accepted_in_lower_case(capsys) -> None:
    assert main(["explain", "w103"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("W103: ")


def test_explain_without_a_code_lists_every_code(capsys) -> None:
    assert main(["explain"]) == EXIT_OK
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [c.code for c in CODES]


def test_an_unknown_code_is_a_usage_error(capsys) -> None:
    assert main(["explain", "E999"]) == EXIT_USAGE
    assert "unknown code E999" in capsys.readouterr().err


def test_docs_errors_md_is_generated_from_the_codes(capsys) -> None:
    assert main(["explain", "--markdown"]) == EXIT_OK
    generated = capsys.readouterr().out
    assert all(f"## {c.code}" in generated for c in CODES)
    assert ERRORS_MD.read_text(encoding="utf-8") == generated, \
        "docs/errors.md is stale: regenerate it with `.venv/bin/dlc explain --markdown > docs/errors.md`"
