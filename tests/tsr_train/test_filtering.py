"""Instance filtering keeps the groups with the largest reward spread (RAGEN's StarPO-S filter)."""

from __future__ import annotations

import math

import pytest

from tsr_train.filtering import group_spread, kept_groups, num_kept, trajectory_reward
from tsr_train.trajectory import Trajectory


def test_group_spread_is_population_std():
    assert group_spread([1.0, 1.0, 1.0]) == 0.0
    assert group_spread([0.0, 1.0]) == pytest.approx(0.5)
    assert group_spread([2.0]) == 0.0
    assert group_spread([0.0, 0.0, 1.0, 1.0]) == pytest.approx(0.5)


def test_keeps_top_spread_groups_in_batch_order():
    groups = [[0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 1], [0, 0, 0, 1]]
    assert kept_groups(groups, 0.25) == [1]
    assert kept_groups(groups, 0.5) == [1, 3]
    assert kept_groups(groups, 1.0) == [0, 1, 2, 3]


def test_ties_keep_the_earlier_group():
    assert kept_groups([[0, 0], [0, 1], [1, 0], [1, 1]], 0.25) == [1]


@pytest.mark.parametrize(
    ("groups", "ratio", "expected"), [(4, 0.25, 1), (6, 0.25, 2), (3, 0.01, 1), (8, 0.5, 4), (0, 0.5, 0)]
)
def test_num_kept_rounds_up_and_keeps_at_least_one(groups, ratio, expected):
    assert num_kept(groups, ratio) == expected


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, math.nan])
def test_bad_ratio_is_rejected(ratio):
    with pytest.raises(ValueError, match="filter ratio"):
        kept_groups([[0, 1]], ratio)


def test_trajectory_reward_kinds():
    t = Trajectory(env_id="tsr/FrozenLake-v0", seed=0, episode_return=0.8, success=True, final_score=0.6)
    assert trajectory_reward(t, "return") == 0.8
    assert trajectory_reward(t, "success") == 1.0
    assert trajectory_reward(t, "score") == 0.6
    with pytest.raises(ValueError, match="unknown reward"):
        trajectory_reward(t, "bogus")
