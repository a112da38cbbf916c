"""Rollout strategies: naive sampling and the trajectory searches of TSR (best-of-N, beam, lookahead).

One loop serves every strategy.  At each turn, the replies for *all* live branches of *all* envs of the
batch come from one batched ``policy.sample`` call; each candidate is stepped on a clone of its branch's
env (``env.unwrapped.clone()``), scored by a pluggable scorer, and the winners are committed.  The
strategies differ only in how many candidates a branch gets, how candidates are valued (lookahead adds
the policy's own continuation) and which survive (the best per branch, or the best ``width`` per env).

Honest branching.  When an env is stochastic (``env.stochastic``), a candidate is scored on a clone with a
fresh random stream drawn from the strategy's own generator, so the search cannot see the slip the real
step will get; the chosen reply is then stepped on the real env, so the trajectory holds real outcomes.
``honest=False`` ("peek" mode) scores on clones that share the real env's random stream instead: the search
then knows each candidate's actual outcome — an oracle, useful only as an upper bound.  On deterministic
envs the scored clone simply becomes the branch's env (the outcome is the same).

Selection.  ``selection="argmax"`` (the default) commits the best-valued candidate.  ``"softmax"`` samples
candidates with probability proportional to ``exp(value / selection_temperature)`` (for beams: ``width``
of them without replacement, by the Gumbel-top-k trick).  Sampling keeps the committed replies closer to
what the policy itself would have said, i.e. the rollout closer to on-policy; how far the choices sit
from the policy is logged as ``logprob_gap_mean``: the log-probability of the chosen reply minus the mean
over the candidates it was chosen from.

Trajectories hold the exact token ids the policy generated, interleaved with the chat template's ids for
the env's messages (see ``tsr_train.trajectory``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.chat import Message, initial_messages, observation_message
from tsr_envs.core import TextEnv
from tsr_train.scoring import Candidate, Scorer, StateScorer
from tsr_train.trajectory import ChatTokens, Trajectory, json_safe

if TYPE_CHECKING:
    from tsr_train.policy import Policy, Sample

#: What ``rollout`` accepts as the env: a registered id, a factory returning an env, or an env to clone.
EnvSource = str | Callable[..., gym.Env] | gym.Env
Outcome = tuple[str, SupportsFloat, bool, bool, dict[str, Any]]


@dataclass
class SearchStats:
    """What building a batch cost and what the search saw.

    ``candidates_generated`` counts the replies sampled for turn decisions; lookahead continuations are
    counted in ``generate_calls``, ``generated_tokens``, ``env_steps`` and ``clones_made`` only.  Score means
    are over the scorer's values (for naive, the value of the one reply each turn).

    ``candidates_invalid`` counts the sampled replies the env rejected.  The committed trajectories'
    invalid rate hides them (a search commits an invalid reply only when every candidate was invalid),
    so ``candidate_invalid_rate`` is the one number that shows the policy's own drift towards invalid
    replies while search is training it.
    """

    candidates_generated: int = 0
    candidates_invalid: int = 0
    clones_made: int = 0
    branches_pruned: int = 0
    generate_calls: int = 0
    generated_tokens: int = 0
    env_steps: int = 0
    wall_time_s: float = 0.0
    chosen_score_sum: float = 0.0
    chosen_count: int = 0
    candidate_score_sum: float = 0.0
    candidate_count: int = 0
    #: sum over decisions between several candidates of (log p(chosen) - mean log p(candidates))
    logprob_gap_sum: float = 0.0
    decisions: int = 0

    @property
    def chosen_score_mean(self) -> float:
        return self.chosen_score_sum / self.chosen_count if self.chosen_count else 0.0

    @property
    def candidate_score_mean(self) -> float:
        return self.candidate_score_sum / self.candidate_count if self.candidate_count else 0.0

    @property
    def candidate_invalid_rate(self) -> float:
        return self.candidates_invalid / self.candidates_generated if self.candidates_generated else 0.0

    @property
    def logprob_gap_mean(self) -> float:
        return self.logprob_gap_sum / self.decisions if self.decisions else 0.0

    def record_choice(self, chosen: Sample, candidates: Sequence[Sample]) -> None:
        """Count one decision: how much likelier (in log-probability) the choice is than its candidates."""
        if len(candidates) > 1:
            mean = sum(sum(c.logprobs) for c in candidates) / len(candidates)
            self.logprob_gap_sum += sum(chosen.logprobs) - mean
            self.decisions += 1

    def merge(self, other: SearchStats) -> SearchStats:
        """The stats of two batches together (counts and times add, means are re-weighted)."""
        return SearchStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        record = asdict(self)
        for name in ("chosen_score", "candidate_score", "logprob_gap"):
            del record[f"{name}_sum"]
            record[f"{name}_mean"] = getattr(self, f"{name}_mean")
        record["candidate_invalid_rate"] = self.candidate_invalid_rate
        return record


@dataclass
class RolloutBatch:
    """The trajectories of one ``rollout`` call (one per seed, in seed order) and its search statistics."""

    trajectories: list[Trajectory]
    stats: SearchStats = field(default_factory=SearchStats)

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self.trajectories)

    def __len__(self) -> int:
        return len(self.trajectories)


@dataclass
class _Branch:
    """A partial trajectory and the env it is at (the real env, or for beams its own lineage's)."""

    env: TextEnv
    record: Trajectory
    #: system and first user message, which the chat template may need to render a turn's delta
    context: list[Message]
    group: int
    value: float = 0.0
    done: bool = False

    def context_ids(self) -> list[int]:
        return self.record.prompt_ids + self.record.completion_ids

    def fork(self, env: TextEnv) -> _Branch:
        r = self.record
        record = Trajectory(**{**r.__dict__, **{name: list(getattr(r, name)) for name in _GROWING_FIELDS}})
        return _Branch(env, record, self.context, self.group, self.value, self.done)


_GROWING_FIELDS = ("completion_ids", "env_mask", "logprobs", "replies", "rewards", "infos")


@dataclass
class _Expansion:
    """A candidate reply of a branch, stepped on ``env`` (a clone, or the real env for naive)."""

    parent: _Branch
    sample: Sample
    env: TextEnv
    outcome: Outcome
    cloned: bool
    candidate: Candidate
    value: float = 0.0


@dataclass
class _Run:
    """Shared by every step of one ``rollout`` call."""

    policy: Policy
    chat: ChatTokens
    turn_limit: int
    #: the longest context that still leaves room for a full reply, or ``None`` if unbounded
    max_context: int | None
    stats: SearchStats


class RolloutStrategy:
    """Base class: naive rollouts, and the loop every search shares.

    ``scorer`` ranks candidates (default ``StateScorer``: reward plus the env's state-based score);
    ``seed`` seeds the strategy's generator (fresh random streams for honest clones of stochastic envs);
    ``honest=False`` lets candidates see the real random outcome; ``selection`` and
    ``selection_temperature`` choose how candidates are committed (see the module docstring).
    """

    name: str
    #: whether candidates are stepped on clones (naive steps the real env directly: nothing to compare)
    uses_clones: ClassVar[bool] = True

    def __init__(
        self,
        *,
        scorer: Scorer | None = None,
        seed: int | None = 0,
        honest: bool = True,
        selection: str = "argmax",
        selection_temperature: float = 0.1,
    ) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
        if selection == "softmax" and not selection_temperature > 0:
            raise ValueError(f"softmax selection needs a positive temperature, got {selection_temperature}")
        self.scorer: Scorer = scorer if scorer is not None else StateScorer()
        self.honest = honest
        self.selection = selection
        self.selection_temperature = float(selection_temperature)
        #: replies sampled per live branch and turn
        self.samples_per_branch = 1
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, honest={self.honest})"

    # ------------------------------------------------------------------ the shared loop
    def rollout(
        self,
        policy: Policy,
        env_id_or_factory: EnvSource,
        seeds: Sequence[int],
        *,
        max_turns: int,
        env_kwargs: dict[str, Any] | None = None,
    ) -> RolloutBatch:
        """One trajectory per seed (repeat a seed G times for a GRPO group: same instance, new samples)."""
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        started = time.perf_counter()
        template, env_id, spec_limit = _template_env(env_id_or_factory, env_kwargs)
        max_context = getattr(policy, "max_context_length", None)
        run = _Run(
            policy=policy,
            chat=ChatTokens(policy.tokenizer),
            turn_limit=min(max_turns, spec_limit or max_turns),
            max_context=None if max_context is None else max_context - policy.max_new_tokens,
            stats=SearchStats(),
        )
        groups = [[self._root(run, template, env_id, int(seed), group)] for group, seed in enumerate(seeds)]
        while live := [branch for group in groups for branch in group if not branch.done]:
            replies = self._sample(run, [branch.context_ids() for branch in live], self.samples_per_branch)
            expansions = [
                self._expand(run, branch, sample)
                for branch, samples in zip(live, replies, strict=True)
                for sample in samples
            ]
            run.stats.candidates_generated += len(expansions)
            run.stats.candidates_invalid += sum(expansion.candidate.invalid for expansion in expansions)
            self._evaluate(run, expansions)
            for expansion in expansions:
                run.stats.candidate_score_sum += expansion.value
            run.stats.candidate_count += len(expansions)
            groups = self._select(run, groups, expansions)
        trajectories = [max(group, key=lambda branch: branch.value).record for group in groups]
        run.stats.wall_time_s = time.perf_counter() - started
        return RolloutBatch(trajectories, run.stats)

    def _root(self, run: _Run, template: TextEnv, env_id: str, seed: int, group: int) -> _Branch:
        env = template.clone()
        observation, info = env.reset(seed=seed)
        context = initial_messages(observation, info, run.turn_limit)
        record = Trajectory(env_id, seed, prompt_ids=run.chat.prompt_ids(context))
        record.final_score = float(info.get("score", 0.0))
        branch = _Branch(env, record, context, group)
        if run.max_context is not None and len(record.prompt_ids) > run.max_context:
            record.truncated = branch.done = True
        return branch

    def _sample(self, run: _Run, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        replies = run.policy.sample(prompts, n)
        run.stats.generate_calls += 1
        run.stats.generated_tokens += sum(len(s.token_ids) for samples in replies for s in samples)
        return replies

    def _fresh_clone(self, env: TextEnv) -> TextEnv:
        """A clone to try something on: its own random stream if the env is stochastic and we are honest."""
        if env.stochastic and self.honest:
            return env.clone(rng_seed=int(self._rng.integers(2**63 - 1)))
        return env.clone()

    def _expand(self, run: _Run, branch: _Branch, sample: Sample) -> _Expansion:
        env = self._fresh_clone(branch.env) if self.uses_clones else branch.env
        run.stats.clones_made += self.uses_clones
        outcome = env.step(sample.text)
        run.stats.env_steps += 1
        candidate = _candidate(sample.text, outcome, branch.record.episode_return, env)
        return _Expansion(branch, sample, env, outcome, self.uses_clones, candidate)

    def _evaluate(self, run: _Run, expansions: list[_Expansion]) -> None:
        """Value every candidate (lookahead first extends the candidates with the policy's continuation)."""
        for expansion in expansions:
            expansion.value = float(self.scorer(expansion.candidate))

    def _rank_values(self, values: Sequence[float]) -> list[float]:
        """The values candidates are ranked by: as they are for argmax, Gumbel-perturbed for softmax.

        The best of ``value + temperature * Gumbel`` is a sample from ``softmax(value / temperature)``,
        and the top k are a sample of k without replacement.
        """
        if self.selection == "argmax":
            return list(values)
        noise = self._rng.gumbel(size=len(values))
        return [value + self.selection_temperature * g for value, g in zip(values, noise, strict=True)]

    def _select(
        self, run: _Run, groups: list[list[_Branch]], expansions: list[_Expansion]
    ) -> list[list[_Branch]]:
        """Keep one candidate of each live branch (finished branches stay as they are)."""
        ranks = self._rank_values([expansion.value for expansion in expansions])
        best: dict[int, int] = {}
        siblings: dict[int, list[Sample]] = {}
        for index, expansion in enumerate(expansions):
            key = id(expansion.parent)
            siblings.setdefault(key, []).append(expansion.sample)
            if key not in best or ranks[index] > ranks[best[key]]:
                best[key] = index
        for key, index in best.items():
            run.stats.record_choice(expansions[index].sample, siblings[key])
        run.stats.branches_pruned += len(expansions) - len(best)
        return [
            [
                self._commit(run, expansions[best[id(branch)]], exclusive=True)
                if id(branch) in best
                else branch
                for branch in group
            ]
            for group in groups
        ]

    def _commit(self, run: _Run, expansion: _Expansion, *, exclusive: bool) -> _Branch:
        """Continue the parent with the chosen reply; the trajectory records the real env's outcome."""
        parent = expansion.parent
        if expansion.cloned and parent.env.stochastic:
            env = parent.env if exclusive else parent.env.clone()
            run.stats.clones_made += not exclusive
            outcome = env.step(expansion.sample.text)
            run.stats.env_steps += 1
        else:  # the scored clone (or the real env, for naive) already holds the real outcome
            env, outcome = expansion.env, expansion.outcome
        branch = parent if exclusive else parent.fork(env)
        branch.env = env
        branch.value = float(
            self.scorer(_candidate(expansion.sample.text, outcome, parent.record.episode_return, env))
        )
        run.stats.chosen_score_sum += expansion.value
        run.stats.chosen_count += 1
        _append_turn(run, branch, expansion.sample, outcome)
        return branch


def _candidate(reply: str, outcome: Outcome, prior_return: float, env: TextEnv) -> Candidate:
    _, reward, terminated, truncated, info = outcome
    return Candidate(reply, float(reward), info, terminated, truncated, prior_return=prior_return, env=env)


def _turn_delta(
    run: _Run, context: list[Message], reply_ids: list[int], outcome: Outcome, turns: int
) -> list[int]:
    observation, _, _, _, info = outcome
    user = observation_message(observation, info, run.turn_limit - turns)
    return run.chat.turn_delta_ids(context, reply_ids, user)


def _append_turn(run: _Run, branch: _Branch, sample: Sample, outcome: Outcome) -> None:
    """Record one committed turn: the model's ids (mask 1), then the env's next message (mask 0)."""
    _, reward, terminated, truncated, info = outcome
    record = branch.record
    record.completion_ids += sample.token_ids
    record.env_mask += [1] * len(sample.token_ids)
    record.logprobs += sample.logprobs
    record.replies.append(sample.text)
    record.rewards.append(float(reward))
    record.infos.append(json_safe(info))
    record.episode_return += float(reward)
    record.success = bool(info.get("success", False))
    record.final_score = float(info.get("score", 0.0))
    record.num_turns += 1
    record.invalid_turns += not info.get("action_is_valid", True)
    record.terminated = bool(terminated)
    record.truncated = bool(truncated) or (not terminated and record.num_turns >= run.turn_limit)
    branch.done = record.terminated or record.truncated
    if branch.done:
        return
    delta = _turn_delta(run, branch.context, sample.token_ids, outcome, record.num_turns)
    if run.max_context is not None and len(branch.context_ids()) + len(delta) > run.max_context:
        record.truncated = branch.done = True  # no room left for another reply
        return
    record.completion_ids += delta
    record.env_mask += [0] * len(delta)
    record.logprobs += [0.0] * len(delta)


def _template_env(source: EnvSource, env_kwargs: dict[str, Any] | None) -> tuple[TextEnv, str, int | None]:
    """The env every root is cloned from, its id for the records, and its registered turn limit."""
    if isinstance(source, str):
        env = gym.make(source, **(env_kwargs or {}))
    elif isinstance(source, gym.Env):
        if env_kwargs:
            raise ValueError("env_kwargs apply to an env id or a factory, not to an env instance")
        env = source
    elif callable(source):
        env = source(**(env_kwargs or {}))
    else:
        raise TypeError(f"expected an env id, an env factory or an env, got {type(source).__name__}")
    template = env.unwrapped
    if not isinstance(template, TextEnv):
        raise TypeError(
            f"{type(template).__name__} has no state API; search rollouts need a tsr_envs.TextEnv "
            "(get_state/set_state/clone)"
        )
    spec = env.spec
    env_id = spec.id if spec is not None else type(template).__name__
    return template, env_id, spec.max_episode_steps if spec is not None else None


class Naive(RolloutStrategy):
    """One sample per turn, stepped on the real env: plain on-policy rollouts."""

    name = "naive"
    uses_clones = False


class BestOfN(RolloutStrategy):
    """Each turn, sample ``n`` replies per env, score each on a clone, commit the best."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = self.samples_per_branch = _positive("n", n)
        self.name = f"best-of-{n}"


class Beam(RolloutStrategy):
    """Keep the ``width`` best partial trajectories per env; each expands ``branching`` candidates a turn.

    Finished beams stay in the pool and compete on their value; the search stops when none of the kept
    beams is live, and returns each env's best beam.  Identical replies of one beam are expanded once.
    """

    def __init__(self, width: int, branching: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = _positive("width", width)
        self.branching = self.samples_per_branch = _positive("branching", branching)
        self.name = f"beam-{width}x{branching}"

    def _select(
        self, run: _Run, groups: list[list[_Branch]], expansions: list[_Expansion]
    ) -> list[list[_Branch]]:
        by_group: list[list[_Expansion]] = [[] for _ in groups]
        seen: set[tuple[int, str]] = set()
        for expansion in expansions:
            key = (id(expansion.parent), expansion.sample.text)
            if key not in seen:
                seen.add(key)
                by_group[expansion.parent.group].append(expansion)
        new_groups = []
        for group, options in zip(groups, by_group, strict=True):
            pool: list[_Branch | _Expansion] = [branch for branch in group if branch.done] + options
            ranks = self._rank_values([item.value for item in pool])
            # Stable sort: on ties, finished beams first, then candidates in sampling order.
            order = sorted(range(len(pool)), key=lambda index: -ranks[index])
            kept = [pool[index] for index in order[: self.width]]
            run.stats.branches_pruned += len(pool) - len(kept)
            children = [item for item in kept if isinstance(item, _Expansion)]
            for child in children:
                run.stats.record_choice(child.sample, [option.sample for option in options])
            remaining = {id(child.parent): 0 for child in children}
            for child in children:
                remaining[id(child.parent)] += 1
            new_group = [item for item in kept if isinstance(item, _Branch)]
            for child in children:
                remaining[id(child.parent)] -= 1
                # The parent's last kept child continues it in place; earlier ones fork a copy first.
                new_group.append(self._commit(run, child, exclusive=remaining[id(child.parent)] == 0))
            new_groups.append(new_group)
        return new_groups


@dataclass
class _Probe:
    """A lookahead continuation of one candidate, on its own clone."""

    expansion: _Expansion
    env: TextEnv
    ids: list[int]
    turns: int
    ret: float = 0.0
    done: bool = False


class Lookahead(RolloutStrategy):
    """Best-of-``n`` where each candidate is valued after the policy continues it ``depth`` more turns.

    The continuation runs on a clone (honest for stochastic envs) with one sample per turn, all
    candidates of the batch in one ``sample`` call per depth level.  The scorer gets
    ``lookahead_return`` (``sum_k discount**k * r_k`` over the continuation) and ``leaf_info`` (the
    ``info`` where it stopped), so a reward or a hole one step beyond the candidate changes its value.
    """

    def __init__(self, depth: int, n: int, *, discount: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.depth = _positive("depth", depth)
        self.n = self.samples_per_branch = _positive("n", n)
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {discount}")
        self.discount = discount
        self.name = f"lookahead-{depth}x{n}"

    def _evaluate(self, run: _Run, expansions: list[_Expansion]) -> None:
        probes = [self._probe(run, expansion) for expansion in expansions]
        for level in range(1, self.depth + 1):
            active = [probe for probe in probes if not probe.done]
            if not active:
                break
            replies = self._sample(run, [probe.ids for probe in active], 1)
            for probe, (sample,) in zip(active, replies, strict=True):
                outcome = probe.env.step(sample.text)
                run.stats.env_steps += 1
                _, reward, terminated, truncated, info = outcome
                probe.turns += 1
                probe.ret += self.discount**level * float(reward)
                probe.expansion.candidate.leaf_info = info
                probe.done = terminated or truncated or probe.turns >= run.turn_limit
                if not probe.done:
                    delta = _turn_delta(
                        run, probe.expansion.parent.context, sample.token_ids, outcome, probe.turns
                    )
                    probe.ids += sample.token_ids + delta
                    probe.done = run.max_context is not None and len(probe.ids) > run.max_context
        for probe in probes:
            probe.expansion.candidate.lookahead_return = probe.ret
        super()._evaluate(run, expansions)

    def _probe(self, run: _Run, expansion: _Expansion) -> _Probe:
        _, _, terminated, truncated, _ = expansion.outcome
        parent = expansion.parent
        turns = parent.record.num_turns + 1
        expansion.candidate.leaf_info = expansion.candidate.info
        if terminated or truncated or turns >= run.turn_limit:
            return _Probe(expansion, expansion.env, [], turns, done=True)
        env = self._fresh_clone(expansion.env)
        run.stats.clones_made += 1
        delta = _turn_delta(run, parent.context, expansion.sample.token_ids, expansion.outcome, turns)
        ids = parent.context_ids() + expansion.sample.token_ids + delta
        return _Probe(
            expansion, env, ids, turns, done=run.max_context is not None and len(ids) > run.max_context
        )


def _positive(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


SELECTIONS = ("argmax", "softmax")
STRATEGY_GRAMMAR = (
    "naive | best-of-N | beam-WxB (width x branching) | lookahead-DxN (depth x candidates), "
    "with positive integers, e.g. 'best-of-4', 'beam-2x3', 'lookahead-2x4'"
)
_SPEC = re.compile(r"naive|best-of-(?P<n>\d+)|beam-(?P<w>\d+)x(?P<b>\d+)|lookahead-(?P<d>\d+)x(?P<k>\d+)")


def make_strategy(spec: str, **kwargs: Any) -> RolloutStrategy:
    """Parse a strategy spec; ``kwargs`` (``scorer``, ``seed``, ``honest``, ``selection``,
    ``selection_temperature``, ``discount``) go to the class."""
    match = _SPEC.fullmatch(spec.strip().lower()) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"unknown rollout strategy {spec!r}; expected {STRATEGY_GRAMMAR}")
    numbers = {key: int(value) for key, value in match.groupdict().items() if value is not None}
    if any(value < 1 for value in numbers.values()):
        raise ValueError(f"rollout strategy {spec!r} has a zero; expected {STRATEGY_GRAMMAR}")
    if "n" in numbers:
        return BestOfN(numbers["n"], **kwargs)
    if "w" in numbers:
        return Beam(numbers["w"], numbers["b"], **kwargs)
    if "d" in numbers:
        return Lookahead(numbers["d"], numbers["k"], **kwargs)
    return Naive(**kwargs)


__all__ = [
    "SELECTIONS",
    "STRATEGY_GRAMMAR",
    "Beam",
    "BestOfN",
    "Candidate",
    "Lookahead",
    "Naive",
    "RolloutBatch",
    "RolloutStrategy",
    "SearchStats",
    "make_strategy",
]
