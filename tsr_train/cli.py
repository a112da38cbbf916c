"""``tsr train``: train a model on a registered env with naive or search-built rollouts, GRPO or PPO.

    tsr train --env tsr/FrozenLake-v0 --search best-of-4 --algo grpo --steps 30 --out runs/fl-bo4
    tsr train --env tsr/FrozenLake-v0 --search best-of-4 --algo grpo --steps 60 --out runs/fl-bo4 --resume

The run directory holds ``config.json``, ``metrics.jsonl``, ``learning_curve.png``,
``checkpoints/checkpoint-<step>/`` (model, optimizer, RNG states: ``--resume`` continues bit for bit) and
``final/`` (``save_pretrained`` model and tokenizer, loadable by any Hugging Face tool and by ``tsr eval``);
with ``--report-to tensorboard``, event files somewhere below it (``tensorboard --logdir <out>``).

This module is imported by ``tsr --help``, so torch and transformers are imported only when a run starts.
Bad input (unknown env or search, a model path that does not exist, contradictory flags, resuming another
experiment) is reported in one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import warnings
from pathlib import Path

from tsr_train.config import (
    ALGOS,
    REPORT_TO,
    REWARDS,
    RolloutConfig,
    TrainConfig,
    checkpoint_step,
    latest_checkpoint,
)

CONFIG_FILE = "config.json"
FINAL_DIR = "final"


class UsageError(Exception):
    """Bad input from the user: reported without a traceback, exit status 2."""


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model with search-based rollouts (GRPO or PPO)",
        description="Train a causal LM on a tsr/ environment with naive or search-built rollouts.",
    )
    defaults = RolloutConfig()
    parser.add_argument("--env", required=True, help="registered env id, e.g. tsr/FrozenLake-v0")
    parser.add_argument("--search", default="naive", help="naive, best-of-N, beam-WxB or lookahead-DxN")
    parser.add_argument("--algo", choices=ALGOS, default="grpo")
    parser.add_argument(
        "--model", default=None, help="HF causal LM path or hub id (default: embedded tiny model)"
    )
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="rollout + update steps")
    parser.add_argument("--seeds-per-step", type=int, default=defaults.seeds_per_step, help="groups per step")
    parser.add_argument("--group-size", type=int, default=defaults.group_size, help="trajectories per seed")
    parser.add_argument("--max-turns", type=int, default=defaults.max_turns)
    parser.add_argument("--reward", choices=REWARDS, default=defaults.reward, help="what a trajectory earns")
    parser.add_argument(
        "--filter-ratio",
        type=float,
        default=defaults.filter_ratio,
        help="keep this fraction of groups with the largest reward spread (1 = all)",
    )
    parser.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=None, help="run directory (default: runs/<algo>-<env>-<search>-s<seed>)"
    )
    parser.add_argument("--save-every", type=int, default=TrainConfig.save_every, help="checkpoint period")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument("--report-to", choices=REPORT_TO, default="none")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    env_name = args.env.split("/")[-1]
    out = args.out or f"runs/{args.algo}-{env_name}-{args.search}-s{args.seed}"
    try:
        rollout = RolloutConfig(
            env_id=args.env,
            search=args.search,
            max_turns=args.max_turns,
            seeds_per_step=args.seeds_per_step,
            group_size=args.group_size,
            reward=args.reward,
            filter_ratio=args.filter_ratio,
        )
        return TrainConfig(
            algo=args.algo,
            model=args.model,
            steps=args.steps,
            learning_rate=args.lr,
            seed=args.seed,
            out_dir=out,
            save_every=args.save_every,
            report_to=args.report_to,
            rollout=rollout,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_config(config: TrainConfig, *, resume: bool) -> None:
    """Everything that can be checked before loading a model, so mistakes cost no time."""
    import gymnasium as gym

    import tsr_envs
    from tsr_train.strategies import make_strategy

    if config.rollout.env_id not in gym.registry:
        known = ", ".join(tsr_envs.registered_ids())
        raise UsageError(f"unknown environment id {config.rollout.env_id!r}; known ids: {known}")
    try:
        make_strategy(config.rollout.search)
    except ValueError as error:
        raise UsageError(f"bad --search {config.rollout.search!r}: {error}") from None
    if config.rollout.filter_ratio < 1.0 and config.rollout.group_size < 2:
        raise UsageError("--filter-ratio needs --group-size >= 2 (the spread of a single trajectory is 0)")
    tracker = config.report_to
    if tracker != "none" and importlib.util.find_spec(tracker) is None:
        raise UsageError(f"--report-to {tracker} needs the {tracker} package (pip install {tracker})")
    if config.model is not None and looks_local(config.model) and not Path(config.model).exists():
        raise UsageError(f"model path {config.model!r} does not exist")
    out = Path(config.out_dir)
    saved = out / CONFIG_FILE
    if resume:
        if not saved.exists():
            raise UsageError(
                f"nothing to resume in {out}: no {CONFIG_FILE} (drop --resume to start a new run)"
            )
        previous = TrainConfig.load(saved).to_dict()
        mine = config.to_dict()
        changed = sorted(k for k in mine if k != "steps" and previous.get(k) != mine[k])
        if changed:
            raise UsageError(f"--resume with a different configuration ({', '.join(changed)}) than {saved}")
        done = checkpoint_step(latest_checkpoint(out))
        if done >= config.steps:
            raise UsageError(f"{out} already has {done} steps; pass a larger --steps to continue")
    elif saved.exists():
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")


def looks_local(model: str) -> bool:
    """A filesystem path rather than a hub id (``name`` or ``org/name``), which we can check up front."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def load_model(path: str | Path):
    """Model and tokenizer, ready for training: bf16 on a GPU, fp32 on a CPU; padding on the left."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as error:  # missing files, bad hub id, no network
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise UsageError(f"cannot load a causal LM from {str(path)!r}: {reason}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def train(config: TrainConfig, *, resume: bool = False) -> Path:
    """Run (or resume) one training run; returns the directory of the final model."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # transformers 5 renamed gradient_checkpointing*; TRL 1.16 still calls the old names on every step.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*", category=FutureWarning)
    from accelerate import PartialState

    from tsr_train.tiny_model import default_model_path

    check_config(config, resume=resume)
    model, tokenizer = load_model(config.model or default_model_path())
    out = Path(config.out_dir)
    main_process = PartialState().is_main_process
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / CONFIG_FILE)
    if config.algo == "grpo":
        from tsr_train.grpo import build_grpo_trainer
        from tsr_train.metrics import MetricsLogger

        checkpoint = latest_checkpoint(out) if resume else None
        logger = MetricsLogger(
            out,
            config.steps,
            start_step=checkpoint_step(checkpoint),
            enabled=main_process,
            title=f"GRPO {config.rollout.search} on {config.rollout.env_id}",
        )
        trainer = build_grpo_trainer(config, model, tokenizer, out, logger)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        logger.close()
        model = trainer.accelerator.unwrap_model(trainer.model)
    else:
        from tsr_train.ppo import train_ppo

        model = train_ppo(config, model, tokenizer, out, resume=resume)
    final = out / FINAL_DIR
    if main_process:
        model.save_pretrained(final)
        tokenizer.save_pretrained(final)
    return final


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        final = train(config, resume=args.resume)
    except UsageError as error:
        print(f"tsr train: error: {error}", file=sys.stderr)
        return 2
    run_dir = final.parent
    print(f"Final model: {final}\nMetrics: {run_dir / 'metrics.jsonl'}, {run_dir / 'learning_curve.png'}")
    return 0
