"""The evaluation harness: baselines on every env, reproducibility, reports, and bad input in the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import gymnasium as gym
import pytest

from tsr_envs.cli import main
from tsr_envs.evaluation import EvalInputError, evaluate, parse_seeds, split_seeds
from tsr_envs.evaluation.report import load_results
from tsr_envs.evaluation.stats import binomial_two_sided_p, mcnemar_exact, sign_test, wilson_interval
from tsr_envs.registration import registered_ids
from tsr_envs.splits import SPLITS

EASY = "tsr/FrozenLake-Deterministic-v0"


def _oracle_ids() -> list[str]:
    """Every registered id (no data needed) whose env is deterministic and knows its shortest plan."""
    ids = []
    for env_id in registered_ids(include_data_driven=False):
        env = gym.make(env_id)
        env.reset(seed=0)
        if not env.unwrapped.stochastic and env.unwrapped.optimal_actions() is not None:
            ids.append(env_id)
        env.close()
    return ids


ORACLE_IDS = _oracle_ids()


def test_the_deterministic_ids_include_frozenlake():
    assert EASY in ORACLE_IDS


@pytest.mark.parametrize("env_id", ORACLE_IDS)
def test_oracle_solves_every_deterministic_env_and_random_stays_far_below(env_id):
    results = evaluate(["oracle", "random"], env_id, episodes=12)
    rows = {row.agent: row for row in results.rows()}
    assert rows["oracle"].success_rate == 1.0
    assert rows["oracle"].invalid_rate == 0.0 and rows["oracle"].mean_final_score == 1.0
    assert rows["random"].success_rate <= 0.6 and rows["random"].mean_turns > rows["oracle"].mean_turns
    assert rows["random"].invalid_rate == 0.0  # random legal actions are always well formed


def test_oracle_beats_random_on_slippery_ice():
    results = evaluate(["oracle", "random"], "tsr/FrozenLake-v0", episodes=30)
    rows = {row.agent: row for row in results.rows()}
    assert rows["oracle"].success_rate >= rows["random"].success_rate + 0.4
    assert all(r["turns"] <= 100 for r in results.records)


def test_runs_are_reproducible_and_independent_of_workers_and_batching():
    first = evaluate(["random", "oracle"], ["tsr/FrozenLake-v0", EASY], episodes=12, batch_size=5)
    second = evaluate(["random", "oracle"], ["tsr/FrozenLake-v0", EASY], episodes=12, workers=2, batch_size=3)
    assert first.records == second.records
    other_seed = evaluate("random", "tsr/FrozenLake-v0", episodes=12, agent_options=_options(seed=1))
    assert [r["messages"] for r in other_seed.records] != [r["messages"] for r in first.records[:12]]
    assert other_seed.agents == ["random(seed=1)"]


def _options(**kwargs):
    from tsr_envs.evaluation import AgentOptions

    return AgentOptions(**kwargs)


def test_a_record_holds_the_full_transcript_in_the_chat_format():
    (record,) = evaluate("oracle", EASY, seeds=[3]).records
    assert {"agent", "env", "seed", "success", "return", "turns", "rewards", "infos", "messages"} <= set(
        record
    )
    messages = record["messages"]
    assert messages[0]["role"] == "system" and "FrozenLake" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * record["turns"] + ["user"]
    assert messages[2]["content"].startswith("<answer>")
    assert len(record["rewards"]) == len(record["infos"]) == record["turns"]
    assert record["infos"][-1]["success"] is True


def test_python_agents_functions_and_objects():
    def always_down(history):
        return "<answer>Down</answer>"

    class Silent:
        name = "silent"

        def act_batch(self, histories):
            return [None] * len(histories)

    results = evaluate([always_down, Silent()], EASY, episodes=4, max_turns=3)
    rows = {row.agent: row for row in results.rows()}
    assert rows["silent"].invalid_rate == 1.0 and rows["silent"].missing_replies == 12
    assert rows["always_down"].invalid_rate == 0.0
    assert results.agents == ["always_down", "silent"]


def test_python_agent_spec_loads_a_module_attribute():
    results = evaluate("python:tests.tsr_envs.test_evaluation:scripted_agent", EASY, episodes=2, max_turns=2)
    assert results.agents == ["python:tests.tsr_envs.test_evaluation:scripted_agent"]
    assert all(r["turns"] <= 2 for r in results.records)


def scripted_agent(history):
    """A python:MODULE:NAME agent for the test above."""
    return "<think>down is safe</think><answer>Down || Right</answer>"


def test_splits_are_fixed_and_documented():
    assert SPLITS["test"].first_seed == 0 and SPLITS["train"].first_seed == 10_000
    assert split_seeds("test", 3) == [0, 1, 2]
    assert split_seeds("validation", 2) == [5000, 5001]
    assert parse_seeds("0-3,9,2") == [0, 1, 2, 3, 9]
    with pytest.raises(ValueError, match="only 5000 seeds"):
        split_seeds("test", 5001)
    with pytest.raises(EvalInputError):
        parse_seeds("a-b")


def test_statistics_match_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and math.isclose(high, 0.27753, abs_tol=1e-4)
    low, high = wilson_interval(7, 10)
    assert math.isclose(low, 0.39677, abs_tol=1e-4) and math.isclose(high, 0.89219, abs_tol=1e-4)
    assert binomial_two_sided_p(0, 0) == 1.0
    assert math.isclose(binomial_two_sided_p(1, 10), 22 / 1024)
    test = mcnemar_exact([True, True, True, False, True], [False, False, False, False, True])
    assert (test.better, test.worse, test.ties) == (3, 0, 2) and math.isclose(test.p_value, 0.25)
    assert sign_test([1.0, 0.5], [1.0, 0.5]).p_value == 1.0


def test_results_are_written_as_json_markdown_and_figures_and_report_compares_runs(tmp_path, capsys):
    evaluate(["random", "oracle"], [EASY, "tsr/FrozenLake-v0"], episodes=6, out=tmp_path / "a")
    evaluate("oracle", EASY, episodes=6, out=tmp_path / "b", plot=False)
    files = {path.name for path in (tmp_path / "a").iterdir()}
    assert {"episodes.jsonl", "run.json", "summary.json", "summary.md", "success.png", "turns.png"} <= files
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    overall = [row for row in summary["rows"] if row["env"] == "overall"]
    assert {row["agent"] for row in overall} == {"random", "oracle"}
    assert all(row["ci_low"] <= row["success_rate"] <= row["ci_high"] for row in summary["rows"])
    assert summary["paired"] and summary["paired"][0]["first"] == "random"
    assert "| agent | env |" in (tmp_path / "a" / "summary.md").read_text()
    assert (tmp_path / "a" / "success.png").read_bytes()[:4] == b"\x89PNG"
    reloaded = load_results(tmp_path / "a").to_json()["rows"]
    assert sorted(map(json.dumps, reloaded)) == sorted(map(json.dumps, summary["rows"]))

    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both")]) == 0
    out = capsys.readouterr().out
    assert "a:oracle" in out and "b:oracle" in out and "McNemar" in out
    assert (tmp_path / "both" / "summary.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--agent", "gpt"], "bad agent spec 'gpt'"),
        (["eval", "--agent", "random", "--env", "tsr/Nope-v0"], "unknown env id 'tsr/Nope-v0'"),
        (["eval", "--agent", "python:no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
        (["eval", "--agent", "python:json:no_such_name"], "has no attribute 'no_such_name'"),
        (["eval", "--agent", "openai:http://127.0.0.1:9/v1"], "--model"),
        (["eval", "--agent", "hf:/no/such/model"], "not a local model folder"),
        (["eval", "--agent", "random", "--seeds", "9-1"], "the end is before the start"),
        (["eval", "--agent", "random", "--env-arg", "novalue"], "KEY=VALUE"),
        (["eval", "--agent", "random", "--env", EASY, "--env-arg", "size=-3"], "cannot make"),
        (["report", "/no/such/folder"], "no episodes.jsonl"),
        (["eval", "--agent", "random", "--seed", "-5"], "--seed must be >= 0, got -5"),
        (["eval", "--agent", "random", "--temperature", "-1"], "--temperature must be >= 0"),
        (["eval", "--agent", "random", "--max-tokens", "0", "--timeout", "0"], "1, got 0; --timeout"),
        (["eval", "--agent", "random", "--retries", "-1"], "--retries must be >= 0"),
        (["eval", "--agent", "random", "--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_console_script_runs_an_evaluation_without_importing_torch(tmp_path):
    code = (
        "import sys; from tsr_envs.cli import main; "
        f"rc = main(['eval', '--agent', 'random,oracle', '--env', '{EASY}', '--episodes', '3', '--quiet', "
        f"'--no-plots', '--out', r'{tmp_path}']); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "oracle" in done.stdout and "success [95% CI]" in done.stdout
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 6


def test_finished_transcripts_are_kept_out_of_the_gc_only_while_the_run_lasts():
    import gc

    from tsr_envs.evaluation import runner

    frozen_during = []
    original = runner._execute

    def spy(*args, **kwargs):
        stats = original(*args, **kwargs)
        frozen_during.append(gc.get_freeze_count())
        return stats

    runner._execute = spy
    gc.unfreeze()  # a process with nothing frozen (building a WebShop catalogue freezes it)
    try:
        results = evaluate("random", EASY, seeds=[0, 1, 2], progress=False)
        assert frozen_during[-1] > 0 and gc.get_freeze_count() == 0  # frozen while running, released after
        sentinel = [[]]
        gc.freeze()  # a caller that froze its own objects keeps them frozen after the run
        again = evaluate("random", EASY, seeds=[0, 1, 2], progress=False)
        assert frozen_during[-1] > 0 and gc.get_freeze_count() > 0
        assert all(o is not sentinel for o in gc.get_objects())  # the caller's object is still frozen
    finally:
        runner._execute = original
        gc.unfreeze()
    assert again.records == results.records and len(results.records) == 3
