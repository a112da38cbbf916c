"""Helpers shared by the training tests (GRPO, PPO, CLI): the smallest run that still trains."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tsr_train.config import RolloutConfig, TrainConfig
from tsr_train.metrics import METRICS_FILE, read_metrics


def tiny_config(model_dir: Path, out_dir: Path, algo: str, **overrides) -> TrainConfig:
    """2 seeds x 2 trajectories, 2 turns of at most 24 tokens, rewarded by the dense final ``score``.

    ``overrides`` set ``TrainConfig`` fields, or ``RolloutConfig`` fields when prefixed ``rollout_``.
    """
    rollout_fields = {k.removeprefix("rollout_"): v for k, v in overrides.items() if k.startswith("rollout_")}
    rollout = RolloutConfig(
        env_id="tsr/FrozenLake-v0",
        seeds_per_step=2,
        group_size=2,
        max_turns=2,
        max_new_tokens=24,
        reward="score",
    )
    rollout = dataclasses.replace(rollout, **rollout_fields)
    train_fields = {"steps": 2, "learning_rate": 1e-3, "save_every": 2, "eval_every": 0}
    train_fields.update({k: v for k, v in overrides.items() if not k.startswith("rollout_")})
    return TrainConfig(algo=algo, model=str(model_dir), out_dir=str(out_dir), rollout=rollout, **train_fields)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_finite_metrics(run_dir: Path, steps: int, *keys: str) -> list[dict]:
    records = read_metrics(Path(run_dir) / METRICS_FILE)
    assert [r["step"] for r in records] == list(range(1, steps + 1))
    for record in records:
        for key in keys:
            assert key in record, f"{key} missing from step {record['step']}"
            assert math.isfinite(record[key])
    return records


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_benchmark(script: str, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<script>`` as a user would, in its own process, and keep what it printed."""
    command = [sys.executable, str(BENCHMARKS / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
