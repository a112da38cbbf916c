"""Explicit seed lists from the command line (``--seeds 0-9,20``), for runs outside the fixed splits."""

from __future__ import annotations

from tsr_envs.evaluation.errors import EvalInputError


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
