"""Deadlock detection on hand-made grids: dead squares and freezes are found, live states are not."""

from __future__ import annotations

import pytest

from tsr_envs.sokoban import Level
from tsr_envs.sokoban.deadlock import is_dead


def dead(rows: list[str]) -> bool:
    level = Level.from_rows(rows)
    return is_dead(level.board, level.boxes)


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("box in a corner", ["#####", "#X  #", "#  O#", "# P #", "#####"]),
        (
            "box on a wall with no target along it",
            ["######", "#    #", "# O  #", "#P   #", "# X  #", "######"],
        ),
        ("two boxes side by side along a wall", ["#######", "# XX O#", "#    O#", "#P    #", "#######"]),
        ("2x2 block of boxes", ["######", "#    #", "# XX #", "# XX #", "#OOOO#", "#P   #", "######"]),
        (
            "2x2 of two boxes and two walls",
            ["######", "##   #", "#X   #", "#X#  #", "#  OO#", "#P   #", "######"],
        ),
        (
            "frozen pair with one box on target",
            ["######", "#√X  #", "#    #", "#  O #", "#P   #", "######"],
        ),
    ],
)
def test_deadlocks_are_detected(name, rows):
    assert dead(rows), name


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("box in the open", ["#####", "#   #", "# X #", "# O #", "#P  #", "#####"]),
        ("box on a wall that has a target", ["######", "#  XO#", "#    #", "#P   #", "######"]),
        ("box in a corner on its target", ["#####", "#√  #", "#   #", "# P #", "#####"]),
        ("frozen pair both on targets", ["######", "#√√  #", "#    #", "#P   #", "######"]),
        (
            "two boxes apart on a wall with targets",
            ["########", "# X XOO#", "#      #", "#P     #", "########"],
        ),
    ],
)
def test_live_states_are_not_flagged(name, rows):
    assert not dead(rows), name
