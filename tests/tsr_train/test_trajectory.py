"""Trajectories keep the model's exact ids, interleaved with the template's, and survive JSONL."""

from __future__ import annotations

import gymnasium as gym
import pytest

import tsr_envs  # noqa: F401
from tsr_envs.chat import initial_messages, observation_message, reply_message
from tsr_train.policy import HFPolicy
from tsr_train.strategies import make_strategy
from tsr_train.trajectory import ChatTokens, Trajectory, json_safe, load_jsonl, save_jsonl


@pytest.fixture(scope="module")
def batches(tiny_model, tokenizer):
    policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=24, seed=0)
    env_ids = [e for e in ("tsr/FrozenLake-v0", "tsr/Sokoban-v0") if e in gym.registry]
    return [
        make_strategy(spec).rollout(policy, env_id, [0, 1], max_turns=3)
        for env_id in env_ids
        for spec in ("naive", "beam-2x2", "lookahead-1x2")
    ]


def test_decoding_the_model_tokens_gives_back_the_replies_the_env_received(batches, tokenizer):
    for batch in batches:
        for trajectory in batch:
            n = len(trajectory.completion_ids)
            assert len(trajectory.env_mask) == len(trajectory.logprobs) == n
            turns = trajectory.model_token_turns()
            assert [tokenizer.decode(ids, skip_special_tokens=True) for ids in turns] == trajectory.replies
            assert len(trajectory.replies) == len(trajectory.rewards) == trajectory.num_turns >= 1
            env_logprobs = [
                lp for lp, m in zip(trajectory.logprobs, trajectory.env_mask, strict=True) if not m
            ]
            assert env_logprobs == [0.0] * len(env_logprobs)
            assert trajectory.env_mask[-1] == 1  # an episode ends on the model's last reply


def test_ids_decode_to_the_conversation_the_chat_template_renders(tokenizer):
    """Incremental tokenisation never drifts from the template (the env's messages are exact)."""
    chat = ChatTokens(tokenizer)
    env = gym.make("tsr/FrozenLake-v0").unwrapped
    observation, info = env.reset(seed=4)
    messages = initial_messages(observation, info, 3)
    ids = chat.prompt_ids(messages)
    for turn, reply in enumerate(["<answer>Up</answer>", "<answer>Left || Down</answer>"]):
        reply_ids = [*tokenizer.encode(reply, add_special_tokens=False)]
        if turn == 0:
            reply_ids.append(tokenizer.eos_token_id)  # generated the end of turn, or hit the token limit
        observation, _, _, _, info = env.step(reply)
        user = observation_message(observation, info, 2 - turn)
        ids += reply_ids + chat.turn_delta_ids(messages[:2], reply_ids, user)
        messages += [reply_message(reply), user]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(ids) == rendered


def test_jsonl_round_trip(batches, tmp_path):
    trajectories = [t for batch in batches for t in batch]
    path = save_jsonl(trajectories, tmp_path / "rollouts" / "batch.jsonl")
    loaded = load_jsonl(path)
    assert loaded == trajectories
    assert all(isinstance(t, Trajectory) for t in loaded)


def test_json_safe_keeps_only_serialisable_entries():
    info = {"score": 0.5, "actions": ["Up"], "state": object(), "nan": float("nan"), "nested": {"a": (1, 2)}}
    assert json_safe(info) == {"score": 0.5, "actions": ["Up"]}
