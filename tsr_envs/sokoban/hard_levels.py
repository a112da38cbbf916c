"""Four fixed 6x6 Sokoban levels where rewards are rare (``tsr/Sokoban-Hard-v0``).

Each takes seven to nine actions, so a policy that samples its moves almost never solves one in ten
turns, while a search scored by the solver's distance to the goal still does: the regime where search
should pay off, as ``tsr/FrozenLake-Hard-v0`` is for FrozenLake.  Measured with the embedded model, 40
episodes each, 10 turns (plain sampling / best-of-4): 0.025 / 0.70, 0.025 / 0.475, 0.0 / 0.40 and
0.0 / 0.15.  They were drawn by this package's generator (6x6, one box, ``min_solution_length=7``, on
``numpy.random.default_rng(g)`` for g = 3, 27, 10, 17) and are kept as text so that they never change
with the generator.
"""

from __future__ import annotations

#: Rows in RAGEN's symbols: ``#`` wall, ``_`` floor, ``O`` target, ``X`` box, ``P`` player, ``S`` player on
#: the target.
HARD_LEVELS: tuple[tuple[str, ...], ...] = (
    ("######", "#S_###", "#__###", "#X_###", "#__###", "######"),
    ("######", "#____#", "#S_X_#", "######", "######", "######"),
    ("######", "#__P##", "#__###", "#_OX_#", "#____#", "######"),
    ("######", "###__#", "#S___#", "#__X_#", "#____#", "######"),
)
