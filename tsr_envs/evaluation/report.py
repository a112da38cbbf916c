"""Summaries of evaluation runs: per env and overall, as a table, JSON, Markdown and figures.

Metrics per (agent, env) -- and per agent over all its episodes ("overall", pooled):

* success rate with its 95% Wilson interval;
* mean return (sum of rewards), mean turns (model replies), mean final ``score`` (state-based progress,
  1.0 = solved);
* invalid rate: the share of turns whose reply the env could not use (unparseable or illegal), and the
  number of replies that never came (endpoint failures, also counted as invalid turns).

When several agents played the same seeds, each pair is compared on those seeds: an exact McNemar test on
success and an exact sign test on return.  Every number is computed from the records in a fixed order, so
a resumed run reports exactly what an uninterrupted one does.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tsr_envs.evaluation.errors import EvalInputError
from tsr_envs.evaluation.stats import PairedTest, mcnemar_exact, sign_test, wilson_interval
from tsr_envs.evaluation.store import ResultsFolder

OVERALL = "overall"


@dataclass(frozen=True)
class Row:
    agent: str
    env: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_return: float
    mean_turns: float
    invalid_rate: float
    missing_replies: int
    mean_final_score: float


@dataclass(frozen=True)
class Paired:
    """``first`` against ``second`` on the seeds both played (``better`` = pairs where ``first`` won)."""

    first: str
    second: str
    env: str
    pairs: int
    success: PairedTest
    returns: PairedTest


def _row(agent: str, env: str, records: list[dict[str, Any]]) -> Row:
    n = len(records)
    successes = sum(1 for r in records if r["success"])
    turns = sum(r["turns"] for r in records)
    low, high = wilson_interval(successes, n)
    return Row(
        agent,
        env,
        n,
        successes,
        successes / n,
        low,
        high,
        mean_return=sum(r["return"] for r in records) / n,
        mean_turns=turns / n,
        invalid_rate=sum(r["invalid_turns"] for r in records) / turns if turns else 0.0,
        missing_replies=sum(r.get("missing_replies", 0) for r in records),
        mean_final_score=sum(r["final_score"] for r in records) / n,
    )


@dataclass
class EvalResults:
    """Episode records plus everything derived from them; what ``evaluate`` returns."""

    records: list[dict[str, Any]]
    #: counters of endpoint agents in this session (requests, retries, timeouts, ...), by agent
    agent_stats: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def agents(self) -> list[str]:
        return list(dict.fromkeys(r["agent"] for r in self.records))

    @property
    def envs(self) -> list[str]:
        return list(dict.fromkeys(r["env"] for r in self.records))

    def _grouped(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in sorted(self.records, key=lambda r: (r["agent"], r["env"], r["seed"])):
            groups.setdefault((record["agent"], record["env"]), []).append(record)
        return groups

    def rows(self) -> list[Row]:
        """One row per (agent, env), then each agent's pooled ``overall`` row when it played several envs."""
        groups = self._grouped()
        rows = [_row(a, e, groups[a, e]) for a in self.agents for e in self.envs if (a, e) in groups]
        for agent in self.agents:
            mine = [groups[agent, e] for e in self.envs if (agent, e) in groups]
            if len(mine) > 1:
                rows.append(_row(agent, OVERALL, [r for group in mine for r in group]))
        return rows

    def paired(self) -> list[Paired]:
        """Every pair of agents compared on the seeds both played, per env and overall."""
        groups = self._grouped()
        comparisons = []
        for first, second in itertools.combinations(self.agents, 2):
            pooled: list[tuple[dict[str, Any], dict[str, Any]]] = []
            per_env = []
            for env in self.envs:
                theirs = {r["seed"]: r for r in groups.get((second, env), [])}
                pairs = [(r, theirs[r["seed"]]) for r in groups.get((first, env), []) if r["seed"] in theirs]
                if pairs:
                    per_env.append(_paired(first, second, env, pairs))
                    pooled.extend(pairs)
            comparisons.extend(per_env)
            if len(per_env) > 1:
                comparisons.append(_paired(first, second, OVERALL, pooled))
        return comparisons

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [asdict(row) for row in self.rows()],
            "paired": [
                {
                    "first": p.first,
                    "second": p.second,
                    "env": p.env,
                    "pairs": p.pairs,
                    "success": p.success._asdict(),
                    "returns": p.returns._asdict(),
                }
                for p in self.paired()
            ],
            "agent_stats": self.agent_stats,
        }

    def table(self) -> str:
        """The summary as plain-text tables for a terminal."""
        return "\n\n".join(_text_table(header, body) for header, body in self._tables())

    def to_markdown(self) -> str:
        parts = ["# Evaluation results", ""]
        for header, body in self._tables():
            parts += [_markdown_table(header, body), ""]
        parts.append(
            "Success: rate with its 95% Wilson interval. Invalid: share of turns the env could not use. "
            "Paired: exact McNemar test on success, exact sign test on return (p two-sided)."
        )
        return "\n".join(parts) + "\n"

    def _tables(self) -> list[tuple[list[str], list[list[str]]]]:
        if not self.records:
            return [(["result"], [["no episodes"]])]
        rows = self.rows()
        tables = [
            (
                [
                    "agent",
                    "env",
                    "episodes",
                    "success [95% CI]",
                    "return",
                    "turns",
                    "invalid",
                    "no reply",
                    "score",
                ],
                [
                    [
                        r.agent,
                        r.env,
                        str(r.episodes),
                        _rate(r),
                        f"{r.mean_return:.3f}",
                        f"{r.mean_turns:.2f}",
                        f"{100 * r.invalid_rate:.1f}%",
                        str(r.missing_replies),
                        f"{r.mean_final_score:.3f}",
                    ]
                    for r in rows
                ],
            )
        ]
        agents = self.agents
        if len(agents) > 1:
            cells = {(r.agent, r.env): _rate(r) for r in rows}
            envs = self.envs + ([OVERALL] if len(self.envs) > 1 else [])
            tables.append((["env", *agents], [[e, *(cells.get((a, e), "-") for a in agents)] for e in envs]))
        paired = self.paired()
        if paired:
            tables.append(
                (
                    [
                        "first vs second",
                        "env",
                        "pairs",
                        "success +/-/=",
                        "McNemar p",
                        "return +/-/=",
                        "sign p",
                    ],
                    [
                        [
                            f"{p.first} vs {p.second}",
                            p.env,
                            str(p.pairs),
                            _counts(p.success),
                            f"{p.success.p_value:.3g}",
                            _counts(p.returns),
                            f"{p.returns.p_value:.3g}",
                        ]
                        for p in paired
                    ],
                )
            )
        return tables

    def save(self, path: str | os.PathLike[str], plot: bool = True) -> list[Path]:
        """Write ``summary.json``, ``summary.md`` and, with ``plot``, the PNG figures; return the paths."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "summary.json", folder / "summary.md"]
        written[0].write_text(json.dumps(self.to_json(), indent=2) + "\n")
        written[1].write_text(self.to_markdown())
        if plot and self.records:
            from tsr_envs.evaluation.plots import save_figures

            written += save_figures(self, folder)
        return written


def merge(runs: Mapping[str, EvalResults]) -> EvalResults:
    """Several runs as one, agents renamed ``RUN:agent`` when there is more than one run."""
    if len(runs) == 1:
        return next(iter(runs.values()))
    records = [
        {**r, "agent": f"{name}:{r['agent']}"} for name, results in runs.items() for r in results.records
    ]
    return EvalResults(records)


def load_results(path: str | os.PathLike[str]) -> EvalResults:
    """Every record stored in a folder written by ``evaluate`` / ``tsr eval``."""
    folder = ResultsFolder(path)
    if not folder.exists():
        raise EvalInputError(f"{path} has no {folder.episodes_path.name}; is it a tsr eval --out folder?")
    records = folder.read_records()
    # file order depends on which worker finished first; sort so that reports are reproducible
    records.sort(key=lambda r: (r["agent"], r["env"], r["seed"]))
    return EvalResults(records)


def _paired(first: str, second: str, env: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> Paired:
    pairs = sorted(pairs, key=lambda pair: (pair[0]["env"], pair[0]["seed"]))
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    return Paired(
        first,
        second,
        env,
        len(pairs),
        mcnemar_exact([r["success"] for r in a], [r["success"] for r in b]),
        sign_test([r["return"] for r in a], [r["return"] for r in b]),
    )


def _rate(row: Row) -> str:
    return f"{100 * row.success_rate:5.1f}% [{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}]"


def _counts(test: PairedTest) -> str:
    return f"{test.better}/{test.worse}/{test.ties}"


def _text_table(header: list[str], body: Iterable[list[str]]) -> str:
    lines = [header, *body]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def _markdown_table(header: list[str], body: Iterable[list[str]]) -> str:
    def escape(cell: str) -> str:
        return cell.strip().replace("|", "\\|")

    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(escape, line)) + " |" for line in body]
    return "\n".join(lines)
