"""The study's design options pick what they should: selection, scorers, the naive mix, the score reward.

Driven by a scripted policy on Gymnasium's fixed 4x4 lake, where every candidate's value is known: from the
start Left scores 0.5, Right || Right 0.6, and an illegal Jump 0.5 - 0.1 - 1 (the invalid penalty).
"""

from __future__ import annotations

import math

import pytest

from tests.tsr_train.conftest import cycle
from tsr_train.collect import collect, naive_rows
from tsr_train.config import RolloutConfig
from tsr_train.filtering import trajectory_reward
from tsr_train.metrics import rollout_metrics
from tsr_train.scoring import Candidate, make_scorer
from tsr_train.strategies import BestOfN, make_strategy
from tsr_train.trajectory import Trajectory

DETERMINISTIC = "tsr/FrozenLake-Deterministic-v0"
LAKE = ["SFFF", "FHFH", "FFFH", "HFFG"]
LEFT, RIGHT2, JUMP = (f"<answer>{a}</answer>" for a in ("Left", "Right || Right", "Jump"))
VALUES = {LEFT: 0.5, RIGHT2: 0.6, JUMP: 0.5 - 0.1 - 1.0}


def first_replies(strategy, policy, groups: int) -> list[str]:
    batch = strategy.rollout(
        policy, DETERMINISTIC, list(range(groups)), max_turns=1, env_kwargs={"desc": LAKE}
    )
    return [t.replies[0] for t in batch]


def test_argmax_always_commits_the_best_candidate(scripted):
    replies = first_replies(BestOfN(3), scripted(cycle(LEFT, JUMP, RIGHT2)), 20)
    assert set(replies) == {RIGHT2}


def test_softmax_samples_candidates_by_their_values(scripted):
    temperature = 0.1
    strategy = BestOfN(3, selection="softmax", selection_temperature=temperature, seed=0)
    replies = first_replies(strategy, scripted(cycle(LEFT, JUMP, RIGHT2)), 400)
    weights = {reply: math.exp(value / temperature) for reply, value in VALUES.items()}
    total = sum(weights.values())
    for reply, weight in weights.items():
        # 400 draws: the binomial standard deviation is at most 0.025
        assert replies.count(reply) / len(replies) == pytest.approx(weight / total, abs=0.08), reply
    assert JUMP not in replies  # exp(-12) of the mass


def test_softmax_beam_keeps_width_distinct_candidates(scripted):
    strategy = make_strategy("beam-2x3", selection="softmax", selection_temperature=5.0, seed=1)
    policy = scripted(cycle(LEFT, JUMP, RIGHT2))
    strategy.rollout(policy, DETERMINISTIC, [0], max_turns=2, env_kwargs={"desc": LAKE})
    assert len(policy.calls[1]) == 2  # the second turn expands exactly ``width`` beams


def test_selection_arguments_are_checked():
    with pytest.raises(ValueError, match="selection must be one of"):
        BestOfN(2, selection="greedy")
    with pytest.raises(ValueError, match="positive temperature"):
        BestOfN(2, selection="softmax", selection_temperature=0.0)


def test_logprob_gap_measures_how_far_choices_sit_from_the_policy(scripted):
    # The scripted policy gives every token log-prob -1, so a reply's log-prob is minus its length:
    # choosing the longer Right || Right over Left makes the gap negative.
    batch = BestOfN(2).rollout(
        scripted(cycle(LEFT, RIGHT2)), DETERMINISTIC, [0], max_turns=1, env_kwargs={"desc": LAKE}
    )
    tokens = {
        reply: len(scripted(cycle(reply)).tokenizer.encode(reply, add_special_tokens=False)) + 1
        for reply in (LEFT, RIGHT2)
    }
    expected = -tokens[RIGHT2] - (-(tokens[LEFT] + tokens[RIGHT2]) / 2)
    assert batch.stats.decisions == 1
    assert batch.stats.logprob_gap_mean == pytest.approx(expected)
    naive = make_strategy("naive").rollout(
        scripted(cycle(LEFT)), DETERMINISTIC, [0], max_turns=1, env_kwargs={"desc": LAKE}
    )
    assert naive.stats.decisions == 0 and naive.stats.as_dict()["logprob_gap_mean"] == 0.0


