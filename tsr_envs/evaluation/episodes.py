"""Playing episodes: the lockstep loop and the per-episode record that goes into ``episodes.jsonl``.

Many episodes are played in lockstep so that a model agent answers all of them in one batched call per
turn.  Each live episode's history is handed to the agent that plays it; episodes played by the same
agent object are batched together (env-aware agents get one copy per episode, see ``agents``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tsr_envs.chat import Message, initial_messages, observation_message, reply_message
from tsr_envs.evaluation.agents import Agent, begin_episode
from tsr_envs.evaluation.errors import EvalInputError

#: The fields of a record that identify an episode (a rerun skips records with the same key).
RecordKey = tuple[str, str, int]


def record_key(record: dict[str, Any]) -> RecordKey:
    return record["agent"], record["env"], int(record["seed"])


class EpisodeRecorder:
    """Builds the chat history an agent sees and the JSON record of one episode.

    ``turn_limit`` is the episode's turn limit; the prompts then say how many turns are left, exactly as
    ``tsr train`` shows them, so a trained model is evaluated on the prompts it learned from.
    """

    def __init__(
        self,
        agent: str,
        env_id: str,
        seed: int,
        observation: str,
        info: dict[str, Any],
        turn_limit: int | None = None,
    ) -> None:
        self.agent, self.env_id, self.seed = agent, env_id, seed
        self.turn_limit = turn_limit
        self.messages: list[Message] = initial_messages(observation, info, turn_limit)
        self.reset_info = {key: value for key, value in info.items() if key != "instructions"}
        self.rewards: list[float] = []
        self.infos: list[dict[str, Any]] = []
        self.missing_replies = 0
        self.done = False
        self.terminated = self.truncated = False

    def add_turn(
        self,
        reply: str | None,
        observation: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        if reply is None:
            self.missing_replies += 1
        self.messages.append(reply_message(reply or ""))
        self.rewards.append(float(reward))
        turns_left = None if self.turn_limit is None else self.turn_limit - len(self.rewards)
        self.messages.append(observation_message(observation, info, turns_left))
        self.infos.append(info)
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        self.done = self.terminated or self.truncated

    def history(self) -> list[Message]:
        """The chat so far; the final user message is the observation to act on."""
        return self.messages

    def to_record(self) -> dict[str, Any]:
        """The episode as a record of JSON types only, so it equals what a resumed run reads back.

        Recording must cost little next to an agent that answers in microseconds: the chat messages are
        JSON types already (``tsr_envs.chat`` builds them), and ``_plain`` keeps every list and dict of
        plain values as it is instead of copying it.
        """
        last = self.infos[-1] if self.infos else {}
        invalid = sum(1 for info in self.infos if not info.get("action_is_valid", True))
        record = {
            "agent": self.agent,
            "env": self.env_id,
            "seed": self.seed,
            "success": bool(last.get("success", False)),
            "return": sum(self.rewards),
            "turns": len(self.rewards),
            "invalid_turns": invalid,
            "missing_replies": self.missing_replies,
            "final_score": float(last.get("score", 0.0)),
            "terminated": self.terminated,
            "truncated": self.truncated,
            "rewards": self.rewards,
            "reset_info": _plain(self.reset_info),
            "infos": [_plain(info) for info in self.infos],
            "messages": self.messages,
        }
        return record


def encode(record: dict[str, Any]) -> str:
    """A record as one line of ``episodes.jsonl`` (without the newline)."""
    return json.dumps(record, ensure_ascii=False)


def act(players: Sequence[Agent], histories: Sequence[list[Message]]) -> list[str | None]:
    """One reply per history; histories whose players are the same object go in one batched call."""
    first = players[0]
    if all(player is first for player in players):
        return _checked(first, first.act_batch(list(histories)), len(histories))
    groups: dict[int, list[int]] = {}
    for index, player in enumerate(players):
        groups.setdefault(id(player), []).append(index)
    replies: list[str | None] = [None] * len(players)
    for indices in groups.values():
        player = players[indices[0]]
        answers = _checked(player, player.act_batch([histories[i] for i in indices]), len(indices))
        for i, reply in zip(indices, answers, strict=True):
            replies[i] = reply
    return replies


def _checked(agent: Agent, replies: Any, count: int) -> list[str | None]:
    """The agent's replies, checked: one ``str`` or ``None`` per history (a user's agent may get it wrong)."""
    if not isinstance(replies, list | tuple) or len(replies) != count:
        raise EvalInputError(f"agent {agent.name!r}: act_batch must return a list with one reply per history")
    for reply in replies:
        if reply is not None and not isinstance(reply, str):
            raise EvalInputError(f"agent {agent.name!r} returned {type(reply).__name__}, not str or None")
    return list(replies)


def play_lockstep(
    agent: Agent, env_id: str, envs: Sequence[Any], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Play one episode per (env, seed) with ``agent``, all in lockstep; return their records."""
    recorders, players = [], []
    for env, seed in zip(envs, seeds, strict=True):
        observation, info = env.reset(seed=seed)
        limit = env.spec.max_episode_steps if env.spec is not None else None
        recorders.append(EpisodeRecorder(agent.name, env_id, seed, observation, info, limit))
        players.append(begin_episode(agent, env.unwrapped, seed))
    if len(recorders) == 1:  # env-aware agents (random, oracle) play one episode at a time: no bookkeeping
        ((recorder,), (player,), (env,)) = recorders, players, envs
        while not recorder.done:
            (reply,) = act((player,), (recorder.messages,))
            recorder.add_turn(reply, *env.step(reply or ""))
        return [recorder.to_record()]
    live = list(range(len(recorders)))
    while live:
        replies = act([players[i] for i in live], [recorders[i].history() for i in live])
        for i, reply in zip(live, replies, strict=True):
            recorders[i].add_turn(reply, *envs[i].step(reply or ""))
        live = [i for i in live if not recorders[i].done]
    return [recorder.to_record() for recorder in recorders]


