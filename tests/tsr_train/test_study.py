"""The TSR study command on a toy grid, the held-out curve ``tsr train`` logs, and the ``embedded`` alias."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess

import pytest

from tests.tsr_train.training_utils import run_benchmark, tiny_config
from tsr_train.cli import train
from tsr_train.heldout import BEST_HELDOUT_DIR, read_best_heldout
from tsr_train.metrics import METRICS_FILE, read_metrics
from tsr_train.policy import load_causal_lm
from tsr_train.study import (
    StudyConfig,
    folder_grid,
    mean_ci,
    model_fingerprint,
    record_study,
    recorded_study,
    run,
    summarise,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
pytestmark = pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_training_logs_the_policy_alone_on_validation_seeds(tiny_model_dir, tmp_path, algo):
    config = tiny_config(tiny_model_dir, tmp_path / algo, algo, steps=2, eval_every=1, eval_episodes=3)
    train(config)
    records = read_metrics(tmp_path / algo / METRICS_FILE)
    assert [r["step"] for r in records] == [0, 1, 2]  # step 0 is the starting policy
    for record in records:
        assert 0.0 <= record["heldout/success"] <= 1.0 and math.isfinite(record["heldout/invalid_rate"])
    for record in records[1:]:
        for key in ("rollout/zero_spread_groups", "rollout/reply_tokens", "search/logprob_gap_mean"):
            assert math.isfinite(record[key]), key
    # The best check's weights are kept, loadable, with the step they come from (the earliest, on a tie).
    best = read_best_heldout(tmp_path / algo)
    successes = [r["heldout/success"] for r in records]
    assert best == {"step": successes.index(max(successes)), "success": max(successes)}
    load_causal_lm(tmp_path / algo / BEST_HELDOUT_DIR)


@pytest.mark.slow
def test_study_on_a_toy_grid_writes_the_documented_schema(tiny_model_dir, tmp_path):
    config = StudyConfig(
        envs=("tsr/FrozenLake-v0",),
        algos=("grpo",),
        strategies=("naive", "best-of-2"),
        seeds=(0,),
        steps=2,
        eval_episodes=4,
        model=str(tiny_model_dir),
        out_dir=str(tmp_path / "study"),
        rollout_overrides={"seeds_per_step": 2, "group_size": 2, "max_turns": 1, "max_new_tokens": 16},
        train_overrides={"eval_every": 1, "eval_episodes": 2},
    )
    run(config, log=lambda line: None)
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    cells = {(c["strategy"], c["budget"]): c for c in results["cells"]}
    assert set(cells) == {("naive", "steps"), ("best-of-2", "steps"), ("naive", "tokens")}
    for cell in cells.values():
        assert cell["env"] == "tsr/FrozenLake-v0" and cell["algo"] == "grpo"
        assert len(cell["success"]) == len(cell["generated_tokens"]) == 1
        assert 0.0 <= cell["success"][0] <= 1.0 and cell["generated_tokens"][0] > 0
        assert cell["base_success"] is not None
    matched = cells[("naive", "tokens")]
    assert matched["matched_to"] == "best-of-2"
    assert matched["generated_tokens"][0] >= 0.8 * cells[("best-of-2", "steps")]["generated_tokens"][0]
    table = (tmp_path / "study" / "results.md").read_text()
    assert "Equal optimizer steps" in table and "Equal generated tokens" in table
    assert "Best validation checkpoint" in table
    for cell in cells.values():
        (best,) = cell["best_heldout"]
        assert 0.0 <= best["success"] <= 1.0 and best["step"] in (0, 1, 2)
    assert (tmp_path / "study" / "curves.png").stat().st_size > 0
    # Resumable: a second run finds every cell done and trains nothing.
    before = (tmp_path / "study" / "cells.jsonl").read_text()
    run(config, log=lambda line: None)
    assert (tmp_path / "study" / "cells.jsonl").read_text() == before
    recorded = json.loads((tmp_path / "study" / "study.json").read_text())
    assert recorded["model_sha256"] == model_fingerprint(tiny_model_dir)
    # A process with a narrower grid (one strategy, no token budget) sharing the folder keeps the
    # folder's record and tables about every cell in it, and a note written into the record.
    (tmp_path / "study" / "study.json").write_text(json.dumps({**recorded, "note": "by hand"}))
    run(dataclasses.replace(config, strategies=("naive",), token_budget=False), log=lambda line: None)
    recorded = json.loads((tmp_path / "study" / "study.json").read_text())
    assert recorded["strategies"] == ["naive", "best-of-2"] and recorded["note"] == "by hand"
    assert (tmp_path / "study" / "results.md").read_text() == table
    assert (tmp_path / "study" / "cells.jsonl").read_text() == before
    # The records are enough: without the run folders (a fresh checkout) the summary is the same, and
    # the plot is kept, not redrawn without the cells whose curves the records do not hold.
    for line in before.splitlines():
        record = json.loads(line)
        assert record["rollout_success"] is not None
        if record["budget"] == "steps":
            assert [step for step, _ in record["heldout_curve"]] == [0, 1, 2]
    plot = (tmp_path / "study" / "curves.png").read_bytes()
    shutil.rmtree(tmp_path / "study" / "runs")
    assert summarise(config)["cells"] == results["cells"]
    assert (tmp_path / "study" / "curves.png").read_bytes() == plot
    with (tmp_path / "study" / "cells.jsonl").open("a") as handle:  # a cell whose curve is nowhere
        orphan = {**json.loads(before.splitlines()[0]), "seed": 1, "heldout_curve": []}
        handle.write(json.dumps(orphan) + "\n")
    (tmp_path / "study" / "curves.png").write_bytes(b"kept")
    summarise(config)
    assert (tmp_path / "study" / "curves.png").read_bytes() == b"kept"


def test_a_study_folder_refuses_cells_from_another_starting_model(tmp_path):
    from tsr_train.study import CELLS_FILE, RecipeMismatch, check_starting_model

    config = StudyConfig(out_dir=str(tmp_path), model="models/m")
    check_starting_model(config, "abc", None)  # a new folder: nothing to compare
    (tmp_path / CELLS_FILE).write_text(json.dumps({"env": "tsr/FrozenLake-v0", "success": 0.5}) + "\n")
    (tmp_path / "study.json").write_text(json.dumps({"model_sha256": "abc"}))
    check_starting_model(config, "abc", None)
    with pytest.raises(RecipeMismatch, match="another starting model"):
        check_starting_model(config, "def", None)
    # a folder recorded before fingerprints: the tiny model's recipe and final warm-up loss decide
    built = {"config": {"seed": 0}, "final_loss": 0.3357, "build_time_s": 906.1}
    (tmp_path / "study.json").write_text(json.dumps({"model_manifest": built}))
    check_starting_model(config, "abc", {**built, "build_time_s": 1402.2})
    with pytest.raises(RecipeMismatch, match=r"0\.3388"):
        check_starting_model(config, "abc", {**built, "final_loss": 0.3388})


def test_the_folder_grid_is_the_union_of_the_grids_run_in_it():
    saved = {
        "envs": ["tsr/FrozenLake-v0"],
        "algos": ["grpo"],
        "strategies": ["naive", "best-of-4"],
        "seeds": [0, 2],
    }
    mine = StudyConfig(
        envs=("tsr/FrozenLake-v0",), algos=("ppo",), strategies=("beam-2x2", "naive"), seeds=(4, 1)
    )
    whole = folder_grid(mine, saved)
    assert whole.envs == ("tsr/FrozenLake-v0",) and whole.algos == ("grpo", "ppo")
    assert whole.strategies == ("naive", "best-of-4", "beam-2x2") and whole.seeds == (0, 1, 2, 4)
    assert folder_grid(mine, {}) == dataclasses.replace(mine, seeds=(1, 4))  # a new folder: its own grid
    no_tokens = dataclasses.replace(mine, token_budget=False)
    assert folder_grid(no_tokens, {**saved, "token_budget": True}).token_budget  # its cells stay recorded
    assert not folder_grid(no_tokens, saved).token_budget


def test_a_process_tables_the_grids_recorded_after_it_started(tmp_path):
    """Two processes start on one folder; each re-records before it summarises, so neither loses the other."""
    beam = StudyConfig(strategies=("beam-2x2",), seeds=(0,), out_dir=str(tmp_path))
    lookahead = dataclasses.replace(beam, strategies=("lookahead-1x4",))
    assert record_study(beam, {"model_sha256": "abc"}).strategies == ("beam-2x2",)
    (tmp_path / "cells.jsonl").write_text(json.dumps({"strategy": "beam-2x2"}) + "\n")  # a first cell
    assert record_study(lookahead, {"model_sha256": "abc"}).strategies == ("beam-2x2", "lookahead-1x4")
    assert record_study(beam, {"model_sha256": "abc"}).strategies == ("beam-2x2", "lookahead-1x4")
    recorded = json.loads((tmp_path / "study.json").read_text())
    assert recorded["strategies"] == ["beam-2x2", "lookahead-1x4"] and recorded["model_sha256"] == "abc"


def test_processes_started_together_on_a_new_folder_record_each_others_grids(tmp_path):
    """Before any cell exists, a record of the same study is widened; one of another study is replaced."""
    naive = StudyConfig(strategies=("naive",), seeds=(3,), out_dir=str(tmp_path))
    search = dataclasses.replace(naive, strategies=("best-of-4",))
    assert record_study(naive, {"model_sha256": "abc"}).strategies == ("naive",)
    assert record_study(search, {"model_sha256": "abc"}).strategies == ("naive", "best-of-4")
    other_model = record_study(search, {"model_sha256": "def"})
    assert other_model.strategies == ("best-of-4",)
    longer = dataclasses.replace(naive, steps=naive.steps + 1)
    assert record_study(longer, {"model_sha256": "def"}).strategies == ("naive",)


def test_a_folder_record_gives_back_its_study(tmp_path):
    study = StudyConfig(
        envs=("tsr/FrozenLake-Hard-v0",),
        strategies=("naive",),
        seeds=(3,),
        steps=200,
        out_dir=str(tmp_path),
        rollout_overrides={"max_turns": 10},
        train_overrides={"ppo.max_kl": 0.0},
    )
    assert recorded_study(tmp_path) == StudyConfig(out_dir=str(tmp_path))  # nothing recorded yet
    record = {**dataclasses.asdict(study), "model_sha256": "abc", "note": "by hand"}
    (tmp_path / "study.json").write_text(json.dumps(record))
    assert recorded_study(tmp_path) == study


def test_mean_ci_is_a_student_t_interval():
    mean, half = mean_ci([0.2, 0.4])
    assert mean == pytest.approx(0.3)
    assert half == pytest.approx(12.706 * 0.1414213 / math.sqrt(2), rel=1e-4)
    assert mean_ci([0.5]) == (0.5, 0.0)


def test_embedded_alias_names_the_embedded_model(tiny_model_dir, monkeypatch, tmp_path):
    import tsr_train.tiny_model as tiny_model
    from tsr_envs.evaluation.agents import parse_agent_spec
    from tsr_envs.evaluation.runner import evaluate

    monkeypatch.setattr(tiny_model, "default_model_path", lambda: tiny_model_dir)
    assert tiny_model.resolve_model("embedded") == tiny_model_dir
    assert tiny_model.resolve_model(None) == tiny_model_dir
    assert tiny_model.resolve_model("some/model") == "some/model"
    assert parse_agent_spec("hf:embedded").target == "embedded"
    results = evaluate(
        "hf:embedded", "tsr/FrozenLake-v0", episodes=2, max_turns=1, progress=False, plot=False
    )
    assert len(results.records) == 2


def test_train_flag_model_embedded_is_the_default_model(capsys, tiny_model_dir, monkeypatch, tmp_path):
    import argparse

    from tsr_train.cli import add_subcommand, config_from_args

    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "--env",
            "tsr/FrozenLake-v0",
            "--model",
            "embedded",
            "--naive-mix",
            "1",
            "--grpo-beta",
            "0.05",
            "--env-arg",
            "is_slippery=false",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    config = config_from_args(args)
    assert config.model is None
    assert config.rollout.naive_mix == 1 and config.grpo.beta == 0.05
    assert config.rollout.env_kwargs == {"is_slippery": False}


def test_variants_table_compares_each_override_with_the_default_on_the_same_seeds(tmp_path):
    from tsr_train.study import CELLS_FILE, variants_markdown

    def cell(strategy: str, seed: int, success: float) -> str:
        record = {"env": "tsr/FrozenLake-Classic-v0", "algo": "grpo", "strategy": strategy, "seed": seed}
        return json.dumps({**record, "budget": "steps", "success": success}) + "\n"

    main = tmp_path / "main"
    main.mkdir()
    (main / CELLS_FILE).write_text(
        "".join(
            cell(s, seed, v)
            for s, seed, v in [
                ("best-of-4", 0, 0.1),
                ("best-of-4", 1, 0.3),
                ("best-of-4", 2, 0.9),
                ("naive", 0, 0.0),
                ("naive", 1, 0.0),
            ]
        )
    )
    variant = tmp_path / "variants" / "softmax"
    variant.mkdir(parents=True)
    (variant / "study.json").write_text(
        json.dumps({"rollout_overrides": {"selection": "softmax"}, "train_overrides": {}})
    )
    (variant / CELLS_FILE).write_text(cell("best-of-4", 0, 0.5) + cell("best-of-4", 1, 0.7))
    table = variants_markdown(main, tmp_path / "variants")
    row = table.splitlines()[2]
    assert row.startswith("| selection=softmax | FrozenLake-Classic-v0 | GRPO | best-of-4 | 0,1 | 0.600")
    assert "0.200 ±" in row  # the default best-of-4 on seeds 0 and 1 only, not seed 2
    assert row.endswith("0.000 ± 0.000 |")


def _study_with_one_grpo_cell(tmp_path, search: str, seed: int):
    """A study folder (not trained) and one of its cells: its config and the folder it is saved in."""
    study = {"envs": ("tsr/FrozenLake-v0",), "algos": ("grpo",), "model": "a/model"}
    config = StudyConfig(**study, out_dir=str(tmp_path / "study"))
    cell_dir = config.cell_dir("tsr/FrozenLake-v0", "grpo", search, seed)
    cell_dir.mkdir(parents=True)
    return config, config.train_config("tsr/FrozenLake-v0", "grpo", search, seed), cell_dir


def test_study_refuses_to_resume_a_folder_trained_with_another_recipe(tmp_path):
    from tsr_train.study import RecipeMismatch, check_recipe

    config, cell, cell_dir = _study_with_one_grpo_cell(tmp_path, "best-of-4", 3)
    cell.save(cell_dir / "config.json")
    check_recipe(config)  # the same recipe: resuming is fine
    old_default = dataclasses.replace(cell, rollout=dataclasses.replace(cell.rollout, naive_mix=0))
    old_default.save(cell_dir / "config.json")
    with pytest.raises(RecipeMismatch, match=r"rollout\.naive_mix: 0 there, 1 now"):
        run(config, log=lambda line: None)
    check_recipe(dataclasses.replace(config, rollout_overrides={"naive_mix": 0}))  # the fix it names


def test_recipe_check_ignores_settings_a_run_never_used_and_where_its_folder_lies(tmp_path):
    from tsr_train.study import RecipeMismatch, check_recipe

    config, cell, cell_dir = _study_with_one_grpo_cell(tmp_path, "naive", 0)
    # a PPO default that changed since, and a folder that has moved since: neither changes a GRPO cell
    ppo_changed = dataclasses.replace(cell.ppo, whiten_advantages=not cell.ppo.whiten_advantages)
    dataclasses.replace(cell, ppo=ppo_changed, out_dir="elsewhere").save(cell_dir / "config.json")
    check_recipe(config)
    grpo_changed = dataclasses.replace(cell.grpo, beta=cell.grpo.beta * 2)
    dataclasses.replace(cell, grpo=grpo_changed).save(cell_dir / "config.json")
    with pytest.raises(RecipeMismatch, match=r"grpo\.beta"):
        check_recipe(config)


def test_success_by_map_splits_test_episodes_by_the_fixed_map_they_drew():
    import gymnasium as gym

    from tsr_train.study import markdown, success_by_map

    env = gym.make("tsr/FrozenLake-Hard-v0").unwrapped
    drawn = {}
    for seed in range(40):
        env.reset(seed=seed)
        drawn[seed] = env.map_index
    outcomes = tuple((seed, index == 2) for seed, index in drawn.items())  # a policy that solves map 2 only
    by_map = success_by_map("tsr/FrozenLake-Hard-v0", {}, outcomes)
    assert by_map["success"] == [0.0, 0.0, 1.0, 0.0]
    assert by_map["episodes"] == [list(drawn.values()).count(i) for i in range(4)]
    assert success_by_map("tsr/FrozenLake-v0", {}, outcomes) is None  # random maps: nothing to split
    levels = gym.make("tsr/Sokoban-Hard-v0").unwrapped
    solved_level_1 = tuple((seed, levels.reset(seed=seed)[1]["level_index"] == 1) for seed in range(40))
    by_level = success_by_map("tsr/Sokoban-Hard-v0", {}, solved_level_1)
    assert by_level["success"] == [0.0, 1.0, 0.0, 0.0] and sum(by_level["episodes"]) == 40
    assert success_by_map("tsr/Sokoban-v0", {}, solved_level_1) is None  # generated levels

    config = StudyConfig(envs=("tsr/FrozenLake-Hard-v0",), algos=("ppo",), strategies=("naive",))
    cell = {"env": "tsr/FrozenLake-Hard-v0", "algo": "ppo", "strategy": "naive", "budget": "steps"}
    cell.update(matched_to=None, success=[0.25, 0.25], success_mean=0.25, success_ci95=0.0)
    cell["rollout_success"] = []
    other = {"success": [0.5, 0.0, None, 0.0], "episodes": [2, 1, 0, 1]}
    cell["success_by_map"] = [by_map, other]
    assert "| FrozenLake-Hard-v0 | PPO | naive | 2 | 0.25, 0.00, 1.00, 0.00 |" in markdown(config, [cell], {})


def _cell(strategy: str, budget: str, matched_to: str | None, seeds: list[int], success: list[float]) -> dict:
    """A summarised cell of the study on FrozenLake-v0 with GRPO, with the fields its tables read."""
    mean, half = mean_ci(success)
    return {
        "env": "tsr/FrozenLake-v0",
        "algo": "grpo",
        "strategy": strategy,
        "budget": budget,
        "matched_to": matched_to,
        "seeds": seeds,
        "success": success,
        "success_mean": mean,
        "success_ci95": half,
        "steps": [400] * len(seeds),
        "rollout_success": [],
    }


def test_search_is_compared_with_naive_seed_by_seed():
    from tsr_train.study import markdown

    config = StudyConfig(
        envs=("tsr/FrozenLake-v0",), algos=("grpo",), strategies=("naive", "best-of-4", "beam-2x2")
    )
    naive = _cell("naive", "steps", None, [0, 1, 2], [0.2, 0.3, 0.1])
    best_of_4 = _cell("best-of-4", "steps", None, [0, 1], [0.6, 0.2])  # +0.4, -0.1 on its own seeds
    beam = _cell("beam-2x2", "steps", None, [0, 1], [0.3, 0.4])  # +0.1 on both its seeds
    naive["best_heldout"] = [{"success": s} for s in (0.2, 0.5, 0.1)]
    best_of_4["best_heldout"] = [{"success": 0.7}, None]  # seed 1 kept no checkpoint
    table = markdown(config, [naive, best_of_4, beam], {})
    equal_steps, best_checkpoints = table.split("**Best validation checkpoint**")
    # Unpaired, best-of-4's mean (0.4) is 0.2 above naive's; on its own seeds it is 0.15 above.
    assert "| +0.150 ± 3.176 (best-of-4, 2) |" in equal_steps
    assert "| +0.500 ± 0.000 (best-of-4, 1) |" in best_checkpoints  # beam kept none: no pair


def test_the_best_search_is_chosen_among_those_run_on_the_most_seeds():
    from tsr_train.study import best_paired_gap, last_success

    naive = _cell("naive", "steps", None, [0, 1, 2], [0.2, 0.3, 0.1])
    lucky = _cell("lookahead-1x4", "steps", None, [0], [0.6])  # +0.4, on one seed only
    steady = _cell("best-of-4", "steps", None, [0, 1, 2], [0.3, 0.4, 0.2])  # +0.1 on every seed
    gap = best_paired_gap({"lookahead-1x4": lucky, "best-of-4": steady}, naive, last_success)
    assert (gap.strategy, gap.seeds) == ("best-of-4", 3)
    assert gap.mean == pytest.approx(0.1)


def test_equal_token_table_compares_the_search_on_the_naive_runs_seeds_only():
    from tsr_train.study import markdown

    cell = _cell
    config = StudyConfig(envs=("tsr/FrozenLake-v0",), algos=("grpo",), strategies=("naive", "best-of-4"))
    search = cell("best-of-4", "steps", None, [0, 1, 2], [0.6, 0.2, 0.1])
    extended = cell("naive", "tokens", "best-of-4", [0, 2], [0.3, 0.3])
    table = markdown(config, [search, extended], {})
    equal_steps, equal_tokens = table.split("**Equal generated tokens**")
    assert "0.300 ± 0.657 (3)" in equal_steps  # every seed at equal steps
    assert "| FrozenLake-v0 | GRPO | 0.350 ± 3.176 (2) / 0.300 ± 0.000 (2) (400) |" in equal_tokens


def test_the_overview_pairs_each_search_with_naive_trained_to_that_searchs_tokens():
    from tsr_train.study_overview import equal_token_gap

    best_of_4 = _cell("best-of-4", "steps", None, [0, 1, 2], [0.6, 0.2, 0.1])
    beam = _cell("beam-2x2", "steps", None, [0, 1], [0.9, 0.9])  # no naive run was matched to its tokens
    naive_to = {"best-of-4": _cell("naive", "tokens", "best-of-4", [0, 2], [0.3, 0.3])}
    gap = equal_token_gap({"best-of-4": best_of_4, "beam-2x2": beam, "lookahead-1x4": None}, naive_to)
    assert (gap.strategy, gap.seeds) == ("best-of-4", 2) and gap.mean == pytest.approx(0.05)  # +0.3, -0.2
    assert equal_token_gap({"beam-2x2": beam}, naive_to) is None


def test_curves_plot_only_the_env_and_algo_pairs_that_have_cells(tmp_path, recwarn):
    import matplotlib.image

    from tsr_train.study import plot_curves

    # A folder's grid is the union of its processes' grids: here FrozenLake ran GRPO only, Sokoban PPO only.
    config = StudyConfig(envs=("tsr/FrozenLake-v0", "tsr/Sokoban-v0"), algos=("grpo", "ppo"))
    records = [
        {
            "env": env_id,
            "algo": algo,
            "strategy": "naive",
            "seed": 0,
            "budget": "steps",
            "steps": 20,
            "heldout_curve": [[0, 0.1], [10, 0.2], [20, 0.3]],
        }
        for env_id, algo in (("tsr/FrozenLake-v0", "grpo"), ("tsr/Sokoban-v0", "ppo"))
    ]
    path = plot_curves(config, records, tmp_path / "curves.png")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width == 2 * 4 * 100 and height == int(3.2 * 100)  # two 4-inch panels at 100 dpi, not four
    assert not [w for w in recwarn if "legend" in str(w.message)]


def run_study_script(cwd, *args: str) -> subprocess.CompletedProcess:
    return run_benchmark("tsr_study.py", cwd, *args)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--envs", "tsr/NoSuchGame-v0"],
            "unknown environment id 'tsr/NoSuchGame-v0'; known ids: tsr/FrozenLake-v0",
        ),
        (["--strategies", "naive", "best-of-zero"], "bad strategy 'best-of-zero'"),
        (["--set", 'env_kwargs={"size": 1}'], "cannot make tsr/FrozenLake-v0 with {'size': 1}: size must be"),
        (["--model", "/no/such/model"], "model path '/no/such/model' does not exist"),
        (["--set", "grpo.beta=-1"], "the recipe does not hold for grpo naive: grpo-beta must be >= 0"),
        (["--set", "ppo.epochs=two"], "--set 'ppo.epochs=two': ppo.epochs is of type int"),
        (["--set", "ppo.detach_value_head=1"], "ppo.detach_value_head is of type bool"),
        (["--set", "no_such_field=1"], "--set no_such_field: not a RolloutConfig"),
        (["--shard", "2/2"], "--shard '2/2': expected i/n"),
    ],
)
def test_a_study_that_cannot_run_is_refused_in_one_line_before_any_cell(tmp_path, flags, message):
    out = tmp_path / "study"
    result = run_study_script(tmp_path, "--out", str(out), "--steps", "1", *flags)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_study_check_accepts_a_grid_that_can_run():
    StudyConfig(envs=("tsr/Sokoban-v0",), strategies=("naive", "beam-2x2"), model="embedded").check()
    with pytest.raises(ValueError, match=r"naive mix must be in 0\.\.group-size"):
        StudyConfig(rollout_overrides={"naive_mix": 9}).check()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--summarise-only"], "tsr_study: no study cells (cells.jsonl) in "),
        (["--variants-table", "no-such-folder"], "tsr_study: no folder no-such-folder"),
        (["--overview", "no-such-folder"], "tsr_study: no study results (results.json) in no-such-folder"),
    ],
)
def test_tables_of_a_folder_without_a_study_are_refused_in_one_line(tmp_path, flags, message):
    out = tmp_path / "empty"
    result = run_study_script(tmp_path, "--out", str(out), *flags)
    assert result.returncode == 1 and result.stderr.startswith(message)
    assert "Traceback" not in result.stderr and not out.exists()
