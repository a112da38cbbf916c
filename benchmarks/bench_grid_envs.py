"""Grid-env throughput against the peers a user would otherwise pick, side by side in one run.

    python benchmarks/bench_grid_envs.py [--seconds 1.0] [--out benchmarks/results/grid_envs.json]
    python benchmarks/bench_grid_envs.py --boxoban PATH [--max-expansions 20000] [--workers 1] [--limit N]

The first form measures, for our envs and for Gymnasium's FrozenLake-v1, TextArena's and gym-sokoban's
envs where they are installed: steps/s (random actions, auto-reset; ours parse the reply and render text,
Gymnasium's is timed raw and with ``render()`` in "ansi" mode), clone + restore per second (ours:
``clone()`` + ``set_state()``; peers: ``copy.deepcopy``, their only route), restores per second (ours:
``set_state()`` of a snapshot, what a search repeats), resets/s, Sokoban level generations per second
(ours: ``generate_level``; gym-sokoban: ``generate_room``) and our solver's rate on fresh levels, then
prints the ratios the suite sets as goals.

The second form solves every level of a Boxoban file with our optimal solver under a per-level node
budget (the env's ``solver_max_expansions``, so the solved share is the same on every machine), each
level in a worker process of a pool, and reports the solved share and time percentiles.

gym-sokoban 0.0.6 imports ``pkg_resources``, which setuptools >= 81 no longer ships; when it is missing,
a one-function stand-in (``resource_filename``) is installed so the package can be imported unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import importlib.util
import io
import json
import multiprocessing
import os
import random
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.sokoban import Board, generate_level, load_boxoban, solve
from tsr_envs.sokoban.env import DEFAULT_SOLVER_MAX_EXPANSIONS

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "grid_envs.json"
METRICS = ("step", "clone_restore", "restore", "reset", "generate", "solve")
SOKOBAN_SIZES = {"tsr/Sokoban-v0": ((6, 6), 1), "tsr/Sokoban-8x8-2box-v0": ((8, 8), 2)}


@dataclass
class Subject:
    """One env under test; an operation is ``None`` where the env does not offer it."""

    name: str
    step: Callable[[], object] | None = None
    clone_restore: Callable[[], object] | None = None
    restore: Callable[[], object] | None = None
    reset: Callable[[], object] | None = None
    generate: Callable[[], object] | None = None
    solve: Callable[[], object] | None = None
    notes: list[str] = field(default_factory=list)


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, timed over at least ``seconds`` (after one warm-up call)."""
    operation()
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(16):
            operation()
        count += 16
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


# ---------------------------------------------------------------------------------------------- our envs
#: Gymnasium's default 4x4 map, so our FrozenLake can be timed on exactly the peer's task.
GYMNASIUM_4X4 = ["SFFF", "FHFH", "FFFH", "HFFG"]
SAME_MAP = "tsr/FrozenLake-v0 (Gymnasium's 4x4 map)"


def ours(env_id: str, label: str | None = None, **kwargs: object) -> Subject:
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    actions = env.legal_actions()
    rng = np.random.default_rng(0)

    # Like the peers: seeded once, then ``reset()`` continues the env's own random stream.
    def step() -> None:
        _, _, terminated, truncated, _ = env.step(actions[int(rng.integers(len(actions)))])
        if terminated or truncated:
            env.reset()

    state = env.get_state()

    def clone_restore() -> None:
        env.clone()
        env.set_state(state)

    subject = Subject(label or env_id, step, clone_restore, lambda: env.set_state(state), env.reset)
    if env_id in SOKOBAN_SIZES:
        dim_room, num_boxes = SOKOBAN_SIZES[env_id]
        level_rng = np.random.default_rng(0)
        subject.generate = lambda: generate_level(level_rng, dim_room, num_boxes)

        def solve_fresh_level() -> None:
            level = generate_level(level_rng, dim_room, num_boxes)
            board = level.board
            solve(Board(board.height, board.width, board.walls, board.targets), level.player, level.boxes)

        subject.solve = solve_fresh_level
        subject.notes.append(
            "solve: A* on a freshly generated level with an empty cache (generation included)"
        )
    return subject


# ---------------------------------------------------------------------------------------------- peers
def gymnasium_frozenlake(render: bool) -> Subject:
    env = gym.make("FrozenLake-v1", render_mode="ansi" if render else None).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if render:
            env.render()
        if terminated or truncated:
            env.reset()

    name = "gymnasium FrozenLake-v1" + (" (step+render ansi)" if render else " (raw step)")
    return Subject(name, step, lambda: copy.deepcopy(env), reset=env.reset)


