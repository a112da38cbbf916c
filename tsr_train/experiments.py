"""The search-vs-naive experiment: does training on search-built rollouts give a better policy?

For every (env, algorithm, rollout strategy, seed) cell, train the same starting model for the same number
of steps (same seeds per step, same group size, same learning rate), then evaluate the *final policy
alone* — naive sampling, no search — on held-out env seeds.  Search is a training-time device in TSR, so
the fair question is how good the policy it leaves behind is, not how good policy + search is.

Cells are independent and written as they finish (``cells.jsonl``), so the grid can run in the background,
be interrupted and be resumed; ``summarise`` turns whatever has finished into ``results.json``,
``results.md`` (the README table: mean ± sample std over seeds) and ``search_vs_naive.png`` (the
learning curves, mean over seeds, one line per strategy).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from tsr_train.config import EVAL_SEED_BASE, RolloutConfig, TrainConfig, checkpoint_step, latest_checkpoint
from tsr_train.metrics import METRICS_FILE, read_metrics

CELLS_FILE = "cells.jsonl"
BASELINE_FILE = "baseline.jsonl"


@dataclass
class ExperimentConfig:
    """The grid and the settings shared by all its cells."""

    envs: tuple[str, ...] = ("tsr/FrozenLake-v0", "tsr/Sokoban-v0")
    algos: tuple[str, ...] = ("grpo", "ppo")
    strategies: tuple[str, ...] = ("naive", "best-of-4", "beam-2x3", "lookahead-2x4")
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 12
    seeds_per_step: int = 4
    group_size: int = 4
    max_turns: int = 3
    max_new_tokens: int = 32
    reward: str = "return"
    filter_ratio: float = 1.0
    learning_rate: float = 5e-4
    #: held-out env instances the final policy is evaluated on (naive sampling, temperature 1)
    eval_episodes: int = 64
    model: str | None = None
    out_dir: str = "benchmarks/results/search_vs_naive"

    def train_config(self, env_id: str, algo: str, search: str, seed: int) -> TrainConfig:
        rollout = RolloutConfig(
            env_id=env_id,
            search=search,
            max_turns=self.max_turns,
            seeds_per_step=self.seeds_per_step,
            group_size=self.group_size,
            reward=self.reward,
            filter_ratio=self.filter_ratio,
            max_new_tokens=self.max_new_tokens,
        )
        return TrainConfig(
            algo=algo,
            model=self.model,
            steps=self.steps,
            learning_rate=self.learning_rate,
            seed=seed,
            out_dir=str(self.cell_dir(env_id, algo, search, seed)),
            save_every=self.steps,
            rollout=rollout,
        )

    def cell_dir(self, env_id: str, algo: str, search: str, seed: int) -> Path:
        return Path(self.out_dir) / "runs" / env_id.split("/")[-1] / algo / search / f"seed{seed}"


def evaluate(model_dir: str | Path, env_id: str, episodes: int, max_turns: int, max_new_tokens: int) -> dict:
    """Success rate, mean score and invalid-reply rate of a model with naive sampling on held-out seeds."""
    from tsr_train.metrics import rollout_metrics
    from tsr_train.policy import HFPolicy
    from tsr_train.strategies import make_strategy

    policy = HFPolicy.from_pretrained(model_dir, max_new_tokens=max_new_tokens, seed=0)
    seeds = [EVAL_SEED_BASE + i for i in range(episodes)]
    batch = make_strategy("naive").rollout(policy, env_id, seeds, max_turns=max_turns)
    metrics = rollout_metrics(batch, "success")
    return {
        "success": metrics["rollout/success"],
        "score": metrics["rollout/score"],
        "invalid_rate": metrics["rollout/invalid_rate"],
        "episodes": episodes,
    }


def _append(path: Path, record: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def _done(path: Path) -> list[dict]:
    return read_metrics(path)  # same one-JSON-object-per-line format


def run_grid(config: ExperimentConfig, *, log=print) -> Path:
    """Train and evaluate every cell not yet in ``cells.jsonl``; returns the output directory."""
    from tsr_train.cli import train
    from tsr_train.tiny_model import default_model_path, read_manifest

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_model = config.model or str(default_model_path())
    setup = {**dataclasses.asdict(config), "model_manifest": read_manifest(base_model)}
    (out / "experiment.json").write_text(json.dumps(setup, indent=2) + "\n")
    baselines = {r["env"] for r in _done(out / BASELINE_FILE)}
    for env_id in config.envs:
        if env_id not in baselines:
            result = evaluate(
                base_model, env_id, config.eval_episodes, config.max_turns, config.max_new_tokens
            )
            _append(out / BASELINE_FILE, {"env": env_id, **result})
            log(f"[baseline] {env_id}: success {result['success']:.3f}")
    finished = {(r["env"], r["algo"], r["search"], r["seed"]) for r in _done(out / CELLS_FILE)}
    # Strategy-major order: a grid stopped early still has whole columns of the table, cheapest first.
    cells = [
        (search, env_id, algo, seed)
        for search in config.strategies
        for env_id in config.envs
        for algo in config.algos
        for seed in config.seeds
    ]
    for search, env_id, algo, seed in cells:
        if (env_id, algo, search, seed) in finished:
            continue
        train_config = config.train_config(env_id, algo, search, seed)
        train_config.model = base_model
        run_dir = Path(train_config.out_dir)
        started = time.perf_counter()
        if checkpoint_step(latest_checkpoint(run_dir)) >= config.steps:  # trained, not evaluated
            final = run_dir / "final"
        else:
            final = train(train_config, resume=(run_dir / "config.json").exists())
        train_time = time.perf_counter() - started
        result = evaluate(final, env_id, config.eval_episodes, config.max_turns, config.max_new_tokens)
        record = {
            "env": env_id,
            "algo": algo,
            "search": search,
            "seed": seed,
            "train_time_s": round(train_time, 1),
            **result,
        }
        _append(out / CELLS_FILE, record)
        log(f"[cell] {env_id} {algo} {search} seed {seed}: success {result['success']:.3f} {train_time:.0f}s")
        summarise(config)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(config: ExperimentConfig) -> dict:
    """Aggregate the finished cells into ``results.json``, ``results.md`` and ``search_vs_naive.png``."""
    out = Path(config.out_dir)
    cells = _done(out / CELLS_FILE)
    baselines = {r["env"]: r for r in _done(out / BASELINE_FILE)}
    table: dict[str, dict] = {}
    for cell in cells:
        key = f"{cell['env']}|{cell['algo']}|{cell['search']}"
        table.setdefault(
            key, {"env": cell["env"], "algo": cell["algo"], "search": cell["search"], "runs": []}
        )
        table[key]["runs"].append(cell)
    for row in table.values():
        success = [r["success"] for r in row["runs"]]
        row["success_mean"], row["success_std"] = _mean_std(success)
        row["score_mean"], row["score_std"] = _mean_std([r["score"] for r in row["runs"]])
        row["train_time_s_mean"] = statistics.fmean(r["train_time_s"] for r in row["runs"])
        row["seeds"] = len(success)
    results = {"config": dataclasses.asdict(config), "baseline": baselines, "rows": list(table.values())}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(config, table, baselines))
    plot_curves(config, out / "search_vs_naive.png")
    return results


def markdown_table(config: ExperimentConfig, table: dict[str, dict], baselines: dict[str, dict]) -> str:
    """Rows = env x algorithm, columns = strategies; one table for success, one for the final score."""
    header = ["env", "algo", "start", *config.strategies]
    sections = []
    for metric in ("success", "score"):
        lines = [f"**{metric}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for env_id in config.envs:
            for algo in config.algos:
                cells = []
                for search in config.strategies:
                    row = table.get(f"{env_id}|{algo}|{search}")
                    mean_std = (
                        "–" if row is None else f"{row[metric + '_mean']:.3f} ± {row[metric + '_std']:.3f}"
                    )
                    cells.append(mean_std if row is None else f"{mean_std} ({row['seeds']})")
                start = baselines.get(env_id, {}).get(metric)
                start_text = "–" if start is None else f"{start:.3f}"
                lines.append(
                    "| " + " | ".join([env_id.split("/")[-1], algo.upper(), start_text, *cells]) + " |"
                )
        sections.append("\n".join(lines))
    notes = (
        f"Final policy, naive sampling, {config.eval_episodes} held-out instances, after {config.steps} "
        f"steps of {config.seeds_per_step} seeds x {config.group_size} trajectories "
        f"(reward: {config.reward}, lr {config.learning_rate}, max {config.max_turns} turns); "
        "mean ± sample std over training seeds (number of seeds). 'start' = the model before training; "
        "score = the env's state-based progress in [0, 1] at the end of the episode.\n"
    )
    return "\n\n".join(sections) + "\n\n" + notes


def plot_curves(config: ExperimentConfig, path: Path) -> Path | None:
    """Training success per step, mean over seeds: one panel per (env, algo), one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(env_id, algo) for env_id in config.envs for algo in config.algos]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    drawn = False
    for ax, (env_id, algo) in zip(axes[0], panels, strict=True):
        for search in config.strategies:
            curves = []
            for seed in config.seeds:
                records = read_metrics(config.cell_dir(env_id, algo, search, seed) / METRICS_FILE)
                curve = [r.get("rollout/success", 0.0) for r in records]
                if len(curve) == config.steps:
                    curves.append(curve)
            if curves:
                mean = [statistics.fmean(step) for step in zip(*curves, strict=True)]
                ax.plot(range(1, len(mean) + 1), mean, label=f"{search} ({len(curves)})")
                drawn = True
        ax.set_title(f"{env_id.split('/')[-1]} {algo.upper()}")
        ax.set_xlabel("step")
        ax.set_ylabel("training-rollout success")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
