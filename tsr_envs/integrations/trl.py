"""Any registered env as a TRL ``environment_factory``: plain GRPO through TRL's own tool-calling loop.

Why an adapter: ``GRPOTrainer(environment_factory=...)`` calls ``reset(**row)`` with the whole dataset
row (``prompt`` included), so a Gymnasium env cannot be passed as it is; and TRL turns *every* public
method of the instance's class into a tool the model may call.  A ``TextEnv`` has ``clone``,
``get_state``, ``set_state``, ``legal_actions`` and ``optimal_actions`` — the state API and the oracle.
Exposed as tools they would let the model restore a better state or read the solution.  So the env is
kept in a private attribute, and the classes here define no public functions but ``reset``,
``get_reward`` and their game's tools.

Tools (one call is one env turn; each returns the turn's feedback, reward and the new observation):

* FrozenLake and Sokoban: ``move(directions)``, e.g. ``move("Up Up Left")``;
* WebShop: ``search(query)`` and ``click(button)``;
* any other ``TextEnv``: ``act(actions)``, the action text as the env's reply format reads it.

This is the way to train a *plain* GRPO baseline with TRL's own loop; it runs no search.  ``tsr train``
trains with search-built rollouts (best-of-N, beam, lookahead), which TRL's loop cannot express.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import gymnasium as gym

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.core import TextEnv
from tsr_envs.frozenlake import FrozenLakeEnv
from tsr_envs.sokoban import SokobanEnv
from tsr_envs.webshop import WebShopEnv

__all__ = [
    "FrozenLakeTools",
    "ReplyTools",
    "SokobanTools",
    "TextEnvTools",
    "WebShopTools",
    "environment_factory",
]


class TextEnvTools:
    """One episode of a TSR env for TRL's tool loop; the base of the per-game classes.

    Public functions are tools to TRL, so everything but ``reset`` and ``get_reward`` is private here;
    read-only properties (``done``, ``success``, ``score``, ``info``) are not tools and let a user's
    reward function look at the episode (TRL passes the instances as ``environments=``).
    """

    #: How the model acts in this class, appended to the env's instructions (they describe ``<answer>``
    #: replies, which tool calls replace).
    _tool_note = ""

    def __init__(self, env: gym.Env) -> None:
        self._env = env
        self._info: dict[str, Any] = {}
        self._return = 0.0
        self._done = False
        self._started = False

    # ------------------------------------------------------------------ TRL's contract
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None, **row: Any) -> str:
        """Start the episode of this dataset row and return its instructions and first observation.

        ``seed`` (a dataset column) picks the instance, so the rows of one GRPO group, which share it,
        play the same instance; ``options`` (optional column) go to the env's ``reset``.  Other columns
        (``prompt`` and the like) are ignored.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"the 'seed' column must hold integers, got {seed!r}")
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"the 'options' column must hold dicts, got {type(options).__name__}")
        observation, info = self._env.reset(seed=None if seed is None else int(seed), options=options)
        self._info, self._return, self._done, self._started = info, 0.0, False, True
        return f"{info['instructions']}\n{self._tool_note}\n\nObservation:\n{observation}"

    def get_reward(self) -> float:
        """The episode's return so far (the sum of the env's rewards), which TRL uses as the reward."""
        return self._return

    # ------------------------------------------------------------------ read-only views (not tools)
    @property
    def done(self) -> bool:
        """Whether the episode ended (terminated or out of turns)."""
        return self._done

    @property
    def success(self) -> bool:
        return bool(self._info.get("success", False))

    @property
    def score(self) -> float:
        """The env's state-based progress in [0, 1]."""
        return float(self._info.get("score", 0.0))

    @property
    def info(self) -> dict[str, Any]:
        """The last ``info`` dict of the env (a copy)."""
        return dict(self._info)

    # ------------------------------------------------------------------ helpers
    def _step(self, reply: str) -> str:
        """Run one env turn on ``reply`` and describe it; raises once the episode is over.

        Raising is TRL's convention for a tool that cannot run: the trainer turns the exception into an
        error message for the model and counts it in ``tools/failure_frequency``.
        """
        if not self._started:
            raise ValueError("call reset() before using the tools")
        if self._done:
            raise ValueError("The episode is over; no further actions are taken.")
        observation, reward, terminated, truncated, info = self._env.step(reply)
        self._info, self._return = info, self._return + float(reward)
        self._done = bool(terminated or truncated)
        lines = [f"Feedback: {info['feedback']}", f"Reward: {float(reward):+.2f}"]
        if self._done:
            outcome = "solved" if info["success"] else ("ended" if terminated else "out of turns")
            lines.append(f"The episode is over ({outcome}).")
        lines += ["Observation:", observation]
        return "\n".join(lines)

    def _act(self, actions: Any) -> str:
        return self._step(f"<answer>{_as_text(actions)}</answer>")


