"""Per-step training metrics: one summary of a rollout batch, and one logger for both trainers.

Why one module: GRPO (through TRL's Trainer) and PPO (our loop) must report the same numbers under the
same names, or the search-vs-naive table would compare apples with pears.  ``rollout_metrics`` turns a
``RolloutBatch`` into those numbers; ``MetricsLogger`` shows a progress bar with a one-line summary per
step, appends every step to ``metrics.jsonl`` and redraws ``learning_curve.png``.  Experiment trackers
(TensorBoard, W&B) are left to the frameworks that already speak to them: TRL's ``report_to`` for GRPO,
accelerate's trackers for PPO.

This module does not import torch, so the CLI and the experiment driver can plot without it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsr_train.filtering import group_spread, trajectory_reward

if TYPE_CHECKING:
    from tsr_train.strategies import RolloutBatch

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "learning_curve.png"
#: (metric, short label) shown on the console line, in order; absent metrics are skipped
CONSOLE_FIELDS: tuple[tuple[str, str], ...] = (
    ("rollout/success", "success"),
    ("rollout/return", "return"),
    ("rollout/score", "score"),
    ("rollout/invalid_rate", "invalid"),
    ("search/candidate_invalid_rate", "candidates invalid"),
    ("rollout/reply_tokens", "reply"),
    ("rollout/zero_spread_groups", "flat"),
    ("heldout/success", "held-out"),
    ("search/candidates_generated", "candidates"),
    ("loss", "loss"),
    ("step_time_s", "s/step"),
)
#: metrics drawn on the learning curve, one panel each
CURVE_FIELDS: tuple[str, ...] = (
    "heldout/success",
    "rollout/success",
    "rollout/score",
    "rollout/invalid_rate",
    "rollout/zero_spread_groups",
)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def rollout_metrics(batch: RolloutBatch, reward: str) -> dict[str, float]:
    """What a step's trajectories achieved, and what the search cost to build them.

    A group is the trajectories of one seed; ``zero_spread_groups`` is the fraction of groups whose
    trajectories all earned the same reward (no GRPO signal), ``reply_tokens`` the mean model tokens per
    turn, and ``search/logprob_gap_mean`` how much likelier the search's choices were than their
    candidates under the policy (0 for naive: nothing is chosen).
    """
    trajectories = batch.trajectories
    turns = sum(t.num_turns for t in trajectories)
    model_tokens = [sum(t.env_mask) for t in trajectories]
    groups: dict[int, list[float]] = {}
    for t in trajectories:
        groups.setdefault(t.seed, []).append(trajectory_reward(t, reward))
    metrics = {
        "rollout/zero_spread_groups": _mean(float(group_spread(g) == 0.0) for g in groups.values()),
        "rollout/reply_tokens": sum(model_tokens) / max(turns, 1),
        "rollout/reward": _mean(trajectory_reward(t, reward) for t in trajectories),
        "rollout/success": _mean(float(t.success) for t in trajectories),
        "rollout/return": _mean(t.episode_return for t in trajectories),
        "rollout/score": _mean(t.final_score for t in trajectories),
        "rollout/invalid_rate": sum(t.invalid_turns for t in trajectories) / max(turns, 1),
        "rollout/turns": turns / max(len(trajectories), 1),
        "rollout/model_tokens": _mean(model_tokens),
        "rollout/env_tokens": _mean(
            len(t.completion_ids) - m for t, m in zip(trajectories, model_tokens, strict=True)
        ),
    }
    metrics.update({f"search/{key}": float(value) for key, value in batch.stats.as_dict().items()})
    return metrics


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (empty if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _format(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def console_line(step: int, total: int, metrics: dict[str, float]) -> str:
    parts = [f"step {step}/{total}"]
    parts += [f"{label} {_format(metrics[key])}" for key, label in CONSOLE_FIELDS if key in metrics]
    return " | ".join(parts)


def plot_learning_curve(
    records: Sequence[dict[str, Any]], path: Path, *, title: str = "", fields: Sequence[str] = CURVE_FIELDS
) -> Path | None:
    """Draw one panel per metric against the step (matplotlib Agg, no display needed)."""
    fields = [f for f in fields if any(f in r for r in records)]
    if not fields:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(3.6 * len(fields), 3.0), squeeze=False)
    for ax, key in zip(axes[0], fields, strict=True):
        points = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set_title(key.split("/")[-1])
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class MetricsLogger:
    """Progress bar, console line, ``metrics.jsonl`` and the learning-curve PNG of one run.

    On resume (``start_step > 0``) the records after ``start_step`` are dropped first: they belong to steps
    that are about to be trained again, and keeping them would make the file disagree with the model.
    """

    def __init__(
        self, out_dir: Path, total_steps: int, *, start_step: int = 0, title: str = "", enabled: bool = True
    ) -> None:
        self.out_dir = Path(out_dir)
        self.total_steps = total_steps
        self.title = title
        self.enabled = enabled  # False on the non-main processes of a distributed run
        self.path = self.out_dir / METRICS_FILE
        # A run resumed from no checkpoint starts over, its step-0 check included.
        self.records = [r for r in read_metrics(self.path) if r["step"] <= start_step] if start_step else []
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
            self._bar = tqdm(
                total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True
            )

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if not self.enabled:
            return
        record = {"step": step, **clean}
        self.records.append(record)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._bar.write(console_line(step, self.total_steps, clean))
        self._bar.update(step - self._bar.n)

    def plot(self) -> Path | None:
        """(Re)draw ``learning_curve.png`` from the records so far; called at checkpoints and at the end."""
        if not self.enabled:
            return None
        return plot_learning_curve(self.records, self.out_dir / CURVE_FILE, title=self.title)

    def close(self) -> Path | None:
        """Close the bar and draw the learning curve; returns the PNG path."""
        if self._bar is not None:
            self._bar.close()
        return self.plot()
