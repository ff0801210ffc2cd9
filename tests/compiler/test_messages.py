"""The message table: each message's code is declared in `codes.py`, each code has its messages, every
template formats, and no module but the table names a code."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from dlc.compiler import codes
from dlc.compiler import messages as m
from dlc.grammar.nodes import Span

MESSAGES = {name: value for name, value in vars(m).items() if isinstance(value, m.Message)}
# The plain templates: the hints a call site chooses among, labels, and what messages name values by.
TEMPLATES = {name: value for name, value in vars(m).items() if isinstance(value, str) and name.isupper()}
# Codes worded where they are found, for now: the registry's shape rules raise them as `ShapeError`.
WORDED_ELSEWHERE = {"E400", "E401", "E406"}
# The modules that may name a code: its declaration, the table, and the shape rules above.
NAMING_CODES = ("compiler/codes.py", "compiler/messages.py", "compiler/registry/")
PACKAGE = Path(m.__file__).resolve().parents[1]


def test_every_message_has_a_declared_code():
    assert {name: message.code for name, message in MESSAGES.items() if message.code not in codes.BY_CODE} == {}


def test_every_code_has_a_message_unless_worded_elsewhere():
    assert {c.code for c in codes.CODES} - {message.code for message in MESSAGES.values()} == WORDED_ELSEWHERE


def test_each_message_is_declared_once():
    declared = [(message.code, message.text, message.hint) for message in MESSAGES.values()]
    assert len(declared) == len(set(declared))


def fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("name", sorted(MESSAGES.keys() | TEMPLATES.keys()))
def test_every_template_formats(name):
    """With a number for every value (each format spec takes one), and no value named as `at`'s own
    arguments."""
    message = MESSAGES.get(name)
    templates = [message.text, message.hint or ""] if message else [TEMPLATES[name]]
    for template in templates:
        assert not fields(template) & {"hint", "labels"}, name
        template.format(**dict.fromkeys(fields(template), 1))


def test_a_message_is_a_diagnostic_with_its_values_formatted():
    span = Span("spec.dl", 1, 1, 1, 5, 0, 4)
    d = m.UNKNOWN_STATEMENT.at(span, keyword="dnse")
    assert (d.code, d.severity, d.message, d.hint) == (
        "E200", "error", "unknown statement `dnse`", "run `dlc explain E200` for the list of statements")
    assert m.UNKNOWN_STATEMENT.at(span, hint="did you mean `dense`?", keyword="dnse").hint == "did you mean `dense`?"
    assert m.NO_LOSS.at(span, setting="loss", example="loss mse").severity == "warning"
    assert m.UNCLOSED_BLOCK.at(span).message == "this `{` is never closed"


def test_counts_word_one_and_many():
    assert [m.STEPS.of(k) for k in (0, 1, 1234)] == ["0 steps", "1 step", "1,234 steps"]
    assert [m.POSITIONALS.of(k) for k in (0, 1, 2)] == [
        "no positional values", "at most 1 positional value", "at most 2 positional values"]


def test_no_module_but_the_table_names_a_code():
    named = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        if where.startswith(NAMING_CODES):
            continue
        found = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and len(node.value) == 4 and node.value[0] in "EW" and node.value[1:].isdigit()]
        if found:
            named[where] = found
    assert named == {}
