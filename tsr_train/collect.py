"""Collecting one optimizer step's trajectories: the rollout strategy a config names, and the naive mix.

Both trainers call :func:`collect`, so GRPO and PPO build their batches the same way: the strategy with
the configured scorer and selection, instances from the train split (and, for envs with an instance pool
such as WebShop's goals, that pool's train part), and, with ``naive_mix = m``, the first ``m``
trajectories of every group rolled out naively.  Why mix: a search makes the trajectories of one group
alike (often all successful), and a group without reward spread gives GRPO no advantage to learn from;
naive members keep the spread, and the search's better trajectories then get the positive advantages.

:class:`DriftGuard` raises the mix to the whole group for one step when the policy's replies drift
towards invalid ones (``RolloutConfig.drift_guard``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tsr_envs.splits import split_env_kwargs
from tsr_train.scoring import make_scorer
from tsr_train.strategies import RolloutBatch, RolloutStrategy, make_strategy

if TYPE_CHECKING:
    from tsr_train.config import RolloutConfig
    from tsr_train.policy import Policy


def rollout_strategy(rollout: RolloutConfig, seed: int) -> RolloutStrategy:
    """The strategy ``rollout.search`` with the configured scorer and selection rule."""
    return make_strategy(
        rollout.search,
        seed=seed,
        scorer=make_scorer(rollout.scorer),
        selection=rollout.selection,
        selection_temperature=rollout.selection_temperature,
    )


def naive_rows(seeds: list[int], naive_mix: int) -> list[bool]:
    """Which rows are rolled out naively: the first ``naive_mix`` of each run of equal consecutive seeds."""
    flags, run_length = [], 0
    for index, seed in enumerate(seeds):
        run_length = run_length + 1 if index and seeds[index - 1] == seed else 1
        flags.append(run_length <= naive_mix)
    return flags


def collect(policy: Policy, rollout: RolloutConfig, seeds: list[int], seed: int) -> RolloutBatch:
    """One trajectory per entry of ``seeds`` (a group = consecutive copies of one seed), in that order."""
    kwargs = split_env_kwargs(rollout.env_id, "train", rollout.env_kwargs)
    strategy = rollout_strategy(rollout, seed)
    mix = naive_rows(seeds, rollout.naive_mix if strategy.name != "naive" else 0)
    parts: dict[bool, RolloutBatch] = {}
    for naive in (True, False):
        part = [s for s, flag in zip(seeds, mix, strict=True) if flag == naive]
        if part:
            runner = make_strategy("naive") if naive else strategy
            parts[naive] = runner.rollout(
                policy, rollout.env_id, part, max_turns=rollout.max_turns, env_kwargs=kwargs
            )
    if len(parts) == 1:
        return next(iter(parts.values()))
    queues = {naive: iter(batch.trajectories) for naive, batch in parts.items()}
    trajectories = [next(queues[flag]) for flag in mix]
    return RolloutBatch(trajectories, parts[True].stats.merge(parts[False].stats))


#: the metric a guarded run logs every step: 1.0 if the guard will roll the next step out naively; a
#: resumed run reads it back from its last record, so that it continues as an uninterrupted one would
NEXT_NAIVE = "guard/next_naive"


class DriftGuard:
    """After a step with too many invalid replies from the policy, rolls the next step out wholly naively.

    Why: a search commits an invalid reply only when all its candidates are invalid, so the optimizer
    rarely sees the policy's own invalid replies penalised, and probability mass can move onto them
    unchecked.  In the TSR study, best-of-4 GRPO on random Sokoban (one naive trajectory per group) ended
    with 7%, 23%, 12%, 31% and 0.3% invalid test replies on five seeds, naive with 0-7%.  The guard
    watches the share of invalid replies among *all* sampled candidates (what the search declined
    included), and when it exceeds ``threshold`` the next step is naive: every invalid reply the policy
    then samples goes to the optimizer with its penalty.  It judges each step by the one before, so
    while the rate hovers at the threshold, search and naive steps alternate.  Off at ``threshold = 0``.
    """

    def __init__(self, threshold: float, *, tripped: bool = False) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"drift guard threshold must be in [0, 1) (0 = off), got {threshold}")
        self.threshold = threshold
        self.tripped = tripped

    @classmethod
    def resumed(cls, threshold: float, records: Sequence[dict[str, Any]]) -> DriftGuard:
        """The guard as the last logged step left it (untripped for a run without records)."""
        last = next((record for record in reversed(records) if NEXT_NAIVE in record), None)
        return cls(threshold, tripped=bool(last and last[NEXT_NAIVE]))

    def rollout(self, rollout: RolloutConfig) -> RolloutConfig:
        """The coming step's rollout settings: ``rollout``, or, tripped, every member of a group naive."""
        return dataclasses.replace(rollout, naive_mix=rollout.group_size) if self.tripped else rollout

    def observe(self, invalid: float, generated: float) -> dict[str, float]:
        """Judge a finished step by its invalid and sampled reply counts; returns the metrics to log."""
        rate = invalid / generated if generated else 0.0
        metrics = {"guard/candidate_invalid_rate": rate, "guard/naive_step": float(self.tripped)}
        self.tripped = self.threshold > 0 and rate > self.threshold
        metrics[NEXT_NAIVE] = float(self.tripped)
        return metrics


def make_drift_guard(rollout: RolloutConfig, records: Sequence[dict[str, Any]]) -> DriftGuard | None:
    """The run's guard, or None where it has nothing to do: switched off, or a naive run."""
    if rollout.drift_guard <= 0 or rollout.search == "naive":
        return None
    return DriftGuard.resumed(rollout.drift_guard, records)


def summed_over_processes(accelerator: Any, *values: float) -> list[float]:
    """``values`` summed over the processes of a distributed run, so that every process judges alike."""
    if accelerator.num_processes == 1:
        return list(values)
    import torch

    summed = accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=accelerator.device), "sum")
    return summed.tolist()
