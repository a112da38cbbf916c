"""Rollout strategies pick what they should, branch stochastic envs honestly and stay reproducible.

Most tests use a scripted policy on fixed FrozenLake maps, so every candidate's outcome is known.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import tsr_envs  # noqa: F401
from tests.tsr_train.conftest import cycle
from tsr_train import wrappers
from tsr_train.policy import HFPolicy
from tsr_train.scoring import Candidate, StateScorer
from tsr_train.strategies import (
    STRATEGY_GRAMMAR,
    Beam,
    BestOfN,
    Lookahead,
    Naive,
    RolloutBatch,
    SearchStats,
    make_strategy,
)

DETERMINISTIC = "tsr/FrozenLake-Deterministic-v0"
# Gymnasium's 4x4 lake.  From the start: Left 0.5, Right||Right 0.6, Down 0.545, an illegal reply 0.5 - 0.1.
LAKE = ["SFFF", "FHFH", "FFFH", "HFFG"]
# Right (score 0.56) beats Down (0.45) now, but Down afterwards falls into the hole below Right's cell.
TRAP = ["SFFF", "FHFF", "FHFG"]
LEFT, RIGHT2, DOWN, JUMP = (f"<answer>{a}</answer>" for a in ("Left", "Right || Right", "Down", "Jump"))


class SpyScorer(StateScorer):
    """The default scorer, recording every candidate it values."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Candidate, float]] = []

    def __call__(self, candidate: Candidate) -> float:
        value = super().__call__(candidate)
        self.seen.append((candidate, value))
        return value


def test_best_of_n_commits_the_best_candidate(scripted):
    policy = scripted(cycle(LEFT, JUMP, RIGHT2))
    batch = BestOfN(3).rollout(policy, DETERMINISTIC, [0, 1], max_turns=1, env_kwargs={"desc": LAKE})
    assert [t.replies for t in batch] == [[RIGHT2], [RIGHT2]]
    assert [t.final_score for t in batch] == pytest.approx([0.6, 0.6])
    stats = batch.stats
    assert (stats.candidates_generated, stats.branches_pruned, stats.generate_calls) == (6, 4, 1)
    assert stats.chosen_score_mean > stats.candidate_score_mean


def test_naive_steps_the_real_env_without_clones(scripted):
    batch = Naive().rollout(scripted(cycle(LEFT)), DETERMINISTIC, [0], max_turns=3, env_kwargs={"desc": LAKE})
    (trajectory,) = batch
    assert trajectory.replies == [LEFT] * 3 and trajectory.truncated and not trajectory.terminated
    assert (batch.stats.clones_made, batch.stats.env_steps, batch.stats.generate_calls) == (0, 3, 3)


def test_beam_keeps_the_top_width_partial_trajectories(scripted):
    policy = scripted(cycle(RIGHT2, DOWN, LEFT))
    scorer = SpyScorer()
    batch = Beam(2, 3, scorer=scorer).rollout(
        policy, DETERMINISTIC, [0], max_turns=2, env_kwargs={"desc": LAKE}
    )
    # Turn 2 expands exactly the two best turn-1 candidates (Right || Right and Down), not Left.
    second_turn = policy.calls[1]
    assert len(second_turn) == 2
    observations = [context.rsplit("Observation:\n", 1)[1].split("\nTurns", 1)[0] for context in second_turn]
    assert observations == ["__P_\n_O_O\n___O\nO__G", "____\nPO_O\n___O\nO__G"]
    assert batch.stats.branches_pruned == 1 + (6 - 2)
    # The best beam is returned: its value is the best of the last turn's candidates.
    (trajectory,) = batch
    last_values = [value for _, value in scorer.seen[-8:-2]]  # 6 candidates, then 2 commits
    assert trajectory.episode_return + trajectory.final_score == pytest.approx(max(last_values))


def test_lookahead_sees_a_hole_one_step_ahead(scripted):
    def script(context: str, n: int) -> list[str]:
        # Decisions get two candidates; the continuation (one sample) always goes Down.
        return [DOWN] if n == 1 else ["<answer>Right</answer>", DOWN]

    kwargs = {"max_turns": 2, "env_kwargs": {"desc": TRAP}}
    greedy = BestOfN(2).rollout(scripted(script), DETERMINISTIC, [0], **kwargs)
    assert greedy.trajectories[0].replies[0] == "<answer>Right</answer>"

    scorer = SpyScorer()
    looked = Lookahead(1, 2, scorer=scorer).rollout(scripted(script), DETERMINISTIC, [0], **kwargs)
    assert looked.trajectories[0].replies[0] == DOWN
    right, down = (candidate for candidate, _ in scorer.seen[:2])
    assert right.info["score"] > down.info["score"]  # the greedy view prefers Right...
    assert (
        right.leaf_info["score"] == 0.0 and "hole" in right.leaf_info["feedback"]
    )  # ...which ends in a hole
    assert down.leaf_info["score"] > 0.0


def test_stochastic_candidates_are_scored_on_independent_random_streams(scripted):
    """Honest: no scoring clone shares the real env's RNG; peek: every one does.  Real outcomes either way."""
    env_kwargs = {"success_rate": 1 / 3}
    replies = ["<answer>Down || Right || Down</answer>", "<answer>Right || Down || Right</answer>"]
    for honest in (True, False):
        for seed in range(4):
            scorer = SpyScorer()
            strategy = BestOfN(2, scorer=scorer, honest=honest, seed=seed)
            batch = strategy.rollout(
                scripted(cycle(*replies)), "tsr/FrozenLake-v0", [seed], max_turns=1, env_kwargs=env_kwargs
            )
            candidates = [candidate for candidate, _ in scorer.seen[:2]]  # then the commit's own valuation
            for candidate in candidates:
                reference = gym.make("tsr/FrozenLake-v0", **env_kwargs).unwrapped
                reference.reset(seed=seed)
                reference.step(candidate.reply)  # what the real env would draw for this reply
                shared = (
                    candidate.env.np_random.bit_generator.state == reference.np_random.bit_generator.state
                )
                assert shared is not honest
            (trajectory,) = batch
            reference = gym.make("tsr/FrozenLake-v0", **env_kwargs).unwrapped
            reference.reset(seed=seed)
            _, reward, _, _, info = reference.step(trajectory.replies[0])
            assert trajectory.rewards == [reward] and trajectory.infos[0] == info


