"""Search-based rollouts (TSR) and training for the ``tsr_envs`` environments.

Importing the package is cheap: names load their module (and torch, for the policy and the tiny model) on
first use.  The search wrappers are exported here (``tsr_train.BestOfNWrapper(env, n=4)``); the strategy
objects they delegate to live in ``tsr_train.strategies`` (``make_strategy("best-of-4")``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HFPolicy": "tsr_train.policy",
    "Policy": "tsr_train.policy",
    "Sample": "tsr_train.policy",
    "Trajectory": "tsr_train.trajectory",
    "load_jsonl": "tsr_train.trajectory",
    "save_jsonl": "tsr_train.trajectory",
    "Candidate": "tsr_train.scoring",
    "StateScorer": "tsr_train.scoring",
    "RolloutBatch": "tsr_train.strategies",
    "SearchStats": "tsr_train.strategies",
    "make_strategy": "tsr_train.strategies",
    "SearchWrapper": "tsr_train.wrappers",
    "NaiveWrapper": "tsr_train.wrappers",
    "BestOfNWrapper": "tsr_train.wrappers",
    "BeamWrapper": "tsr_train.wrappers",
    "LookaheadWrapper": "tsr_train.wrappers",
    "TrainConfig": "tsr_train.config",
    "RolloutConfig": "tsr_train.config",
    "train": "tsr_train.cli",
    "build_tiny_model": "tsr_train.tiny_model",
    "default_model_path": "tsr_train.tiny_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tsr_train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
