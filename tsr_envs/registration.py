"""Every environment id of the suite, registered with Gymnasium under the ``tsr/`` namespace.

``max_episode_steps`` counts turns (model replies), each of which may execute several actions; envs that
also limit actions do so with their own ``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from tsr_envs.frozenlake.maps import HARD_MAPS
from tsr_envs.sokoban.hard_levels import HARD_LEVELS

NAMESPACE = "tsr"


@dataclass(frozen=True)
class EnvSpec:
    """One registered id: where its class lives, its kwargs and its turn limit."""

    name: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int = 100
    #: kwargs naming data files the user must supply (the id cannot be made without them)
    requires: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{NAMESPACE}/{self.name}"


_FROZENLAKE = "tsr_envs.frozenlake:FrozenLakeEnv"
_SOKOBAN = "tsr_envs.sokoban:SokobanEnv"

SPECS: tuple[EnvSpec, ...] = (
    EnvSpec("FrozenLake-v0", _FROZENLAKE, {"size": 4}, max_episode_steps=100),
    EnvSpec("FrozenLake-8x8-v0", _FROZENLAKE, {"size": 8}, max_episode_steps=200),
    # Gymnasium's fixed 4x4 map, slippery: one instance (only the slips vary with the seed), six moves
    # from the goal, so a policy that cannot read the board can still learn it.
    EnvSpec(
        "FrozenLake-Classic-v0",
        _FROZENLAKE,
        {"desc": ["SFFF", "FHFH", "FFFH", "HFFG"]},
        max_episode_steps=100,
    ),
    EnvSpec(
        "FrozenLake-Deterministic-v0", _FROZENLAKE, {"size": 4, "is_slippery": False}, max_episode_steps=100
    ),
    # Rare rewards: four hand-made maps, no slips, each a narrow path of six or nine moves between holes.
    EnvSpec(
        "FrozenLake-Hard-v0",
        _FROZENLAKE,
        {"maps": HARD_MAPS, "is_slippery": False},
        max_episode_steps=100,
    ),
    EnvSpec("Sokoban-v0", _SOKOBAN, {"dim_room": (6, 6), "num_boxes": 1}, max_episode_steps=100),
    # Rare rewards: four fixed levels of seven to nine actions, one drawn per episode by the seed.
    EnvSpec("Sokoban-Hard-v0", _SOKOBAN, {"levels": HARD_LEVELS}, max_episode_steps=100),
    EnvSpec("Sokoban-8x8-2box-v0", _SOKOBAN, {"dim_room": (8, 8), "num_boxes": 2}, max_episode_steps=100),
    EnvSpec("Sokoban-10x10-3box-v0", _SOKOBAN, {"dim_room": (10, 10), "num_boxes": 3}, max_episode_steps=100),
    EnvSpec("Boxoban-v0", "tsr_envs.sokoban:BoxobanEnv", max_episode_steps=100, requires=("level_file",)),
    EnvSpec("WebShop-v0", "tsr_envs.webshop:WebShopEnv", {"catalog": "synthetic"}, max_episode_steps=15),
)


def register_all() -> None:
    """Register every spec once (importing ``tsr_envs`` calls this)."""
    for spec in SPECS:
        if spec.id not in gym.registry:
            gym.register(
                id=spec.id,
                entry_point=spec.entry_point,
                kwargs=dict(spec.kwargs),
                max_episode_steps=spec.max_episode_steps,
            )


def registered_ids(include_data_driven: bool = True) -> list[str]:
    """The ids of the suite, in registration order."""
    return [spec.id for spec in SPECS if include_data_driven or not spec.requires]


def spec_of(env_id: str) -> EnvSpec:
    for spec in SPECS:
        if spec.id == env_id:
            return spec
    known = ", ".join(registered_ids())
    raise gym.error.UnregisteredEnv(f"Unknown environment id {env_id!r}. Known ids: {known}")
