"""Resuming: a run killed midway and rerun reports exactly what an uninterrupted run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsr_envs.evaluation import EvalInputError, evaluate
from tsr_envs.evaluation.store import EPISODES_FILE

ENVS = "tsr/FrozenLake-v0,tsr/FrozenLake-Deterministic-v0"
AGENT = "python:tests.tsr_envs.test_evaluation_resume:slow_agent"
EPISODES = 10
ROOT = Path(__file__).resolve().parents[2]


def slow_agent(history):
    """Deterministic in the history; slow only in the subprocess that is going to be killed."""
    time.sleep(float(os.environ.get("TSR_TEST_AGENT_DELAY", "0")))
    moves = ["Down", "Right", "Down", "Left", "Up"]
    return f"<answer>{moves[len(history) % len(moves)]}</answer>"


def _eval(out: Path, *extra: str, delay: float = 0.0) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tsr_envs.cli",
        "eval",
        "--agent",
        f"{AGENT},random",
        "--env",
        ENVS,
        "--episodes",
        str(EPISODES),
        "--max-turns",
        "8",
        "--batch-size",
        "2",
        "--quiet",
        "--no-plots",
        "--out",
        str(out),
        *extra,
    ]
    env = dict(os.environ, TSR_TEST_AGENT_DELAY=str(delay))
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(out: Path) -> list[str]:
    path = out / EPISODES_FILE
    return path.read_text().splitlines() if path.exists() else []


def _sorted_records(out: Path) -> list[dict]:
    records = [json.loads(line) for line in _lines(out)]
    return sorted(records, key=lambda r: (r["agent"], r["env"], r["seed"]))


def test_a_killed_run_resumes_to_the_same_report(tmp_path):
    total = 2 * 2 * EPISODES
    killed = tmp_path / "killed"
    process = _eval(killed, "--workers", "2", delay=0.03)
    deadline = time.monotonic() + 60
    while len(_lines(killed)) < 6 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the whole session: the main process and its workers
    process.wait(timeout=10)
    done_before = len(_lines(killed))
    assert 6 <= done_before < total, "the run should have been killed midway"

    rerun = _eval(killed, "--workers", "2")
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
    reference = tmp_path / "reference"
    uninterrupted = _eval(reference)
    assert uninterrupted.wait(timeout=60) == 0, uninterrupted.stderr.read()

    assert len(_lines(killed)) == total  # nothing done twice
    assert _sorted_records(killed) == _sorted_records(reference)
    summary = json.loads((killed / "summary.json").read_text())
    assert summary == json.loads((reference / "summary.json").read_text())
    assert (killed / "summary.md").read_text() == (reference / "summary.md").read_text()


def test_a_cut_off_last_line_is_dropped_and_its_episode_rerun(tmp_path):
    first = evaluate("random", "tsr/FrozenLake-v0", episodes=6, out=tmp_path, plot=False)
    path = tmp_path / EPISODES_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    again = evaluate("random", "tsr/FrozenLake-v0", episodes=6, out=tmp_path, plot=False)
    assert again.to_json() == first.to_json()
    assert len(path.read_text().splitlines()) == 6 and path.read_text().endswith("\n")


def test_a_folder_refuses_a_run_with_other_settings(tmp_path):
    evaluate("random", "tsr/FrozenLake-v0", episodes=2, out=tmp_path, plot=False)
    with pytest.raises(EvalInputError, match="another --out"):
        evaluate("random", "tsr/FrozenLake-v0", episodes=2, out=tmp_path, max_turns=3)
    # more agents and more seeds in the same folder are fine
    results = evaluate(["random", "oracle"], "tsr/FrozenLake-v0", episodes=4, out=tmp_path, plot=False)
    assert len(results.records) == 8 and len(_lines(tmp_path)) == 8


def _children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_workers_exit_when_the_eval_process_is_killed(tmp_path):
    process = _eval(tmp_path / "orphans", "--workers", "2", delay=0.2)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
        workers = _children(process.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool did not start"
    os.kill(process.pid, signal.SIGKILL)  # only the parent: the workers are left behind
    process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
