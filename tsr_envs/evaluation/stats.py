"""Small, exact statistics for evaluation reports, in pure Python (no SciPy dependency).

* Wilson score interval for a success rate: unlike the normal approximation it stays inside [0, 1] and
  behaves at 0 and 1 successes, which is where agents on these games often are.
* Exact McNemar test for paired successes (two agents on the same seeds) and the exact sign test for paired
  returns: both reduce to a two-sided binomial test with p = 1/2 on the discordant pairs, computed exactly
  with integer binomial coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default); ``(0.0, 1.0)`` when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1.0 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    # the rate itself is always inside; clamping also absorbs rounding at 0 and n successes
    return max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half))


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (1.0 when ``n == 0``)."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    mass = sum(math.comb(n, i) for i in range(tail + 1))
    return min(1.0, 2 * mass / 2**n)


class PairedTest(NamedTuple):
    """Counts of pairs where the first agent did better / worse, ties, and the exact two-sided p-value."""

    better: int
    worse: int
    ties: int
    p_value: float


def mcnemar_exact(first: Sequence[bool], second: Sequence[bool]) -> PairedTest:
    """Exact McNemar test on paired successes (same seeds): only pairs that disagree carry information."""
    return _paired([float(a) - float(b) for a, b in zip(first, second, strict=True)])


def sign_test(first: Sequence[float], second: Sequence[float], tolerance: float = 1e-9) -> PairedTest:
    """Exact sign test on paired returns; differences within ``tolerance`` count as ties."""
    return _paired([a - b for a, b in zip(first, second, strict=True)], tolerance)


def _paired(differences: Sequence[float], tolerance: float = 0.0) -> PairedTest:
    better = sum(1 for d in differences if d > tolerance)
    worse = sum(1 for d in differences if d < -tolerance)
    ties = len(differences) - better - worse
    return PairedTest(better, worse, ties, binomial_two_sided_p(better, better + worse))
