"""Throughput of the evaluation harness against a plain Gymnasium loop over the same envs and policies.

For the random and oracle agents on every registered env that needs no data, it times ``evaluate`` with
1 and 2 worker processes -- in memory, and writing every transcript to ``episodes.jsonl`` -- and, side by
side, a bare loop (``gym.make``, ``reset(seed)``, ``step(reply)``) that plays the same agents on the same
seeds in as many processes, without chat histories, records, JSON or progress bars.

Episodes/s are wall clock.  The overhead (goal: under 10%) compares CPU seconds (this process plus its
worker processes), which a shared machine disturbs far less than wall time.  Each figure is the best of
``--repeats`` runs, the loop and the harness alternating.

    python benchmarks/bench_eval.py --episodes 100 --repeats 3

Prints a table and writes JSON (``--out``, default ``benchmarks/results/bench_eval.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.evaluation import evaluate, make_agent
from tsr_envs.evaluation.agents import begin_episode
from tsr_envs.registration import registered_ids


def plain_loop(job: tuple[str, list[str], list[int]]) -> int:
    """Play every seed on every env with one agent in a bare Gymnasium loop; return the episode count."""
    agent_spec, env_ids, seeds = job
    agent = make_agent(agent_spec)
    episodes = 0
    for env_id in env_ids:
        env = gym.make(env_id)
        for seed in seeds:
            env.reset(seed=seed)
            player = begin_episode(agent, env.unwrapped, seed)
            done = False
            while not done:
                (reply,) = player.act_batch([[]])
                _, _, terminated, truncated, _ = env.step(reply)
                done = terminated or truncated
            episodes += 1
        env.close()
    return episodes


class Clock:
    """Wall time, and CPU time of this process plus its reaped children (the worker processes)."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu_seconds() - self._cpu


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_plain(agent: str, env_ids: list[str], seeds: list[int], workers: int) -> Clock:
    with Clock() as clock:
        if workers == 1:
            plain_loop((agent, env_ids, seeds))
        else:
            shards = [(agent, env_ids, seeds[i::workers]) for i in range(workers)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(plain_loop, shards)
                pool.close()
                pool.join()
    return clock


def time_harness(agent: str, env_ids: list[str], seeds: list[int], workers: int, save: bool) -> Clock:
    """``evaluate`` in memory, or (``save``) writing every transcript to a fresh ``episodes.jsonl``."""
    with tempfile.TemporaryDirectory() as folder, Clock() as clock:
        out = folder if save else None
        evaluate(agent, env_ids, seeds=seeds, workers=workers, progress=False, out=out, plot=False)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per env and agent")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_eval.json"))
    args = parser.parse_args()

    env_ids = registered_ids(include_data_driven=False)
    seeds = list(range(args.episodes))
    total = len(env_ids) * len(seeds)
    rows = []
    print("episodes/s: wall clock, best of repeats; overhead: harness CPU s / plain loop CPU s - 1")
    print(
        f"{'agent':7s} {'workers':>7s} {'plain':>10s} {'harness':>10s} {'+JSONL':>10s} "
        f"{'overhead':>12s} {'+JSONL':>12s}"
    )
    for agent in ("random", "oracle"):
        for workers in (int(w) for w in args.workers.split(",")):
            runs: dict[str, list[Clock]] = {"plain": [], "harness": [], "harness_jsonl": []}
            for _ in range(args.repeats):
                runs["plain"].append(time_plain(agent, env_ids, seeds, workers))
                runs["harness"].append(time_harness(agent, env_ids, seeds, workers, save=False))
                runs["harness_jsonl"].append(time_harness(agent, env_ids, seeds, workers, save=True))
            row: dict[str, Any] = {"agent": agent, "workers": workers, "episodes": total}
            for name, clocks in runs.items():
                row[f"{name}_episodes_per_s"] = total / min(clock.wall for clock in clocks)
                row[f"{name}_cpu_s"] = min(clock.cpu for clock in clocks)
            for name in ("harness", "harness_jsonl"):
                row[f"{name}_cpu_overhead"] = row[f"{name}_cpu_s"] / row["plain_cpu_s"] - 1.0
            rows.append(row)
            print(
                f"{agent:7s} {workers:7d} {row['plain_episodes_per_s']:10.1f} "
                f"{row['harness_episodes_per_s']:10.1f} {row['harness_jsonl_episodes_per_s']:10.1f} "
                f"{100 * row['harness_cpu_overhead']:+11.1f}% "
                f"{100 * row['harness_jsonl_cpu_overhead']:+11.1f}%",
                flush=True,
            )
    result = {
        "benchmark": "bench_eval",
        "envs": env_ids,
        "episodes_per_env": args.episodes,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "cpu_count": multiprocessing.cpu_count(),
        "rows": rows,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
