"""Search-built vs naive training rollouts: success of the trained policy after the same number of steps.

    python benchmarks/search_vs_naive.py                      # the README table (hours on a 2-core CPU)
    python benchmarks/search_vs_naive.py --strategies naive best-of-4 --steps 10   # a smaller grid
    python benchmarks/search_vs_naive.py --summarise-only     # rebuild the table from finished cells

For each env x algorithm x rollout strategy x seed it trains the embedded tiny model (or ``--model``)
with ``tsr_train`` and evaluates the final policy with naive sampling on held-out instances.  Cells are
appended to ``<out>/cells.jsonl`` as they finish and skipped when the command is run again, so the grid
can run in the background (``nice -n 10 python benchmarks/search_vs_naive.py &``) and be resumed.
Writes ``results.json``, ``results.md`` (mean ± std over seeds) and ``search_vs_naive.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tsr_train.experiments import ExperimentConfig, run_grid, summarise

INT_FIELDS = ("steps", "seeds_per_step", "group_size", "max_turns", "max_new_tokens", "eval_episodes")


def parse_args() -> tuple[ExperimentConfig, bool]:
    defaults = ExperimentConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(defaults.envs))
    parser.add_argument("--algos", nargs="+", choices=["grpo", "ppo"], default=list(defaults.algos))
    parser.add_argument("--strategies", nargs="+", default=list(defaults.strategies))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds))
    for name in INT_FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--reward", choices=["return", "success", "score"], default=defaults.reward)
    parser.add_argument("--filter-ratio", type=float, default=defaults.filter_ratio)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--model", default=None, help="HF causal LM (default: the embedded tiny model)")
    parser.add_argument("--out", default=defaults.out_dir)
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    config = ExperimentConfig(
        envs=tuple(args.envs),
        algos=tuple(args.algos),
        strategies=tuple(args.strategies),
        seeds=tuple(args.seeds),
        reward=args.reward,
        filter_ratio=args.filter_ratio,
        learning_rate=args.lr,
        model=args.model,
        out_dir=args.out,
        **{name: getattr(args, name) for name in INT_FIELDS},
    )
    return config, args.summarise_only


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    config, summarise_only = parse_args()
    if not summarise_only:
        run_grid(config)
    summarise(config)
    print((Path(config.out_dir) / "results.md").read_text())


if __name__ == "__main__":
    main()
