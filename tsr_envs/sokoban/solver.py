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
* Budgets count expanded nodes, never seconds, so a search gives up at the same point on every machine.

Ties are broken by insertion order, so results are the same in every process.

Whether a *budgeted* ``solve`` finishes depends on what the cache already holds, so two processes with
different histories can disagree on whether a state is ``UNKNOWN``.  ``solve_within`` is the budgeted
answer that depends on nothing but the level, the state and the budget (the env's ``score`` uses it): its
searches may finish only at the states of the start's own plan, found from an empty cache.
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import NamedTuple

from tsr_envs.sokoban.deadlock import is_dead, is_frozen_deadlock
from tsr_envs.sokoban.level import UNREACHABLE, Board

State = tuple[int, frozenset[int]]


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


def solve(board: Board, player: int, boxes: frozenset[int], *, max_expansions: int | None = None) -> Entry:
    """The cached or freshly searched ``Entry`` of a state.

    ``max_expansions`` bounds the search by expanded nodes; when it runs out the result is ``UNKNOWN``.
    Distances are exact whatever the cache holds, but whether a bounded search finishes can depend on
    the states solved before it; ``solve_within`` is the history-free variant.
    """
    return _entry(board, (player, boxes), max_expansions, board.solutions)


def solve_within(board: Board, start: State, state: State, max_expansions: int | None) -> Entry:
    """The ``Entry`` of ``state`` as a pure function of the board, ``start``, ``state`` and the budget.

    The start is searched once from an empty cache; every other state is searched with only the states of
    the start's plan as known finishing points, so no earlier episode, clone or process history changes
    the answer (a restored env scores exactly as the original).  Exact entries found on the way also go
    into ``board.solutions`` for ``plan``.  Answers are memoised per (start, budget) on the board.
    """
    memo = board.budgeted.get((start, max_expansions))
    if memo is None:
        scratch: dict[State, Entry] = {}
        entry = _entry(board, start, max_expansions, scratch)
        anchor = {known: value for known, value in scratch.items() if value.distance >= 0}
        memo = board.budgeted[(start, max_expansions)] = (anchor, {start: entry})
        _learn(board, scratch)
    anchor, answers = memo
    entry = answers.get(state)
    if entry is None:
        scratch = dict(anchor)
        entry = _entry(board, state, max_expansions, scratch)
        answers[state] = entry
        if entry == UNSOLVABLE:
            # Every state this exhausted search reached is unsolvable, and a search from one of them
            # reaches a subset of these states, so it would exhaust within the budget too.
            for known, value in scratch.items():
                if value == UNSOLVABLE:
                    answers.setdefault(known, UNSOLVABLE)
        _learn(board, scratch)
    return entry


def _entry(board: Board, root: State, max_expansions: int | None, cache: dict[State, Entry]) -> Entry:
    """``root``'s entry from ``cache`` or a fresh search that reads and fills ``cache``."""
    known = cache.get(root)
    if known is not None:
        return known
    if board.solved(root[1]):
        entry = SOLVED
    elif is_dead(board, root[1]):
        entry = UNSOLVABLE
    else:
        entry = _search(board, root, max_expansions, cache)
    cache[root] = entry
    return entry


def _learn(board: Board, found: dict[State, Entry]) -> None:
    """Copy the facts of a private search (exact entries, proved unsolvable states) into the board's cache."""
    cache = board.solutions
    for state, entry in found.items():
        if entry.distance >= 0:
            _store(cache, state, entry)
        elif entry == UNSOLVABLE:
            cache[state] = UNSOLVABLE


def plan(board: Board, player: int, boxes: frozenset[int]) -> list[int] | None:
    """A shortest action list (direction indices) from a state already ``solve``d, or ``None``."""
    return _plan(board, (player, boxes), board.solutions)


def _plan(board: Board, state: State, cache: dict[State, Entry]) -> list[int] | None:
    actions = []
    entry = cache.get(state)
    if entry is None or entry.distance < 0:
        return None
    player, boxes = state
    while entry.distance > 0:
        actions.append(entry.action)
        player, boxes = board.move(player, boxes, entry.action)
        entry = cache[(player, boxes)]
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


def _search(board: Board, root: State, max_expansions: int | None, cache: dict[State, Entry]) -> Entry:
    step, dead = board.step, board.dead
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
            return _record(board, root, state, parent, cache)
        cost = -negative_cost
        if cost > best_cost[state]:
            continue
        expansions += 1
        if max_expansions is not None and expansions > max_expansions:
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


def _record(
    board: Board,
    root: State,
    final: State,
    parent: dict[State, tuple[State, int, int]],
    cache: dict[State, Entry],
) -> Entry:
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
    actions.extend(_plan(board, final, cache) or [])
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
