"""``tsr play``: a person types replies in the terminal exactly as a model would."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tsr_envs.cli import main
from tsr_envs.play import play


def run_tsr(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tsr_envs.cli", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)


def test_playing_to_the_goal_through_the_console_script():
    done = run_tsr("play", "tsr/FrozenLake-Deterministic-v0", "--seed", "1", stdin="Down\n:legal\nfly\n")
    assert done.returncode == 0
    out = done.stdout
    assert "You are solving the FrozenLake puzzle" in out
    assert "turn 1: reward +0.00 | You did: Down." in out
    assert "Legal actions: Left, Down, Right, Up" in out
    assert "turn 2: reward -0.10 (invalid)" in out and "'fly' is not a legal action" in out
    assert out.rstrip().endswith("Bye.")


def test_a_finished_episode_reports_the_outcome():
    stdout = io.StringIO()
    replies = io.StringIO("<think>go</think><answer>Right || Right</answer>\nnever read\n")
    code = play("tsr/FrozenLake-Deterministic-v0", 0, stdin=replies, stdout=stdout, desc=["SFG"])
    assert code == 0
    assert stdout.getvalue().rstrip().endswith("Episode solved after 1 turns with return 1.00.")


def test_unknown_id_is_a_clear_error_without_traceback():
    done = run_tsr("play", "tsr/NoSuchGame-v0")
    assert done.returncode == 2
    assert "Unknown environment id 'tsr/NoSuchGame-v0'" in done.stderr and "Traceback" not in done.stderr


def test_bad_kwargs_are_a_clear_error():
    done = run_tsr("play", "tsr/FrozenLake-v0", "--level-file", "/nonexistent.txt")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_a_negative_seed_is_a_clear_error():
    done = run_tsr("play", "tsr/FrozenLake-v0", "--seed", "-1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("tsr play: ") and "Seed must be greater or equal to zero" in done.stderr


def test_help_lists_the_subcommands():
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
