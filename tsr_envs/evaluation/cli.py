"""``tsr eval`` and ``tsr report``: the command-line face of ``evaluate`` and ``EvalResults``.

Bad input (unknown env id, malformed agent spec or seed list, missing module, a results folder run with
other settings) prints one line and exits with status 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tsr_envs.evaluation.agents import SPEC_FORMS, AgentOptions
from tsr_envs.evaluation.errors import EvalInputError
from tsr_envs.splits import SPLITS

EXAMPLES = """examples:
  tsr eval --agent random,oracle --env all --episodes 100 --workers 2 --out runs/baselines
  tsr eval --agent openai:http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --env tsr/Sokoban-v0 \\
      --episodes 200 --concurrency 32 --out runs/qwen7b
  tsr eval --agent oracle,random --head-to-head --env tsr/FrozenLake-v0 --seeds 0-99
  tsr report runs/baselines runs/qwen7b
"""


def add_subcommand(subparsers: Any) -> None:
    evaluation = subparsers.add_parser(
        "eval",
        help="evaluate agents on environments",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run agents on registered envs and seeds; report success (95% CI), return, turns, "
        "invalid replies and final score. With --out, episodes are saved as they finish and a "
        "rerun with the same --out resumes.",
    )
    evaluation.add_argument("--agent", required=True, help=f"comma-separated agents: {SPEC_FORMS}")
    evaluation.add_argument("--env", default="all", help="comma-separated env ids, or 'all' (default)")
    evaluation.add_argument(
        "--episodes", type=int, default=50, help="episodes per agent and env (default 50)"
    )
    evaluation.add_argument("--seeds", help="explicit seeds instead of a split, e.g. 0-99 or 1,5,9 or 0-9,20")
    evaluation.add_argument("--split", default="test", choices=list(SPLITS), help="seed split (default test)")
    evaluation.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    evaluation.add_argument(
        "--out", help="results folder: episodes.jsonl, summary.json/.md, figures; resumable"
    )
    evaluation.add_argument("--max-turns", type=int, help="turn limit per episode (default: the env id's)")
    evaluation.add_argument(
        "--arena",
        "--head-to-head",
        dest="arena",
        action="store_true",
        help="play all agents on clones of each instance (PettingZoo arena), paired",
    )
    evaluation.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env kwarg (JSON value or string); data kwargs such as level_file go only to "
        "the ids that need them",
    )
    evaluation.add_argument("--batch-size", type=int, default=16, help="episodes played in lockstep per task")
    model = evaluation.add_argument_group("model agents (hf:, openai:)")
    model.add_argument("--model", help="model name sent to an openai: endpoint")
    model.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    model.add_argument("--max-tokens", type=int, default=256, help="tokens per reply (default 256)")
    model.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    model.add_argument("--retries", type=int, default=4, help="retries per request (default 4)")
    model.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight, all workers (default 8)"
    )
    model.add_argument("--seed", type=int, default=0, help="agent seed (random agent, sampling)")
    evaluation.add_argument("--no-plots", action="store_true", help="do not write PNG figures")
    evaluation.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(func=_guarded(run_eval, "eval"))

    report = subparsers.add_parser(
        "report",
        help="summarise and compare tsr eval result folders",
        description="Print the summary of one or more --out folders side by side.",
    )
    report.add_argument("folders", nargs="+", help="folders written by tsr eval --out")
    report.add_argument("--out", help="also write the combined summary (JSON, Markdown, figures) here")
    report.add_argument("--no-plots", action="store_true", help="do not write PNG figures")
    report.set_defaults(func=_guarded(run_report, "report"))


def _guarded(command: Callable[[argparse.Namespace], int], name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except EvalInputError as error:
            print(f"tsr {name}: error: {error}", file=sys.stderr)
            return 2

    return run


def run_eval(args: argparse.Namespace) -> int:
    from tsr_envs.evaluation.runner import evaluate

    options = AgentOptions(
        seed=args.seed,
        model=args.model,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        retries=args.retries,
        concurrency=args.concurrency,
    )
    agents = [spec for spec in args.agent.split(",") if spec.strip()]
    results = evaluate(
        agents,
        args.env,
        episodes=args.episodes,
        seeds=args.seeds,
        split=args.split,
        workers=args.workers,
        out=args.out,
        max_turns=args.max_turns,
        env_kwargs=_env_kwargs(args.env_arg),
        agent_options=options,
        batch_size=args.batch_size,
        arena=args.arena,
        progress=False if args.quiet else None,
        plot=not args.no_plots,
    )
    print(results.table())
    for label, counters in results.agent_stats.items():
        print(f"{label}: " + ", ".join(f"{key} {value}" for key, value in sorted(counters.items())))
    if args.out:
        print(
            f"\nResults in {Path(args.out)}/ (episodes.jsonl, summary.json, summary.md"
            + ("" if args.no_plots else ", success.png, turns.png")
            + ")"
        )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tsr_envs.evaluation.report import load_results, merge

    runs = {}
    for folder in args.folders:
        name = Path(folder).name or folder
        if name in runs:
            name = folder
        runs[name] = load_results(folder)
    results = merge(runs)
    print(results.table())
    if args.out:
        results.save(args.out, plot=not args.no_plots)
        print(f"\nCombined summary in {Path(args.out)}/")
    return 0


def _env_kwargs(pairs: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key.strip():
            raise EvalInputError(f"--env-arg needs KEY=VALUE, got {pair!r}")
        try:
            kwargs[key.strip()] = json.loads(text)
        except ValueError:
            kwargs[key.strip()] = text
    return kwargs
