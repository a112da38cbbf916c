"""Cheap, sound deadlock tests: states that can be proved unsolvable without searching.

Two tests, both only ever say "dead" when the level really cannot be finished:

* a box on a *dead square* (``Board.dead``): no sequence of pushes brings it to any target; corners that
  are not targets are the simplest case;
* a *freeze*: a box that can never move again, on neither axis, while it or a box frozen with it is off
  target.  A box is blocked along an axis when a wall is on either side, when both sides are dead
  squares, or when a neighbouring box on that axis is itself frozen (checked recursively, treating the
  first box as a wall).  This covers 2x2 blocks of boxes and walls and boxes jammed along a wall.
"""

from __future__ import annotations

from tsr_envs.sokoban.level import Board

_AXES = ((0, 1), (2, 3))  # (Up, Down) and (Left, Right)


def is_frozen_deadlock(board: Board, box: int, boxes: frozenset[int]) -> bool:
    """Whether ``box`` is frozen with at least one box of its frozen group off target."""
    frozen: list[int] = []
    if not _frozen(board, box, boxes, frozenset(), frozen):
        return False
    return any(cell not in board.target_set for cell in frozen)


def is_dead(board: Board, boxes: frozenset[int]) -> bool:
    """Whether the boxes are provably stuck: one on a dead square or a frozen group off target."""
    dead = board.dead
    return any(dead[box] for box in boxes) or any(is_frozen_deadlock(board, box, boxes) for box in boxes)


def _frozen(
    board: Board, box: int, boxes: frozenset[int], as_walls: frozenset[int], frozen: list[int]
) -> bool:
    as_walls = as_walls | {box}
    for axis in _AXES:
        if not _blocked(board, box, axis, boxes, as_walls, frozen):
            return False
    frozen.append(box)
    return True


def _blocked(
    board: Board,
    box: int,
    axis: tuple[int, int],
    boxes: frozenset[int],
    as_walls: frozenset[int],
    frozen: list[int],
) -> bool:
    first, second = board.step[axis[0]][box], board.step[axis[1]][box]
    if first < 0 or second < 0 or first in as_walls or second in as_walls:
        return True
    if board.dead[first] and board.dead[second]:
        return True
    return any(side in boxes and _frozen(board, side, boxes, as_walls, frozen) for side in (first, second))
