"""Instance filtering: train only on the groups whose outcome is still uncertain.

RAGEN's StarPO-S (Wang et al. 2025, "RAGEN: Understanding Self-Evolution in LLM Agents") sorts the prompt
groups of a batch by the standard deviation of their trajectories' rewards and keeps the top fraction.  A
group whose trajectories all got the same reward carries no preference signal (its GRPO advantages are
zero) but still costs a forward/backward pass and, for PPO, pulls the critic towards states the policy
already handles; dropping it concentrates the update on the instances the policy can still learn from.
Search makes the trajectories of a group more alike, which is why TSR pairs it with this filter.

Both trainers use the same functions: ``trajectory_reward`` says what a trajectory earned, ``group_spread``
defines "uncertain", ``kept_groups`` picks the groups, and ``filtered_rows`` makes the same choice over the
groups of every process of a multi-process run.  How a dropped group is removed is each trainer's business
(GRPO masks its tokens; PPO drops it in a single process and masks it across several).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tsr_train.trajectory import Trajectory


#: what each invalid turn costs under ``reward="score"``: the whole range of the score
INVALID_SCORE_COST = 1.0


def trajectory_reward(trajectory: Trajectory, kind: str) -> float:
    """The scalar a trajectory is trained on: ``"return"``, ``"success"`` (1/0) or ``"score"``.

    ``"score"`` is the final state-based score minus ``INVALID_SCORE_COST`` per invalid turn.  Without the
    cost an invalid reply, which leaves the score where it was (0.5 at the start), paid better than a
    random move (which can end in a hole at 0), and a policy trained on the score learned to reply
    invalidly; with it, an invalid turn never pays better than trying.
    """
    if kind == "return":
        return float(trajectory.episode_return)
    if kind == "success":
        return float(trajectory.success)
    if kind == "score":
        return float(trajectory.final_score) - INVALID_SCORE_COST * trajectory.invalid_turns
    raise ValueError(f"unknown reward {kind!r}; expected return, success or score")


def group_spread(rewards: Sequence[float]) -> float:
    """The population standard deviation of one group's rewards (0.0 for a group of one)."""
    if len(rewards) < 2:
        return 0.0
    mean = sum(rewards) / len(rewards)
    return math.sqrt(sum((reward - mean) ** 2 for reward in rewards) / len(rewards))


def num_kept(num_groups: int, ratio: float) -> int:
    """How many of ``num_groups`` a filter with ``ratio`` keeps: the fraction rounded up, at least one."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"filter ratio must be in (0, 1], got {ratio!r}")
    if num_groups == 0:
        return 0
    return max(1, math.ceil(ratio * num_groups - 1e-9))


def kept_groups(group_rewards: Sequence[Sequence[float]], ratio: float) -> list[int]:
    """Indices of the groups to train on: the ``ratio`` fraction with the largest reward spread.

    Ties keep the earlier group, so the choice is deterministic; the indices come back in ascending order
    so that callers preserve the batch's order.  ``ratio=1.0`` keeps everything.
    """
    count = num_kept(len(group_rewards), ratio)
    spreads = [group_spread(rewards) for rewards in group_rewards]
    ranked = sorted(range(len(spreads)), key=lambda index: (-spreads[index], index))
    return sorted(ranked[:count])


def filtered_rows(seeds: list[int], rewards: list[float], ratio: float) -> list[bool]:
    """Which of this process's rows survive instance filtering.

    Groups are keyed by seed and measured over *all* processes (``gather_object``), because TRL may spread
    the copies of one prompt over several GPUs, and because the choice must not depend on how many
    processes share the step; every process then applies the same decision.  Every process must call it.
    """
    if ratio >= 1.0:
        return [True] * len(seeds)
    from accelerate.utils import gather_object

    by_seed: dict[int, list[float]] = {}
    for seed, reward in gather_object(list(zip(seeds, rewards, strict=True))):
        by_seed.setdefault(seed, []).append(reward)
    order = sorted(by_seed)
    kept = {order[index] for index in kept_groups([by_seed[seed] for seed in order], ratio)}
    return [seed in kept for seed in seeds]
