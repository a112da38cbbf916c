"""The HF policy samples in one batched call, returns exact ids and log-probs, and is reproducible."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import tsr_envs  # noqa: F401
from tsr_envs.chat import initial_messages
from tsr_train.policy import HFPolicy, Policy
from tsr_train.tiny_model import FORMAT_TAGS, read_manifest
from tsr_train.trajectory import ChatTokens


def _prompts(tokenizer, env_id: str = "tsr/FrozenLake-v0", seeds=(0, 1, 2)) -> list[list[int]]:
    env = gym.make(env_id).unwrapped
    chat = ChatTokens(tokenizer)
    prompts = []
    for seed in seeds:
        observation, info = env.reset(seed=seed)
        prompts.append(chat.prompt_ids(initial_messages(observation, info, 5)))
    return prompts


def test_tiny_model_recipe(tiny_model_dir, tiny_model, tokenizer):
    manifest = read_manifest(tiny_model_dir)
    assert 1_000_000 <= manifest["num_parameters"] <= 3_000_000
    assert type(tiny_model).__name__ == "Qwen2ForCausalLM"
    assert tiny_model.config.max_position_embeddings >= 2048
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    for tag in FORMAT_TAGS:
        assert len(tokenizer.encode(tag, add_special_tokens=False)) == 1


def test_sample_returns_n_samples_per_prompt_from_one_generate_call(tiny_model, tokenizer, monkeypatch):
    policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=24, seed=0)
    assert isinstance(policy, Policy)
    calls = []
    generate = tiny_model.generate
    monkeypatch.setattr(tiny_model, "generate", lambda **kw: calls.append(kw) or generate(**kw))
    prompts = _prompts(tokenizer)
    prompts[1] = prompts[1][5:]  # ragged lengths exercise the left padding
    samples = policy.sample(prompts, 3)
    assert len(calls) == 1 and calls[0]["input_ids"].shape[0] == 9
    assert [len(row) for row in samples] == [3, 3, 3]
    for sample in (s for row in samples for s in row):
        assert 1 <= len(sample.token_ids) <= 24 and len(sample.logprobs) == len(sample.token_ids)
        assert all(lp <= 0.0 for lp in sample.logprobs)
        assert tokenizer.eos_token_id not in sample.token_ids[:-1]  # stops at the first eos
        assert sample.text == tokenizer.decode(sample.token_ids, skip_special_tokens=True)


def test_logprobs_match_a_forward_pass_at_the_sampling_temperature(tiny_model, tokenizer):
    temperature = 0.7
    policy = HFPolicy(tiny_model, tokenizer, temperature=temperature, seed=1)
    prompts = _prompts(tokenizer, seeds=(3, 4))
    prompts[0] = prompts[0][7:]
    for prompt, row in zip(prompts, policy.sample(prompts, 2), strict=True):
        for sample in row:
            ids = torch.tensor([prompt + sample.token_ids])
            with torch.no_grad():
                logits = tiny_model(ids).logits[0, len(prompt) - 1 : -1] / temperature
            expected = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt) :, None]).squeeze(-1)
            assert sample.logprobs == pytest.approx(expected.tolist(), abs=1e-3)


def test_rows_sharing_a_prefix_decode_as_if_alone(tiny_model, tokenizer):
    """Lookahead continuations share their branch's context: prefilled once, the replies are unchanged."""
    policy = HFPolicy(tiny_model, tokenizer, temperature=0.0, max_new_tokens=12)
    (base,) = _prompts(tokenizer, seeds=(5,))
    tails = [tokenizer.encode(text, add_special_tokens=False) for text in ("Left", "Down || Up", "R")]
    prompts = [base + tail for tail in tails] + _prompts(tokenizer, seeds=(6,))
    together = policy.sample(prompts, 1)
    for prompt, (sample,) in zip(prompts, together, strict=True):
        (alone,) = policy.sample([prompt], 1)[0]
        assert sample.token_ids == alone.token_ids
        assert sample.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
    prefixes = policy._prefill_shared_prefixes([list(p) for p in prompts])[1]
    assert prefixes[0] == prefixes[1] == prefixes[2] and len(prefixes[0]) >= len(base) // 2


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(tiny_model, tokenizer):
    prompts = _prompts(tokenizer)
    torch.manual_seed(123)
    expected_global = torch.rand(1)
    torch.manual_seed(123)
    first = HFPolicy(tiny_model, tokenizer, max_new_tokens=16, seed=7).sample(prompts, 2)
    assert torch.equal(torch.rand(1), expected_global)
    again = HFPolicy(tiny_model, tokenizer, max_new_tokens=16, seed=7).sample(prompts, 2)
    assert [[s.token_ids for s in row] for row in first] == [[s.token_ids for s in row] for row in again]
    policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=16, seed=7)
    policy.sample(prompts, 2)
    later = policy.sample(prompts, 2)  # the policy's stream moves on
    assert [[s.token_ids for s in row] for row in later] != [[s.token_ids for s in row] for row in first]


def test_greedy_decoding_gives_identical_samples(tiny_model, tokenizer):
    (row,) = HFPolicy(tiny_model, tokenizer, temperature=0.0).sample(_prompts(tokenizer, seeds=(5,)), 3)
    assert row[0].token_ids == row[1].token_ids == row[2].token_ids


def test_warmed_up_model_speaks_the_answer_format(tiny_model, tokenizer):
    policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=24, seed=0)
    for env_id in [e for e in ("tsr/FrozenLake-v0", "tsr/Sokoban-v0") if e in gym.registry]:
        env = gym.make(env_id).unwrapped
        samples = [s for row in policy.sample(_prompts(tokenizer, env_id, range(100, 106)), 4) for s in row]
        valid = 0
        for sample in samples:
            env.reset(seed=0)
            valid += env.step(sample.text)[4]["action_is_valid"]
        assert valid / len(samples) >= 0.75, env_id


def test_from_pretrained_round_trip_and_clear_error(tiny_model_dir, tmp_path):
    policy = HFPolicy.from_pretrained(tiny_model_dir, max_new_tokens=8, temperature=0.5)
    assert (policy.max_new_tokens, policy.temperature, policy.max_context_length) == (8, 0.5, 2048)
    with pytest.raises(FileNotFoundError, match="build_tiny_model"):
        HFPolicy.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError):
        HFPolicy(policy.model, policy.tokenizer, max_new_tokens=0)


def test_hf_eval_agent_replays_training_rollouts_token_for_token(tiny_model_dir, tiny_model, tokenizer):
    """``tsr eval --agent hf:PATH`` samples through the training stack: greedy replies match a rollout's."""
    from tsr_envs.evaluation import AgentOptions, evaluate
    from tsr_train.strategies import make_strategy

    seeds = [10_000, 10_001, 10_002]
    options = AgentOptions(max_tokens=24, temperature=0.0)
    results = evaluate(
        f"hf:{tiny_model_dir}",
        "tsr/FrozenLake-v0",
        seeds=seeds,
        max_turns=3,
        agent_options=options,
        progress=False,
        plot=False,
    )
    policy = HFPolicy(tiny_model, tokenizer, temperature=0.0, max_new_tokens=24)
    batch = make_strategy("naive").rollout(policy, "tsr/FrozenLake-v0", seeds, max_turns=3)
    for record, trajectory in zip(results.records, batch, strict=True):
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert replies == trajectory.replies
