"""The base class of every TSR text environment, and the contract every registered env keeps.

The contract: observations and actions are ``gymnasium.spaces.Text``; ``reset(seed=s)`` fixes the instance
in any process; ``step(text)`` takes the raw model reply (parsed by ``tsr_envs.parsing``) and never raises on
bad input, which becomes a turn with ``action_is_valid=False``, a format penalty and feedback; ``info``
carries ``success``, ``action_is_valid``, ``action_is_effective``, ``actions``, ``score`` (state-based
progress in [0, 1]) and ``feedback`` every turn; ``get_state``/``set_state``/``clone`` restore an episode
exactly and cheaply.

Why a base class: search-based rollouts (``tsr_train``) branch thousands of times per batch, so every env
must offer the same cheap, exact state API, the same reply parsing and the same ``info`` keys.  Subclasses
describe only their game: how an instance is drawn, how one canonical action changes the state, how the
state looks as text and how close it is to solved.

State split.  A subclass keeps two kinds of data:

* the *task* (``self._task``): an immutable object describing the instance (a level, a map, a goal).  It
  is shared by reference between clones and snapshots, so clone/restore never copies it;
* the *dynamic* state: small immutable values (ints, tuples, frozensets) returned by
  ``_get_dynamic()`` and re-assigned by ``_set_dynamic()``.  Subclasses must re-assign these attributes,
  never mutate them in place, which is what makes a shallow copy a correct clone.

The base class adds the RNG state, the turn and action counters and the episode flags, so
``get_state()``/``set_state()`` restore an episode exactly, slips of stochastic envs included.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar, NamedTuple, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from tsr_envs.parsing import REPLY_MAX_LENGTH, echo, parse_reply

#: Every character an observation may contain; also the alphabet of the ``Text`` spaces.
TEXT_CHARSET: str = string.printable + "√"
OBSERVATION_MAX_LENGTH = 16_384
# Building a bit generator from a ready SeedSequence and then overwriting its state is the cheapest way
# to get an independent copy of an RNG (about 5 us, against 12 us for ``copy.copy``).
_PLACEHOLDER_SEED = np.random.SeedSequence(0)


def _rng_snapshot(rng: np.random.Generator) -> tuple:
    """The generator's state as an immutable tuple (a flat one for PCG64, Gymnasium's generator)."""
    state = rng.bit_generator.state
    if state["bit_generator"] == "PCG64":
        inner = state["state"]
        return ("PCG64", inner["state"], inner["inc"], state["has_uint32"], state["uinteger"])
    return _freeze(state)


def _rng_state(snapshot: tuple) -> dict:
    if snapshot[0] == "PCG64":
        _, value, increment, has_uint32, uinteger = snapshot
        return {
            "bit_generator": "PCG64",
            "state": {"state": value, "inc": increment},
            "has_uint32": has_uint32,
            "uinteger": uinteger,
        }
    return _thaw(snapshot)


def _rng_from_snapshot(snapshot: tuple) -> np.random.Generator:
    bit_generator = getattr(np.random, _rng_state(snapshot)["bit_generator"])(_PLACEHOLDER_SEED)
    bit_generator.state = _rng_state(snapshot)
    return np.random.Generator(bit_generator)


def text_space(max_length: int) -> spaces.Text:
    """A ``gymnasium.spaces.Text`` wide enough for grids (newlines, ``√``) and free-form replies."""
    return spaces.Text(max_length=max_length, min_length=0, charset=TEXT_CHARSET)


class Transition(NamedTuple):
    """The result of applying one canonical action (``_apply``)."""

    reward: float
    terminated: bool


class ActionOutcome(NamedTuple):
    """What one action text of a reply did (``TextEnv._act``): applied as ``action``, or refused.

    A refusal has ``action`` and ``transition`` ``None``; ``note`` is the env's own sentence about it (the
    feedback shows it in place of ``_status()``), ``None`` when the legal-action list says enough.
    """

    action: str | None
    transition: Transition | None
    note: str | None = None


class EnvState(NamedTuple):
    """An immutable, picklable snapshot of an episode (see ``TextEnv.get_state``).

    A named tuple rather than a frozen dataclass: search builds millions of these, and a tuple is built
    several times faster.
    """

    env_type: str
    task: Any
    dynamic: tuple
    rng: tuple
    turn: int
    num_actions: int
    episode_return: float
    terminated: bool
    truncated: bool


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _freeze(item)) for key, item in value.items())
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return {key: _thaw(item) for key, item in value}
    return value


class TextEnv(gym.Env[str, str]):
    """A text game whose observations are strings and whose actions are raw model replies.

    Keyword arguments shared by every env:

    * ``max_actions_per_turn``: how many ``||``-separated actions one reply may execute;
    * ``max_steps``: actions per episode before the env truncates (``None`` for no limit);
    * ``format_penalty``: reward added to a turn whose reply could not be parsed or named an illegal
      action (RAGEN's ``-0.1``);
    * ``render_mode``: ``"ansi"`` (returns the text) or ``"human"`` (prints it).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    #: Whether a step's outcome can depend on the RNG (search must then branch honestly).
    stochastic: bool = False
    default_max_actions_per_turn: ClassVar[int] = 5

    def __init__(
        self,
        *,
        max_actions_per_turn: int | None = None,
        max_steps: int | None = None,
        format_penalty: float = -0.1,
        render_mode: str | None = None,
        observation_max_length: int = OBSERVATION_MAX_LENGTH,
    ) -> None:
        if max_actions_per_turn is None:
            max_actions_per_turn = self.default_max_actions_per_turn
        if not isinstance(max_actions_per_turn, int) or max_actions_per_turn < 1:
            raise ValueError(f"max_actions_per_turn must be a positive integer, got {max_actions_per_turn!r}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.max_actions_per_turn = max_actions_per_turn
        self.max_steps = max_steps
        self.format_penalty = float(format_penalty)
        self.render_mode = render_mode
        self.observation_space = text_space(observation_max_length)
        self.action_space = text_space(REPLY_MAX_LENGTH)
        self._task: Any = None
        # A clone or a restored env keeps its RNG state as a snapshot until it first draws a number, so
        # that branching never pays for building generators it does not use (deterministic games).
        self._rng_pending: tuple | None = None
        # The snapshot of ``_np_random`` while nobody can have drawn from it since it was taken: handing
        # out ``np_random`` clears it.  Deterministic games then snapshot their RNG once per episode.
        self._rng_cache: tuple | None = None
        self._turn = 0
        self._num_actions = 0
        self._episode_return = 0.0
        self._terminated = False
        self._truncated = False

    # ------------------------------------------------------------------ subclass interface
    def _new_task(self, options: dict[str, Any]) -> None:
        """Draw a new instance with ``self.np_random`` and set ``self._task`` and the dynamic state."""
        raise NotImplementedError

    def _get_dynamic(self) -> tuple:
        """The dynamic state as a tuple of immutable values."""
        raise NotImplementedError

    def _set_dynamic(self, dynamic: tuple) -> None:
        """Re-assign the dynamic state from ``_get_dynamic()``'s tuple."""
        raise NotImplementedError

    def _apply(self, action: str) -> Transition:
        """Apply one canonical (legal) action."""
        raise NotImplementedError

    def _render(self) -> str:
        """The observation text for the current state."""
        raise NotImplementedError

    def _score(self) -> float:
        """State-based progress toward solving this instance, in [0, 1] (1.0 = solved)."""
        raise NotImplementedError

    def _success(self) -> bool:
        raise NotImplementedError

    def instructions(self) -> str:
        """The task's rules, for a system prompt."""
        raise NotImplementedError

    def legal_actions(self) -> list[str]:
        """The canonical action strings that are valid now."""
        raise NotImplementedError

    def _canonical_action(self, text: str) -> str | None:
        """Map the model's spelling of an action to a legal canonical action, or ``None``."""
        wanted = text.casefold()
        for action in self.legal_actions():
            if action.casefold() == wanted:
                return action
        return None

    def _act(self, text: str) -> ActionOutcome:
        """Validate one action text and, when legal, apply it, in one pass.

        The default is ``_canonical_action`` then ``_apply``.  An env that can only validate an action by
        running its dynamics (WebShop's engine) overrides this, so it runs them once and carries what it
        learnt in the returned value rather than in attributes between two hooks.
        """
        canonical = self._canonical_action(text)
        if canonical is None:
            return ActionOutcome(None, None)
        return ActionOutcome(canonical, self._apply(canonical))

    def _status(self) -> str:
        """A short sentence about the state after a turn (e.g. 'You fell into a hole.'); may be empty."""
        return ""

    def _extra_info(self) -> dict[str, Any]:
        """Env-specific ``info`` entries added every turn."""
        return {}

    def _reset_info(self) -> dict[str, Any]:
        """Env-specific entries added to reset's ``info`` only."""
        return {}

    def optimal_actions(self) -> list[str] | None:
        """A shortest plan from the current state, if the env knows one (used by oracle agents)."""
        return None

    # ------------------------------------------------------------------ Gymnasium API
    @property
    def np_random(self) -> np.random.Generator:
        """The env's own RNG (Gymnasium's), built from a pending snapshot on first use."""
        self._rng_cache = None
        if self._np_random is None and self._rng_pending is not None:
            self._np_random = _rng_from_snapshot(self._rng_pending)
            self._rng_pending = None
        return super().np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._np_random = value
        self._rng_pending = self._rng_cache = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        if seed is not None:
            self._rng_pending = None
        self._rng_cache = None
        super().reset(seed=seed)
        self._new_task(dict(options or {}))
        self._turn = 0
        self._num_actions = 0
        self._episode_return = 0.0
        self._terminated = False
        self._truncated = False
        info = self._info(valid=True, effective=False, actions=[], feedback="A new episode begins.")
        info["instructions"] = self.instructions()
        info.update(self._reset_info())
        return self._render(), info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._task is None:
            raise ResetNeeded("Call reset() before step().")
        if self._terminated or self._truncated:
            info = self._info(False, False, [], "The episode is over; call reset() to start a new one.")
            return self._render(), 0.0, self._terminated, self._truncated, info
        self._turn += 1
        parsed = parse_reply(action, self.max_actions_per_turn)
        before = self._get_dynamic()
        reward, executed, error, note = 0.0, [], parsed.error, None
        for text in parsed.actions:
            outcome = self._act(text)
            if outcome.action is None:
                error = (
                    f"{echo(text)} is not a legal action here; legal actions are: "
                    + ", ".join(self.legal_actions())
                    + "."
                )
                note = outcome.note
                break
            transition = outcome.transition
            executed.append(outcome.action)
            self._num_actions += 1
            reward += transition.reward
            self._terminated = transition.terminated
            self._truncated = (
                not self._terminated and self.max_steps is not None and (self._num_actions >= self.max_steps)
            )
            if self._terminated or self._truncated:
                break
        if error is not None:
            reward += self.format_penalty
        self._episode_return += reward
        effective = self._get_dynamic() != before
        feedback = self._feedback(executed, error, parsed.dropped, effective, note)
        info = self._info(error is None, effective, executed, feedback)
        return self._render(), reward, self._terminated, self._truncated, info

    def render(self) -> str | None:
        if self._task is None:
            raise ResetNeeded("Call reset() before render().")
        text = self._render()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # ------------------------------------------------------------------ state API
    def get_state(self) -> EnvState:
        """An immutable snapshot of the episode, including the RNG and counters."""
        if self._task is None:
            raise ResetNeeded("Call reset() before get_state().")
        return EnvState(
            type(self).__qualname__,
            self._task,
            self._get_dynamic(),
            self._rng_now(),
            self._turn,
            self._num_actions,
            self._episode_return,
            self._terminated,
            self._truncated,
        )

    def _rng_now(self) -> tuple:
        """The RNG state as a snapshot, without building a generator that is still pending."""
        if self._np_random is None and self._rng_pending is not None:
            return self._rng_pending
        if self._rng_cache is None:
            self._rng_cache = _rng_snapshot(self.np_random)
        return self._rng_cache

    def set_state(self, state: EnvState) -> None:
        """Restore a snapshot taken by ``get_state()`` of an env of the same class, exactly."""
        if not isinstance(state, EnvState) or state.env_type != type(self).__qualname__:
            got = getattr(state, "env_type", type(state).__name__)
            raise TypeError(f"set_state() needs an EnvState of {type(self).__qualname__}, got {got}")
        self._task = state.task
        self._set_dynamic(state.dynamic)
        if self._np_random is None:
            self._rng_pending = state.rng
        elif self._rng_cache != state.rng:
            self._np_random.bit_generator.state = _rng_state(state.rng)
            self._rng_cache = state.rng
        self._turn = state.turn
        self._num_actions = state.num_actions
        self._episode_return = state.episode_return
        self._terminated = state.terminated
        self._truncated = state.truncated

    def clone(self, rng_seed: int | None = None) -> TextEnv:
        """An independent env in the same state.

        By default the clone carries the RNG state too, so it replays the same random outcomes as the
        original (common random numbers).  Pass ``rng_seed`` to give the clone its own random stream:
        that is how a search scores a candidate without seeing the slip the real step will get.
        """
        # A plain attribute copy (not ``copy.copy``, which would run subclasses' pickling hooks): the
        # task is shared, and the dynamic state is immutable by contract.
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        if rng_seed is None:
            twin._rng_pending, twin._np_random = self._rng_now(), None
        else:
            twin._rng_pending, twin._np_random = None, np.random.default_rng(rng_seed)
        twin._rng_cache = None
        return twin

    # ------------------------------------------------------------------ helpers
    @property
    def turn(self) -> int:
        return self._turn

    @property
    def episode_return(self) -> float:
        return self._episode_return

    def _info(self, valid: bool, effective: bool, actions: list[str], feedback: str) -> dict[str, Any]:
        score = float(self._score())
        info = {
            "success": bool(self._success()),
            "action_is_valid": valid,
            "action_is_effective": effective,
            "actions": actions,
            "score": score,
            "feedback": feedback,
            "turn": self._turn,
        }
        info.update(self._extra_info())
        return info

    def _feedback(
        self, executed: list[str], error: str | None, dropped: int, effective: bool, note: str | None = None
    ) -> str:
        parts = []
        if executed:
            parts.append(f"You did: {', '.join(executed)}.")
            if not effective:
                parts.append("Nothing changed.")
        if error is not None:
            parts.append(f"Invalid reply: {error}")
        if dropped:
            parts.append(
                f"Only {self.max_actions_per_turn} action(s) per turn are executed; {dropped} ignored."
            )
        status = self._status() if note is None else note
        if status:
            parts.append(status)
        if self._truncated:
            parts.append(f"The episode ended: the limit of {self.max_steps} actions was reached.")
        return " ".join(parts)
