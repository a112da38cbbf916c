"""Two CPU processes (gloo) under ``accelerate launch``: GRPO and PPO with a search, the instance filter,
the drift guard (whose counts are summed over the processes) and the trust region (its KL too).

Each test launches real processes, as a user would; the instance filter's cross-process choice is checked
on inputs where choosing per process would give a different answer.  The launch is ``--multi_gpu`` with
no visible GPU: accelerate 1.15's ``--cpu --num_processes 2`` starts a single process (its multi-CPU path
needs ``mpirun``), while ``--multi_gpu`` starts one process per rank through torchrun, and they pair up
over gloo on the CPU.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from tests.tsr_train.training_utils import assert_finite_metrics, same_weights, weights
from tsr_envs.cli import build_parser
from tsr_train import cli

LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--multi_gpu",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "PYTHONPATH": REPO,
    "CUDA_VISIBLE_DEVICES": "",
}


def launch(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*LAUNCH, *args], capture_output=True, text=True, timeout=300, env=ENV, cwd=REPO)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_filter_chooses_over_all_processes(tmp_path):
    # rank 0 holds the two most uncertain groups: a per-process filter would keep one group on each
    # rank; the global one keeps both of rank 0's and none of rank 1's.  Seed 5 straddles the ranks.
    script = tmp_path / "filter_check.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from pathlib import Path

            from tsr_train.cli import process_state
            from tsr_train.filtering import filtered_rows

            state = process_state()
            rank = state.process_index
            if rank == 0:
                seeds, rewards = [1, 1, 2, 2, 5], [0.0, 1.0, 0.0, 0.8, 0.0]
                expected = [True, True, True, True, False]
            else:
                seeds, rewards = [3, 3, 4, 4, 5], [0.0, 0.0, 0.0, 0.2, 0.0]
                expected = [False, False, False, False, False]
            got = filtered_rows(seeds, rewards, 0.4)  # 2 of the 5 groups
            assert got == expected, (rank, got)
            (Path(sys.argv[1]) / f"ok-{rank}").write_text("ok")
            state.destroy_process_group()  # gloo aborts the interpreter's exit otherwise
            """
        )
    )
    launch([str(script), str(tmp_path)])
    assert (tmp_path / "ok-0").exists() and (tmp_path / "ok-1").exists()  # both ranks checked their rows


def train_args(model_dir, out, algo: str, seeds_per_step: int) -> list[str]:
    return [
        "-m",
        "tsr_envs.cli",
        "train",
        "--env",
        "tsr/FrozenLake-v0",
        "--algo",
        algo,
        "--search",
        "best-of-2",
        "--steps",
        "2",
        "--seeds-per-step",
        str(seeds_per_step),
        "--group-size",
        "2",
        "--max-turns",
        "2",
        "--max-new-tokens",
        "24",
        "--filter-ratio",
        "0.5",
        "--drift-guard",
        "0.01",
        "--grpo-max-kl",
        "10",
        "--reward",
        "score",
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--eval-every",
        "0",
        "--save-every",
        "2",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_two_processes_train_with_search_and_filter(algo, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = launch(train_args(tiny_model_dir, out, algo, seeds_per_step=4))
    # two ranks checkpointed their RNGs: a real 2-process run, not two copies of a 1-process one
    rng_files = {"grpo": "rng_state_{}.pth", "ppo": "random_states_{}.pkl"}[algo]
    for rank in (0, 1):
        assert (out / "checkpoints" / "checkpoint-2" / rng_files.format(rank)).exists()
    assert result.stdout.count("Final model:") == 1  # only the main process reports and saves
    assert not same_weights(weights(out / "final"), weights(tiny_model_dir))
    records = assert_finite_metrics(
        out,
        2,
        "loss",
        "rollout/score",
        "search/candidates_generated",
        "guard/candidate_invalid_rate",
        "trust/kl",
    )
    kept = [record["filter/kept_fraction"] for record in records]
    if algo == "grpo":
        assert kept == [0.5, 0.5]  # averaged over both processes: half of all groups
    else:
        assert all(fraction in (0.0, 0.5, 1.0) for fraction in kept)  # the main process's share


def test_work_that_cannot_split_is_a_clear_usage_error(monkeypatch, tmp_path):
    # in-process, with the process count faked: launching real processes for an error costs 20 s
    monkeypatch.setattr(cli, "process_state", lambda: SimpleNamespace(num_processes=2, is_main_process=True))
    ppo = cli.config_from_args(cli_args(train_args("embedded", tmp_path / "a", "ppo", seeds_per_step=3)))
    with pytest.raises(cli.UsageError, match=r"--seeds-per-step \(3\) must divide among the 2 processes"):
        cli.check_config(ppo, resume=False)
    grpo = cli.config_from_args(cli_args(train_args("embedded", tmp_path / "b", "grpo", seeds_per_step=3)))
    grpo = dataclasses.replace(grpo, rollout=dataclasses.replace(grpo.rollout, group_size=3))
    with pytest.raises(cli.UsageError, match=r"\(9\) must divide among the 2 processes"):
        cli.check_config(grpo, resume=False)
    cli.check_config(
        dataclasses.replace(ppo, rollout=dataclasses.replace(ppo.rollout, seeds_per_step=4)), resume=False
    )


def cli_args(args: list[str]):
    """``tsr train`` arguments (after ``-m tsr_envs.cli``) parsed as the command line would."""
    return build_parser().parse_args(args[2:])
