"""FrozenLake: maps, scores, and dynamics checked against Gymnasium's FrozenLake-v1 as the reference."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text.frozen_lake import MAPS

import tsr_envs  # noqa: F401
from tsr_envs.frozenlake import FrozenLakeEnv, LakeMap, random_map
from tsr_envs.frozenlake.env import ACTIONS
from tsr_envs.frozenlake.maps import HARD_MAPS, UNREACHABLE

MAP_8X8 = MAPS["8x8"]


def gym_lake(desc, slippery, success_rate=1 / 3):
    return gym.make("FrozenLake-v1", desc=desc, is_slippery=slippery, success_rate=success_rate).unwrapped


def position_of(observation: str) -> int:
    flat = observation.replace("\n", "")
    return next(i for i, symbol in enumerate(flat) if symbol in "PX√")


@pytest.mark.parametrize("seed", range(30))
def test_random_maps_are_solvable_and_seeded(seed):
    lake = random_map(6, 0.6, np.random.default_rng(seed))
    assert lake == random_map(6, 0.6, np.random.default_rng(seed))
    (start,) = lake.starts()
    assert lake.distance[start] not in (UNREACHABLE, 0)


def test_non_slippery_matches_gymnasium_step_by_step():
    reference = gym_lake(MAP_8X8, slippery=False)
    env = FrozenLakeEnv(desc=MAP_8X8, is_slippery=False, max_actions_per_turn=1)
    rng = np.random.default_rng(0)
    for episode in range(50):
        state, _ = reference.reset(seed=episode)
        observation, _ = env.reset(seed=episode)
        assert position_of(observation) == state
        for action in rng.integers(4, size=40):
            state, reward, terminated, _, _ = reference.step(int(action))
            observation, our_reward, our_terminated, _, _ = env.step(ACTIONS[action])
            assert (position_of(observation), our_reward, our_terminated) == (state, reward, terminated)
            if terminated:
                break


@pytest.mark.parametrize("success_rate", [1 / 3, 0.8])
def test_slippery_matches_gymnasium_slip_for_slip_with_the_same_seed(success_rate):
    reference = gym_lake(MAP_8X8, slippery=True, success_rate=success_rate)
    env = FrozenLakeEnv(desc=MAP_8X8, success_rate=success_rate, max_actions_per_turn=1)
    rng = np.random.default_rng(1)
    for episode in range(40):
        state, _ = reference.reset(seed=episode)
        env.reset(seed=episode)
        for action in rng.integers(4, size=60):
            state, reward, terminated, _, _ = reference.step(int(action))
            observation, our_reward, our_terminated, _, _ = env.step(ACTIONS[action])
            assert (position_of(observation), our_reward, our_terminated) == (state, reward, terminated)
            if terminated:
                break


def test_slip_distribution_matches_the_transition_table():
    """In distribution, independently of the draw order: frequencies against Gymnasium's table ``P``."""
    desc = ["FFF", "FSF", "FFG"]
    success_rate = 0.6
    table = gym_lake(desc, slippery=True, success_rate=success_rate).P
    env = FrozenLakeEnv(desc=desc, success_rate=success_rate, max_actions_per_turn=1)
    env.reset(seed=0)
    trials = 4000
    for action_index, action in enumerate(ACTIONS):
        counts: dict[int, int] = {}
        for trial in range(trials):
            observation, *_ = env.clone(rng_seed=trial * 4 + action_index).step(action)
            cell = position_of(observation)
            counts[cell] = counts.get(cell, 0) + 1
        expected: dict[int, float] = {}
        for probability, cell, _, _ in table[4][action_index]:
            expected[cell] = expected.get(cell, 0.0) + probability
        for cell, probability in expected.items():
            observed = counts.get(cell, 0) / trials
            assert abs(observed - probability) < 4 * np.sqrt(probability * (1 - probability) / trials) + 1e-9


def test_clone_replays_the_same_slips_and_a_reseeded_clone_does_not():
    env = FrozenLakeEnv(size=8, p=0.9, success_rate=0.5, max_actions_per_turn=1)
    env.reset(seed=3)
    twin, independent = env.clone(), env.clone(rng_seed=123)
    plan = ["Right", "Down", "Left", "Up"] * 6
    ours = [env.step(a)[0] for a in plan]
    assert [twin.step(a)[0] for a in plan] == ours
    assert [independent.step(a)[0] for a in plan] != ours


