"""FrozenLake maps: parsing Gymnasium's ``S/F/H/G`` form, seeded random solvable maps, goal distances.

A ``LakeMap`` is immutable and carries the breadth-first distance to the goal from every cell, so the
env's state-based ``score`` and its oracle are table look-ups.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Gymnasium's action order: the index of each move and its (row, column) offset.
MOVES: tuple[tuple[str, int, int], ...] = (("Left", 0, -1), ("Down", 1, 0), ("Right", 0, 1), ("Up", -1, 0))
UNREACHABLE = -1
#: How each tile looks when the player is elsewhere (RAGEN's symbols).
TILE_SYMBOLS = {"S": "_", "F": "_", "H": "O", "G": "G"}
#: Four 4x4 maps where rewards are rare: the goal is six or nine moves from the start down one narrow
#: path between five or six holes.  A policy that samples its moves almost never reaches the goal, while a
#: search scored by the distance to the goal still finds it; the regime where search should pay off.
#: Measured with the embedded model on 40 seeds each, 10 turns, no slips (plain sampling / best-of-4):
#: 0.0 / 0.575, 0.0 / 0.075, 0.0 / 0.10 and 0.025 / 0.775.
HARD_MAPS: tuple[tuple[str, ...], ...] = (
    ("SHFF", "FHFH", "FFFH", "HHFG"),
    ("FFFS", "FHHH", "FFFF", "HHHG"),
    ("SFHG", "HFHF", "FFHF", "HFFF"),
    ("FFFG", "FHHH", "FFFF", "SHHH"),
)


@dataclass(frozen=True)
class LakeMap:
    """A lake: rows of ``S`` (start), ``F`` (frozen), ``H`` (hole), ``G`` (goal)."""

    rows: tuple[str, ...]
    distance: tuple[int, ...] = field(init=False, repr=False, compare=False)
    symbol_rows: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        widths = {len(row) for row in self.rows}
        if not self.rows or len(widths) != 1 or 0 in widths:
            raise ValueError("a FrozenLake map needs at least one row, all of the same non-zero width")
        cells = "".join(self.rows)
        unknown = sorted(set(cells) - set("SFHG"))
        if unknown:
            raise ValueError(f"FrozenLake maps use only S, F, H, G; found {unknown}")
        if "S" not in cells or "G" not in cells:
            raise ValueError("a FrozenLake map needs at least one start cell S and one goal cell G")
        object.__setattr__(self, "distance", self._distances_to_goal())
        symbols = tuple("".join(TILE_SYMBOLS[tile] for tile in row) for row in self.rows)
        object.__setattr__(self, "symbol_rows", symbols)

    @classmethod
    def from_desc(cls, desc: list[str] | tuple[str, ...] | str) -> LakeMap:
        """Accepts Gymnasium's ``desc`` (a list of row strings) or one string with newline-separated rows."""
        rows = desc.split() if isinstance(desc, str) else [str(row) for row in desc]
        return cls(tuple(rows))

    @property
    def nrow(self) -> int:
        return len(self.rows)

    @property
    def ncol(self) -> int:
        return len(self.rows[0])

    def tile(self, cell: int) -> str:
        return self.rows[cell // self.ncol][cell % self.ncol]

    def starts(self) -> list[int]:
        return [cell for cell in range(self.nrow * self.ncol) if self.tile(cell) == "S"]

    def neighbour(self, cell: int, move: int) -> int:
        """Where a move from ``cell`` lands (moves into the border leave the player in place)."""
        _, d_row, d_col = MOVES[move]
        row = min(max(cell // self.ncol + d_row, 0), self.nrow - 1)
        col = min(max(cell % self.ncol + d_col, 0), self.ncol - 1)
        return row * self.ncol + col

    def downhill_move(self, cell: int) -> int | None:
        """A move that brings ``cell`` one step closer to the goal, or ``None`` if there is none."""
        here = self.distance[cell]
        for move in range(len(MOVES)):
            there = self.distance[self.neighbour(cell, move)]
            if here > 0 and there != UNREACHABLE and there == here - 1:
                return move
        return None

    def success_values(
        self, success_rate: float, discount: float = 0.995, sweeps: int = 1000, tolerance: float = 1e-12
    ) -> tuple:
        """For slippery ice: the discounted probability of reaching the goal, per cell and move.

        Value iteration over Gymnasium's transition model (intended move with ``success_rate``, each
        perpendicular move with half the rest).  The discount makes the policy prefer quick routes: an
        undiscounted one can dither safely against walls until the turn limit.  Returns ``q[cell][move]``;
        the oracle plays the argmax.
        """
        fail = (1.0 - success_rate) / 2.0
        size, moves = self.nrow * self.ncol, len(MOVES)
        value = [1.0 if self.tile(cell) == "G" else 0.0 for cell in range(size)]
        outcomes = [
            [
                [
                    (p, self.neighbour(cell, (move + k) % moves))
                    for k, p in ((-1, fail), (0, success_rate), (1, fail))
                ]
                for move in range(moves)
            ]
            for cell in range(size)
        ]
        q = [[0.0] * moves for _ in range(size)]
        for _ in range(sweeps):
            change = 0.0
            for cell in range(size):
                if self.tile(cell) in "GH":
                    continue
                q[cell] = [
                    discount * sum(p * value[nxt] for p, nxt in outcomes[cell][move]) for move in range(moves)
                ]
                best = max(q[cell])
                change, value[cell] = max(change, abs(best - value[cell])), best
            if change < tolerance:
                break
        return tuple(tuple(row) for row in q)

    def _distances_to_goal(self) -> tuple[int, ...]:
        size = self.nrow * self.ncol
        distance = [UNREACHABLE] * size
        queue = deque(cell for cell in range(size) if self.tile(cell) == "G")
        for cell in queue:
            distance[cell] = 0
        while queue:
            cell = queue.popleft()
            for move in range(len(MOVES)):
                other = self.neighbour(cell, move)
                if distance[other] == UNREACHABLE and self.tile(other) in "SF":
                    distance[other] = distance[cell] + 1
                    queue.append(other)
        return tuple(distance)


def check_random_map_parameters(size: int, frozen_probability: float) -> None:
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    if not 0.0 < frozen_probability <= 1.0:
        raise ValueError(f"frozen probability p must be in (0, 1], got {frozen_probability!r}")


def random_map(size: int, frozen_probability: float, rng: np.random.Generator) -> LakeMap:
    """A random ``size``×``size`` lake with a path from start to goal.

    As in RAGEN, start and goal are two distinct cells drawn uniformly; every other cell is frozen with
    probability ``frozen_probability`` and a hole otherwise; maps without a path are redrawn.
    """
    check_random_map_parameters(size, frozen_probability)
    while True:
        start, goal = rng.choice(size * size, size=2, replace=False)
        frozen = rng.random(size * size) < frozen_probability
        cells = ["F" if is_frozen else "H" for is_frozen in frozen]
        cells[start], cells[goal] = "S", "G"
        lake = LakeMap(tuple("".join(cells[row * size : (row + 1) * size]) for row in range(size)))
        if lake.distance[int(start)] != UNREACHABLE:
            return lake
