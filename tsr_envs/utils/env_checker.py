"""Compliance checks for TSR text environments, shipped with the package.

``check_text_env(env)`` runs Gymnasium's own ``check_env`` and then the parts of the TSR contract that
Gymnasium cannot know about: the ``info`` keys and their types, ``score`` in [0, 1], replies that must never
raise, pickling, and exact clone/restore under long random sequences of valid and invalid replies.  The
test suite runs it over every registered id; authors of new envs can run it on theirs.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from gymnasium.utils.env_checker import check_env

from tsr_envs.core import EnvState, TextEnv

STEP_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "success": bool,
    "action_is_valid": bool,
    "action_is_effective": bool,
    "actions": list,
    "score": float,
    "feedback": str,
}

#: Replies no model should be able to crash an env with.
HOSTILE_REPLIES: tuple[str, ...] = (
    "",
    "   ",
    "||||",
    "<answer></answer>",
    "<answer>",
    "</answer>",
    "<think>unfinished thought",
    "<think></think><answer><answer>??</answer>",
    "<ANSWER>" + "x" * 5000 + "</ANSWER>",
    "\x00\x1b[31m",
    "ünïcødé 🙂 || İ",
    "click[" * 50,
    "search[]",
)


def random_replies(env: TextEnv, rng: np.random.Generator, count: int) -> Iterator[str]:
    """Replies mixing legal actions (in several spellings and counts) with malformed text."""
    for _ in range(count):
        legal = env.legal_actions()
        kind = rng.integers(6)
        if kind == 0 or not legal:
            yield HOSTILE_REPLIES[int(rng.integers(len(HOSTILE_REPLIES)))]
            continue
        picks = [legal[int(i)] for i in rng.integers(len(legal), size=int(rng.integers(1, 4)))]
        if kind == 1:
            picks = [pick.upper() for pick in picks]
        reply = " || ".join(picks)
        yield f"<think>try</think><answer>{reply}</answer>" if kind < 4 else reply


def _check_info(info: dict[str, Any], where: str) -> None:
    for key, expected in STEP_INFO_TYPES.items():
        assert key in info, f"{where}: info lacks {key!r}"
        assert isinstance(info[key], expected), f"{where}: info[{key!r}] is {type(info[key]).__name__}"
    assert 0.0 <= info["score"] <= 1.0, f"{where}: score {info['score']} outside [0, 1]"
    assert all(isinstance(action, str) for action in info["actions"]), f"{where}: actions must be strings"


def trace_replies(env: TextEnv, replies: Iterable[str]) -> list[tuple]:
    """Observations, rewards, flags and infos of stepping ``replies`` until the episode ends (no reset)."""
    out = []
    for reply in replies:
        observation, reward, terminated, truncated, info = env.step(reply)
        out.append((observation, float(reward), terminated, truncated, repr(sorted(info.items()))))
        if terminated or truncated:
            break
    return out


def check_clone_restore(env: TextEnv, seed: int, num_replies: int = 60) -> None:
    """A clone, a restored env and the original all produce the same future (RNG included)."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    prefix = list(random_replies(env, rng, num_replies // 3))
    trace_replies(env, prefix)
    snapshot = env.get_state()
    assert isinstance(snapshot, EnvState)
    hash(snapshot.dynamic)  # immutable parts must be hashable
    assert pickle.loads(pickle.dumps(snapshot)) == snapshot, "the snapshot must survive pickling"
    twin = env.clone()
    future = list(random_replies(env, rng, num_replies))
    expected = trace_replies(env, future)
    assert trace_replies(twin, future) == expected, "clone() diverged from the original"
    env.set_state(snapshot)
    assert trace_replies(env, future) == expected, "set_state() did not restore the episode exactly"
    env.set_state(snapshot)
    assert env.get_state() == snapshot, "get_state() after set_state() must return the same snapshot"


def check_text_env(env: TextEnv, seed: int = 0, num_replies: int = 60) -> None:
    """Run every check on an unwrapped env; raises ``AssertionError`` with a reason on failure."""
    assert isinstance(env, TextEnv), f"expected a TextEnv, got {type(env).__name__}"
    check_env(env, skip_render_check=False)
    observation, info = env.reset(seed=seed)
    assert observation in env.observation_space, "reset observation outside the observation space"
    assert isinstance(info.get("instructions"), str) and info["instructions"], "reset info needs instructions"
    _check_info(info, "reset")
    rng = np.random.default_rng(seed)
    for index, reply in enumerate([*HOSTILE_REPLIES, *random_replies(env, rng, num_replies)]):
        observation, reward, terminated, truncated, info = env.step(reply)
        _check_info(info, f"step {index} ({reply[:30]!r})")
        assert observation in env.observation_space, f"step {index}: observation outside the space"
        assert np.isfinite(float(reward)), f"step {index}: reward must be finite"
        if reply in HOSTILE_REPLIES[:7]:
            assert not info["action_is_valid"], f"step {index}: {reply!r} must be an invalid turn"
        if terminated or truncated:
            env.reset(seed=seed + index + 1)
    restored = pickle.loads(pickle.dumps(env))
    assert restored.get_state() == env.get_state(), "pickling the env must keep its state"
    check_clone_restore(env, seed, num_replies)
