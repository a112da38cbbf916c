"""A PettingZoo arena: several agents play clones of the same task instance, turn by turn.

Why clones: comparing two agents on "the same seed" in two separate envs only works if the env is
deterministic given the seed.  The arena resets one env with the seed and gives every player its own
``clone()`` of it, so all players start from the identical state -- random number generator included, so
on a stochastic env two players who make the same moves also get the same slips (common random numbers,
which makes paired comparisons sharper).  Players never see each other's games: each observation is the
player's own board, and the arena steps every live player once per ``step`` (lockstep), removing a player
from ``agents`` when its episode ends.

Example::

    from tsr_envs.arena import TextArena

    arena = TextArena("tsr/FrozenLake-v0", players=["alice", "bob"])
    observations, infos = arena.reset(seed=0)
    while arena.agents:
        observations, rewards, terminations, truncations, infos = arena.step(
            {player: "<answer>Down</answer>" for player in arena.agents}
        )

Needs the ``[eval]`` extra (``pettingzoo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces
from pettingzoo import ParallelEnv

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.core import TextEnv


class TextArena(ParallelEnv):
    """``players`` on clones of one ``env_id`` instance; ``max_turns`` defaults to the id's turn limit."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "tsr_arena_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        env_id: str,
        players: Sequence[str] = ("player_0", "player_1"),
        *,
        max_turns: int | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if len(set(players)) != len(players) or not players:
            raise ValueError(f"players must be distinct and at least one, got {list(players)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        template = gym.make(env_id, **env_kwargs).unwrapped
        if not isinstance(template, TextEnv):
            raise TypeError(f"{env_id} is not a TSR text env (it has no clone())")
        self.env_id = env_id
        self.render_mode = render_mode
        self.max_turns = max_turns if max_turns is not None else gym.spec(env_id).max_episode_steps
        self.possible_agents: list[str] = list(players)
        self.agents: list[str] = []
        self._template = template
        self._envs: dict[str, TextEnv] = {}

    def observation_space(self, agent: str) -> spaces.Space:
        return self._template.observation_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._template.action_space

    def env(self, agent: str) -> TextEnv:
        """The player's own game (read it, do not step it): for agents that look at the state."""
        return self._envs[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        observation, info = self._template.reset(seed=seed, options=options)
        self._envs = {player: self._template.clone() for player in self.possible_agents}
        self.agents = list(self.possible_agents)
        return dict.fromkeys(self.agents, observation), {player: dict(info) for player in self.agents}

    def step(self, actions: dict[str, str]) -> tuple[dict, dict, dict, dict, dict]:
        """Step every live player; a live player without an action sends an empty (invalid) reply."""
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        for player in self.agents:
            env = self._envs[player]
            observation, reward, terminated, truncated, info = env.step(actions.get(player, ""))
            if self.max_turns is not None and env.turn >= self.max_turns and not terminated:
                truncated = True
            observations[player], rewards[player], infos[player] = observation, float(reward), info
            terminations[player], truncations[player] = bool(terminated), bool(truncated)
        self.agents = [p for p in self.agents if not (terminations[p] or truncations[p])]
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return "\n\n".join(f"[{player}]\n{env.render()}" for player, env in self._envs.items())

    def close(self) -> None:
        self._template.close()
