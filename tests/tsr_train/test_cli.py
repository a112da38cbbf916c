"""``tsr train``: clear errors (exit 2, one line, no traceback) for bad input, and an end-to-end run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tsr_envs.cli import main
from tsr_train.metrics import CURVE_FILE, METRICS_FILE


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["train", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def base(tiny_model_dir, tmp_path) -> list[str]:
    return [
        "--env",
        "tsr/FrozenLake-v0",
        "--model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "1",
        "--seeds-per-step",
        "2",
        "--group-size",
        "2",
        "--max-turns",
        "1",
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "tsr/NoSuchGame-v0"], "unknown environment id 'tsr/NoSuchGame-v0'; known ids: "),
        (["--search", "best-of-zero"], "bad --search 'best-of-zero'"),
        (["--model", "/no/such/model/dir"], "model path '/no/such/model/dir' does not exist"),
        (["--group-size", "1"], "GRPO needs a group size of at least 2"),
        (["--algo", "ppo", "--group-size", "1", "--filter-ratio", "0.5"], "--filter-ratio needs"),
        (["--filter-ratio", "0"], "filter ratio must be in (0, 1]"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--max-turns", "0"], "max-turns must be at least 1"),
        (["--lr", "-1"], "lr must be positive"),
        (["--seed", "-1"], "seed must be >= 0, got -1"),
        (["--env-arg", "size=-3"], "cannot make tsr/FrozenLake-v0 with {'size': -3}: size must be"),
        (["--drift-guard", "1"], "drift guard must be in [0, 1)"),
        (["--grpo-loss-type", "ppo"], "grpo-loss-type must be one of dapo, grpo"),
        (["--grpo-scale-rewards", "std"], "grpo-scale-rewards must be one of batch, group, none"),
        (["--grpo-num-iterations", "0"], "grpo-num-iterations must be at least 1"),
        (["--grpo-beta", "-0.1"], "grpo-beta must be >= 0"),
        (["--grpo-max-kl", "-1"], "grpo-max-kl must be >= 0"),
        (["--grpo-epsilon-high", "0"], "grpo-epsilon-high must be positive"),
        (["--algo", "ppo", "--ppo-epochs", "0"], "ppo-epochs must be at least 1"),
        (["--algo", "ppo", "--ppo-minibatches", "0"], "ppo-minibatches must be at least 1"),
        (["--algo", "ppo", "--ppo-gamma", "1.5"], "ppo-gamma must be in [0, 1]"),
        (["--algo", "ppo", "--ppo-kl-coef", "-0.05"], "ppo-kl-coef must be >= 0"),
        (["--algo", "ppo", "--ppo-clip-range", "0"], "ppo-clip-range must be positive"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, base, flags, message):
    code, _, err = run_cli(capsys, *base, *flags)
    assert code == 2
    assert err.startswith("tsr train: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_resume_errors(capsys, base, tmp_path):
    code, _, err = run_cli(capsys, *base, "--resume")
    assert code == 2 and "nothing to resume" in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, *base)
    assert code == 2 and "already holds a run; pass --resume" in err


def test_unknown_flag_value_is_an_argparse_error(capsys, base):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *base, "--algo", "a2c"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'a2c'" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = "import sys; from tsr_envs.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_train_then_resume_end_to_end(capsys, base, tmp_path):
    ppo = [*base, "--algo", "ppo", "--save-every", "1"]
    code, out, err = run_cli(capsys, *ppo, "--search", "best-of-2")
    assert code == 0, err
    run = tmp_path / "run"
    assert "step 1/1 | success" in out and "Final model:" in out
    for name in ("config.json", METRICS_FILE, CURVE_FILE, "final/config.json", "checkpoints/checkpoint-1"):
        assert (run / name).exists(), name

    code, _, err = run_cli(capsys, *ppo, "--search", "best-of-2", "--resume")
    assert code == 2 and "already has 1 steps; pass a larger --steps" in err
    code, _, err = run_cli(capsys, *ppo, "--search", "naive", "--resume")
    assert code == 2 and "different configuration (rollout.search)" in err
    flags = [*ppo, "--search", "best-of-2", "--resume"]
    flags[flags.index("--steps") + 1] = "2"
    code, _, err = run_cli(capsys, *flags)
    assert code == 0, err
    assert (run / "checkpoints" / "checkpoint-2").exists()
