"""Every committed study table is what its folder's records give: nothing in them is written by hand."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tsr_train.study import (
    BASELINE_FILE,
    CELLS_FILE,
    RESULTS_FILE,
    STUDY_FILE,
    TABLE_FILE,
    PairedGap,
    recorded_study,
    summarise,
)
from tsr_train.study_overview import folders_of, overview_markdown, verdict

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
FOLDERS = sorted(
    record.parent
    for record in RESULTS.rglob(STUDY_FILE)
    if (record.parent / TABLE_FILE).exists() and "runs" not in record.relative_to(RESULTS).parts
)


@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(RESULTS)) for f in FOLDERS])
def test_a_committed_study_table_is_rebuilt_from_its_records(folder, tmp_path):
    # Only what a fresh checkout has: the records, without the run folders.
    for name in (STUDY_FILE, CELLS_FILE, BASELINE_FILE):
        if (folder / name).exists():
            shutil.copy(folder / name, tmp_path / name)
    summarise(dataclasses.replace(recorded_study(folder), out_dir=str(tmp_path)))
    assert (tmp_path / TABLE_FILE).read_text() == (folder / TABLE_FILE).read_text()
    rebuilt, committed = (json.loads((path / RESULTS_FILE).read_text()) for path in (tmp_path, folder))
    assert rebuilt["cells"] == committed["cells"] and rebuilt["baseline"] == committed["baseline"]


def test_the_committed_studies_are_found():
    assert len(FOLDERS) >= 20 and RESULTS / "tsr_study_hard_maps_xeon_best" in FOLDERS


OVERVIEW = RESULTS / "tsr_study_overview.md"


def test_the_committed_overview_is_rebuilt_from_its_folders_and_is_what_readme_shows():
    committed = OVERVIEW.read_text()
    folders = folders_of(committed, RESULTS)
    assert len(folders) >= 5 and all(folder in FOLDERS for folder in folders)
    assert overview_markdown(folders, RESULTS) == committed
    readme = (RESULTS.parents[1] / "README.md").read_text()
    assert committed in readme  # the table users read first is the one the records give


@pytest.mark.parametrize(
    ("mean", "ci95", "seeds", "expected"),
    [
        (0.30, 0.12, 5, "yes"),  # reaches the goal, interval above zero
        (0.30, 0.40, 3, "mean only"),  # reaches it, but the interval includes zero
        (0.20, 0.0, 1, "one seed"),
        (0.149, 0.01, 5, "no"),
        (-0.2, 0.1, 5, "no"),
    ],
)
def test_the_verdict_applies_the_goal_and_says_how_firmly(mean, ci95, seeds, expected):
    assert verdict(PairedGap("best-of-4", mean, ci95, seeds)) == expected
