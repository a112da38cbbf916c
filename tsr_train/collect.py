"""Collecting one optimizer step's trajectories: the rollout strategy a config names, and the naive mix.

Both trainers call :func:`collect`, so GRPO and PPO build their batches the same way: the strategy with
the configured scorer and selection, instances from the train split (and, for envs with an instance pool
such as WebShop's goals, that pool's train part), and, with ``naive_mix = m``, the first ``m``
trajectories of every group rolled out naively.  Why mix: a search makes the trajectories of one group
alike (often all successful), and a group without reward spread gives GRPO no advantage to learn from;
naive members keep the spread, and the search's better trajectories then get the positive advantages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
