"""The TSR study: the policy a search-built training leaves behind, against naive rollouts.

    OMP_NUM_THREADS=1 python benchmarks/tsr_study.py --shard 0/2 &      # one process per core
    OMP_NUM_THREADS=1 python benchmarks/tsr_study.py --shard 1/2 &
    python benchmarks/tsr_study.py --summarise-only                      # rebuild the tables and plot
    python benchmarks/tsr_study.py --overview DIR [DIR ...]              # the at-a-glance table

Trains the embedded model (or ``--model``) with the default recipe of ``tsr train`` for every env x
algorithm x strategy x seed, evaluates each final policy alone on test-split instances, and also trains
naive to each search's generated tokens.  Cells are appended to ``<out>/cells.jsonl`` and skipped when the
command runs again, so the grid resumes where it stopped.  Writes ``results.json``, ``results.md`` and
``curves.png`` to ``--out`` (default ``runs/tsr_study``; the committed studies are under
``benchmarks/results/``).

Recipe variants are any ``RolloutConfig`` or ``TrainConfig`` field, or a field of its PPO or GRPO
settings: ``--set scorer=score``, ``--set selection=softmax``, ``--set naive_mix=2``,
``--set learning_rate=1e-3``, ``--set ppo.detach_value_head=false`` (use another ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from tsr_train.config import GRPOSettings, PPOSettings, RolloutConfig, TrainConfig
from tsr_train.study import (
    CELLS_FILE,
    RecipeMismatch,
    StudyConfig,
    recorded_study,
    run,
    summarise,
    variants_markdown,
)
from tsr_train.study_overview import overview_markdown

#: the JSON values each scalar field type takes from ``--set`` (an int is a float too)
SCALAR_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def takes(field_type: str, value: object) -> bool:
    """Whether a field annotated ``field_type`` takes ``value`` (fields of other types are not checked)."""
    expected = SCALAR_TYPES.get(field_type)
    # bool is a subclass of int in Python, but --set ppo.epochs=true is a mistake, not 1
    return expected is None or (isinstance(value, expected) and isinstance(value, bool) == (bool in expected))

#: where ``--overview`` writes its table (README shows the same table)
OVERVIEW_FILE = Path(__file__).resolve().parent / "results" / "tsr_study_overview.md"


def parse_args() -> tuple[StudyConfig, tuple[int, int], bool, str | None, list[str] | None]:
    defaults = StudyConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # No defaults here: a run fills in StudyConfig's, --summarise-only the folder's study.json (below).
    parser.add_argument("--envs", nargs="+", help=f"default: {' '.join(defaults.envs)}")
    parser.add_argument("--algos", nargs="+", choices=["grpo", "ppo"], help="default: grpo ppo")
    parser.add_argument("--strategies", nargs="+", help=f"default: {' '.join(defaults.strategies)}")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2 3 4")
    parser.add_argument("--steps", type=int, help=f"default: {defaults.steps}")
    parser.add_argument("--eval-episodes", type=int, help=f"default: {defaults.eval_episodes}")
    parser.add_argument("--no-token-budget", action="store_true", help="skip the equal-token naive runs")
    parser.add_argument("--model", default=None, help="HF causal LM (default: the embedded tiny model)")
    parser.add_argument("--out", default=defaults.out_dir)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="recipe override")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th (env, algo, seed) row from i")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="only rebuild the tables and plot, of the study the folder records unless told otherwise",
    )
    parser.add_argument(
        "--variants-table",
        metavar="DIR",
        help="only write DIR/variants.md: each study run under DIR beside the main grid in --out",
    )
    parser.add_argument(
        "--overview",
        nargs="+",
        metavar="DIR",
        help=f"only write {OVERVIEW_FILE.name} beside the results: one row per study folder, env and "
        "algorithm, the best search against naive",
    )
    args = parser.parse_args()
    rollout_types = {f.name: f.type for f in dataclasses.fields(RolloutConfig)}
    train_types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for prefix, settings in (("ppo", PPOSettings), ("grpo", GRPOSettings)):
        train_types |= {f"{prefix}.{f.name}": f.type for f in dataclasses.fields(settings)}
    rollout_overrides, train_overrides = {}, {}
    for item in args.set:
        name, equals, text = item.partition("=")
        if not equals:
            parser.error(f"--set {item!r}: expected FIELD=VALUE")
        if name not in rollout_types | train_types:
            parser.error(f"--set {name}: not a RolloutConfig, TrainConfig, ppo.* or grpo.* field")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        field_type = (rollout_types | train_types)[name]
        if not takes(field_type, value):
            parser.error(f"--set {item!r}: {name} is of type {field_type}")
        (rollout_overrides if name in rollout_types else train_overrides)[name] = value
    index, _, count = args.shard.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        parser.error(f"--shard {args.shard!r}: expected i/n with 0 <= i < n, e.g. 0/2")
    base = recorded_study(args.out) if args.summarise_only else defaults
    given = {
        "envs": args.envs,
        "algos": args.algos,
        "strategies": args.strategies,
        "seeds": args.seeds,
        "steps": args.steps,
        "eval_episodes": args.eval_episodes,
        "model": args.model,
        "rollout_overrides": rollout_overrides or None,
        "train_overrides": train_overrides or None,
    }
    config = dataclasses.replace(
        base,
        **{
            name: tuple(value) if isinstance(value, list) else value for name, value in given.items() if value
        },
        token_budget=base.token_budget and not args.no_token_budget,
        out_dir=args.out,
    )
    if not (args.summarise_only or args.variants_table or args.overview):
        try:
            config.check()
        except ValueError as error:
            parser.error(str(error))
    return config, (int(index), int(count)), args.summarise_only, args.variants_table, args.overview


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    config, shard, summarise_only, variants, overview = parse_args()
    if overview is not None:
        missing = [folder for folder in overview if not (Path(folder) / "results.json").is_file()]
        if missing:
            sys.exit(f"tsr_study: no study results (results.json) in {', '.join(missing)}")
        folders = [Path(folder).resolve() for folder in overview]
        table = overview_markdown(folders, OVERVIEW_FILE.parent)
        OVERVIEW_FILE.write_text(table)
        print(table)
        return
    if variants is not None:
        if not Path(variants).is_dir():
            sys.exit(f"tsr_study: no folder {variants} (the variant studies' parent folder)")
        table = variants_markdown(Path(config.out_dir), Path(variants))
        (Path(variants) / "variants.md").write_text(table)
        print(table)
        return
    if summarise_only:
        if not (Path(config.out_dir) / CELLS_FILE).is_file():
            sys.exit(f"tsr_study: no study cells ({CELLS_FILE}) in {config.out_dir}")
        summarise(config)
    else:
        try:
            run(config, shard=shard)  # summarises the folder's whole grid as its cells finish
        except RecipeMismatch as error:
            sys.exit(f"tsr_study: {error}")
    table = Path(config.out_dir) / "results.md"
    print(table.read_text() if table.exists() else f"tsr_study: no cell of this shard in {config.out_dir}")


if __name__ == "__main__":
    main()
