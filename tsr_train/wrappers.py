"""Search strategies as users meet them: Gymnasium wrappers around any TSR env.

``BestOfNWrapper(gym.make("tsr/Sokoban-v0"), n=4)`` is still the env (``reset``/``step`` pass through) and
adds ``rollout(policy, seeds)``, which runs the strategy ``tsr_train.strategies.BestOfN`` on clones of the
wrapped env.  Each wrapper is the strategy's name plus ``Wrapper``, so a name means one class.  The
wrappers hold no logic of their own: one implementation, two doors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from tsr_train import strategies

if TYPE_CHECKING:
    from tsr_train.policy import Policy

#: RAGEN's default episode length in turns.
DEFAULT_MAX_TURNS = 5


class SearchWrapper(gym.Wrapper):
    """An env plus a rollout strategy that builds trajectories from clones of it."""

    def __init__(
        self, env: gym.Env, strategy: strategies.RolloutStrategy, *, max_turns: int = DEFAULT_MAX_TURNS
    ) -> None:
        super().__init__(env)
        self.strategy = strategy
        self.max_turns = max_turns

    def rollout(
        self, policy: Policy, seeds: Sequence[int], *, max_turns: int | None = None
    ) -> strategies.RolloutBatch:
        """One trajectory per seed (iterate the result, or read ``.trajectories`` and ``.stats``)."""
        return self.strategy.rollout(policy, self.env, seeds, max_turns=max_turns or self.max_turns)


class NaiveWrapper(SearchWrapper):
    def __init__(self, env: gym.Env, *, max_turns: int = DEFAULT_MAX_TURNS, **kwargs: Any) -> None:
        super().__init__(env, strategies.Naive(**kwargs), max_turns=max_turns)


class BestOfNWrapper(SearchWrapper):
    def __init__(
        self, env: gym.Env, n: int = 4, *, max_turns: int = DEFAULT_MAX_TURNS, **kwargs: Any
    ) -> None:
        super().__init__(env, strategies.BestOfN(n, **kwargs), max_turns=max_turns)


class BeamWrapper(SearchWrapper):
    def __init__(
        self,
        env: gym.Env,
        width: int = 2,
        branching: int = 3,
        *,
        max_turns: int = DEFAULT_MAX_TURNS,
        **kwargs: Any,
    ) -> None:
        super().__init__(env, strategies.Beam(width, branching, **kwargs), max_turns=max_turns)


class LookaheadWrapper(SearchWrapper):
    def __init__(
        self, env: gym.Env, depth: int = 2, n: int = 4, *, max_turns: int = DEFAULT_MAX_TURNS, **kwargs: Any
    ) -> None:
        super().__init__(env, strategies.Lookahead(depth, n, **kwargs), max_turns=max_turns)
