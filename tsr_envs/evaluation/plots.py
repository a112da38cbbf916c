"""Figures of an evaluation: success per env per agent with 95% CI error bars, and the turns distribution.

matplotlib (the ``[eval]`` extra) is imported here only, with the non-interactive Agg backend, so reports
render on headless machines and nothing else in ``tsr_envs`` pays for the import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class EvalResults(Protocol):
    """What the figures read of ``tsr_envs.evaluation.report.EvalResults`` (named here, not imported,
    so that the report and its figures do not import each other)."""

    agents: Sequence[str]
    envs: Sequence[str]
    records: Sequence[dict[str, Any]]

    def rows(self) -> Sequence[Any]: ...


SUCCESS_FIGURE = "success.png"
TURNS_FIGURE = "turns.png"


def save_figures(results: EvalResults, folder: Path) -> list[Path]:
    """Write both figures into ``folder``; return their paths (none if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = [folder / SUCCESS_FIGURE, folder / TURNS_FIGURE]
    for draw, path in zip((_success_figure, _turns_figure), paths, strict=True):
        figure = draw(results, plt)
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
    return paths


def _success_figure(results: EvalResults, plt):
    rows = results.rows()
    agents = results.agents
    envs = list(dict.fromkeys(row.env for row in rows))
    width = 0.8 / len(agents)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.2 * len(envs) * max(1, len(agents)) ** 0.5 + 2), 4))
    for i, agent in enumerate(agents):
        mine = {row.env: row for row in rows if row.agent == agent}
        xs = [j + (i - (len(agents) - 1) / 2) * width for j, env in enumerate(envs) if env in mine]
        chosen = [mine[env] for env in envs if env in mine]
        rates = [row.success_rate for row in chosen]
        errors = [
            [r - row.ci_low for r, row in zip(rates, chosen, strict=True)],
            [row.ci_high - r for r, row in zip(rates, chosen, strict=True)],
        ]
        axes.bar(xs, rates, width, yerr=errors, capsize=3, label=agent, color=f"C{i}")
    axes.set_xticks(range(len(envs)), [env.removeprefix("tsr/") for env in envs], rotation=30, ha="right")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("success rate (95% Wilson CI)")
    axes.legend(fontsize="small")
    axes.set_title("Success per environment")
    return figure


def _turns_figure(results: EvalResults, plt):
    envs = results.envs
    columns = min(3, len(envs))
    rows = math.ceil(len(envs) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axes, env in zip(grid.flat, envs, strict=False):
        data = {
            i: [r["turns"] for r in results.records if r["env"] == env and r["agent"] == agent]
            for i, agent in enumerate(results.agents)
        }
        top = max(max(turns) for turns in data.values() if turns)
        bins = range(0, top + 2, max(1, (top + 1) // 20))
        for i, turns in data.items():
            if turns:
                axes.hist(
                    turns, bins=bins, histtype="step", linewidth=1.5, color=f"C{i}", label=results.agents[i]
                )
        axes.set_title(env.removeprefix("tsr/"), fontsize="medium")
        axes.set_xlabel("turns per episode")
        axes.set_ylabel("episodes")
    for axes in list(grid.flat)[len(envs) :]:
        axes.set_visible(False)
    grid.flat[0].legend(fontsize="small")
    figure.tight_layout()
    return figure
