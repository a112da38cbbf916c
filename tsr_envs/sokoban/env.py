"""Sokoban as a text game with cloneable state (RAGEN's symbols, gym-sokoban's rewards)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tsr_envs.core import TextEnv, Transition
from tsr_envs.sokoban.boxoban import load_boxoban
from tsr_envs.sokoban.generator import check_parameters, generate_level
from tsr_envs.sokoban.level import ACTIONS, Level, indexed_levels
from tsr_envs.sokoban.solver import UNKNOWN, UNSOLVABLE, Entry, lower_bound, plan, solve_within

STEP_PENALTY = -0.1
BOX_ON_TARGET_REWARD = 1.0
BOX_OFF_TARGET_PENALTY = -1.0
FINISH_REWARD = 10.0
#: Solver nodes per state before the score falls back to the lower bound: 94% of the first 150 Boxoban
#: unfiltered test levels solve from the start within it, and a search that gives up costs about a
#: second, which keeps a random agent's steps on a hard level affordable.
DEFAULT_SOLVER_MAX_EXPANSIONS = 20_000
STUCK_MESSAGE = "A box is stuck; this level can no longer be solved."

INSTRUCTIONS = (
    "You are solving the Sokoban puzzle. You are the player and you need to push all boxes to targets. "
    "When you are right next to a box, you can push it by moving in the same direction. You cannot push "
    "a box through a wall, and you cannot pull a box. The grid shows: # wall, _ empty floor, O target, "
    "X box, √ box on target, P you, S you on a target. Actions: Up, Down, Left, Right. "
    "Answer with one or more actions separated by ||, at most {max_actions} per turn, for example "
    "<think>The box is to my right and the target is beyond it.</think><answer>Right || Right || Up</answer>"
)


class SokobanEnv(TextEnv):
    """Sokoban with seeded, solvable generated levels or levels from a DeepMind Boxoban file.

    Rewards are gym-sokoban's: -0.1 per action, +1 for pushing a box onto a target, -1 for pushing one
    off, +10 when every box is on a target (the episode terminates).  Walking into a wall or an
    unpushable box is a legal action that changes nothing and still costs -0.1.  A deadlocked level does
    not end the episode (as in RAGEN); the feedback says so.

    ``score`` is ``D0 / (D0 + d)`` as in FrozenLake: ``d`` is the fewest actions that solve the level from
    the current state, ``D0`` the same from the start, so the start scores 0.5 and a solved level 1.0.
    A state from which the level cannot be solved (a detected deadlock, or proved by the solver) scores
    0.0.  Distances come from the optimal solver (``tsr_envs.sokoban.solver.solve_within``), cached per
    level.  When a search expands more than ``solver_max_expansions`` nodes (hard Boxoban levels), the
    admissible lower bound (the box-to-target push-distance matching) stands in for ``d``, and for ``D0``
    if the start itself was not solved.  The budget counts nodes, not seconds, and the answer for a state
    does not depend on the states visited before it, so a score is the same on every machine and in every
    process, a restored or unpickled env included.  ``solver_max_expansions=None`` never gives up.

    Keyword arguments: ``dim_room`` (rows, columns) and ``num_boxes`` of generated levels,
    ``min_solution_length`` (generated levels need at least this many actions), ``max_states`` (the
    generator's reverse-search budget), ``level_file`` (a Boxoban file) or ``levels`` (a few fixed
    levels, each a list of rows in RAGEN's or Boxoban's symbols); ``reset(options={"level_index": i})``
    picks one of those, otherwise the seed does; ``max_steps`` (actions per episode, default 100),
    and those of ``TextEnv``.
    """

    def __init__(
        self,
        *,
        dim_room: tuple[int, int] = (6, 6),
        num_boxes: int = 1,
        level_file: str | os.PathLike[str] | None = None,
        levels: Sequence[Sequence[str] | str] | None = None,
        min_solution_length: int = 2,
        max_states: int = 20_000,
        solver_max_expansions: int | None = DEFAULT_SOLVER_MAX_EXPANSIONS,
        max_steps: int | None = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_steps=max_steps, **kwargs)
        #: the fixed levels the seed chooses from; ``None`` for generated levels
        self.levels: tuple[Level, ...] | None = None
        if level_file is not None and levels is not None:
            raise ValueError("give either level_file (a Boxoban file) or levels (a list of grids), not both")
        if level_file is not None:
            self.levels = load_boxoban(level_file)
        elif levels is not None:
            self.levels = _fixed_levels(levels)
        else:
            dim_room = tuple(dim_room)
            check_parameters(dim_room, num_boxes, min_solution_length)
        if max_states < 1:
            raise ValueError(f"max_states must be a positive integer, got {max_states!r}")
        if solver_max_expansions is not None and (
            isinstance(solver_max_expansions, bool)
            or not isinstance(solver_max_expansions, int)
            or solver_max_expansions < 1
        ):
            raise ValueError(
                f"solver_max_expansions must be a positive integer or None, got {solver_max_expansions!r}"
            )
        self.dim_room = dim_room
        self.num_boxes = num_boxes
        self.level_file = level_file
        self.min_solution_length = min_solution_length
        self.max_states = max_states
        self.solver_max_expansions = solver_max_expansions
        self._player = 0
        self._boxes: frozenset[int] = frozenset()
        # The last ``_remaining`` answer: ``info`` asks for it twice a step (score and status).
        self._remaining_memo: tuple[Any, int, frozenset[int], int | None] = (None, -1, frozenset(), None)

    # -- instance
    def _new_task(self, options: dict[str, Any]) -> None:
        if self.levels is None:
            level = generate_level(
                self.np_random,
                self.dim_room,
                self.num_boxes,
                min_solution_length=self.min_solution_length,
                max_states=self.max_states,
            )
        else:
            level = self.levels[self._level_index(options)]
        self._task = level
        self._player, self._boxes = level.player, level.boxes

    def _level_index(self, options: dict[str, Any]) -> int:
        count = len(self.levels)
        index = options.get("level_index")
        if index is None:
            return int(self.np_random.integers(count))
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            source = self.level_file or "these levels"
            raise ValueError(f"level_index must be an integer in [0, {count}) for {source}, got {index!r}")
        return index

    @property
    def level_index(self) -> int | None:
        """Which of ``levels`` this episode is played on (``None`` for generated levels), after ``reset``.

        With a few fixed levels, success on each one says what a policy learned, not only how much.
        """
        return self._task.index if self.levels is not None else None

    def _get_dynamic(self) -> tuple:
        return (self._player, self._boxes)

    def _set_dynamic(self, dynamic: tuple) -> None:
        self._player, self._boxes = dynamic

    # -- dynamics
    def legal_actions(self) -> list[str]:
        return list(ACTIONS)

    def _apply(self, action: str) -> Transition:
        board = self._task.board
        targets = board.target_set
        before = len(self._boxes & targets)
        self._player, self._boxes = board.move(self._player, self._boxes, ACTIONS.index(action))
        after = len(self._boxes & targets)
        reward = STEP_PENALTY
        if after > before:
            reward += BOX_ON_TARGET_REWARD
        elif after < before:
            reward += BOX_OFF_TARGET_PENALTY
        solved = board.solved(self._boxes)
        if solved:
            reward += FINISH_REWARD
        return Transition(reward, solved)

    # -- views
    def _render(self) -> str:
        return self._task.board.render(self._player, self._boxes)

    def _success(self) -> bool:
        return self._task.board.solved(self._boxes)

    def _entry(self, player: int, boxes: frozenset[int]) -> Entry:
        level = self._task
        return solve_within(
            level.board, (level.player, level.boxes), (player, boxes), self.solver_max_expansions
        )

    def _remaining(self, player: int, boxes: frozenset[int]) -> int | None:
        """Fewest actions to solve from a state, the lower bound if the solver gave up, ``None`` if dead."""
        task, memo_player, memo_boxes, memo = self._remaining_memo
        if task is self._task and memo_player == player and memo_boxes == boxes:
            return memo
        entry = self._entry(player, boxes)
        if entry == UNSOLVABLE:
            remaining = None
        else:
            remaining = lower_bound(self._task.board, boxes) if entry == UNKNOWN else entry.distance
        self._remaining_memo = (self._task, player, boxes, remaining)
        return remaining

    def _score(self) -> float:
        if self._success():
            return 1.0
        remaining = self._remaining(self._player, self._boxes)
        if remaining is None:
            return 0.0
        level = self._task
        start = max(self._remaining(level.player, level.boxes) or 0, 1)
        return start / (start + remaining)

    def _status(self) -> str:
        if self._success():
            return "All boxes are on targets: you solved the level!"
        return STUCK_MESSAGE if self._remaining(self._player, self._boxes) is None else ""

    def _extra_info(self) -> dict[str, Any]:
        return {"boxes_on_target": len(self._boxes & self._task.board.target_set)}

    def _reset_info(self) -> dict[str, Any]:
        level = self._task
        distance = self._entry(level.player, level.boxes).distance
        info: dict[str, Any] = {"optimal_length": distance if distance >= 0 else None}
        if level.index is not None:
            info["level_index"] = level.index
        return info

    def instructions(self) -> str:
        return INSTRUCTIONS.format(max_actions=self.max_actions_per_turn)

    def optimal_actions(self) -> list[str] | None:
        """A shortest plan from the current state; ``None`` when unsolvable or the solver gave up."""
        if self._entry(self._player, self._boxes).distance < 0:
            return None
        directions = plan(self._task.board, self._player, self._boxes)
        return None if directions is None else [ACTIONS[direction] for direction in directions]


def _fixed_levels(levels: Sequence[Sequence[str] | str]) -> tuple[Level, ...]:
    if isinstance(levels, str) or not levels:
        raise ValueError("levels must be a non-empty list of grids, each a list of row strings")
    return indexed_levels((f"levels[{index}]", rows) for index, rows in enumerate(levels))


class BoxobanEnv(SokobanEnv):
    """Sokoban on the levels of a DeepMind Boxoban file (``tsr/Boxoban-v0``); ``level_file`` is required."""

    def __init__(self, *, level_file: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        if level_file is None:
            raise ValueError(
                "BoxobanEnv needs level_file=PATH, a DeepMind Boxoban level file, e.g. "
                "gymnasium.make('tsr/Boxoban-v0', level_file='boxoban-levels/unfiltered/train/000.txt')"
            )
        super().__init__(level_file=level_file, **kwargs)
