"""An optimal Sokoban solver: fewest actions (moves, pushes included) from any state.

A* over *push states*: a node is the state just after a push, with the player's cell exact (it stands
where the box was), and an edge is "walk by a shortest path to the cell behind a box, then push it",
costing the walk's length plus one.  Between pushes only walking happens, so this graph contains a
shortest solution, and it is far smaller than the graph of single moves.

* Heuristic: the cheapest assignment of boxes to distinct targets by push distance (``lower_bound``).
  Every push moves one box one cell, so it is admissible and consistent, and A* needs no re-opening.
* Pruning: a push onto a dead square or into a freeze deadlock (``deadlock``) is never generated.
* Cache: results go into ``board.solutions`` as ``Entry(distance, first action)`` for every state on the
  solution found (subpaths of shortest paths are shortest), or ``UNSOLVABLE``/``UNKNOWN``.  A later
  search that reaches a cached state finishes there (it queues the exact total as a goal), so an agent
  that strays from a known plan costs a short search, and ``plan`` just follows the cached actions.

Ties are broken by insertion order, so results are the same in every process.
"""

from __future__ import annotations

import heapq
import time
from itertools import count
from typing import NamedTuple

from tsr_envs.sokoban.deadlock import is_dead, is_frozen_deadlock
from tsr_envs.sokoban.level import UNREACHABLE, Board

State = tuple[int, frozenset[int]]
_CHECK_CLOCK_EVERY = 256


class Entry(NamedTuple):
    """What the solver knows about one state."""

    #: the fewest actions to solve from this state, or ``UNSOLVABLE`` (-1) / ``UNKNOWN`` (-2)
    distance: int
    #: the first action (direction index) of a shortest plan; -1 when solved, unsolvable or unknown
    action: int


UNSOLVABLE = Entry(-1, -1)
#: the search ran out of budget; cached so the same state is not searched again with the same budget
UNKNOWN = Entry(-2, -1)
SOLVED = Entry(0, -1)


def lower_bound(board: Board, boxes: frozenset[int]) -> int:
    """Admissible estimate of the actions left: the min-cost matching of boxes to targets by push distance.

    Solved exactly by dynamic programming over subsets of targets (boxes are few).  Returns
    ``UNREACHABLE`` when no assignment exists.
    """
    distances = board.push_distances
    best = {0: 0}
    for box in boxes:
        row = distances[box]
        following: dict[int, int] = {}
        for used, cost in best.items():
            for target, push in enumerate(row):
                bit = 1 << target
                if push != UNREACHABLE and not used & bit:
                    total = cost + push
                    if total < following.get(used | bit, UNREACHABLE):
                        following[used | bit] = total
        best = following
    return min(best.values(), default=UNREACHABLE)


def solve(
    board: Board,
    player: int,
    boxes: frozenset[int],
    *,
    time_limit: float | None = None,
    max_expansions: int | None = None,
) -> Entry:
    """The cached or freshly searched ``Entry`` of a state.

    ``time_limit`` (seconds) and ``max_expansions`` bound the search; when either runs out the result
    is ``UNKNOWN``.  ``max_expansions`` makes the outcome independent of machine speed.
    """
    cache = board.solutions
    root = (player, boxes)
    known = cache.get(root)
    if known is not None:
        return known
    if board.solved(boxes):
        entry = SOLVED
    elif is_dead(board, boxes):
        entry = UNSOLVABLE
    else:
        entry = _search(board, root, time_limit, max_expansions)
    cache[root] = entry
    return entry


def plan(board: Board, player: int, boxes: frozenset[int]) -> list[int] | None:
    """A shortest action list (direction indices) from a state already ``solve``d, or ``None``."""
    actions = []
    entry = board.solutions.get((player, boxes))
    if entry is None or entry.distance < 0:
        return None
    while entry.distance > 0:
        actions.append(entry.action)
        player, boxes = board.move(player, boxes, entry.action)
        entry = board.solutions[(player, boxes)]
    return actions


def walk(board: Board, start: int, goal: int, boxes: frozenset[int]) -> list[int]:
    """A shortest walk (direction indices) between two cells around the boxes; the goal must be reachable."""
    came_from = {start: (-1, -1)}
    frontier = [start]
    while goal not in came_from:
        following = []
        for cell in frontier:
            for direction in range(4):
                other = board.step[direction][cell]
                if other >= 0 and other not in came_from and other not in boxes:
                    came_from[other] = (cell, direction)
                    following.append(other)
        frontier = following
    directions = []
    cell = goal
    while cell != start:
        cell, direction = came_from[cell]
        directions.append(direction)
    return directions[::-1]


