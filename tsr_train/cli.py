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
import dataclasses
import importlib.util
import inspect
import json
import os
import re
import sys
import warnings
from pathlib import Path

from tsr_train.config import (
    ALGOS,
    EMBEDDED,
    LR_SCHEDULES,
    REPORT_TO,
    REWARDS,
    SCORER_NAMES,
    SELECTION_NAMES,
    VLLM_MODES,
    GRPOSettings,
    PPOSettings,
    RolloutConfig,
    TrainConfig,
    checkpoint_step,
    latest_checkpoint,
)

CONFIG_FILE = "config.json"
FINAL_DIR = "final"


class UsageError(Exception):
    """Bad input from the user: reported without a traceback, exit status 2."""


#: flags named differently from their config field
FLAG_NAMES = {"env_id": "env", "out_dir": "out", "learning_rate": "lr", "env_kwargs": "env-arg"}
#: the allowed values of the fields that have a fixed set
CHOICES = {
    "algo": ALGOS,
    "lr_schedule": LR_SCHEDULES,
    "reward": REWARDS,
    "report_to": REPORT_TO,
    "scorer": SCORER_NAMES,
    "selection": SELECTION_NAMES,
    "vllm_mode": VLLM_MODES,
}
#: the config sections and the prefix of their flags; ``None`` = the top-level ``TrainConfig`` fields
SECTIONS: tuple[tuple[str | None, type, str], ...] = (
    (None, TrainConfig, ""),
    ("rollout", RolloutConfig, ""),
    ("grpo", GRPOSettings, "grpo-"),
    ("ppo", PPOSettings, "ppo-"),
)
HELP = {
    "env_id": "registered env id, e.g. tsr/FrozenLake-v0 (required)",
    "search": "naive, best-of-N, beam-WxB or lookahead-DxN",
    "model": "HF causal LM path or hub id; 'embedded' (the default) = the embedded tiny model",
    "out_dir": "run directory (default: runs/<algo>-<env>-<search>-s<seed>)",
    "env_kwargs": "KEY=VALUE passed to gym.make (VALUE parsed as JSON if it can be); repeatable",
}


def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each field of a config dataclass: the flag's help, from the one source."""
    docs, pending = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
        elif (match := re.match(r"(\w+)\s*:", stripped)) and pending:
            docs[match.group(1)] = " ".join(pending)
            pending = []
        else:
            pending = []
    return docs


def _flag(prefix: str, name: str) -> str:
    return "--" + prefix + FLAG_NAMES.get(name, name).replace("_", "-")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """One flag per config field, generated from the dataclasses, so each setting lives in one place.

    Defaults are the dataclasses' defaults; the GRPO and PPO settings get ``--grpo-`` and ``--ppo-``
    prefixes.
    """
    parser = subparsers.add_parser(
        "train",
        help="train a model with search-based rollouts (GRPO or PPO)",
        description="Train a causal LM on a tsr/ environment with naive or search-built rollouts. "
        "Every flag is a field of tsr_train.TrainConfig (or of its rollout, grpo and ppo sections).",
    )
    for section, cls, prefix in SECTIONS:
        group = parser.add_argument_group(section or "run")
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("rollout", "grpo", "ppo", "recipe_version"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            dest = f"{section}.{f.name}" if section else f.name
            text = HELP.get(f.name) or docs.get(f.name, "")
            help_text = f"{text} (default: {default})" if f.name not in HELP else text
            options: dict = {"dest": dest, "help": help_text.strip(), "metavar": f.name.upper()}
            if isinstance(default, dict):
                options.update(action="append", default=[], metavar="KEY=VALUE")
            elif isinstance(default, bool):
                del options["metavar"]
                options.update(action=argparse.BooleanOptionalAction, default=default)
            else:
                kind = type(default) if default is not None else str
                options.update(type=kind, default=None if f.name == "env_id" else default)
                if f.name in CHOICES:
                    options["choices"] = CHOICES[f.name]
                    del options["metavar"]
            group.add_argument(_flag(prefix, f.name), **options)
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.set_defaults(func=run)


def _env_kwargs(pairs: list[str]) -> dict:
    kwargs = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise UsageError(f"bad --env-arg {pair!r}: expected KEY=VALUE")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args)
    if not values.get("rollout.env_id"):
        raise UsageError("--env is required, e.g. --env tsr/FrozenLake-v0")
    sections: dict[str | None, dict] = {section: {} for section, _, _ in SECTIONS}
    for key, value in values.items():
        section, dot, name = key.partition(".")
        if dot and section in sections:
            sections[section][name] = value
        elif key in {f.name for f in dataclasses.fields(TrainConfig)}:
            sections[None][key] = value
    sections["rollout"]["env_kwargs"] = _env_kwargs(sections["rollout"]["env_kwargs"])
    top = sections[None]
    if top["model"] in (None, EMBEDDED):
        top["model"] = None
    if top["out_dir"] == TrainConfig.out_dir:
        env_name = sections["rollout"]["env_id"].split("/")[-1]
        top["out_dir"] = f"runs/{top['algo']}-{env_name}-{sections['rollout']['search']}-s{top['seed']}"
    try:
        return TrainConfig(
            **top,
            rollout=RolloutConfig(**sections["rollout"]),
            grpo=GRPOSettings(**sections["grpo"]),
            ppo=PPOSettings(**sections["ppo"]),
        )
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def check_env(env_id: str, env_kwargs: dict) -> None:
    """``ValueError`` for an unknown id, or kwargs its constructor refuses (``EvalInputError``, a ValueError).

    Why: a bad ``--env-arg`` would otherwise fail inside the first rollout, after the model has loaded.
    """
    import gymnasium as gym

    import tsr_envs
    from tsr_envs.evaluation.runner import check_env_kwargs
    from tsr_envs.splits import split_env_kwargs

    if env_id not in gym.registry:
        known = ", ".join(tsr_envs.registered_ids())
        raise ValueError(f"unknown environment id {env_id!r}; known ids: {known}")
    check_env_kwargs({env_id: split_env_kwargs(env_id, "train", env_kwargs)})  # raises an EvalInputError


