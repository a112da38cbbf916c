"""The PettingZoo arena: API compliance, clones of one instance, and paired head-to-head evaluation."""

from __future__ import annotations

import warnings

import pytest
from pettingzoo.test import parallel_api_test

from tsr_envs.arena import TextArena
from tsr_envs.evaluation import evaluate
from tsr_envs.registration import registered_ids


@pytest.mark.parametrize("env_id", registered_ids(include_data_driven=False))
def test_the_arena_passes_pettingzoo_parallel_api_test(env_id):
    arena = TextArena(env_id, ["alice", "bob", "carol"], max_turns=25, render_mode="ansi")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(arena, num_cycles=100)
    arena.close()


def test_players_start_on_the_same_instance_and_see_only_their_own_game():
    arena = TextArena("tsr/FrozenLake-Deterministic-v0", ["a", "b"])
    observations, infos = arena.reset(seed=4)
    assert observations["a"] == observations["b"] and "instructions" in infos["a"]
    plan = arena.env("a").optimal_actions()
    observations, rewards, terminations, _, infos = arena.step(
        {"a": f"<answer>{plan[0]}</answer>", "b": "fly"}
    )
    assert observations["a"] != observations["b"]
    assert infos["a"]["action_is_valid"] and not infos["b"]["action_is_valid"]
    assert rewards["b"] == pytest.approx(-0.1)
    assert arena.env("a").get_state() != arena.env("b").get_state()


def test_players_leave_when_done_and_the_turn_limit_truncates():
    arena = TextArena("tsr/FrozenLake-Deterministic-v0", ["solver", "idler"], max_turns=3)
    arena.reset(seed=1)
    plan = arena.env("solver").optimal_actions()
    _, _, terminations, truncations, _ = arena.step({"solver": "<answer>" + " || ".join(plan) + "</answer>"})
    assert terminations == {"solver": True, "idler": False} and arena.agents == ["idler"]
    arena.step({"idler": "<answer>Up</answer>"})
    _, _, terminations, truncations, _ = arena.step({"idler": "<answer>Up</answer>"})
    assert truncations == {"idler": True} and arena.agents == []


def test_head_to_head_gives_the_same_episodes_as_solo_runs_plus_paired_tests(tmp_path):
    env_ids = ["tsr/FrozenLake-v0", "tsr/FrozenLake-Deterministic-v0"]
    head_to_head = evaluate(["oracle", "random"], env_ids, episodes=15, arena=True, workers=2, out=tmp_path)
    solo = evaluate(["oracle", "random"], env_ids, episodes=15)
    assert head_to_head.records == solo.records  # clones carry the RNG: same seed, same slips
    paired = {p.env: p for p in head_to_head.paired()}
    assert set(paired) == {*env_ids, "overall"}
    overall = paired["overall"]
    assert overall.pairs == 30 and overall.success.better > overall.success.worse
    assert overall.success.p_value < 0.01
    assert "McNemar" in (tmp_path / "summary.md").read_text()
