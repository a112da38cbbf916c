"""The learning-rate schedule: one curve for both trainers, the one each step actually trains with."""

from __future__ import annotations

import pytest
import torch
from transformers import get_scheduler

from tests.tsr_train.training_utils import assert_finite_metrics, tiny_config
from tsr_train.cli import train
from tsr_train.config import LR_SCHEDULES, TrainConfig, lr_factor

# transformers 5 renamed gradient_checkpointing*; TRL 1.16 still calls the old names.
pytestmark = pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_ppo_decays_as_the_scheduler_trl_gives_grpo(schedule):
    steps = 7
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(schedule, optimizer, num_warmup_steps=0, num_training_steps=steps)
    trained_with = []
    for _ in range(steps):
        trained_with.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert [lr_factor(schedule, step, steps) for step in range(steps)] == pytest.approx(trained_with)


def test_decay_reaches_zero_only_after_the_last_step():
    for schedule in ("linear", "cosine"):
        assert lr_factor(schedule, 0, 10) == 1.0
        assert 0 < lr_factor(schedule, 9, 10) < lr_factor(schedule, 5, 10) < 1
        assert lr_factor(schedule, 10, 10) == pytest.approx(0.0)


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ValueError, match="lr-schedule must be one of constant, linear, cosine"):
        TrainConfig(lr_schedule="step")


def test_runs_saved_before_the_schedule_existed_load_as_constant():
    saved = TrainConfig().to_dict()
    del saved["lr_schedule"]
    assert TrainConfig.from_dict(saved).lr_schedule == "constant"


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_each_step_trains_and_logs_at_the_scheduled_rate(tiny_model_dir, tmp_path, algo):
    config = tiny_config(tiny_model_dir, tmp_path / "run", algo, lr_schedule="linear", rollout_max_turns=1)
    train(config)
    records = assert_finite_metrics(tmp_path / "run", 2, "learning_rate")
    assert [r["learning_rate"] for r in records] == pytest.approx([1e-3, 5e-4])


def test_grpo_hands_the_schedule_to_trl(tiny_model_dir, tmp_path):
    from tsr_train.grpo import grpo_args

    config = tiny_config(tiny_model_dir, tmp_path / "run", "grpo", lr_schedule="cosine")
    args = grpo_args(config, tmp_path / "run")
    assert (args.lr_scheduler_type, args.learning_rate, args.max_steps) == ("cosine", 1e-3, 2)
