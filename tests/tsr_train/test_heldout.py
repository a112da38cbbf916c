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


def test_heldout_check_keeps_the_earliest_best_and_a_fresh_run_starts_over(tmp_path, monkeypatch):
    import json

    from tsr_train import heldout as module
    from tsr_train.config import RolloutConfig, TrainConfig

    class Saved:
        """Stands in for a model and a tokenizer: records which check's weights were saved."""

        def __init__(self, file: str = "weights") -> None:
            self.file, self.step = file, None

        def save_pretrained(self, folder) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / self.file).write_text(str(self.step))

    successes = iter([0.2, 0.1, 0.4, 0.4, 0.3, 0.0, 0.05])
    monkeypatch.setattr(
        module,
        "evaluate_policy",
        lambda *a, **k: module.HeldOutResult("validation", 4, next(successes), 0.0, 0.0),
    )
    config = TrainConfig(out_dir=str(tmp_path), rollout=RolloutConfig(env_id="tsr/FrozenLake-v0"))
    check, model = module.HeldOutCheck(config), Saved()
    for step in (0, 10, 20, 30, 40):
        model.step = step
        check(model, Saved("tokenizer"), step)
    assert module.read_best_heldout(tmp_path) == {"step": 20, "success": 0.4}  # the tie at 30 keeps 20
    assert (tmp_path / module.BEST_HELDOUT_DIR / "weights").read_text() == "20"
    model.step = 0
    check(model, Saved("tokenizer"), 0)  # a fresh run in the same folder: the old best does not survive
    assert module.read_best_heldout(tmp_path) == {"step": 0, "success": 0.0}
    model.step = 10
    check(model, Saved("tokenizer"), 10)
    assert (
        json.loads((tmp_path / module.BEST_HELDOUT_DIR / module.BEST_HELDOUT_FILE).read_text())["step"] == 10
    )

    off = module.HeldOutCheck(TrainConfig(out_dir=str(tmp_path / "off"), keep_best_heldout=False))
    monkeypatch.setattr(
        module, "evaluate_policy", lambda *a, **k: module.HeldOutResult("validation", 4, 1.0, 0.0, 0.0)
    )
    off(model, Saved("tokenizer"), 0)
    assert module.read_best_heldout(tmp_path / "off") is None
