"""The held-out check plays through ``tsr eval``'s harness: the same numbers as ``hf:PATH`` evaluation."""

from __future__ import annotations

from tsr_envs.evaluation import AgentOptions, evaluate
from tsr_train.heldout import evaluate_policy


def test_heldout_check_equals_tsr_eval_of_the_same_model(tiny_model_dir, tiny_model, tokenizer):
    common = {"episodes": 12, "max_turns": 3, "batch_size": 6}
    was_training = tiny_model.training
    held_out = evaluate_policy(
        tiny_model, tokenizer, "tsr/FrozenLake-v0", split="validation", temperature=1.0, seed=3, **common
    )
    assert tiny_model.training == was_training
    options = AgentOptions(temperature=1.0, seed=3, max_tokens=48)
    (row,) = evaluate(
        f"hf:{tiny_model_dir}",
        "tsr/FrozenLake-v0",
        split="validation",
        agent_options=options,
        progress=False,
        plot=False,
        **common,
    ).rows()
    assert held_out.episodes == row.episodes == 12
    assert (held_out.success, held_out.score, held_out.invalid_rate) == (
        row.success_rate,
        row.mean_final_score,
        row.invalid_rate,
    )
