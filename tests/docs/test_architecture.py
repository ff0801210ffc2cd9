"""docs/architecture.md walks through the code by file name: every file it names must exist, so a
rename that forgets the page fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "architecture.md"
TEXT = PAGE.read_text(encoding="utf-8")
NAMED_PATHS = sorted(set(re.findall(r"`((?:dlc|bench|docs|specs|tests)/[\w./]*)`", TEXT)))
LINKS = sorted(set(re.findall(r"\]\(([^)#:]+)\)", TEXT)))


def test_the_page_names_the_stages_by_file():
    assert len(NAMED_PATHS) >= 10, "the walk-through names the module of each stage"


@pytest.mark.parametrize("path", NAMED_PATHS)
def test_named_path_exists(path):
    assert (REPO / path).exists(), f"docs/architecture.md names `{path}`, which does not exist"


@pytest.mark.parametrize("target", LINKS)
def test_relative_link_lands(target):
    assert (PAGE.parent / target).exists(), f"docs/architecture.md links to `{target}`, which does not exist"