def test_groups_share_the_instance_but_not_the_samples(tiny_model, tokenizer):
    policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=24, seed=3)
    batch = make_strategy("best-of-2").rollout(policy, "tsr/FrozenLake-v0", [7] * 3, max_turns=2)
    assert len({tuple(t.prompt_ids) for t in batch}) == 1
    assert len({tuple(t.replies) for t in batch}) > 1


@pytest.mark.parametrize("spec", ["best-of-2", "beam-2x2"])
def test_same_seeds_give_the_same_first_batch(tiny_model, tokenizer, spec):
    def first_batch() -> RolloutBatch:
        policy = HFPolicy(tiny_model, tokenizer, max_new_tokens=24, seed=11)
        return make_strategy(spec, seed=5).rollout(policy, "tsr/FrozenLake-v0", [1, 1], max_turns=2)

    first, second = first_batch(), first_batch()
    assert [t.to_json() for t in first] == [t.to_json() for t in second]


def test_context_overflow_ends_the_episode_as_truncated(scripted, tokenizer):
    def prompt_length() -> int:
        batch = Naive().rollout(
            scripted(cycle(LEFT)), DETERMINISTIC, [0], max_turns=1, env_kwargs={"desc": LAKE}
        )
        return len(batch.trajectories[0].prompt_ids)

    room_for_one_reply = prompt_length() + scripted(cycle(LEFT)).max_new_tokens + 10
    policy = scripted(cycle(LEFT), max_context_length=room_for_one_reply)
    (trajectory,) = Naive().rollout(policy, DETERMINISTIC, [0], max_turns=5, env_kwargs={"desc": LAKE})
    assert trajectory.num_turns == 1 and trajectory.truncated and trajectory.env_mask[-1] == 1
    assert len(trajectory.prompt_ids) + len(trajectory.completion_ids) <= room_for_one_reply

    too_small = scripted(cycle(LEFT), max_context_length=prompt_length())
    (empty,) = BestOfN(2).rollout(too_small, DETERMINISTIC, [0], max_turns=5, env_kwargs={"desc": LAKE})
    assert empty.num_turns == 0 and empty.truncated and empty.completion_ids == []


def test_make_strategy_grammar():
    assert isinstance(make_strategy("naive"), Naive)
    assert make_strategy(" Best-of-4 ").n == 4
    beam = make_strategy("beam-2x3")
    assert isinstance(beam, Beam) and (beam.width, beam.branching) == (2, 3)
    look = make_strategy("lookahead-2x4", discount=0.5)
    assert isinstance(look, Lookahead) and (look.depth, look.n, look.discount) == (2, 4, 0.5)
    for spec in ("naive", "best-of-4", "beam-2x3", "lookahead-2x4"):
        assert make_strategy(spec).name == spec
    for bad in ("best-of-0", "beam-2", "greedy", "lookahead-2x", ""):
        with pytest.raises(ValueError, match="best-of-N") as error:
            make_strategy(bad)
        assert STRATEGY_GRAMMAR in str(error.value)


def test_stats_merge_and_as_dict():
    a = SearchStats(candidates_generated=4, chosen_score_sum=2.0, chosen_count=2)
    b = SearchStats(candidates_generated=2, chosen_score_sum=4.0, chosen_count=2, wall_time_s=1.5)
    merged = a.merge(b)
    assert merged.candidates_generated == 6 and merged.chosen_score_mean == 1.5
    record = merged.as_dict()
    assert record["chosen_score_mean"] == 1.5 and record["wall_time_s"] == 1.5
    assert all(isinstance(value, int | float) for value in record.values())


def test_wrappers_delegate_to_the_strategies(scripted):
    env = wrappers.BestOfNWrapper(gym.make(DETERMINISTIC, desc=LAKE), n=3, max_turns=1)
    batch = env.rollout(scripted(cycle(LEFT, JUMP, RIGHT2)), [0, 1])
    assert isinstance(env.strategy, BestOfN) and [t.replies for t in batch] == [[RIGHT2], [RIGHT2]]
    observation, _ = env.reset(seed=0)  # still an env
    assert "P" in observation
    assert isinstance(wrappers.LookaheadWrapper(gym.make(DETERMINISTIC), depth=1, n=2).strategy, Lookahead)
    assert isinstance(wrappers.BeamWrapper(gym.make(DETERMINISTIC)).strategy, Beam)


def test_every_strategy_runs_every_registered_grid_env(scripted):
    ids = [env_id for env_id in ("tsr/FrozenLake-v0", "tsr/Sokoban-v0") if env_id in gym.registry]
    for env_id in ids:
        actions = gym.make(env_id).unwrapped.legal_actions()
        policy = scripted(cycle(*(f"<answer>{a}</answer>" for a in actions)))
        for spec in ("naive", "best-of-2", "beam-2x2", "lookahead-1x2"):
            batch = make_strategy(spec).rollout(policy, env_id, [0, 0, 1], max_turns=2)
            assert [t.env_id for t in batch] == [env_id] * 3 and all(t.num_turns >= 1 for t in batch)
