"""Capacity check: can the embedded model architecture read the grids well enough to imitate the oracle?

    OMP_NUM_THREADS=1 python benchmarks/imitation_capacity.py --epsilon 0.0 --steps 3000 --batch-size 16 \
        --lr 1e-3 --episodes-per-env 4000 --envs tsr/FrozenLake-v0     # the reading recipe, on the oracle

RL cannot teach a policy what supervised learning on the best answers cannot, so before asking whether
RL (or search) improves the model, this builds the tiny model with a warm-up on oracle play
(``expert_epsilon = 0``, or a noisy expert) and measures it on test-split instances with plain
sampling and greedy decoding, beside the expert it imitated.  Prints a table; writes
``benchmarks/results/imitation_capacity/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import tsr_envs  # noqa: F401
from tsr_envs.splits import split_seeds
from tsr_train.tiny_model import ARCHITECTURES, TinyModelConfig, build_tiny_model, read_manifest


def expert_success(env_id: str, epsilon: float, episodes: int, max_turns: int) -> float:
    """The success rate of the noisy expert itself on the same test seeds and turn budget."""
    from tsr_train.tiny_model import TinyModelConfig, expert_reply

    expert = TinyModelConfig(expert_epsilon=epsilon)
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    wins = 0
    for seed in split_seeds("test", episodes):
        env.reset(seed=seed)
        info: dict = {}
        for _ in range(max_turns):
            _, _, terminated, truncated, info = env.step(expert_reply(rng, env, expert))
            if terminated or truncated:
                break
        wins += bool(info.get("success"))
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epsilon", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=600, help="warm-up steps")
    parser.add_argument("--episodes-per-env", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8, help="warm-up conversations per step")
    parser.add_argument("--lr", type=float, default=5e-3, help="warm-up peak learning rate")
    parser.add_argument("--episodes", type=int, default=200, help="test episodes per env")
    parser.add_argument("--max-turns", type=int, default=5)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument(
        "--with-system-message",
        action="store_true",
        help="keep the env's rules in the prompt (by default they are left out, as in the default recipe)",
    )
    parser.add_argument(
        "--soft-labels",
        action="store_true",
        help="train on the noisy expert's distribution over moves, not on the moves it sampled",
    )
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="qwen2")
    parser.add_argument("--envs", nargs="+", default=["tsr/FrozenLake-v0", "tsr/Sokoban-v0"])
    parser.add_argument("--out", default="benchmarks/results/imitation_capacity")
    parser.add_argument("--name", help="the model's and the result's name (default: from the recipe flags)")
    args = parser.parse_args()

    from tsr_envs import registered_ids
    from tsr_train.heldout import evaluate_policy
    from tsr_train.policy import load_causal_lm

    name = args.name or (
        f"{args.architecture}-eps{args.epsilon}-steps{args.steps}-h{args.hidden_size}-l{args.layers}"
        f"-b{args.batch_size}-lr{args.lr:g}-n{args.episodes_per_env}"
        + ("-sys" if args.with_system_message else "")
        + ("-soft" if args.soft_labels else "")
    )
    model_dir = Path(args.out) / "models" / name
    started = time.perf_counter()
    built = read_manifest(model_dir)
    recipe = {
        "warmup_steps": args.steps,
        "prior": "noisy-expert",
        "expert_epsilon": args.epsilon,
        "episodes_per_env": args.episodes_per_env,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.layers,
        "architecture": args.architecture,
        "system_message": args.with_system_message,
        "soft_labels": args.soft_labels,
        "max_turns": args.max_turns,
    }
    if built is not None:
        # Neither a --name chosen by hand nor the default one spells out the whole recipe (the default
        # leaves out the envs): never evaluate a model built from another.
        wanted = {**recipe, "env_ids": list(args.envs)}
        differ = [key for key, value in wanted.items() if built["config"].get(key) != value]
        if differ:
            differ_text = ", ".join(differ)
            parser.error(f"{model_dir} was built with another {differ_text}; give this recipe its own --name")
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    unknown = [env_id for env_id in args.envs if env_id not in registered_ids()]
    if unknown:
        parser.error(f"unknown env id {', '.join(unknown)}; known ids: {', '.join(registered_ids())}")
    if built is None:
        try:
            TinyModelConfig(env_ids=tuple(args.envs), **recipe)
        except ValueError as error:
            parser.error(str(error))
        build_tiny_model(
            model_dir,
            env_ids=tuple(args.envs),
            log=lambda line: print(line, flush=True),
            **recipe,
        )
    build_s = time.perf_counter() - started
    model, tokenizer = load_causal_lm(model_dir)
    rows = []
    for env_id in args.envs:
        row = {"env": env_id, "expert": expert_success(env_id, args.epsilon, args.episodes, args.max_turns)}
        for label, temperature in (("sampled", 1.0), ("greedy", 0.0)):
            result = evaluate_policy(
                model,
                tokenizer,
                env_id,
                episodes=args.episodes,
                max_turns=args.max_turns,
                temperature=temperature,
            )
            row[label] = result.success
            row[f"{label}_invalid"] = result.invalid_rate
        rows.append(row)
        print(
            f"{env_id:20s} expert {row['expert']:.3f}  model sampled {row['sampled']:.3f} "
            f"greedy {row['greedy']:.3f}  (invalid {row['sampled_invalid']:.3f})",
            flush=True,
        )
    record = {"args": vars(args), "build_time_s": round(build_s, 1), "rows": rows}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"build {build_s:.0f}s; wrote {Path(args.out) / (name + '.json')}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    main()
