"""Agents: anything that turns chat histories into replies.

The protocol is deliberately small.  An agent has a ``name`` and
``act_batch(histories) -> list[str | None]``: one reply per history, where a history is the chat of one
episode in ``tsr_envs.chat``'s format (the system instructions, then alternating user observations and
assistant replies).  ``None`` means "the reply never came" (an endpoint gave up): the episode goes on with
an empty reply, which the env scores as an invalid turn, and the record counts it.  Batching is in the
protocol because model agents are far faster on a batch of episodes than one at a time.

Agents that must see the game itself (the random and oracle baselines) also define
``reset(env, seed)``.  The harness then gives every episode its own shallow copy of the agent and calls
``reset`` with that episode's unwrapped env and seed before the first turn, so such agents may keep
per-episode state on ``self`` and their randomness depends on the seed only, never on batching or worker
order.

Specs understood by ``make_agent`` and ``tsr eval --agent``:

``random``                a random legal action per turn, seeded
``oracle``                the env's shortest plan (``env.unwrapped.optimal_actions()``); the upper bound
``hf:PATH``               a local Hugging Face causal LM (needs the ``[train]`` extra); ``hf:embedded``
                          is the embedded tiny model that ``tsr train`` starts from
``openai:BASE_URL``       an OpenAI-compatible chat endpoint (vLLM, llama.cpp, ...); needs ``--model``
``python:MODULE:NAME``    your function ``f(history) -> str``, or a class / object with ``act_batch``
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tsr_envs.chat import Message
from tsr_envs.evaluation.errors import EvalInputError

History = list[Message]
#: ``hf:embedded``: the embedded tiny model (built on first use)
EMBEDDED_MODEL = "embedded"
SPEC_FORMS = "random, oracle, hf:PATH, openai:BASE_URL (with --model) or python:MODULE:NAME"


@runtime_checkable
class Agent(Protocol):
    """Replies to a batch of chat histories; ``None`` in the result marks a reply that never came."""

    name: str

    def act_batch(self, histories: Sequence[History]) -> list[str | None]: ...


@dataclass(frozen=True)
class AgentOptions:
    """Settings shared by the agents that need them (the CLI's ``--model``, ``--temperature``, ...)."""

    seed: int = 0
    model: str | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    timeout: float = 60.0
    retries: int = 4
    #: requests in flight at once per endpoint agent (the runner divides it between worker processes)
    concurrency: int = 8

    def __post_init__(self) -> None:
        # Checked for every agent, even those that ignore a setting, so a typo never waits for the one
        # agent spec that reads it.
        problems = [
            f"--{name.replace('_', '-')} must be {rule}, got {getattr(self, name)}"
            for name, rule, ok in (
                ("seed", ">= 0", self.seed >= 0),
                ("temperature", ">= 0", self.temperature >= 0),
                ("max_tokens", "at least 1", self.max_tokens >= 1),
                ("timeout", "positive", self.timeout > 0),
                ("retries", ">= 0", self.retries >= 0),
                ("concurrency", "at least 1", self.concurrency >= 1),
            )
            if not ok
        ]
        if problems:
            raise EvalInputError("; ".join(problems))


def needs_env(agent: Agent) -> bool:
    return callable(getattr(agent, "reset", None))


def begin_episode(agent: Agent, env: Any, seed: int) -> Agent:
    """The agent that plays one episode: a fresh copy, reset on the env, for env-aware agents."""
    if not needs_env(agent):
        return agent
    player = copy.copy(agent)
    player.reset(env, seed)
    return player


def answer(actions: Sequence[str]) -> str:
    return "<answer>" + " || ".join(actions) + "</answer>"


class RandomAgent:
    """A uniformly random legal action each turn, always well formatted: the floor any model should beat."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "random" if seed == 0 else f"random(seed={seed})"
        self._env: Any = None
        self._rng = np.random.default_rng(seed)

    def reset(self, env: Any, seed: int) -> None:
        self._env = env
        self._rng = np.random.default_rng([self.seed, seed])

    def act_batch(self, histories: Sequence[History]) -> list[str | None]:
        return [self._act() for _ in histories]

    def _act(self) -> str:
        legal = self._env.legal_actions()
        return answer([legal[int(self._rng.integers(len(legal)))]]) if legal else ""


class OracleAgent:
    """Plays the env's own shortest plan: the upper bound of the suite.

    On deterministic envs it sends as many plan steps per turn as the env executes; on stochastic ones one
    step per turn and re-plans from wherever the last move really led (slippery ice).  When the env knows
    no plan (the goal became unreachable) it plays the first legal action.
    """

    name = "oracle"

    def __init__(self) -> None:
        self._env: Any = None

    def reset(self, env: Any, seed: int) -> None:
        self._env = env

    def act_batch(self, histories: Sequence[History]) -> list[str | None]:
        return [self._act() for _ in histories]

    def _act(self) -> str:
        env = self._env
        plan = env.optimal_actions()
        if not plan:
            legal = env.legal_actions()
            return answer(legal[:1]) if legal else ""
        per_turn = 1 if getattr(env, "stochastic", False) else getattr(env, "max_actions_per_turn", 1)
        return answer(plan[:per_turn])


class FunctionAgent:
    """Adapts a plain ``f(history) -> str`` (or an object with ``act(history)``) to the protocol."""

    def __init__(self, function: Callable[[History], str | None], name: str) -> None:
        self.function = function
        self.name = name

    def act_batch(self, histories: Sequence[History]) -> list[str | None]:
        return [self.function(history) for history in histories]


def as_agent(obj: Any, name: str | None = None) -> Agent:
    """Accept an agent, an object with ``act(history)``, or a callable ``f(history)``."""
    if callable(getattr(obj, "act_batch", None)):
        wanted = name or getattr(obj, "name", None)
        wanted = wanted if isinstance(wanted, str) else type(obj).__name__
        if getattr(obj, "name", None) != wanted:
            try:
                obj.name = wanted
            except AttributeError:
                raise EvalInputError(
                    f"cannot set a name on agent {obj!r}; give it a 'name' attribute"
                ) from None
        return obj
    label = name or getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    if callable(getattr(obj, "act", None)):
        return FunctionAgent(obj.act, label)
    if callable(obj):
        return FunctionAgent(obj, label)
    raise EvalInputError(
        f"{obj!r} is not an agent: give it act_batch(histories), act(history), or make it callable"
    )


@dataclass(frozen=True)
class AgentSpec:
    """A parsed ``--agent`` spec: cheap to check in the main process, built in each worker."""

    kind: str
    target: str
    options: AgentOptions

    @property
    def label(self) -> str:
        """The name under which episodes are recorded (and resumed)."""
        if self.kind == "random":
            return RandomAgent(self.options.seed).name
        if self.kind == "openai":
            return f"openai:{self.target}|{self.options.model}"
        return self.kind if self.kind == "oracle" else f"{self.kind}:{self.target}"

    def build(self, concurrency_share: int = 1) -> Agent:
        """Construct the agent; ``concurrency_share`` divides an endpoint's concurrency between workers."""
        opts = self.options
        if self.kind == "random":
            return RandomAgent(opts.seed)
        if self.kind == "oracle":
            return OracleAgent()
        if self.kind == "hf":
            agent_class = _hf_agent_class()
            path = self.target
            if path == EMBEDDED_MODEL:  # built on first use and cached, like tsr train --model embedded
                from tsr_train.tiny_model import default_model_path

                path = str(default_model_path())
            return agent_class(
                path,
                temperature=opts.temperature,
                max_new_tokens=opts.max_tokens,
                seed=opts.seed,
                name=self.label,
            )
        if self.kind == "openai":
            from tsr_envs.evaluation.openai_agent import OpenAIAgent

            return OpenAIAgent(
                self.target,
                str(opts.model),
                temperature=opts.temperature,
                max_tokens=opts.max_tokens,
                timeout=opts.timeout,
                retries=opts.retries,
                concurrency=max(1, -(-opts.concurrency // concurrency_share)),
                name=self.label,
            )
        return as_agent(_instantiate(_load_python_object(self.target)), self.label)


def _hf_agent_class() -> Any:
    """The ``hf`` agent from the entry point group ``tsr.agents`` (``tsr_train.agent.PolicyAgent``).

    Found, not imported by name, so that ``tsr_envs`` does not depend on ``tsr_train``: the agent lives
    with the sampling stack it shares with training.
    """
    from importlib.metadata import entry_points

    found = [point for point in entry_points(group="tsr.agents") if point.name == "hf"]
    if not found:
        raise EvalInputError("hf agents need the [train] extra: pip install 'tsr-suite[train]'")
    try:
        return found[0].load()
    except ImportError as error:
        raise EvalInputError(f"hf agents need the [train] extra ('tsr-suite[train]'): {error}") from None


def parse_agent_spec(text: str, options: AgentOptions | None = None) -> AgentSpec:
    """Check a spec without loading any model; raise ``EvalInputError`` with the accepted forms if bad."""
    options = options or AgentOptions()
    text = text.strip()
    kind, _, target = text.partition(":")
    if kind in ("random", "oracle") and not target:
        return AgentSpec(kind, "", options)
    if kind == "hf" and target:
        if target == EMBEDDED_MODEL:
            if importlib.util.find_spec("tsr_train") is None or importlib.util.find_spec("torch") is None:
                raise EvalInputError("hf:embedded needs the [train] extra: pip install 'tsr-suite[train]'")
            return AgentSpec(kind, target, options)
        if not os.path.isdir(target):
            raise EvalInputError(f"hf agent: {target!r} is not a local model folder")
        return AgentSpec(kind, target, options)
    if kind == "openai" and target:
        if not target.startswith(("http://", "https://")):
            raise EvalInputError(
                f"openai agent: {target!r} is not an http(s) base URL (e.g. http://host:8000/v1)"
            )
        if not options.model:
            raise EvalInputError("openai agent: pass the model name with --model")
        return AgentSpec(kind, target.rstrip("/"), options)
    if kind == "python" and target:
        _load_python_object(target)
        return AgentSpec(kind, target, options)
    raise EvalInputError(f"bad agent spec {text!r}; use {SPEC_FORMS}")


def make_agent(spec: str | Any, options: AgentOptions | None = None) -> Agent:
    """An agent from a spec string, or any agent-like object (see ``as_agent``)."""
    if isinstance(spec, str):
        return parse_agent_spec(spec, options).build()
    return as_agent(spec)


def _load_python_object(target: str) -> Any:
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise EvalInputError(f"python agent: {target!r} must look like MODULE:NAME (e.g. my_agents:greedy)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EvalInputError(f"python agent: cannot import module {module_name!r}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise EvalInputError(f"python agent: module {module_name!r} has no attribute {attribute!r}") from None


def _instantiate(obj: Any) -> Any:
    """Classes are instantiated without arguments; functions and objects are used as they are."""
    return obj() if inspect.isclass(obj) else obj