def check_config(config: TrainConfig, *, resume: bool) -> None:
    """Everything that can be checked before loading a model, so mistakes cost no time."""
    from tsr_train.strategies import make_strategy

    try:
        check_env(config.rollout.env_id, config.rollout.env_kwargs)
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        make_strategy(config.rollout.search)
    except ValueError as error:
        raise UsageError(f"bad --search {config.rollout.search!r}: {error}") from None
    if config.rollout.filter_ratio < 1.0 and config.rollout.group_size < 2:
        raise UsageError("--filter-ratio needs --group-size >= 2 (the spread of a single trajectory is 0)")
    check_processes(config)
    if config.use_vllm:
        check_vllm()
    tracker = config.report_to
    if tracker != "none" and importlib.util.find_spec(tracker) is None:
        raise UsageError(f"--report-to {tracker} needs the {tracker} package (pip install {tracker})")
    if config.model not in (None, EMBEDDED) and looks_local(config.model) and not Path(config.model).exists():
        raise UsageError(f"model path {config.model!r} does not exist")
    out = Path(config.out_dir)
    saved = out / CONFIG_FILE
    if resume:
        if not saved.exists():
            raise UsageError(
                f"nothing to resume in {out}: no {CONFIG_FILE} (drop --resume to start a new run)"
            )
        changes = TrainConfig.load(saved).differences(config)
        changed = [name for name, _, _ in changes if name != "steps"]
        if changed:
            raise UsageError(f"--resume with a different configuration ({', '.join(changed)}) than {saved}")
        done = checkpoint_step(latest_checkpoint(out))
        if done >= config.steps:
            raise UsageError(f"{out} already has {done} steps; pass a larger --steps to continue")
    elif saved.exists():
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")


def process_state():
    """This process's place in a multi-process run (``accelerate launch``, ``torchrun``); call it first.

    Why ``cpu=``: accelerate's shared state is set by its first use, and without ``cpu=True`` accelerate
    1.15 on a machine without CUDA tells every rank of a 2-process CPU launch that it is the only one.
    Each rank then counted itself the main process (both wrote the metrics and saved the final model),
    and PPO's ``Accelerator``, which reuses that state, trained unsynchronised copies.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def check_vllm() -> None:
    """``--use-vllm`` needs the vllm package and a CUDA GPU; say so before anything is loaded."""
    import torch

    if importlib.util.find_spec("vllm") is None:
        raise UsageError("--use-vllm needs the vllm package (pip install vllm) on a machine with a CUDA GPU")
    if not torch.cuda.is_available():
        raise UsageError("--use-vllm needs a CUDA GPU; none is visible")


def check_processes(config: TrainConfig) -> None:
    """Under ``accelerate launch`` the step's work must split evenly: GRPO splits rows, PPO whole groups."""
    processes = process_state().num_processes
    rollout = config.rollout
    rows = rollout.seeds_per_step * rollout.group_size
    if config.algo == "grpo" and rows % processes:
        raise UsageError(
            f"--seeds-per-step x --group-size ({rows}) must divide among the {processes} processes"
        )
    if config.algo == "ppo" and rollout.seeds_per_step % processes:
        raise UsageError(
            f"--seeds-per-step ({rollout.seeds_per_step}) must divide among the {processes} processes "
            "(PPO gives each process whole groups)"
        )


def looks_local(model: str) -> bool:
    """A filesystem path rather than a hub id (``name`` or ``org/name``), which we can check up front."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def load_model(path: str | Path):
    """Model and tokenizer for training (``tsr_train.policy.load_causal_lm``); a bad path is a UsageError."""
    from tsr_train.policy import ModelLoadError, load_causal_lm

    try:
        return load_causal_lm(path)
    except ModelLoadError as error:
        raise UsageError(str(error)) from None


def train(config: TrainConfig, *, resume: bool = False) -> Path:
    """Run (or resume) one training run; returns the directory of the final model."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # transformers 5 renamed gradient_checkpointing*; TRL 1.16 still calls the old names on every step.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*", category=FutureWarning)
    from tsr_train.tiny_model import resolve_model

    check_config(config, resume=resume)
    model, tokenizer = load_model(resolve_model(config.model))
    out = Path(config.out_dir)
    main_process = process_state().is_main_process
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
        _leave_process_group()
        return 2
    _leave_process_group()
    run_dir = final.parent
    if not process_state().is_main_process:
        return 0
    print(f"Final model: {final}\nMetrics: {run_dir / 'metrics.jsonl'}, {run_dir / 'learning_curve.png'}")
    return 0


def _leave_process_group() -> None:
    """Close a multi-process run's process group once this rank is done with it.

    gloo can abort the interpreter's exit when the group is left open.  Not called when training raised:
    the launcher then stops the other ranks, which a rank waiting here for them would not let happen.
    """
    distributed = sys.modules.get("torch.distributed")  # never import torch just for this
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()