class ReplyTools(TextEnvTools):
    """Any other ``TextEnv``: one general tool, ``act``, taking the actions as the env's parser reads them."""

    _tool_note = (
        "Act by calling the tool `act` with your actions, written as the reply format above describes; "
        "each call is one turn."
    )

    def act(self, actions: str) -> str:
        """Take one turn in the game.

        Args:
            actions: The actions for this turn, as the instructions name them; separate several with ||.

        Returns:
            The turn's feedback and reward, then the new observation.
        """
        return self._act(actions)


class _GridTools(TextEnvTools):
    """The grid games' one tool, ``move``; the subclasses only name the game (TRL logs the class name)."""

    def move(self, directions: str) -> str:
        """Move the player one cell per direction, in order (in Sokoban, moving into a box pushes it).

        Args:
            directions: One or more of Up, Down, Left, Right separated by spaces, e.g. "Down Down Right".

        Returns:
            The turn's feedback and reward, then the new grid.
        """
        text = _as_text(directions)
        for separator in ("||", ","):
            text = text.replace(separator, " ")
        return self._act(" || ".join(text.split()))


def _as_text(value: Any) -> str:
    """A model's tool argument as action text: a list of strings joined, anything else as text."""
    if isinstance(value, list | tuple):
        return " || ".join(str(item) for item in value)
    return value if isinstance(value, str) else str(value)


_MOVE_NOTE = (
    'Act by calling the tool `move` with the directions to {verb}, e.g. move(directions="Down Right"), '
    "instead of writing <answer> tags; each call is one turn."
)


class FrozenLakeTools(_GridTools):
    """FrozenLake through TRL's tool loop: one tool, ``move``."""

    _tool_note = _MOVE_NOTE.format(verb="walk")


class SokobanTools(_GridTools):
    """Sokoban through TRL's tool loop: one tool, ``move`` (a move into a box pushes it)."""

    _tool_note = _MOVE_NOTE.format(verb="walk or push")


class WebShopTools(TextEnvTools):
    """WebShop through TRL's tool loop: ``search`` and ``click``, the site's two actions."""

    _tool_note = (
        "Act by calling the tools `search` (on the search page) and `click` (any clickable shown in "
        "brackets) instead of writing <answer> tags; each call is one turn."
    )

    def search(self, query: str) -> str:
        """Search the shop; only possible on a page that offers search.

        Args:
            query: What to search for, e.g. "red running shoes under 50 dollars".

        Returns:
            The turn's feedback and reward, then the new page.
        """
        return self._step(f"<answer>search[{_as_text(query)}]</answer>")

    def click(self, button: str) -> str:
        """Click a clickable of the current page: a product id, an option, a navigation button or buy now.

        Args:
            button: The clickable's text as shown in brackets, e.g. "b0abc12345", "red", "next >", "buy now".

        Returns:
            The turn's feedback and reward, then the new page.
        """
        return self._step(f"<answer>click[{_as_text(button)}]</answer>")


def _tools_class(env: TextEnv) -> type[TextEnvTools]:
    for env_class, tools_class in (
        (FrozenLakeEnv, FrozenLakeTools),
        (SokobanEnv, SokobanTools),
        (WebShopEnv, WebShopTools),
    ):
        if isinstance(env, env_class):
            return tools_class
    return ReplyTools


def environment_factory(env_id: str, **env_kwargs: Any) -> Callable[[], TextEnvTools]:
    """A zero-argument factory for ``GRPOTrainer(environment_factory=...)`` playing ``env_id``.

    ``env_kwargs`` go to ``gymnasium.make`` (e.g. ``max_episode_steps=10`` for fewer turns, or the env's
    own keyword arguments).  The env is made once here, so an unknown id or a bad keyword fails now with
    a clear ``ValueError`` instead of inside the trainer.  The dataset needs a ``seed`` column; its
    ``prompt`` column can be an empty user message, which ``reset`` fills with the instructions and the
    first observation::

        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
        from tsr_envs.integrations.trl import environment_factory

        dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": ""}]] * 64,
                                     "seed": list(range(10_000, 10_064))})
        trainer = GRPOTrainer(model, args=GRPOConfig(...), train_dataset=dataset,
                              environment_factory=environment_factory("tsr/Sokoban-v0"))
    """
    try:
        first = gym.make(env_id, **env_kwargs)
    except (gym.error.Error, ValueError, OSError) as error:
        raise ValueError(f"cannot make {env_id!r}: {error}") from None
    except TypeError as error:
        raise ValueError(f"bad keyword arguments for {env_id!r}: {error}") from None
    if not isinstance(first.unwrapped, TextEnv):
        first.close()
        raise ValueError(f"{env_id!r} is not a TSR text environment (tsr_envs.TextEnv)")
    tools_class = _tools_class(first.unwrapped)
    spare = [first]

    def make() -> TextEnvTools:
        return tools_class(spare.pop() if spare else gym.make(env_id, **env_kwargs))

    make.__qualname__ = make.__name__ = f"environment_factory({env_id!r})"
    return make
