"""The seed splits: the one place that says which env instances are for training, tuning and reporting.

An episode is fully determined by its env id and its seed (``env.reset(seed=s)``), so a split is a
documented range of seeds, the same for every env id:

=============  =======================  ====================================================
split          seeds                    used by
=============  =======================  ====================================================
``test``       ``0 .. 4_999``           reported numbers (``tsr eval`` default, the TSR study)
``validation`` ``5_000 .. 9_999``       model selection; the held-out curve ``tsr train`` logs
``train``      ``10_000`` and above     training (``tsr train``, the embedded model's warm-up)
=============  =======================  ====================================================

Envs whose instances come from a fixed pool rather than from the seed alone (WebShop's goals) also take a
``split`` keyword and draw their instance from that split's part of the pool, so a WebShop test episode
never shows a training goal.  :func:`split_env_kwargs` says which keyword to pass; training and
evaluation both call it, so neither can forget it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym


class Split(NamedTuple):
    first_seed: int
    #: number of seeds in the split; ``None`` for an open-ended split
    size: int | None

    def contains(self, seed: int) -> bool:
        return seed >= self.first_seed and (self.size is None or seed < self.first_seed + self.size)


SPLITS: dict[str, Split] = {
    "test": Split(0, 5_000),
    "validation": Split(5_000, 5_000),
    "train": Split(10_000, None),
}
SPLIT_NAMES: tuple[str, ...] = tuple(SPLITS)


class SplitError(ValueError):
    """An unknown split, or more seeds than a split holds."""


def split_seeds(split: str, count: int, *, offset: int = 0) -> list[int]:
    """Seeds ``offset .. offset + count - 1`` of ``split`` (the first ``count`` with the default offset).

    A smaller run is a prefix of a larger one, so the two can share a results folder.
    """
    if split not in SPLITS:
        raise SplitError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    if count < 1:
        raise SplitError(f"the number of episodes must be at least 1, got {count}")
    if offset < 0:
        raise SplitError(f"a split offset must be non-negative, got {offset}")
    first, size = SPLITS[split]
    if size is not None and offset + count > size:
        raise SplitError(f"the {split!r} split has only {size} seeds; asked for {offset + count}")
    return list(range(first + offset, first + offset + count))


def split_of(seed: int) -> str:
    """The split a seed belongs to."""
    for name, split in SPLITS.items():
        if split.contains(seed):
            return name
    raise SplitError(f"seed {seed} is in no split (seeds are non-negative)")


@functools.cache
def _takes_split(env_id: str) -> bool:
    spec = gym.spec(env_id)
    entry = spec.entry_point
    creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return bool(getattr(creator, "has_instance_splits", False))


def split_env_kwargs(env_id: str, split: str, env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``env_kwargs`` plus ``split=split`` for envs with a split instance pool (a user's own wins)."""
    if split not in SPLITS:
        raise SplitError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    kwargs = dict(env_kwargs or {})
    if env_id in gym.registry and _takes_split(env_id):
        kwargs.setdefault("split", split)
    return kwargs