def _walk_distances(board: Board, player: int, boxes: frozenset[int]) -> list[int]:
    distance = [-1] * board.size
    distance[player] = 0
    frontier, steps, adjacent = [player], 0, board.adjacent
    while frontier:
        steps += 1
        following = []
        for cell in frontier:
            for other in adjacent[cell]:
                if distance[other] < 0 and other not in boxes:
                    distance[other] = steps
                    following.append(other)
        frontier = following
    return distance


def _search(board: Board, root: State, time_limit: float | None, max_expansions: int | None) -> Entry:
    cache, step, dead = board.solutions, board.step, board.dead
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    bounds: dict[frozenset[int], int] = {}
    tie = count()
    # Heap items: (f, -g, tie, is_final, state).  A final item's f is its exact total cost.
    heap = [(lower_bound(board, root[1]), 0, next(tie), False, root)]
    best_cost = {root: 0}
    parent: dict[State, tuple[State, int, int]] = {}  # state -> (previous state, push cell, direction)
    expansions = 0
    while heap:
        _, negative_cost, _, is_final, state = heapq.heappop(heap)
        if is_final:
            return _record(board, root, state, parent)
        cost = -negative_cost
        if cost > best_cost[state]:
            continue
        expansions += 1
        if max_expansions is not None and expansions > max_expansions:
            return UNKNOWN
        if deadline is not None and expansions % _CHECK_CLOCK_EVERY == 0 and time.perf_counter() > deadline:
            return UNKNOWN
        player, boxes = state
        walk_distance = _walk_distances(board, player, boxes)
        for box in sorted(boxes):
            for direction in range(4):
                behind, ahead = step[direction ^ 1][box], step[direction][box]
                if behind < 0 or ahead < 0 or walk_distance[behind] < 0 or ahead in boxes or dead[ahead]:
                    continue
                moved = boxes.difference((box,)).union((ahead,))
                if is_frozen_deadlock(board, ahead, moved):
                    continue
                successor = (box, moved)
                successor_cost = cost + walk_distance[behind] + 1
                if successor_cost >= best_cost.get(successor, UNREACHABLE):
                    continue
                known = cache.get(successor)
                if known is not None and known.distance == UNSOLVABLE.distance:
                    continue
                best_cost[successor] = successor_cost
                parent[successor] = (state, behind, direction)
                if board.solved(moved) or (known is not None and known.distance >= 0):
                    total = successor_cost + (known.distance if known is not None else 0)
                    heapq.heappush(heap, (total, -successor_cost, next(tie), True, successor))
                    continue
                bound = bounds.get(moved)
                if bound is None:
                    bound = bounds[moved] = lower_bound(board, moved)
                if bound < UNREACHABLE:
                    heapq.heappush(
                        heap, (successor_cost + bound, -successor_cost, next(tie), False, successor)
                    )
    for state in best_cost:  # every state reachable from an unsolvable one is unsolvable
        cache.setdefault(state, UNSOLVABLE)
    return UNSOLVABLE


def _record(board: Board, root: State, final: State, parent: dict[State, tuple[State, int, int]]) -> Entry:
    """Cache every state on the solution root -> final (-> the cached rest) and return the root's entry."""
    pushes = []
    state = final
    while state != root:
        state, behind, direction = parent[state]
        pushes.append((state, behind, direction))
    actions = []
    for (player, boxes), behind, direction in reversed(pushes):
        actions.extend(walk(board, player, behind, boxes))
        actions.append(direction)
    actions.extend(plan(board, *final) or [])
    cache = board.solutions
    player, boxes = root
    for index, action in enumerate(actions):
        _store(cache, (player, boxes), Entry(len(actions) - index, action))
        player, boxes = board.move(player, boxes, action)
    _store(cache, (player, boxes), SOLVED)
    return cache[root]


def _store(cache: dict[State, Entry], state: State, entry: Entry) -> None:
    """Record an exact entry unless one is known (the first plan found stays, so plans stay consistent)."""
    if cache.get(state, UNKNOWN).distance < 0:
        cache[state] = entry