def textarena(env_name: str) -> Subject:
    try:
        import textarena as ta
    except ImportError:
        return Subject(f"textarena {env_name}", notes=["not installed"])
    env = ta.make(env_name)
    env.reset(num_players=1, seed=0)
    moves = ["[up]", "[down]", "[left]", "[right]"]
    rng = np.random.default_rng(0)
    seeds = iter(range(1, 10**9))

    def step() -> None:
        done, _ = env.step(moves[int(rng.integers(4))])
        if done:
            env.reset(num_players=1, seed=next(seeds))
        else:
            env.get_observation()

    return Subject(
        f"textarena {env_name}",
        step,
        lambda: copy.deepcopy(env),
        reset=lambda: env.reset(num_players=1, seed=next(seeds)),
    )


@functools.cache
def _import_gym_sokoban() -> types.ModuleType | None:
    if importlib.util.find_spec("gym_sokoban") is None:
        return None
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, resource: str) -> str:
            return os.path.join(os.path.dirname(importlib.util.find_spec(package).origin), resource)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    import gym_sokoban.envs

    return gym_sokoban.envs


def gym_sokoban(dim_room: tuple[int, int], num_boxes: int) -> Subject:
    name = f"gym-sokoban {dim_room[0]}x{dim_room[1]} {num_boxes} box"
    try:
        envs = _import_gym_sokoban()
    except Exception as error:  # an old package on a new stack: report, do not crash the benchmark
        return Subject(name, notes=[f"does not import: {error!r}"])
    if envs is None:
        return Subject(name, notes=["not installed"])
    random.seed(0)  # gym-sokoban draws from the global RNGs
    np.random.seed(0)
    env = envs.SokobanEnv(dim_room=dim_room, num_boxes=num_boxes, max_steps=100)
    rng = np.random.default_rng(0)

    def step() -> None:
        _, _, done, _ = env.step(int(rng.integers(1, 5)), observation_mode="tiny_rgb_array")
        if done:
            generate()

    def generate() -> None:
        while True:  # gym-sokoban's reset retries the same way when a room has no valid start
            try:
                env.room_fixed, env.room_state, env.box_mapping = envs.room_utils.generate_room(
                    dim=dim_room, num_steps=env.num_gen_steps, num_boxes=num_boxes
                )
            except (RuntimeError, RuntimeWarning):
                continue
            env.player_position = np.argwhere(env.room_state == 5)[0]
            env.num_env_steps, env.reward_last, env.boxes_on_target = 0, 0, 0
            return

    def reset() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # its reset prints each retry
            env.reset()

    subject = Subject(name, step, lambda: copy.deepcopy(env), reset=reset, generate=generate)
    subject.notes.append(
        "generate: its generate_room; reset: also renders its RGB image; step: 'tiny_rgb_array'"
    )
    return subject


