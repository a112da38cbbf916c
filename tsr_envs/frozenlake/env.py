"""FrozenLake as a text game with cloneable state.

Dynamics are Gymnasium's ``FrozenLake-v1``: with ``is_slippery`` the intended move happens with
probability ``success_rate`` and each perpendicular move with ``(1 - success_rate) / 2``; the outcome is
drawn the way Gymnasium draws it (one uniform number against the cumulative probabilities of the moves
``a-1, a, a+1``).  With a fixed ``desc`` the start cell is drawn like Gymnasium's too, so the same seed
gives the same slips as ``gymnasium.make("FrozenLake-v1", desc=..., is_slippery=True)`` step for step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from tsr_envs.core import TextEnv, Transition
from tsr_envs.frozenlake.maps import MOVES, UNREACHABLE, LakeMap, check_random_map_parameters, random_map

ACTIONS: tuple[str, ...] = tuple(name for name, _, _ in MOVES)
PLAYER_SYMBOLS = {"S": "P", "F": "P", "H": "X", "G": "√"}

INSTRUCTIONS = (
    "You are solving the FrozenLake puzzle. The grid shows: P you, _ frozen ice, O a hole, G the goal, "
    "X you in a hole, √ you on the goal. Reach the goal without falling into a hole. "
    "Actions: Left, Down, Right, Up. {slip}"
    "Answer with one or more actions separated by ||, at most {max_actions} per turn, for example "
    "<think>The goal is below me.</think><answer>Down || Down</answer>"
)


class LakeTask(NamedTuple):
    lake: LakeMap
    start: int


class FrozenLakeEnv(TextEnv):
    """FrozenLake with random solvable maps from the seed, a fixed Gymnasium-style ``desc``, or ``maps``.

    ``maps`` is a fixed set of ``desc`` maps; each episode's seed picks one of them uniformly (then the
    start cell, as with ``desc``).  It serves a small curriculum of hand-made instances that, unlike one
    fixed map, the policy has to tell apart by reading the board.

    Defaults follow RAGEN's current FrozenLake: 4×4, frozen probability ``p=0.8``, random start and goal,
    slippery with ``success_rate=0.8``.  Rewards are Gymnasium's: 1 for reaching the goal, 0 otherwise;
    the episode ends in a hole or on the goal.  ``score`` is ``D0 / (D0 + d)`` with ``d`` the
    shortest-path distance from the player to the goal and ``D0`` that distance from the start: 0.5 at the
    start, 1 on the goal, 0 in a hole.
    """

    def __init__(
        self,
        *,
        size: int = 4,
        p: float = 0.8,
        desc: list[str] | str | None = None,
        maps: Sequence[Sequence[str] | str] | None = None,
        is_slippery: bool = True,
        success_rate: float = 0.8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < success_rate <= 1.0:
            raise ValueError(f"success_rate must be in (0, 1], got {success_rate!r}")
        if desc is not None and maps is not None:
            raise ValueError("give either desc (one map) or maps (a set of maps), not both")
        if maps is not None and (isinstance(maps, str) or not maps):
            raise ValueError("maps must be a non-empty list of maps, each a list of row strings")
        descs = [desc] if desc is not None else list(maps or [])
        #: the fixed maps the seed chooses from; empty for random maps
        self.fixed_maps: tuple[LakeMap, ...] = tuple(LakeMap.from_desc(each) for each in descs)
        if not self.fixed_maps:
            check_random_map_parameters(size, p)
        self.size = max((lake.nrow for lake in self.fixed_maps), default=size)
        self.p = p
        self.is_slippery = bool(is_slippery)
        self.success_rate = float(success_rate)
        self.stochastic = self.is_slippery and self.success_rate < 1.0
        fail = (1.0 - self.success_rate) / 2.0
        self._cumulative = (fail, fail + self.success_rate)
        self._position = 0
        # The oracle's value table for the current map (a cache, shared with clones; not episode state).
        self._policy_cache: dict[str, Any] = {}

    # -- instance
    def _new_task(self, options: dict[str, Any]) -> None:
        if not self.fixed_maps:
            lake = random_map(self.size, self.p, self.np_random)
        elif len(self.fixed_maps) == 1:
            lake = self.fixed_maps[0]  # no draw for the map, so the slips stay Gymnasium's
        else:
            lake = self.fixed_maps[int(self.np_random.integers(len(self.fixed_maps)))]
        starts = lake.starts()
        # Gymnasium draws the start uniformly over the S cells with one uniform number.
        start = starts[min(int(self.np_random.random() * len(starts)), len(starts) - 1)]
        self._task = LakeTask(lake, start)
        self._position = start

    @property
    def map_index(self) -> int | None:
        """Which of ``fixed_maps`` this episode is played on (``None`` for random maps), after ``reset``.

        With several fixed maps, success on each one says what a policy learned, not only how much.
        """
        return self.fixed_maps.index(self._task.lake) if len(self.fixed_maps) > 1 else None

    def _get_dynamic(self) -> tuple:
        return (self._position,)

    def _set_dynamic(self, dynamic: tuple) -> None:
        (self._position,) = dynamic

    # -- dynamics
    def legal_actions(self) -> list[str]:
        return list(ACTIONS)

    def _apply(self, action: str) -> Transition:
        move = ACTIONS.index(action)
        if self.is_slippery:
            draw = self.np_random.random()
            offset = -1 if draw < self._cumulative[0] else (0 if draw < self._cumulative[1] else 1)
            move = (move + offset) % len(ACTIONS)
        lake = self._task.lake
        self._position = lake.neighbour(self._position, move)
        tile = lake.tile(self._position)
        return Transition(1.0 if tile == "G" else 0.0, tile in "GH")

    # -- views
    def _render(self) -> str:
        lake, cell = self._task.lake, self._position
        rows = list(lake.symbol_rows)
        row, col = divmod(cell, lake.ncol)
        rows[row] = rows[row][:col] + PLAYER_SYMBOLS[lake.tile(cell)] + rows[row][col + 1 :]
        return "\n".join(rows)

    def _success(self) -> bool:
        return self._task.lake.tile(self._position) == "G"

    def _score(self) -> float:
        lake, start = self._task
        distance = lake.distance[self._position]
        if distance == UNREACHABLE:
            return 0.0
        start_distance = max(lake.distance[start], 1)
        return start_distance / (start_distance + distance)

    def _status(self) -> str:
        return {"H": "You fell into a hole.", "G": "You reached the goal!"}.get(
            self._task.lake.tile(self._position), ""
        )

    def instructions(self) -> str:
        slip = (
            f"The ice is slippery: a move goes the intended way with probability {self.success_rate:.2f}, "
            "otherwise sideways. "
            if self.stochastic
            else ""
        )
        return INSTRUCTIONS.format(slip=slip, max_actions=self.max_actions_per_turn)

    def optimal_actions(self) -> list[str] | None:
        """The oracle's plan; ``None`` when the goal cannot be reached.

        On deterministic ice: a shortest path to the goal.  On slippery ice a fixed plan is not optimal, so
        this returns one action, the first of a policy that maximises the probability of reaching the
        goal (value iteration, cached per map); call it again after each step.
        """
        lake, cell, plan = self._task.lake, self._position, []
        if lake.distance[cell] == UNREACHABLE or lake.tile(cell) == "H":
            return None
        if self.stochastic:
            if lake.tile(cell) == "G":
                return []
            values = self._success_values()[cell]
            return [ACTIONS[max(range(len(ACTIONS)), key=lambda move: (values[move], -move))]]
        while (move := lake.downhill_move(cell)) is not None:
            plan.append(ACTIONS[move])
            cell = lake.neighbour(cell, move)
        return plan

    def _success_values(self) -> tuple:
        key = (self._task.lake, self.success_rate)
        if self._policy_cache.get("key") != key:
            self._policy_cache.clear()
            self._policy_cache.update(key=key, values=self._task.lake.success_values(self.success_rate))
        return self._policy_cache["values"]
