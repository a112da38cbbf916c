"""Any registered env behind openenv-core's server (``tsr serve-openenv``), clone/restore included.

Why: OpenEnv is where TRL, SkyRL and verifiers users look for environments, and its clients speak one
protocol (``reset``/``step``/``state`` over a WebSocket session).  This module adapts a ``TextEnv`` to
openenv-core's ``Environment`` interface and serves it with openenv-core's own ``create_app``:

* an action is ``{"reply": "<answer>Up || Left</answer>"}``, the raw model reply (the env's parser reads it);
* an observation carries ``text``, ``reward``, ``done``, ``success``, ``score``, ``feedback`` and
  ``action_is_valid`` (plus ``instructions`` after a reset, and ``truncated``, ``turn``, ``actions``);
* ``reset(seed=s)`` plays instance ``s`` exactly, in every session, so the rows of a GRPO group match;
* every WebSocket connection is its own session with its own env, up to ``max_sessions`` at once.

Clone/restore, which OpenEnv environments lack, rides on the standard messages so every OpenEnv client
can use it: ``state()`` returns a ``snapshot`` handle of the current episode, and ``reset(restore=handle)``
puts the session back into that exact state (RNG included, so a restored FrozenLake replays the same
slips).  A handle works in any session of the same server, which is how a client clones an episode into
a second session.  Handles name snapshots kept in server memory (the newest ``max_snapshots``), never
pickles sent by clients, so restoring cannot run code the server did not write.
"""

from __future__ import annotations

import numbers
import threading
import uuid
from collections import OrderedDict
from typing import Any

import gymnasium as gym
from openenv.core.env_server import Action, Environment, Observation, State, create_app
from openenv.core.env_server.types import EnvironmentMetadata
from pydantic import Field

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.core import EnvState, TextEnv

DEFAULT_MAX_SNAPSHOTS = 100_000
RESET_ARGUMENTS = ("seed", "episode_id", "restore", "options")


class ReplyAction(Action):
    """One turn: the model's raw reply, parsed by the env (``<answer>A1 || A2</answer>`` or bare actions)."""

    reply: str = Field(description="the model's reply, e.g. '<answer>Up || Left</answer>'")


class TextObservation(Observation):
    """What the env shows after a reset or a turn (``done`` and ``reward`` come from ``Observation``)."""

    text: str = Field(description="the observation text the model sees")
    success: bool = Field(default=False, description="the task is solved")
    score: float = Field(default=0.0, description="state-based progress toward solving, in [0, 1]")
    feedback: str = Field(default="", description="one sentence about the last turn")
    action_is_valid: bool = Field(default=True, description="the last reply parsed and was legal")
    truncated: bool = Field(default=False, description="the episode ended on the turn limit")
    turn: int = Field(default=0, description="turns played in this episode")
    actions: list[str] = Field(default_factory=list, description="the actions the last turn executed")
    instructions: str = Field(default="", description="the task's rules (set by reset)")


class TextEnvState(State):
    """The session's episode; ``snapshot`` is a handle that ``reset(restore=...)`` accepts."""

    env_id: str = ""
    seed: int | None = None
    done: bool = False
    snapshot: str | None = None


class SnapshotStore:
    """Episode snapshots by handle, shared by the sessions of one server, newest ``capacity`` kept.

    A snapshot is the env's ``EnvState`` (which shares the immutable task by reference, so it is small)
    together with the observation to show when it is restored.
    """

    def __init__(self, capacity: int = DEFAULT_MAX_SNAPSHOTS) -> None:
        if capacity < 1:
            raise ValueError(f"the snapshot capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[EnvState, dict[str, Any], int | None]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, state: EnvState, observation: dict[str, Any], seed: int | None) -> str:
        handle = uuid.uuid4().hex
        with self._lock:
            self._items[handle] = (state, observation, seed)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return handle

    def get(self, handle: str) -> tuple[EnvState, dict[str, Any], int | None]:
        with self._lock:
            item = self._items.get(handle)
            if item is not None:
                self._items.move_to_end(handle)
        if item is None:
            raise ValueError(
                f"unknown snapshot {handle!r}: not made by this server, or evicted "
                f"(it keeps the newest {self.capacity})"
            )
        return item


def make_text_env(env_id: str, env_kwargs: dict[str, Any]) -> tuple[TextEnv, int | None]:
    """The unwrapped env of ``env_id`` and its turn limit; ``ValueError`` with a clear message if impossible.

    The server enforces the turn limit itself, from the env's turn counter, because Gymnasium's
    ``TimeLimit`` wrapper keeps its own count, which a restored snapshot would not reset.
    """
    kwargs = dict(env_kwargs)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"cannot make {env_id!r}: {error}") from None
    max_turns = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    try:
        env = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    except (gym.error.Error, TypeError, ValueError, OSError) as error:
        raise ValueError(f"cannot make {env_id!r} with {kwargs}: {error}") from None
    if not isinstance(env, TextEnv):
        env.close()
        raise ValueError(f"{env_id!r} is not a TSR text environment (tsr_envs.TextEnv)")
    return env, max_turns


