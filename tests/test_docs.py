"""What the documentation points at exists: its relative links, and every study folder it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", RESULTS / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_relative_links_resolve(page):
    targets = [target for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()) if "://" not in target]
    assert all((page.parent / target).exists() for target in targets), targets


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_study_result_a_page_names_is_committed(page):
    # A folder renamed or never committed would leave readers with numbers they cannot check.
    names = set(re.findall(r"`(?:benchmarks/results/)?(tsr_study[\w.-]*?)/?`", page.read_text()))
    assert names and not [name for name in names if not (RESULTS / name).exists()]
