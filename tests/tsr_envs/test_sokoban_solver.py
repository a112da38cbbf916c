"""Sokoban generation and the optimal solver, cross-checked against a brute-force breadth-first search."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from tsr_envs.sokoban import Board, Level, SokobanEnv, generate_level, lower_bound, plan, solve
from tsr_envs.sokoban.generator import reverse_search
from tsr_envs.sokoban.solver import UNKNOWN, UNSOLVABLE

SIZES = [((6, 6), 1), ((7, 7), 2), ((8, 8), 2), ((10, 10), 3)]


def fresh(board: Board) -> Board:
    """The same board with an empty solution cache, so the A* search really runs."""
    return Board(board.height, board.width, board.walls, board.targets)


def brute_force_distance(board: Board, player: int, boxes: frozenset[int]) -> int | None:
    """Fewest actions to solve, by breadth-first search over all states; None if unsolvable."""
    seen = {(player, boxes)}
    queue = deque([(player, boxes, 0)])
    while queue:
        player, boxes, depth = queue.popleft()
        if board.solved(boxes):
            return depth
        for direction in range(4):
            state = board.move(player, boxes, direction)
            if state not in seen:
                seen.add(state)
                queue.append((*state, depth + 1))
    return None


def replay(board: Board, player: int, boxes: frozenset[int], actions: list[int]) -> frozenset[int]:
    for action in actions:
        player, boxes = board.move(player, boxes, action)
    return boxes


@pytest.mark.parametrize("seed", range(32))
def test_generated_levels_are_solvable_and_the_oracle_replays_to_success(seed):
    dim_room, num_boxes = SIZES[seed % len(SIZES)]
    env = SokobanEnv(dim_room=dim_room, num_boxes=num_boxes, max_actions_per_turn=1, max_steps=200)
    _, info = env.reset(seed=seed)
    level = env.unwrapped._task
    cold = fresh(level.board)
    entry = solve(cold, level.player, level.boxes)
    assert entry.distance == info["optimal_length"] >= 2
    assert replay(cold, level.player, level.boxes, plan(cold, level.player, level.boxes)) == cold.target_set
    actions = env.optimal_actions()
    assert len(actions) == entry.distance
    for number, action in enumerate(actions, start=1):
        _, _, terminated, truncated, info = env.step(action)
        assert terminated == (number == len(actions)) and not truncated
    assert info["success"] and info["score"] == 1.0 and env.unwrapped._num_actions == entry.distance


@pytest.mark.parametrize("seed", range(12))
def test_solver_matches_brute_force_from_random_states(seed):
    rng = np.random.default_rng(seed)
    dim_room, num_boxes = SIZES[seed % 3]
    level = generate_level(rng, dim_room, num_boxes)
    player, boxes = level.player, level.boxes
    for _ in range(12):  # random walks reach unsolvable states too
        for direction in rng.integers(4, size=5):
            player, boxes = level.board.move(player, boxes, int(direction))
        board = fresh(level.board)
        expected = brute_force_distance(board, player, boxes)
        entry = solve(board, player, boxes)
        assert entry.distance == (UNSOLVABLE.distance if expected is None else expected)
        if expected is not None:
            assert lower_bound(board, boxes) <= expected
            assert replay(board, player, boxes, plan(board, player, boxes)) == board.target_set


def test_reverse_search_distances_are_exact():
    level = generate_level(np.random.default_rng(5), (7, 7), 2)
    distances, deepest = reverse_search(fresh(level.board), max_states=3_000)
    for state in list(distances)[::97] + deepest[:5]:
        assert distances[state].distance == brute_force_distance(level.board, *state)


def test_solver_on_a_hand_made_level_and_an_unsolvable_one():
    level = Level.from_rows(["#######", "#P X O#", "#######"])
    assert solve(level.board, level.player, level.boxes).distance == 3
    assert plan(level.board, level.player, level.boxes) == [3, 3, 3]
    stuck = Level.from_rows(["#####", "#P X#", "#O  #", "#####"])  # box in a corner
    assert solve(stuck.board, stuck.player, stuck.boxes) == UNSOLVABLE
    assert plan(stuck.board, stuck.player, stuck.boxes) is None


def test_the_solver_reports_unknown_when_its_budget_runs_out():
    level = generate_level(np.random.default_rng(2), (10, 10), 3)
    board = fresh(level.board)
    assert solve(board, level.player, level.boxes, max_expansions=1) == UNKNOWN
    assert plan(board, level.player, level.boxes) is None


def test_generation_is_seeded_and_respects_min_solution_length():
    first = generate_level(np.random.default_rng(11), (8, 8), 2, min_solution_length=10)
    again = generate_level(np.random.default_rng(11), (8, 8), 2, min_solution_length=10)
    assert first == again and first.render() == again.render()
    assert first.board.solutions[(first.player, first.boxes)].distance >= 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim_room": (3, 6)}, "dim_room"),
        ({"dim_room": (6,)}, "dim_room"),
        ({"num_boxes": 0}, "num_boxes"),
        ({"num_boxes": 9}, "num_boxes"),
        ({"min_solution_length": 0}, "min_solution_length"),
        ({"max_states": 0}, "max_states"),
    ],
)
def test_bad_generator_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SokobanEnv(**kwargs)
