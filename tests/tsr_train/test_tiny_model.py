"""The embedded model's recipe: one token per grid cell, an honest noisy expert, a checked config."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tsr_envs  # noqa: F401
from tsr_train.tiny_model import TinyModelConfig, expert_reply


@pytest.mark.parametrize("env_id", ["tsr/FrozenLake-v0", "tsr/Sokoban-v0"])
def test_every_grid_cell_and_row_break_is_one_token(tokenizer, env_id):
    env = gym.make(env_id)
    observation, _ = env.reset(seed=10_001)
    pieces = [tokenizer.decode([i]) for i in tokenizer.encode(observation, add_special_tokens=False)]
    assert pieces == [character for character in observation]


def test_words_with_grid_letters_are_not_split(tokenizer):
    ids = tokenizer.encode("Observation: Sokoban", add_special_tokens=False)
    assert len(ids) < len("Observation: Sokoban") // 2


def test_noisy_expert_plays_the_oracle_with_probability_one_minus_epsilon():
    env = gym.make("tsr/Sokoban-v0").unwrapped
    env.reset(seed=10_003)
    plan = env.optimal_actions()
    rng = np.random.default_rng(0)
    expert = TinyModelConfig(prior="noisy-expert", expert_epsilon=0.0, expert_actions=2)
    assert expert_reply(rng, env, expert) == "<answer>" + " || ".join(plan[:2]) + "</answer>"
    noisy = TinyModelConfig(prior="noisy-expert", expert_epsilon=0.5, expert_actions=1)
    replies = [expert_reply(rng, env, noisy) for _ in range(2000)]
    oracle_share = replies.count(f"<answer>{plan[0]}</answer>") / len(replies)
    assert oracle_share == pytest.approx(0.5 + 0.5 / 4, abs=0.04)  # the oracle, or a random pick of 4


def test_recipe_is_checked():
    with pytest.raises(ValueError, match="prior must be one of"):
        TinyModelConfig(prior="oracle")
    with pytest.raises(ValueError, match="expert_epsilon"):
        TinyModelConfig(expert_epsilon=1.5)


def test_the_reading_template_leaves_out_only_the_system_message(tokenizer):
    from tsr_train.tiny_model import CHAT_TEMPLATE_WITHOUT_SYSTEM

    messages = [
        {"role": "system", "content": "The rules."},
        {"role": "user", "content": "Observation:\n_P\nG_"},
        {"role": "assistant", "content": "<answer>Down</answer>"},
    ]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    reading = tokenizer.apply_chat_template(
        messages, tokenize=False, chat_template=CHAT_TEMPLATE_WITHOUT_SYSTEM
    )
    assert "The rules." in full
    assert reading == full[full.index("<|im_start|>user") :]