class TextEnvironment(Environment[ReplyAction, TextObservation, TextEnvState]):
    """One session's episode of a ``TextEnv``, in openenv-core's ``Environment`` interface.

    Sessions never share an env; they share only the snapshot store (and, for WebShop, the read-only
    catalogue), so concurrent sessions are safe.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self, env_id: str, env_kwargs: dict[str, Any] | None = None, snapshots: SnapshotStore | None = None
    ) -> None:
        super().__init__()
        self.env_id = env_id
        self._env, self._max_turns = make_text_env(env_id, env_kwargs or {})
        self._snapshots = snapshots if snapshots is not None else SnapshotStore()
        self._episode_id: str | None = None
        self._seed: int | None = None
        self._last: dict[str, Any] | None = None

    # ------------------------------------------------------------------ openenv-core's interface
    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        restore: str | None = None,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TextObservation:
        """A new episode of instance ``seed``, or, with ``restore``, the episode of a ``state().snapshot``."""
        if kwargs:
            raise ValueError(
                f"unknown reset argument(s): {', '.join(sorted(kwargs))}; "
                f"expected {', '.join(RESET_ARGUMENTS)}"
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be an object, got {type(options).__name__}")
        if episode_id is not None and not (isinstance(episode_id, str) and 0 < len(episode_id) <= 255):
            raise ValueError(f"episode_id must be a string of 1 to 255 characters, got {episode_id!r}")
        if restore is not None:
            if seed is not None or options is not None:
                raise ValueError("reset takes either restore or seed/options, not both")
            if not isinstance(restore, str):
                raise ValueError(
                    f"restore must be a snapshot handle (a string), got {type(restore).__name__}"
                )
            state, observation, self._seed = self._snapshots.get(restore)
            self._env.set_state(state)
            self._last = dict(observation)
        else:
            text, info = self._env.reset(seed=None if seed is None else int(seed), options=options)
            self._seed = None if seed is None else int(seed)
            self._last = self._observation(text, None, info, truncated=False)
            self._last["instructions"] = info["instructions"]
        self._episode_id = episode_id or uuid.uuid4().hex
        return TextObservation(**self._last)

    def step(self, action: ReplyAction, timeout_s: float | None = None, **kwargs: Any) -> TextObservation:
        """One turn on the reply; a finished episode answers with ``done`` and changes nothing."""
        if self._last is None:
            raise ValueError("call reset() before step()")
        if self._last["done"]:
            return TextObservation(
                **{
                    **self._last,
                    "reward": 0.0,
                    "feedback": "The episode is over; call reset() to start a new one.",
                }
            )
        text, reward, terminated, truncated, info = self._env.step(action.reply)
        out_of_turns = self._max_turns is not None and self._env.turn >= self._max_turns
        truncated = bool(truncated or (out_of_turns and not terminated))
        self._last = self._observation(text, float(reward), info, truncated, terminated=terminated)
        return TextObservation(**self._last)

    @property
    def state(self) -> TextEnvState:
        """The episode's ids and counters, and a fresh snapshot handle of it (``None`` before a reset)."""
        if self._last is None:
            return TextEnvState(env_id=self.env_id)
        handle = self._snapshots.put(self._env.get_state(), self._last, self._seed)
        return TextEnvState(
            episode_id=self._episode_id,
            step_count=self._env.turn,
            env_id=self.env_id,
            seed=self._seed,
            done=bool(self._last["done"]),
            snapshot=handle,
        )

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name=self.env_id,
            description=(
                f"{self.env_id} from the TSR suite: actions {{'reply': str}}; state().snapshot and "
                "reset(restore=...) clone and restore episodes"
            ),
        )

    def close(self) -> None:
        self._env.close()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _observation(
        text: str, reward: float | None, info: dict[str, Any], truncated: bool, terminated: bool = False
    ) -> dict[str, Any]:
        return {
            "text": text,
            "reward": reward,
            "done": bool(terminated or truncated),
            "success": bool(info["success"]),
            "score": float(info["score"]),
            "feedback": info["feedback"],
            "action_is_valid": bool(info["action_is_valid"]),
            "truncated": truncated,
            "turn": int(info["turn"]),
            "actions": list(info["actions"]),
            "instructions": "",
        }


def build_app(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    max_sessions: int = 8,
    max_snapshots: int = DEFAULT_MAX_SNAPSHOTS,
) -> Any:
    """openenv-core's FastAPI app serving ``env_id``: WebSocket sessions at ``/ws``, schema, health, docs.

    The env is made once here, so a bad id or keyword fails before the server starts listening.
    """
    if max_sessions < 1:
        raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
    kwargs = dict(env_kwargs or {})
    make_text_env(env_id, kwargs)[0].close()
    snapshots = SnapshotStore(max_snapshots)

    def factory() -> TextEnvironment:
        return TextEnvironment(env_id, kwargs, snapshots)

    factory.__name__ = f"TextEnvironment[{env_id}]"
    return create_app(
        factory, ReplyAction, TextObservation, env_name=env_id, max_concurrent_envs=max_sessions
    )
