"""Sokoban levels: an immutable ``Board`` (walls, targets, precomputed tables) and a ``Level`` start state.

Cells are integers ``row * width + column``.  A state is ``(player, boxes)`` with ``boxes`` a frozenset of
cells: hashable, tiny and immutable, so env clones share it and the solver uses it as a dictionary key.

Everything a search needs about the geometry is computed once per board: the neighbour of every cell in
every direction, the push distance from every cell to every target (a box can never need fewer pushes)
and the dead squares (floor cells from which no target can be reached by pushes).  The board also owns
``solutions``, the solver's cache of exact distances: it is keyed by state, never by anything the env
mutates, so sharing it between clones is safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Action names in RAGEN's order, with their (row, column) offsets.  Opposite directions differ in the
#: lowest bit (``direction ^ 1``).
ACTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")
_OFFSETS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
#: Push distance of a cell from which a target cannot be reached.
UNREACHABLE = 1 << 30

WALL, FLOOR, TARGET, BOX, BOX_ON_TARGET, PLAYER, PLAYER_ON_TARGET = "#", "_", "O", "X", "√", "P", "S"
# What each input character means: (wall, target, box, player).  RAGEN's symbols and the Boxoban/XSB ones
# do not collide, so one table reads both.
_SYMBOLS: dict[str, tuple[bool, bool, bool, bool]] = {
    WALL: (True, False, False, False),
    FLOOR: (False, False, False, False),
    " ": (False, False, False, False),
    TARGET: (False, True, False, False),
    ".": (False, True, False, False),
    BOX: (False, False, True, False),
    "$": (False, False, True, False),
    BOX_ON_TARGET: (False, True, True, False),
    "*": (False, True, True, False),
    PLAYER: (False, False, False, True),
    "@": (False, False, False, True),
    PLAYER_ON_TARGET: (False, True, False, True),
    "+": (False, True, False, True),
}


@dataclass(frozen=True)
class Board:
    """The fixed part of a level: size, walls and targets, plus tables derived from them.

    Equality, hashing and pickling use only ``height, width, walls, targets``; the tables are rebuilt on
    unpickling and the solution cache starts empty.  Copies return the board itself: it is immutable.
    """

    height: int
    width: int
    walls: frozenset[int]
    targets: tuple[int, ...]
    #: ``step[direction][cell]``: the neighbouring cell, or -1 for a wall or the edge of the grid
    step: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    #: ``adjacent[cell]``: the open neighbours of ``cell``
    adjacent: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    #: ``push_distances[cell][i]``: fewest pushes that bring a box from ``cell`` to ``targets[i]``
    push_distances: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    #: ``dead[cell]``: a box there can never reach any target
    dead: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    target_set: frozenset[int] = field(init=False, repr=False, compare=False)
    #: the rendered grid without player and boxes, newlines included (see ``render``)
    background: tuple[str, ...] = field(init=False, repr=False, compare=False)
    #: the solver's cache: state -> ``solver.Entry`` (exact distances; see ``tsr_envs.sokoban.solver``)
    solutions: dict[Any, Any] = field(init=False, repr=False, compare=False)
    #: ``solver.solve_within``'s memo: (start, budget) -> (the start's plan entries, answers by state)
    budgeted: dict[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"a Sokoban board needs a positive size, got {self.height}x{self.width}")
        size = self.height * self.width
        if any(not 0 <= cell < size for cell in (*self.walls, *self.targets)):
            raise ValueError("wall and target cells must lie inside the grid")
        if not self.targets or len(set(self.targets)) != len(self.targets) or set(self.targets) & self.walls:
            raise ValueError("a Sokoban board needs at least one target, each on a distinct floor cell")
        step = self._step_tables()
        distances = [self._pull_distances(step, target) for target in self.targets]
        push_distances = tuple(zip(*distances, strict=True))
        values = {
            "step": step,
            "adjacent": tuple(
                tuple(other for row in step if (other := row[cell]) >= 0) for cell in range(size)
            ),
            "push_distances": push_distances,
            "dead": tuple(min(row) == UNREACHABLE for row in push_distances),
            "target_set": frozenset(self.targets),
            "background": self._background(),
            "solutions": {},
            "budgeted": {},
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple:
        return Board, (self.height, self.width, self.walls, self.targets)

    def __copy__(self) -> Board:
        return self

    def __deepcopy__(self, memo: dict) -> Board:
        return self

    @property
    def size(self) -> int:
        return self.height * self.width

    def is_floor(self, cell: int) -> bool:
        return 0 <= cell < self.size and cell not in self.walls

    def floor_cells(self) -> list[int]:
        return [cell for cell in range(self.size) if cell not in self.walls]

    def move(self, player: int, boxes: frozenset[int], direction: int) -> tuple[int, frozenset[int]]:
        """The state after the player moves one cell, pushing a box in the way if the cell behind it is free.

        Walking into a wall or an unpushable box leaves the state unchanged.
        """
        ahead = self.step[direction][player]
        if ahead < 0:
            return player, boxes
        if ahead not in boxes:
            return ahead, boxes
        behind = self.step[direction][ahead]
        if behind < 0 or behind in boxes:
            return player, boxes
        return ahead, boxes.difference((ahead,)).union((behind,))

    def solved(self, boxes: frozenset[int]) -> bool:
        return boxes == self.target_set

    def render(self, player: int, boxes: frozenset[int]) -> str:
        """The grid in RAGEN's symbols, one row per line: the background with boxes and player drawn in."""
        symbols, targets, stride = list(self.background), self.target_set, self.width + 1
        for box in boxes:
            symbols[box // self.width * stride + box % self.width] = BOX_ON_TARGET if box in targets else BOX
        symbols[player // self.width * stride + player % self.width] = (
            PLAYER_ON_TARGET if player in targets else PLAYER
        )
        return "".join(symbols)

    def _background(self) -> tuple[str, ...]:
        symbols = []
        for cell in range(self.height * self.width):
            if cell and cell % self.width == 0:
                symbols.append("\n")
            symbols.append(WALL if cell in self.walls else TARGET if cell in self.targets else FLOOR)
        return tuple(symbols)

    def _step_tables(self) -> tuple[tuple[int, ...], ...]:
        height, width, walls = self.height, self.width, self.walls
        tables = []
        for d_row, d_col in _OFFSETS:
            table = [-1] * self.size
            for cell in self.floor_cells():
                row, col = divmod(cell, width)
                if 0 <= row + d_row < height and 0 <= col + d_col < width:
                    other = cell + d_row * width + d_col
                    table[cell] = -1 if other in walls else other
            tables.append(tuple(table))
        return tuple(tables)

    def _pull_distances(self, step: tuple[tuple[int, ...], ...], target: int) -> list[int]:
        """Fewest pushes from each cell to ``target``, ignoring other boxes: a breadth-first search of pulls.

        A box on ``cell`` arrives there from ``cell - d`` when the player stands on ``cell - 2d``.
        """
        distance = [UNREACHABLE] * self.size
        distance[target] = 0
        frontier = [target]
        while frontier:
            following = []
            for cell in frontier:
                for direction in range(4):
                    source = step[direction ^ 1][cell]
                    if source >= 0 and distance[source] == UNREACHABLE and step[direction ^ 1][source] >= 0:
                        distance[source] = distance[cell] + 1
                        following.append(source)
            frontier = following
        return distance


@dataclass(frozen=True)
class Level:
    """A board and its start state: the immutable task an env episode plays."""

    board: Board
    player: int
    boxes: frozenset[int]
    #: the level's position in the file it was loaded from, if any
    index: int | None = None

    def __post_init__(self) -> None:
        board = self.board
        if not board.is_floor(self.player) or any(not board.is_floor(box) for box in self.boxes):
            raise ValueError("the player and the boxes must stand on floor cells")
        if self.player in self.boxes:
            raise ValueError("the player cannot stand on a box")
        if len(self.boxes) != len(board.targets):
            raise ValueError(
                f"a level needs as many boxes as targets, got {len(self.boxes)} and {len(board.targets)}"
            )

    @classmethod
    def from_rows(cls, rows: Sequence[str] | str) -> Level:
        """Read a grid in RAGEN's symbols (``# _ O X √ P S``) or Boxoban/XSB ones (``# space . $ * @ +``).

        Rows may be given as a list or as one newline-separated string; shorter rows are padded with floor.
        """
        lines = rows.split("\n") if isinstance(rows, str) else list(rows)
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            raise ValueError("a Sokoban grid needs at least one row")
        width = max(len(line) for line in lines)
        meanings = []
        for row, line in enumerate(lines):
            for col, symbol in enumerate(line.ljust(width)):
                if symbol not in _SYMBOLS:
                    known = "".join(_SYMBOLS)
                    raise ValueError(
                        f"row {row + 1}, column {col + 1}: unknown symbol {symbol!r} (known: {known!r})"
                    )
                meanings.append(_SYMBOLS[symbol])
        walls, targets, boxes, players = (
            [cell for cell, meaning in enumerate(meanings) if meaning[kind]] for kind in range(4)
        )
        if len(players) != 1:
            raise ValueError(f"a Sokoban grid needs exactly one player, found {len(players)}")
        if len(boxes) != len(targets) or not boxes:
            raise ValueError(
                f"a Sokoban grid needs as many boxes as targets (at least one), "
                f"found {len(boxes)} boxes and {len(targets)} targets"
            )
        board = Board(len(lines), width, frozenset(walls), tuple(targets))
        return cls(board, players[0], frozenset(boxes))

    def render(self) -> str:
        return self.board.render(self.player, self.boxes)


def indexed_levels(labelled_grids: Iterable[tuple[str, Sequence[str] | str]]) -> tuple[Level, ...]:
    """Levels read from ``(label, rows)`` pairs, each with its position as ``index``.

    A bad grid raises ``ValueError`` that starts with its label, so the user can see which one it was.
    """
    levels = []
    for index, (label, rows) in enumerate(labelled_grids):
        try:
            levels.append(dataclasses.replace(Level.from_rows(rows), index=index))
        except ValueError as error:
            raise ValueError(f"{label}: {error}") from None
    return tuple(levels)
