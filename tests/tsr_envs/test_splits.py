"""The seed splits are disjoint, owned by one module, and followed by training, eval and WebShop goals."""

from __future__ import annotations

import itertools

import pytest

import tsr_envs  # noqa: F401
from tsr_envs.splits import SPLITS, SplitError, split_env_kwargs, split_of, split_seeds
from tsr_envs.webshop.env import WebShopEnv


def test_splits_are_disjoint_and_cover_the_seeds():
    ranges = sorted((split.first_seed, split.size) for split in SPLITS.values())
    assert ranges[0][0] == 0
    for (first, size), (next_first, _) in itertools.pairwise(ranges):
        assert size is not None and first + size == next_first  # contiguous, no overlap
    assert ranges[-1][1] is None  # train is open-ended
    assert {split_of(seed) for seed in (0, 4_999)} == {"test"}
    assert {split_of(seed) for seed in (5_000, 9_999)} == {"validation"}
    assert {split_of(seed) for seed in (10_000, 10**9)} == {"train"}
    sets = {name: set(split_seeds(name, 5_000 if name != "train" else 20_000)) for name in SPLITS}
    assert not (sets["test"] & sets["validation"]) and not (sets["test"] | sets["validation"]) & sets["train"]


def test_split_seeds_offsets_and_errors():
    assert split_seeds("train", 3, offset=2) == [10_002, 10_003, 10_004]
    with pytest.raises(SplitError, match="unknown split"):
        split_seeds("dev", 1)
    with pytest.raises(SplitError, match="only 5000 seeds"):
        split_seeds("validation", 2, offset=4_999)


def test_split_kwargs_reach_only_envs_with_an_instance_pool():
    assert split_env_kwargs("tsr/FrozenLake-v0", "test") == {}
    assert split_env_kwargs("tsr/WebShop-v0", "test") == {"split": "test"}
    assert split_env_kwargs("tsr/WebShop-v0", "test", {"split": "train"}) == {"split": "train"}


def test_training_seeds_come_from_the_train_split_for_every_algorithm():
    from tsr_train.config import RolloutConfig, TrainConfig

    for algo in ("grpo", "ppo"):
        for seed in (0, 3):
            config = TrainConfig(algo=algo, steps=7, seed=seed, rollout=RolloutConfig(seeds_per_step=3))
            seeds = config.train_seeds
            assert len(seeds) == len(set(seeds)) == 21
            assert {split_of(s) for s in seeds} == {"train"}
    first = TrainConfig(seed=0).train_seeds
    second = TrainConfig(seed=1).train_seeds
    assert not set(first) & set(second)  # different run seeds train on different instances


def test_eval_on_webshop_draws_goals_of_the_requested_split():
    from tsr_envs.evaluation import evaluate

    env = WebShopEnv()
    results = {
        split: evaluate("oracle", "tsr/WebShop-v0", episodes=6, split=split, progress=False, plot=False)
        for split in ("test", "validation")
    }
    for split, result in results.items():
        goals = set(env.goal_indices(split))
        for record in result.records:
            assert record["reset_info"]["goal_index"] in goals, split