def candidate(valid: bool, score: float, success: bool = False) -> Candidate:
    info = {"action_is_valid": valid, "score": score, "success": success}
    return Candidate("r", 0.0 if valid else -0.1, info, False, False)


@pytest.mark.parametrize("name", ["reward+score", "score", "success"])
def test_an_invalid_reply_never_ranks_above_a_valid_one(name):
    scorer = make_scorer(name)
    worst_valid = scorer(candidate(True, 0.0))  # a move into a hole
    best_invalid = scorer(candidate(False, 0.99))
    assert best_invalid < worst_valid
    with pytest.raises(ValueError, match="unknown scorer"):
        make_scorer("value")


def test_success_scorer_tells_apart_only_finished_candidates():
    scorer = make_scorer("success")
    assert scorer(candidate(True, 0.9)) == scorer(candidate(True, 0.1)) == 0.0
    assert scorer(candidate(True, 1.0, success=True)) == 1.0


def test_score_reward_charges_invalid_turns():
    lazy = Trajectory("tsr/FrozenLake-v0", 0, final_score=0.5, invalid_turns=1)
    unlucky = Trajectory("tsr/FrozenLake-v0", 0, final_score=0.0, invalid_turns=0)
    assert trajectory_reward(lazy, "score") < trajectory_reward(unlucky, "score")


def test_naive_rows_are_the_first_of_each_group():
    assert naive_rows([7, 7, 7, 9, 9, 9], 1) == [True, False, False, True, False, False]
    assert naive_rows([7, 7, 9, 9], 0) == [False] * 4


def test_collect_mixes_naive_members_into_search_groups(scripted):
    config = RolloutConfig(
        env_id=DETERMINISTIC,
        search="best-of-3",
        max_turns=1,
        group_size=3,
        naive_mix=1,
        env_kwargs={"desc": LAKE},
    )
    # naive calls ask for one sample, the search for three: the naive member always replies Left
    script = lambda context, n: [LEFT] if n == 1 else [LEFT, JUMP, RIGHT2][:n]  # noqa: E731
    batch = collect(scripted(script), config, [4, 4, 4, 5, 5, 5], seed=0)
    assert [t.seed for t in batch] == [4, 4, 4, 5, 5, 5]
    assert [t.replies[0] for t in batch] == [LEFT, RIGHT2, RIGHT2] * 2
    assert batch.stats.candidates_generated == 2 + 4 * 3
    metrics = rollout_metrics(batch, "score")
    assert metrics["rollout/zero_spread_groups"] == 0.0  # the naive member keeps each group's spread
    assert metrics["rollout/reply_tokens"] > 0


def test_rollout_config_checks_the_new_options():
    with pytest.raises(ValueError, match="naive mix"):
        RolloutConfig(group_size=2, naive_mix=3)
    with pytest.raises(ValueError, match="scorer must be one of"):
        RolloutConfig(scorer="value")
    with pytest.raises(ValueError, match="selection must be one of"):
        RolloutConfig(selection="greedy")


def test_candidate_invalid_rate_sees_the_invalid_replies_search_hides(scripted):
    # One of three candidates is an illegal Jump: search never commits it, the candidates' rate shows it.
    batch = BestOfN(3).rollout(
        scripted(cycle(LEFT, JUMP, RIGHT2)), DETERMINISTIC, [0, 1], max_turns=1, env_kwargs={"desc": LAKE}
    )
    assert rollout_metrics(batch, "score")["rollout/invalid_rate"] == 0.0
    assert batch.stats.candidates_invalid == 2
    assert rollout_metrics(batch, "score")["search/candidate_invalid_rate"] == pytest.approx(1 / 3)
    naive = make_strategy("naive").rollout(
        scripted(cycle(JUMP)), DETERMINISTIC, [0], max_turns=2, env_kwargs={"desc": LAKE}
    )
    assert naive.stats.candidate_invalid_rate == 1.0
    assert rollout_metrics(naive, "score")["rollout/invalid_rate"] == 1.0
