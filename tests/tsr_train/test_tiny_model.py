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


def test_expert_distribution_is_the_noisy_experts_conditional_per_slot():
    from tsr_train.tiny_model import expert_distribution

    env = gym.make("tsr/Sokoban-v0").unwrapped
    env.reset(seed=10_003)
    plan = env.optimal_actions()
    config = TinyModelConfig(prior="noisy-expert", expert_epsilon=0.5, expert_actions=2)
    first, second = expert_distribution(env, config, plan[:2])
    assert first[plan[0]] == pytest.approx(0.5 + 0.5 / 4)
    assert sum(first.values()) == pytest.approx(1.0)
    # given the plan's first move, the second is the plan's with P(plan) / P(first move on plan)
    assert second[plan[1]] == pytest.approx((0.5 + 0.5 / 16) / (0.5 + 0.5 / 4))
    off_plan = next(action for action in env.legal_actions() if action != plan[0])
    _, after_a_random_first_move = expert_distribution(env, config, [off_plan, plan[1]])
    assert list(after_a_random_first_move.values()) == pytest.approx([0.25] * 4)


def test_soft_labels_replace_the_action_tokens_label_by_the_experts_distribution(tokenizer):
    from tsr_train.tiny_model import _episodes, _sft_examples
    from tsr_train.trajectory import ChatTokens

    config = TinyModelConfig(prior="noisy-expert", expert_epsilon=0.5, soft_labels=True, episodes_per_env=3)
    chat = ChatTokens(tokenizer)
    episodes = list(_episodes(config, ["tsr/FrozenLake-v0"], np.random.default_rng(0)))
    hard = _sft_examples([e.__class__(e.context, e.replies, e.followups, []) for e in episodes], chat)
    soft = _sft_examples(episodes, chat)
    for hard_example, soft_example, episode in zip(hard, soft, episodes, strict=True):
        (ids, hard_labels, none), (soft_ids, labels, soft_labels) = hard_example, soft_example
        assert ids == soft_ids and none == []
        assert len(soft_labels) == len(episode.replies)  # one move per FrozenLake reply
        for position, candidates, probabilities in soft_labels:
            assert labels[position] == -100 and hard_labels[position] == ids[position]
            assert ids[position] in candidates and len(set(candidates)) == 4
            assert sum(probabilities) == pytest.approx(1.0)
            moves = [tokenizer.decode([c]) for c in candidates]
            assert sorted(moves) == sorted(gym.make("tsr/FrozenLake-v0").unwrapped.legal_actions())
        # every other reply token keeps its hard label
        assert sum(1 for a, b in zip(hard_labels, labels, strict=True) if a != b) == len(soft_labels)
