"""Every registered id, one contract: Gymnasium's checker and ours, determinism, pickling, vector envs."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import tsr_envs
from tests.conftest import require_shared_data
from tsr_envs.registration import spec_of
from tsr_envs.utils.env_checker import HOSTILE_REPLIES, check_clone_restore, check_text_env, random_replies

ALL_IDS = tsr_envs.registered_ids()
DATA_FILES = {"level_file": ("boxoban", "unfiltered_test_000.txt")}


def data_kwargs(env_id: str) -> dict[str, str]:
    """The data files an id needs (Boxoban levels), from ``../shared/data``."""
    return {name: str(require_shared_data(*DATA_FILES[name])) for name in spec_of(env_id).requires}


def make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **{**data_kwargs(env_id), **kwargs})


def episode_digest(env_id: str, seed: int, kwargs: dict) -> str:
    """A digest of a whole scripted episode: observations, rewards and infos."""
    env = make(env_id, **kwargs).unwrapped
    observation, info = env.reset(seed=seed)
    records = [observation, info.get("instructions")]
    rng = np.random.default_rng(seed)
    for reply in random_replies(env, rng, 40):
        observation, reward, terminated, truncated, info = env.step(reply)
        records.append([observation, float(reward), terminated, truncated, info["score"], info["feedback"]])
        if terminated or truncated:
            break
    return hashlib.sha256(json.dumps(records, default=str).encode()).hexdigest()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_contract(env_id):
    check_text_env(make(env_id).unwrapped, seed=3)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make_sets_turn_limit_and_wrappers_pass_through(env_id):
    env = make(env_id)
    assert env.spec.max_episode_steps == spec_of(env_id).max_episode_steps
    observation, info = env.reset(seed=1)
    for _ in range(env.spec.max_episode_steps):
        observation, reward, terminated, truncated, info = env.step("definitely not an action")
        assert not info["action_is_valid"]
        if terminated or truncated:
            break
    assert truncated, "an env that only gets invalid replies must be truncated by its turn limit"


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_same_episode_in_other_processes(env_id):
    kwargs = data_kwargs(env_id)
    here = episode_digest(env_id, 11, kwargs)
    script = (
        "import sys, json; from tests.tsr_envs.test_registry import episode_digest; "
        "print(episode_digest(sys.argv[1], 11, json.loads(sys.argv[2])))"
    )
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script, env_id, json.dumps(kwargs)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        assert done.stdout.strip() == here


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_pickle_mid_episode(env_id):
    env = make(env_id)
    env.reset(seed=5)
    env.step(env.unwrapped.legal_actions()[0])
    twin = pickle.loads(pickle.dumps(env))
    replies = [HOSTILE_REPLIES[0], *env.unwrapped.legal_actions()[:2]]
    for reply in replies:
        assert repr(env.step(reply)) == repr(twin.step(reply))


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_long_clone_restore_sequences(env_id):
    env = make(env_id).unwrapped
    for seed in range(3):
        check_clone_restore(env, seed, num_replies=150)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_vector_env(env_id):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", **data_kwargs(env_id))
    observations, infos = envs.reset(seed=[1, 2])
    assert len(observations) == 2 and all(isinstance(o, str) for o in observations)
    actions = tuple(envs.envs[0].unwrapped.legal_actions()[:1] * 2)
    observations, rewards, terminated, truncated, infos = envs.step(actions)
    assert rewards.shape == (2,) and "score" in infos
    envs.close()
