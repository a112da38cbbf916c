"""Seeded Sokoban level generation by reverse play; every level it returns is solvable.

1. Topology: a random walk carves floor out of a walled room (the border stays wall), changing
   direction with probability 0.35 and carving a small random shape at each of ``1.7 * (h + w)`` steps.
2. Targets: ``num_boxes`` distinct floor cells; the boxes start on them (the solved state).
3. Reverse play: a breadth-first search of *pull* moves (the player steps back, optionally dragging the
   box in front of it) from every solved state, i.e. the solved boxes with the player on any free cell.
   Breadth-first order makes each state's depth its exact fewest actions to solve, so the search is
   itself an optimal solver for every state it reaches: no separate verification is needed, and all
   those distances seed the board's solution cache (the env's ``score`` and oracle then cost a look-up).
4. The start is drawn uniformly from the deepest layer reached within ``max_states`` states: the
   hardest starts this room offers to a breadth-first budget.  Rooms whose best start needs fewer than
   ``min_solution_length`` actions are rejected and a new room is drawn.

Only ``rng`` supplies randomness; iteration orders are fixed, so a seed gives the same level everywhere.
"""

from __future__ import annotations

import numpy as np

from tsr_envs.sokoban.level import Board, Level
from tsr_envs.sokoban.solver import Entry, State

#: Shapes carved around the walker, as (row, column) offsets: a cell, bars of two and three, a square.
_SHAPES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, 0),),
    ((0, 0), (0, 1)),
    ((0, 0), (1, 0)),
    ((0, -1), (0, 0), (0, 1)),
    ((-1, 0), (0, 0), (1, 0)),
    ((0, 0), (0, 1), (1, 0), (1, 1)),
)
_DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))
CHANGE_DIRECTION_PROBABILITY = 0.35
MAX_ROOM_ATTEMPTS = 1000


def check_parameters(dim_room: tuple[int, int], num_boxes: int, min_solution_length: int) -> None:
    if len(dim_room) != 2 or any(not isinstance(side, (int, np.integer)) or side < 4 for side in dim_room):
        raise ValueError(f"dim_room must be two integers >= 4 (rows, columns), got {dim_room!r}")
    interior = (dim_room[0] - 2) * (dim_room[1] - 2)
    if not isinstance(num_boxes, (int, np.integer)) or not 1 <= num_boxes <= interior // 3:
        raise ValueError(
            f"num_boxes must be between 1 and {interior // 3} for a {dim_room} room, got {num_boxes!r}"
        )
    if not isinstance(min_solution_length, int) or min_solution_length < 1:
        raise ValueError(f"min_solution_length must be a positive integer, got {min_solution_length!r}")


def generate_level(
    rng: np.random.Generator,
    dim_room: tuple[int, int] = (6, 6),
    num_boxes: int = 1,
    *,
    min_solution_length: int = 2,
    max_states: int = 20_000,
) -> Level:
    """A random solvable level whose shortest solution has at least ``min_solution_length`` actions."""
    check_parameters(dim_room, num_boxes, min_solution_length)
    height, width = int(dim_room[0]), int(dim_room[1])
    for _ in range(MAX_ROOM_ATTEMPTS):
        floor = carve_room(rng, height, width)
        if len(floor) < num_boxes + 2:
            continue
        targets = tuple(sorted(floor[index] for index in rng.permutation(len(floor))[:num_boxes].tolist()))
        walls = frozenset(range(height * width)) - frozenset(floor)
        board = Board(height, width, walls, targets)
        distances, deepest = reverse_search(board, max_states)
        player, boxes = deepest[int(rng.integers(len(deepest)))]
        if distances[(player, boxes)].distance >= min_solution_length:
            board.solutions.update(distances)
            return Level(board, player, boxes)
    raise RuntimeError(
        f"no {dim_room} level with {num_boxes} boxes and a solution of >= {min_solution_length} actions "
        f"in {MAX_ROOM_ATTEMPTS} rooms; lower min_solution_length or num_boxes"
    )


def carve_room(rng: np.random.Generator, height: int, width: int) -> list[int]:
    """The sorted floor cells of a random-walk room inside a one-cell wall border."""
    steps = int(1.7 * (height + width))
    row, col = int(rng.integers(1, height - 1)), int(rng.integers(1, width - 1))
    # One draw per kind of decision (cheaper than one call per step): turn?, new direction, shape.
    turns = (rng.random(steps) < CHANGE_DIRECTION_PROBABILITY).tolist()
    directions = rng.integers(4, size=steps).tolist()
    shapes = rng.integers(len(_SHAPES), size=steps).tolist()
    d_row, d_col = _DIRECTIONS[int(rng.integers(4))]
    floor = set()
    for turn, direction, shape in zip(turns, directions, shapes, strict=True):
        if turn:
            d_row, d_col = _DIRECTIONS[direction]
        for s_row, s_col in _SHAPES[shape]:
            r, c = row + s_row, col + s_col
            if 0 < r < height - 1 and 0 < c < width - 1:
                floor.add(r * width + c)
        row = min(max(row + d_row, 1), height - 2)
        col = min(max(col + d_col, 1), width - 2)
    return sorted(floor)


def reverse_search(board: Board, max_states: int) -> tuple[dict[State, Entry], list[State]]:
    """Breadth-first pull search from the solved states: exact distances and the deepest layer reached.

    A forward move ``d`` from ``(q, B')`` to ``(p, B)`` is undone by stepping from ``p`` back to ``q``,
    pulling the box on ``p + d`` onto ``p`` if wanted.  The search stops after the layer in which it
    exceeds ``max_states``; layers are complete up to the previous one, so every depth found is exact.
    """
    step = board.step
    solved = frozenset(board.targets)
    layer = [(cell, solved) for cell in board.floor_cells() if cell not in solved]
    distances = {state: Entry(0, -1) for state in layer}
    depth = 0
    while True:
        depth += 1
        following = []
        for player, boxes in layer:
            for direction in range(4):
                back = step[direction][player]
                if back < 0 or back in boxes:
                    continue
                dragged = step[direction ^ 1][player]
                candidates = [(back, boxes)]
                if dragged in boxes:
                    candidates.append((back, boxes.difference((dragged,)).union((player,))))
                for state in candidates:
                    if state not in distances:
                        distances[state] = Entry(depth, direction ^ 1)
                        following.append(state)
        if not following:
            return distances, layer
        layer = following
        if len(distances) >= max_states:
            return distances, layer