def test_score_goes_from_half_to_one_along_the_optimal_path_and_zero_in_a_hole():
    env = FrozenLakeEnv(desc=["SFH", "FFF", "HFG"], is_slippery=False)
    _, info = env.reset(seed=0)
    assert info["score"] == 0.5
    scores = []
    for action in env.optimal_actions():
        *_, info = env.step(action)
        scores.append(info["score"])
    assert scores == sorted(scores) and scores[-1] == 1.0 and info["success"]
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("Down || Down")
    assert terminated and reward == 0.0 and info["score"] == 0.0 and "hole" in info["feedback"]


def test_symbols_and_feedback():
    env = FrozenLakeEnv(desc=["SH", "FG"], is_slippery=False)
    observation, _ = env.reset(seed=0)
    assert observation == "PO\n_G"
    observation, reward, terminated, _, info = env.step("<answer>Down || Right</answer>")
    assert observation == "_O\n_√" and reward == 1.0 and terminated and info["success"]
    env.reset(seed=0)
    observation, reward, _, _, info = env.step("<answer>Jump</answer>")
    assert reward == -0.1 and not info["action_is_valid"]
    assert "'Jump' is not a legal action" in info["feedback"] and "Left, Down, Right, Up" in info["feedback"]
    observation, _, terminated, _, info = env.step("Right")
    assert observation == "_X\n_G" and terminated and info["score"] == 0.0


def test_valid_prefix_is_kept_when_a_later_action_is_illegal():
    env = FrozenLakeEnv(desc=["SFF", "FFF", "FFG"], is_slippery=False)
    env.reset(seed=0)
    observation, reward, _, _, info = env.step("Right || fly || Down")
    assert info["actions"] == ["Right"] and not info["action_is_valid"] and reward == -0.1
    assert observation.splitlines()[0] == "_P_"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 1},
        {"p": 0.0},
        {"success_rate": 0.0},
        {"desc": ["SX", "FG"]},
        {"desc": ["SF", "F"]},
        {"desc": ["FF"]},
        {"maps": []},
        {"maps": "SF\nFG"},
        {"desc": ["SG"], "maps": [["SG"]]},
        {"maps": [["SG"], ["SF", "FH"]]},
    ],
)
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ValueError):
        FrozenLakeEnv(**kwargs)


def test_a_set_of_maps_is_drawn_by_the_seed_and_every_hard_map_is_solvable():
    env = gym.make("tsr/FrozenLake-Hard-v0")
    drawn = {}
    for seed in range(60):
        observation, _ = env.reset(seed=seed)
        drawn.setdefault(env.unwrapped._task.lake, []).append(seed)
        assert env.unwrapped._task.lake == LakeMap.from_desc(HARD_MAPS[env.unwrapped.map_index])
        assert env.reset(seed=seed)[0] == observation  # the same seed, the same map
    assert set(drawn) == {LakeMap.from_desc(desc) for desc in HARD_MAPS}
    for other in (FrozenLakeEnv(), FrozenLakeEnv(desc=HARD_MAPS[0])):  # random maps, one fixed map
        other.reset(seed=0)
        assert other.map_index is None
    for lake, seeds in drawn.items():
        env.reset(seed=seeds[0])
        plan = env.unwrapped.optimal_actions()
        assert len(plan) == lake.distance[env.unwrapped._position] >= 6
        *_, terminated, _, info = env.step(" || ".join(plan[:2]))  # two actions a turn by default
        while not terminated:
            *_, terminated, _, info = env.step(" || ".join(env.unwrapped.optimal_actions()[:2]))
        assert info["success"]


def test_lake_map_accepts_gymnasium_desc_forms():
    assert LakeMap.from_desc("SF\nHG") == LakeMap.from_desc(["SF", "HG"])


def test_slippery_oracle_beats_walking_the_shortest_path():
    """On slippery ice the oracle plays a success-maximising policy, one action per turn."""
    desc = MAPS["8x8"]

    def success_rate(policy) -> float:
        wins = 0
        for seed in range(150):
            env = FrozenLakeEnv(desc=desc, success_rate=0.6, max_actions_per_turn=1)
            env.reset(seed=seed)
            for _ in range(200):
                *_, terminated, _, info = env.step(policy(env))
                if terminated:
                    wins += info["success"]
                    break
        return wins / 150

    def shortest_path(env):
        lake = env._task.lake
        return ACTIONS[lake.downhill_move(env._position)]

    oracle = success_rate(lambda env: env.optimal_actions()[0])
    assert oracle > success_rate(shortest_path) + 0.15
    assert oracle > 0.6
