"""The drift guard: a step with too many invalid replies makes the next step naive, in both trainers.

The trainer tests cap replies at 3 tokens, too few for most well-formed replies: far more than half of
them are invalid, so a guard at 0.5 must trip after the first step, whatever the tiny model has learned.
"""

from __future__ import annotations

import json

import pytest

from tests.tsr_train.test_selection import DETERMINISTIC, JUMP, LAKE, LEFT, RIGHT2
from tests.tsr_train.training_utils import assert_finite_metrics, tiny_config
from tsr_train.cli import train
from tsr_train.collect import NEXT_NAIVE, DriftGuard, collect, make_drift_guard
from tsr_train.config import RolloutConfig
from tsr_train.metrics import METRICS_FILE, read_metrics
from tsr_train.study import run_summary


def test_guard_trips_only_above_its_threshold_and_judges_each_step_afresh():
    rollout = RolloutConfig(group_size=4, naive_mix=1, search="best-of-4", drift_guard=0.1)
    guard = make_drift_guard(rollout, [])
    assert guard.rollout(rollout) is rollout
    assert guard.observe(10, 100) == {
        "guard/candidate_invalid_rate": 0.1,
        "guard/naive_step": 0.0,
        NEXT_NAIVE: 0.0,
    }
    assert guard.observe(11, 100)[NEXT_NAIVE] == 1.0
    assert guard.rollout(rollout).naive_mix == 4  # the whole group
    metrics = guard.observe(0, 80)
    assert metrics["guard/naive_step"] == 1.0 and metrics[NEXT_NAIVE] == 0.0
    assert guard.rollout(rollout).naive_mix == 1
    assert guard.observe(0, 0)[NEXT_NAIVE] == 0.0  # a step that sampled nothing is no evidence


def test_guard_is_off_at_zero_and_for_naive_runs():
    assert DriftGuard(0.0).observe(100, 100)[NEXT_NAIVE] == 0.0
    assert make_drift_guard(RolloutConfig(search="best-of-4"), []) is None
    assert make_drift_guard(RolloutConfig(search="naive", drift_guard=0.1), []) is None


def test_resumed_guard_continues_from_the_last_logged_step():
    records = [
        {"step": 1, NEXT_NAIVE: 0.0},
        {"step": 2, NEXT_NAIVE: 1.0},
        {"step": 3, "heldout/success": 0.2},
    ]
    assert DriftGuard.resumed(0.1, records).tripped
    assert not DriftGuard.resumed(0.1, records[:1]).tripped
    assert not DriftGuard.resumed(0.1, []).tripped


@pytest.mark.parametrize("threshold", [-0.1, 1.0])
def test_guard_threshold_is_checked(threshold):
    with pytest.raises(ValueError, match=r"drift guard"):
        RolloutConfig(drift_guard=threshold)
    with pytest.raises(ValueError, match=r"drift guard"):
        DriftGuard(threshold)


def test_collect_rolls_the_whole_group_naively_when_the_guard_asks(scripted):
    config = RolloutConfig(
        env_id=DETERMINISTIC, search="best-of-3", max_turns=1, group_size=3, env_kwargs={"desc": LAKE}
    )
    script = lambda context, n: [JUMP] if n == 1 else [LEFT, JUMP, RIGHT2][:n]  # noqa: E731
    batch = collect(scripted(script), DriftGuard(0.1, tripped=True).rollout(config), [4, 4, 4], seed=0)
    assert [t.replies[0] for t in batch] == [JUMP] * 3  # the policy's own invalid replies, committed
    assert batch.stats.candidates_generated == 3 and batch.stats.candidates_invalid == 3
    assert batch.stats.decisions == 0  # nothing was chosen among candidates


def guarded_run(tiny_model_dir, out_dir, algo: str, steps: int):
    return tiny_config(
        tiny_model_dir,
        out_dir,
        algo,
        steps=steps,
        save_every=1,
        rollout_search="best-of-2",
        rollout_max_turns=1,
        rollout_max_new_tokens=3,
        rollout_drift_guard=0.5,
    )


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_trainers_roll_out_naively_after_a_step_of_invalid_replies(tiny_model_dir, tmp_path, algo):
    train(guarded_run(tiny_model_dir, tmp_path / "run", algo, steps=2))
    first, second = assert_finite_metrics(tmp_path / "run", 2, "guard/candidate_invalid_rate", NEXT_NAIVE)
    assert first["guard/candidate_invalid_rate"] > 0.5 and first[NEXT_NAIVE] == 1.0
    assert first["guard/naive_step"] == 0.0 and first["search/decisions"] > 0  # best-of-2 chose
    assert second["guard/naive_step"] == 1.0 and second["search/decisions"] == 0  # every member naive


@pytest.mark.slow
def test_a_resumed_ppo_run_keeps_the_guard_tripped(tiny_model_dir, tmp_path):
    train(guarded_run(tiny_model_dir, tmp_path / "straight", "ppo", steps=2))
    train(guarded_run(tiny_model_dir, tmp_path / "resumed", "ppo", steps=1))
    train(guarded_run(tiny_model_dir, tmp_path / "resumed", "ppo", steps=2), resume=True)
    straight, resumed = (read_metrics(tmp_path / run / METRICS_FILE) for run in ("straight", "resumed"))
    assert [r["step"] for r in resumed] == [1, 2]
    assert resumed[1]["guard/naive_step"] == 1.0
    strip = ("step_time_s", "search/wall_time_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in straight] == [
        {k: v for k, v in r.items() if k not in strip} for r in resumed
    ]


def test_a_study_cell_records_how_many_steps_the_guard_rolled_out_naively(tmp_path):
    steps = [{"step": 0, "heldout/success": 0.1}]
    steps += [{"step": i, "guard/naive_step": float(i in (2, 3, 5))} for i in range(1, 6)]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in steps))
    assert run_summary(tmp_path, 5)["guard_naive_steps"] == 3
    assert run_summary(tmp_path, 4)["guard_naive_steps"] == 2  # an equal-token cell stops earlier
    (tmp_path / METRICS_FILE).write_text(json.dumps({"step": 1, "rollout/success": 0.5}) + "\n")
    assert "guard_naive_steps" not in run_summary(tmp_path, 1)  # an unguarded run
