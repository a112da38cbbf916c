"""Fixed seed splits, so that numbers from different users and papers are comparable.

An episode is fully determined by its env id and its seed (``env.reset(seed=s)``), so a split is just a
documented range of seeds.  Every env id uses the same ranges:

=============  =======================  ==========================================
split          seeds                    use
=============  =======================  ==========================================
``test``       ``0 .. 4_999``           reported numbers (``tsr eval`` default)
``validation`` ``5_000 .. 9_999``       model selection, hyper-parameter tuning
``train``      ``10_000`` and above     training (``tsr train`` draws from here)
=============  =======================  ==========================================

``--episodes N --split test`` evaluates seeds ``0 .. N-1``: the first ``N`` seeds of the split, so a
smaller run is a prefix of a larger one and the two can share a results folder.
"""

from __future__ import annotations

from typing import NamedTuple

from tsr_envs.evaluation.errors import EvalInputError


class Split(NamedTuple):
    first_seed: int
    #: number of seeds in the split; ``None`` for an open-ended split
    size: int | None


SPLITS: dict[str, Split] = {
    "test": Split(0, 5_000),
    "validation": Split(5_000, 5_000),
    "train": Split(10_000, None),
}


def split_seeds(split: str, episodes: int) -> list[int]:
    """The first ``episodes`` seeds of ``split``."""
    if split not in SPLITS:
        raise EvalInputError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    if episodes < 1:
        raise EvalInputError(f"the number of episodes must be at least 1, got {episodes}")
    first, size = SPLITS[split]
    if size is not None and episodes > size:
        raise EvalInputError(f"the {split!r} split has only {size} seeds; asked for {episodes} episodes")
    return list(range(first, first + episodes))


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"a-b"`` (inclusive), ``"1,5,9"`` or a mix such as ``"0-9,20"``.

    Order is kept and repeats are dropped.
    """
    seeds: list[int] = []
    for piece in text.split(","):
        piece = piece.strip()
        low, dash, high = piece.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else [int(piece)]
        except ValueError:
            raise EvalInputError(
                f"bad seed list {text!r}: use a-b, a comma list, or both (e.g. 0-9,20)"
            ) from None
        if dash and int(high) < int(low):
            raise EvalInputError(f"bad seed range {piece!r}: the end is before the start")
        seeds.extend(values)
    if any(seed < 0 for seed in seeds):
        raise EvalInputError(f"seeds must be non-negative, got {text!r}")
    return list(dict.fromkeys(seeds))
