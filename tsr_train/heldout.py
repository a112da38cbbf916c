"""The policy alone on held-out instances: what a training run and the TSR study report.

Search is a training-time device in TSR, so the number that matters is how well the *policy* plays by
itself: plain sampling (one reply per turn, no search), on seeds of a split it never trained on.  One
function measures it for the training loop's periodic check (validation seeds), the study and the
capacity benchmark (test seeds), so all three report the same quantity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsr_train.config import TrainConfig

#: the folder, inside a run's output folder, of the weights with the best validation success so far
BEST_HELDOUT_DIR = "best-heldout"
#: ``{"step", "success"}`` of those weights, beside them
BEST_HELDOUT_FILE = "best_heldout.json"


def read_best_heldout(run_dir: str | Path) -> dict[str, float] | None:
    """The step and validation success of a run's best held-out check, or ``None`` if it kept none."""
    path = Path(run_dir) / BEST_HELDOUT_DIR / BEST_HELDOUT_FILE
    return json.loads(path.read_text()) if path.exists() else None


@dataclass(frozen=True)
class HeldOutResult:
    split: str
    episodes: int
    success: float
    score: float
    invalid_rate: float
    #: ``(seed, success)`` of every episode, in seed order: for breakdowns by instance
    outcomes: tuple[tuple[int, bool], ...] = field(default=(), repr=False)

    def as_metrics(self, prefix: str = "heldout") -> dict[str, float]:
        return {
            f"{prefix}/success": self.success,
            f"{prefix}/score": self.score,
            f"{prefix}/invalid_rate": self.invalid_rate,
        }


def evaluate_policy(
    model: Any,
    tokenizer: Any,
    env_id: str,
    *,
    split: str = "test",
    episodes: int = 200,
    max_turns: int,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 100,
) -> HeldOutResult:
    """Success, final score and invalid-reply rate of ``model`` with plain sampling on ``split`` seeds.

    It plays through ``tsr eval``'s harness (``tsr_envs.evaluation.evaluate``) with the model wrapped as
    the ``hf:`` agent, ``batch_size`` episodes in lockstep with one batched ``generate`` per turn, so a
    held-out check and ``tsr eval --agent hf:PATH --temperature T`` measure the same thing the same way.

    ``seed`` fixes the sampling stream, so two calls on the same weights give the same numbers.  The
    model is put in eval mode and back in the mode it was in.
    """
    from tsr_envs.evaluation import evaluate
    from tsr_train.agent import PolicyAgent

    was_training = getattr(model, "training", False)
    model.eval()
    agent = PolicyAgent.from_model(
        model,
        tokenizer,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    try:
        results = evaluate(
            agent,
            env_id,
            episodes=episodes,
            split=split,
            max_turns=max_turns,
            env_kwargs=env_kwargs,
            batch_size=batch_size,
            progress=False,
            plot=False,
        )
    finally:
        if was_training:
            model.train()
    (row,) = results.rows()
    return HeldOutResult(
        split=split,
        episodes=row.episodes,
        success=row.success_rate,
        score=row.mean_final_score,
        invalid_rate=row.invalid_rate,
        outcomes=tuple(sorted((int(r["seed"]), bool(r["success"])) for r in results.records)),
    )


class HeldOutCheck:
    """The periodic check of a training run: the policy alone on validation seeds every ``eval_every`` steps.

    Validation, not test: the curve may be looked at while tuning, and the test split stays unseen until
    the final report.  Plain sampling at the rollout temperature, a fixed sampling seed, so the curve
    moves only when the weights do.

    With ``keep_best_heldout`` it also saves the weights of the best check so far (the earliest, on a
    tie; the starting policy counts) to ``OUT/best-heldout``: selecting on validation leaves the test
    split as unseen as the last policy does.  A resumed run goes on from the best it had recorded.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.best_dir = Path(config.out_dir) / BEST_HELDOUT_DIR

    def due(self, step: int) -> bool:
        every = self.config.eval_every
        return every > 0 and (step % every == 0 or step == self.config.steps)

    def __call__(self, model: Any, tokenizer: Any, step: int) -> dict[str, float]:
        rollout = self.config.rollout
        result = evaluate_policy(
            model,
            tokenizer,
            rollout.env_id,
            split="validation",
            episodes=self.config.eval_episodes,
            max_turns=rollout.max_turns,
            max_new_tokens=rollout.max_new_tokens,
            temperature=rollout.temperature,
            seed=self.config.seed,
            env_kwargs=rollout.env_kwargs,
        )
        if self.config.keep_best_heldout:
            self._keep_if_best(model, tokenizer, step, result.success)
        return result.as_metrics()

    def _keep_if_best(self, model: Any, tokenizer: Any, step: int, success: float) -> None:
        best = None if step == 0 else read_best_heldout(self.config.out_dir)  # step 0: a fresh run
        if best is not None and success <= best["success"]:
            return
        getattr(model, "module", model).save_pretrained(self.best_dir)
        tokenizer.save_pretrained(self.best_dir)
        record = {"step": step, "success": success}
        (self.best_dir / BEST_HELDOUT_FILE).write_text(json.dumps(record) + "\n")
