"""docs/reliability.md names the test behind each fault it lists: every one must exist, so that a
renamed or deleted test cannot leave the page promising what nothing checks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
NAMED = sorted(set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`", PAGE)))


def test_the_page_names_tests():
    assert len(NAMED) >= 40


@pytest.mark.parametrize(("path", "name"), NAMED, ids=[f"{p}::{n}" for p, n in NAMED])
def test_named_test_exists(path, name):
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    assert name in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, f"{path}::{name}"
