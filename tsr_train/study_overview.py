"""The TSR study at a glance: one row per (study folder, env, algorithm), the best search against naive.

Each study folder answers one question from one starting model (a build of the embedded model, a recipe,
a set of envs), and its own ``results.md`` says everything about it.  This table puts their headlines side
by side, read from each folder's ``results.json`` alone, so that the summary a reader sees first is
rebuilt from the same records as the details and cannot drift from them.

The verdict column applies the study's goal, a gain of at least ``GOAL`` in the test success of the final
policy alone at equal optimizer steps, paired by training seed, and says how firmly: ``yes`` when the
mean gain reaches the goal and its 95% interval lies above zero, ``mean only`` when the mean reaches it
but the interval does not exclude zero, ``one seed`` when no interval exists, and ``no`` otherwise.

The last column is the study's second budget, equal generated tokens: each search's last policies
against naive's runs of the same seeds resumed for as many steps as that search's tokens take at
naive's tokens per step (the folder's ``tokens`` cells), paired by seed.  A search costs more tokens
a step, so this is the comparison a user with a fixed sampling budget cares about; it is shown where
such cells were run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from tsr_train.study import (
    RESULTS_FILE,
    PairedGap,
    best_heldout_success,
    best_paired_gap,
    last_success,
    on_seeds,
    strongest,
)

#: the gain over naive the study asks of some search in every (env, algorithm) row
GOAL = 0.15
HEADER = (
    "| study folder | env | algo | steps | base | naive | best search | best search − naive "
    f"(paired by seed, 95% CI) | goal (+{GOAL:.2f}) | best validation checkpoints: best search − naive "
    "| equal generated tokens: best search − naive |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
)


def verdict(gap: PairedGap) -> str:
    """Whether a paired gain meets the study's goal, and how firmly (see the module docstring)."""
    if gap.mean < GOAL:
        return "no"
    if gap.seeds < 2:
        return "one seed"
    return "yes" if gap.mean - gap.ci95 > 0 else "mean only"


def _gap_text(gap: PairedGap | None) -> str:
    if gap is None:
        return "–"
    low, high = gap.mean - gap.ci95, gap.mean + gap.ci95
    interval = f" [{low:+.2f}, {high:+.2f}]" if gap.seeds > 1 else ""
    seeds = "1 seed" if gap.seeds == 1 else f"{gap.seeds} seeds"
    return f"{gap.mean:+.3f}{interval} ({gap.strategy}, {seeds})"


def _success_text(cell: dict) -> str:
    spread = f" ± {cell['success_ci95']:.3f}" if len(cell["success"]) > 1 else ""
    return f"{cell['success_mean']:.3f}{spread}"


def equal_token_gap(searches: dict[str, dict | None], naive_to: dict[str, dict | None]) -> PairedGap | None:
    """The search that beats naive most when naive was trained to its tokens (``naive_to[search]``)."""
    gaps = [
        best_paired_gap({strategy: cell}, naive_to.get(strategy), last_success)
        for strategy, cell in searches.items()
    ]
    return strongest(gap for gap in gaps if gap is not None)


def overview_rows(folder: Path, root: Path) -> list[str]:
    """The table rows of one study folder: each (env, algo) where some search ran beside naive."""
    results = json.loads((folder / RESULTS_FILE).read_text())
    study = results["study"]
    cells = {(c["env"], c["algo"], c["strategy"]): c for c in results["cells"] if c["budget"] == "steps"}
    naive_to_tokens = {
        (c["env"], c["algo"], c["matched_to"]): c for c in results["cells"] if c["budget"] == "tokens"
    }
    rows = []
    for env_id in study["envs"]:
        for algo in study["algos"]:
            naive = cells.get((env_id, algo, "naive"))
            searches = {s: cells.get((env_id, algo, s)) for s in study["strategies"] if s != "naive"}
            gap = best_paired_gap(searches, naive, last_success)
            if gap is None:
                continue
            best = cells[(env_id, algo, gap.strategy)]
            paired = [seed for seed in best["seeds"] if seed in naive["seeds"]]
            base = results["baseline"].get(env_id, {}).get("success")
            checkpoints = best_paired_gap(searches, naive, best_heldout_success)
            naive_to = {s: naive_to_tokens.get((env_id, algo, s)) for s in searches}
            tokens = equal_token_gap(searches, naive_to)
            rows.append(
                f"| `{os.path.relpath(folder, root)}` | {env_id.split('/')[-1]} | {algo.upper()} | "
                f"{study['steps']} | {'–' if base is None else f'{base:.3f}'} | "
                f"{_success_text(on_seeds(naive, paired))} | "
                f"{gap.strategy} {_success_text(on_seeds(best, paired))} | {_gap_text(gap)} | "
                f"{verdict(gap)} | {_gap_text(checkpoints)} | {_gap_text(tokens)} |"
            )
    return rows


def overview_markdown(folders: Sequence[Path], root: Path) -> str:
    """The at-a-glance table of ``folders`` (in that order), their paths shown relative to ``root``."""
    lines = list(HEADER)
    for folder in folders:
        lines += overview_rows(folder, root)
    return "\n".join(lines) + "\n"


def folders_of(table: str, root: Path) -> list[Path]:
    """The study folders a table written by ``overview_markdown`` was made from, in its order."""
    folders: list[Path] = []
    for line in table.splitlines()[len(HEADER) :]:
        folder = (root / line.split("`")[1]).resolve()
        if folder not in folders:
            folders.append(folder)
    return folders
