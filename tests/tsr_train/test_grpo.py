"""GRPO through TRL's ``rollout_func``: the contract, filtering, training, determinism and exact resume."""

from __future__ import annotations

import os

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

from tests.tsr_train.training_utils import assert_finite_metrics, same_weights, tiny_config, weights
from tsr_train.cli import train
from tsr_train.grpo import build_grpo_trainer, parse_seed, seed_prompts
from tsr_train.metrics import MetricsLogger

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# transformers 5 renamed gradient_checkpointing*; TRL 1.16 still calls the old names.
pytestmark = pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")


def make_trainer(tiny_model_dir, tmp_path, **overrides):
    config = tiny_config(tiny_model_dir, tmp_path / "run", "grpo", **overrides)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    logger = MetricsLogger(tmp_path / "run", config.steps, enabled=False)
    return build_grpo_trainer(config, model, tokenizer, tmp_path / "run", logger)


def test_seed_prompts_round_trip():
    assert [parse_seed(p) for p in seed_prompts([0, 7, 123])] == [0, 7, 123]
    with pytest.raises(ValueError, match="seed:<n>"):
        parse_seed("What is 2 + 2?")


def test_rollout_func_returns_trl_contract_and_is_seeded(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path)
    prompts = ["seed:3", "seed:3", "seed:4", "seed:4"]  # as TRL passes them: each one num_generations times
    set_seed(0)
    first = trainer.rollout_func(prompts, trainer)
    set_seed(0)
    second = trainer.rollout_func(prompts, trainer)
    assert first == second  # same seed, same weights: the same trajectories, token for token

    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask", "tsr_reward"} <= first.keys()
    eos = trainer.processing_class.eos_token_id
    rows = zip(first["completion_ids"], first["env_mask"], first["logprobs"], strict=True)
    for ids, mask, logprobs in rows:
        assert len(ids) == len(mask) == len(logprobs)
        # Each row ends with exactly one EOS, so TRL sees it as finished: the model's own or an untrained one.
        assert ids[-1] == eos and ids[-2:] != [eos, eos]
        assert 1 in mask
        assert all(lp == 0.0 for lp, m in zip(logprobs, mask, strict=True) if m == 0)
    assert len(first["tsr_reward"]) == 4
    assert first["prompt_ids"][0] == first["prompt_ids"][1]  # one group = one env instance
    rewards = trainer.reward_funcs[0](completions=[""] * 4, tsr_reward=first["tsr_reward"])
    assert rewards == first["tsr_reward"]


def test_instance_filter_masks_every_token_of_dropped_groups(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, rollout_filter_ratio=0.5)
    set_seed(0)
    out = trainer.rollout_func(["seed:3", "seed:3", "seed:4", "seed:4"], trainer)
    masked = [sum(mask) == 0 for mask in out["env_mask"]]
    assert masked in ([True, True, False, False], [False, False, True, True])


@pytest.mark.slow
def test_grpo_steps_change_weights_and_log_finite_metrics(tiny_model_dir, tmp_path):
    final = train(tiny_config(tiny_model_dir, tmp_path / "run", "grpo"))
    assert not same_weights(weights(final), weights(tiny_model_dir))
    assert_finite_metrics(
        tmp_path / "run",
        2,
        "loss",
        "rollout/success",
        "rollout/score",
        "rollout/invalid_rate",
        "rollout/model_tokens",
        "search/candidates_generated",
        "step_time_s",
    )
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0


@pytest.mark.slow
def test_grpo_resume_continues_bit_for_bit(tiny_model_dir, tmp_path):
    # best-of-2 on slippery FrozenLake: the search's own random streams must resume exactly too
    def config(run: str, steps: int):
        return tiny_config(
            tiny_model_dir,
            tmp_path / run,
            "grpo",
            steps=steps,
            rollout_search="best-of-2",
            rollout_max_turns=1,
        )

    straight = train(config("a", 4))
    train(config("b", 2))
    resumed = train(config("b", 4), resume=True)
    assert same_weights(weights(straight), weights(resumed))
    a = assert_finite_metrics(tmp_path / "a", 4, "loss")
    b = assert_finite_metrics(tmp_path / "b", 4, "loss")
    assert [r["rollout/score"] for r in a] == [r["rollout/score"] for r in b]
