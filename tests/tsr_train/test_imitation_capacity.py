"""The capacity benchmark script: bad flags are one-line errors; a model built otherwise is never reused."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.tsr_train.training_utils import run_benchmark

TINY = ["--steps", "1", "--episodes-per-env", "8", "--episodes", "2", "--envs", "tsr/FrozenLake-v0"]


def run_script(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return run_benchmark("imitation_capacity.py", tmp_path, "--out", str(tmp_path), *args, timeout=300)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epsilon", "2"], "expert_epsilon must be in [0, 1], got 2.0"),
        (["--batch-size", "0"], "sizes and counts must be at least 1, got batch_size = 0"),
        (["--lr", "-1"], "learning_rate positive"),
        (["--episodes", "0"], "--episodes must be at least 1, got 0"),
        (["--envs", "tsr/NoSuchGame-v0"], "unknown env id tsr/NoSuchGame-v0; known ids: tsr/FrozenLake-v0"),
    ],
)
def test_bad_flags_are_one_line_errors_before_any_build(tmp_path, flags, message):
    done = run_script(tmp_path, "--name", "m", *flags)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()


def test_a_model_name_built_from_another_recipe_is_refused(tmp_path):
    done = run_script(tmp_path, "--name", "m", *TINY)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.json").read_text())["rows"][0]["env"] == "tsr/FrozenLake-v0"
    again = run_script(tmp_path, "--name", "m", *TINY, "--epsilon", "0.5")
    assert again.returncode == 2 and "was built with another expert_epsilon" in again.stderr
    elsewhere = run_script(tmp_path, "--name", "m", *TINY[:-1], "tsr/Sokoban-v0")
    assert elsewhere.returncode == 2 and "was built with another env_ids" in elsewhere.stderr
