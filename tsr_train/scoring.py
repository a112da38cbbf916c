"""Scorers: how a search ranks the candidate replies of a turn.

A scorer is any ``Callable[[Candidate], float]`` (higher is better).  It sees what happened when the
candidate reply was stepped on a clone of the env: the turn's reward, the ``info`` with the env's
state-based ``score`` (progress toward solving the instance, in [0, 1]) and, for lookahead, the discounted
reward of the policy's continuation and the ``info`` where the continuation stopped.

Why reward *and* score: rewards are sparse (FrozenLake pays only at the goal, WebShop only at purchase), so
the reward alone cannot tell most candidates apart; the state-based score can.

An invalid reply leaves the state, and so the score, where it was, while a real move can lose (a hole
scores 0).  Ranked on the score alone, "say nothing useful" would then beat "try", so every scorer here
subtracts ``invalid_penalty`` (default 1, the whole range of the score) from a candidate whose reply was
invalid: an invalid reply never ranks above a valid one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tsr_envs.core import TextEnv


@dataclass
class Candidate:
    """One candidate reply after it was stepped on a clone (what a scorer may look at)."""

    reply: str
    #: reward of the candidate turn itself
    reward: float
    #: the env's ``info`` after the candidate turn (``score``, ``success``, ``action_is_valid``, ...)
    info: dict[str, Any]
    terminated: bool
    truncated: bool
    #: the return of the partial trajectory the candidate extends (same for all siblings)
    prior_return: float = 0.0
    #: lookahead only: the discounted reward the policy's continuation earned after this turn
    lookahead_return: float = 0.0
    #: lookahead only: the ``info`` where the continuation stopped (``None`` without lookahead)
    leaf_info: dict[str, Any] | None = None
    #: the clone after the candidate turn; scorers may inspect it but must not step it
    env: TextEnv | None = field(default=None, repr=False)

    @property
    def invalid(self) -> bool:
        """Whether the env rejected the candidate's own reply (the turn left the state unchanged)."""
        return not self.info.get("action_is_valid", True)


Scorer = Callable[[Candidate], float]


@dataclass
class StateScorer:
    """The default scorer: weighted reward plus the env's state-based ``score``.

    ``value = reward_weight * (prior_return + reward + lookahead_return) + score_weight * score``, where
    ``score`` is read where the lookahead stopped (or right after the turn without lookahead).  Siblings
    share ``prior_return``, so it does not change which of them wins; it makes values of different beams
    comparable.  Set ``include_prior_return=False`` to rank on the turn alone.
    """

    reward_weight: float = 1.0
    score_weight: float = 1.0
    include_prior_return: bool = True
    #: subtracted from the value of a candidate whose own reply was invalid
    invalid_penalty: float = 1.0

    def __call__(self, candidate: Candidate) -> float:
        ret = candidate.reward + candidate.lookahead_return
        if self.include_prior_return:
            ret += candidate.prior_return
        info = candidate.leaf_info if candidate.leaf_info is not None else candidate.info
        value = self.reward_weight * ret + self.score_weight * float(info.get("score", 0.0))
        if candidate.invalid:
            value -= self.invalid_penalty
        return value


@dataclass
class SuccessScorer:
    """Success only: 1 if the candidate (or its lookahead) solved the instance, else 0 (minus the penalty).

    The sparse end of the design space: it tells candidates apart only when one of them finishes.
    """

    invalid_penalty: float = 1.0

    def __call__(self, candidate: Candidate) -> float:
        info = candidate.leaf_info if candidate.leaf_info is not None else candidate.info
        value = float(bool(info.get("success", False)))
        if candidate.invalid:
            value -= self.invalid_penalty
        return value


#: the scorers ``tsr train --scorer`` and the study name
SCORERS: dict[str, Callable[[], Scorer]] = {
    "reward+score": StateScorer,
    "score": lambda: StateScorer(reward_weight=0.0),
    "success": SuccessScorer,
}


def make_scorer(name: str) -> Scorer:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; expected one of {', '.join(SCORERS)}")
    return SCORERS[name]()