# ---------------------------------------------------------------------------------------------- report
def measure(subjects: list[Subject], seconds: float) -> list[dict]:
    rows = []
    for subject in subjects:
        row: dict = {"env": subject.name, "notes": subject.notes}
        for metric in METRICS:
            operation = getattr(subject, metric)
            row[f"{metric}_per_s"] = None if operation is None else rate(operation, seconds)
        rows.append(row)
        print(f"measured {subject.name}", file=sys.stderr)
    return rows


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def markdown(rows: list[dict]) -> str:
    lines = [
        "| env | steps/s | clone+restore/s | restore/s | resets/s | generations/s | solves/s | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [_format(row[f"{metric}_per_s"]) for metric in METRICS]
        lines.append(f"| {row['env']} | " + " | ".join(cells) + f" | {'; '.join(row['notes'])} |")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> dict[str, float | str]:
    by_name = {row["env"]: row for row in rows}

    def ratio(ours_name: str, metric: str, peer_name: str, peer_metric: str | None = None) -> float | str:
        mine, peer = by_name[ours_name][metric], by_name[peer_name][peer_metric or metric]
        if mine is None or peer is None:
            return "peer not available: " + "; ".join(by_name[peer_name]["notes"])
        return mine / peer

    goals: dict[str, float | str] = {
        "FrozenLake step vs Gymnasium step+render (goal >= 0.5)": ratio(
            SAME_MAP, "step_per_s", "gymnasium FrozenLake-v1 (step+render ansi)"
        ),
        "FrozenLake step vs Gymnasium raw step, same map (goal >= 0.5)": ratio(
            SAME_MAP, "step_per_s", "gymnasium FrozenLake-v1 (raw step)"
        ),
        "FrozenLake clone+restore vs Gymnasium deepcopy (goal >= 20)": ratio(
            SAME_MAP, "clone_restore_per_s", "gymnasium FrozenLake-v1 (raw step)"
        ),
        "FrozenLake clone+restore vs TextArena deepcopy (goal >= 20)": ratio(
            SAME_MAP, "clone_restore_per_s", "textarena FrozenLake-v0"
        ),
        "Sokoban clone+restore vs TextArena deepcopy (goal >= 20)": ratio(
            "tsr/Sokoban-v0", "clone_restore_per_s", "textarena Sokoban-v0"
        ),
    }
    for env_id, (dim_room, num_boxes) in SOKOBAN_SIZES.items():
        peer = f"gym-sokoban {dim_room[0]}x{dim_room[1]} {num_boxes} box"
        goals[f"{env_id} clone+restore vs gym-sokoban deepcopy (goal >= 20)"] = ratio(
            env_id, "clone_restore_per_s", peer
        )
        goals[f"{env_id} restore (set_state) vs gym-sokoban deepcopy"] = ratio(
            env_id, "restore_per_s", peer, "clone_restore_per_s"
        )
        goals[f"{env_id} generation vs gym-sokoban generate_room (goal >= 10)"] = ratio(
            env_id, "generate_per_s", peer
        )
        goals[f"{env_id} reset vs gym-sokoban reset"] = ratio(env_id, "reset_per_s", peer)
    return goals


def run_throughput(seconds: float, out: Path) -> None:
    subjects = [
        ours("tsr/FrozenLake-v0", "tsr/FrozenLake-v0 (random map each reset)"),
        ours("tsr/FrozenLake-v0", "tsr/FrozenLake-v0 (Gymnasium's 4x4 map)", desc=GYMNASIUM_4X4),
        gymnasium_frozenlake(False),
        gymnasium_frozenlake(True),
    ]
    subjects.append(textarena("FrozenLake-v0"))
    for env_id, (dim_room, num_boxes) in SOKOBAN_SIZES.items():
        subjects += [ours(env_id), gym_sokoban(dim_room, num_boxes)]
    subjects.append(textarena("Sokoban-v0"))
    rows = measure(subjects, seconds)
    goals = ratios(rows)
    print(markdown(rows))
    print()
    print("| goal | ratio (ours / peer) |\n|---|---:|")
    for name, value in goals.items():
        print(f"| {name} | {value if isinstance(value, str) else f'{value:.1f}x'} |")
    write(
        out, {"python": sys.version.split()[0], "seconds_per_metric": seconds, "rows": rows, "ratios": goals}
    )


# ---------------------------------------------------------------------------------------------- Boxoban
def _solve_level(task: tuple[str, int, int]) -> tuple[int, int, float]:
    path, index, budget = task
    level = load_boxoban(path)[index]
    start = time.perf_counter()
    entry = solve(level.board, level.player, level.boxes, max_expansions=budget)
    return index, entry.distance, time.perf_counter() - start


def run_boxoban(path: str, budget: int, workers: int, limit: int | None, out: Path) -> None:
    count = len(load_boxoban(path))
    tasks = [(path, index, budget) for index in range(count if limit is None else min(limit, count))]
    results = []
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for result in pool.imap_unordered(_solve_level, tasks):
            results.append(result)
            if len(results) % 50 == 0:
                print(f"{len(results)}/{len(tasks)} levels", file=sys.stderr)
    times = np.array([seconds for _, _, seconds in results])
    solved = [distance for _, distance, _ in results if distance >= 0]
    summary = {
        "file": path,
        "levels": len(results),
        "max_expansions": budget,
        "workers": workers,
        "solved": len(solved),
        "solved_percent": 100.0 * len(solved) / len(results),
        "proved_unsolvable": sum(distance == -1 for _, distance, _ in results),
        "time_percentiles_s": {f"p{q}": float(np.percentile(times, q)) for q in (50, 90, 95, 99, 100)},
        "mean_solution_length": float(np.mean(solved)) if solved else None,
        "wall_s": time.perf_counter() - started,
        "per_level": sorted(results),
    }
    print("| file | levels | budget | solved | p50 | p90 | p95 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    percentiles = " | ".join(f"{value:.2f}s" for value in summary["time_percentiles_s"].values())
    print(
        f"| {os.path.basename(path)} | {len(results)} | {budget:,} nodes | "
        f"{summary['solved_percent']:.1f}% | {percentiles} |"
    )
    write(out, summary)


def write(out: Path, payload: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per metric and env")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--boxoban", metavar="PATH", help="solve every level of this Boxoban file instead")
    parser.add_argument(
        "--max-expansions",
        type=int,
        default=DEFAULT_SOLVER_MAX_EXPANSIONS,
        help="solver nodes per Boxoban level (default: the env's)",
    )
    parser.add_argument("--workers", type=int, default=1, help="solver processes for --boxoban")
    parser.add_argument("--limit", type=int, default=None, help="only the first N Boxoban levels")
    args = parser.parse_args()
    if args.boxoban:
        out = args.out or DEFAULT_OUT.with_name("boxoban_solver.json")
        run_boxoban(args.boxoban, args.max_expansions, args.workers, args.limit, out)
    else:
        run_throughput(args.seconds, args.out or DEFAULT_OUT)


if __name__ == "__main__":
    main()