def play_arena(
    agents: dict[str, Agent], env_id: str, arenas: Sequence[Any], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Play one arena instance per seed (every agent on its own clone), all in lockstep; their records."""
    recorders: dict[tuple[int, str], EpisodeRecorder] = {}
    players: dict[tuple[int, str], Agent] = {}
    for k, (arena, seed) in enumerate(zip(arenas, seeds, strict=True)):
        observations, infos = arena.reset(seed=seed)
        for label in arena.agents:
            recorders[k, label] = EpisodeRecorder(
                label, env_id, seed, observations[label], infos[label], arena.max_turns
            )
            players[k, label] = begin_episode(agents[label], arena.env(label), seed)
    while live := [(k, label) for k, arena in enumerate(arenas) for label in arena.agents]:
        replies = dict(
            zip(live, act([players[x] for x in live], [recorders[x].history() for x in live]), strict=True)
        )
        for k, arena in enumerate(arenas):
            actions = {label: replies[k, label] for label in arena.agents}
            if not actions:
                continue
            outcome = arena.step({label: reply or "" for label, reply in actions.items()})
            for label, reply in actions.items():
                recorders[k, label].add_turn(reply, *(part[label] for part in outcome))
    return [recorder.to_record() for recorder in recorders.values()]


_SCALARS = frozenset((str, bool, int, float, type(None)))


def _plain(value: Any) -> Any:
    """``value`` in JSON types: numpy scalars and arrays as numbers and lists, tuples and sets as lists.

    A list of plain scalars (most of what an ``info`` holds) is returned as it is, checked in one pass.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list and all(type(item) in _SCALARS for item in value):
        return value
    if isinstance(value, dict):
        return {key if type(key) is str else str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):  # in a fixed order, whatever the hash seed
        return sorted((_plain(item) for item in value), key=repr)
    if hasattr(value, "tolist"):
        return value.tolist()
    return value if isinstance(value, str | int | float) else str(value)
