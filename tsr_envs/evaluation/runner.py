"""``evaluate``: run agents on envs and seeds, in parallel processes, resumably.

Work is cut into tasks of a few seeds for one (agent, env) pair -- or, in arena mode, for all agents at
once on the same seeds.  Each worker process builds its agents on first use (a model is loaded once per
process, never in the main process when there are several workers) and keeps its envs between tasks.
The main process is the only writer of ``episodes.jsonl``: it appends a task's records as soon as the task
finishes and skips, on a rerun, every (agent, env, seed) already on file.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import gymnasium as gym

from tsr_envs.core import TextEnv
from tsr_envs.evaluation.agents import (
    Agent,
    AgentOptions,
    AgentSpec,
    as_agent,
    needs_env,
    parse_agent_spec,
)
from tsr_envs.evaluation.episodes import RecordKey, encode, play_arena, play_lockstep, record_key
from tsr_envs.evaluation.errors import EvalInputError
from tsr_envs.evaluation.report import EvalResults
from tsr_envs.evaluation.seed_lists import parse_seeds
from tsr_envs.evaluation.store import ResultsFolder
from tsr_envs.registration import registered_ids, spec_of
from tsr_envs.splits import SplitError, split_env_kwargs, split_seeds

AgentEntry = AgentSpec | Agent


@dataclass(frozen=True)
class Task:
    agents: tuple[str, ...]
    env_id: str
    seeds: tuple[int, ...]
    arena: bool


class Worker:
    """What one process needs to play tasks: its agents (built on first use) and reusable envs."""

    def __init__(
        self,
        entries: Mapping[str, AgentEntry],
        env_kwargs: Mapping[str, dict[str, Any]],
        max_turns: int | None,
        concurrency_share: int,
    ) -> None:
        self.entries = dict(entries)
        self.env_kwargs = dict(env_kwargs)
        self.max_turns = max_turns
        self.concurrency_share = concurrency_share
        self._agents: dict[str, Agent] = {}
        self._envs: dict[str, list[Any]] = {}
        self._arenas: dict[tuple[str, tuple[str, ...]], list[Any]] = {}

    def agent(self, label: str) -> Agent:
        if label not in self._agents:
            entry = self.entries[label]
            self._agents[label] = (
                entry.build(self.concurrency_share) if isinstance(entry, AgentSpec) else entry
            )
        return self._agents[label]

    def envs(self, env_id: str, count: int) -> list[Any]:
        pool = self._envs.setdefault(env_id, [])
        limit = {} if self.max_turns is None else {"max_episode_steps": self.max_turns}
        while len(pool) < count:
            pool.append(_make(gym.make, env_id, **limit, **self.env_kwargs[env_id]))
        return pool[:count]

    def arenas(self, env_id: str, players: tuple[str, ...], count: int) -> list[Any]:
        from tsr_envs.arena import TextArena

        pool = self._arenas.setdefault((env_id, players), [])
        while len(pool) < count:
            pool.append(
                _make(TextArena, env_id, players, max_turns=self.max_turns, **self.env_kwargs[env_id])
            )
        return pool[:count]

    def run(self, task: Task) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
        """The task's records, and the counters of agents that keep ``stats``.

        Seeds are played in lockstep only when some agent batches its replies; agents that read the env
        (random, oracle) gain nothing from it, so their episodes run one after another on a single env.
        """
        agents = {label: self.agent(label) for label in task.agents}
        batches = [task.seeds] if not all(map(needs_env, agents.values())) else [(s,) for s in task.seeds]
        records: list[dict[str, Any]] = []
        for seeds in batches:
            if task.arena:
                arenas = self.arenas(task.env_id, task.agents, len(seeds))
                records += play_arena(agents, task.env_id, arenas, seeds)
            else:
                (agent,) = agents.values()
                records += play_lockstep(agent, task.env_id, self.envs(task.env_id, len(seeds)), seeds)
        return records, self.stats()

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            label: dict(agent.stats)
            for label, agent in self._agents.items()
            if isinstance(getattr(agent, "stats", None), Mapping)
        }

    def close(self) -> None:
        for agent in self._agents.values():
            if callable(getattr(agent, "close", None)):
                agent.close()


def _make(factory: Any, env_id: str, *args: Any, **kwargs: Any) -> Any:
    """Build an env; a constructor that rejects the user's ``--env-arg`` values is bad input, not a bug."""
    try:
        return factory(env_id, *args, **kwargs)
    except (TypeError, ValueError, OSError) as error:
        raise EvalInputError(f"cannot make {env_id} with {kwargs}: {error}") from None


_WORKER: Worker | None = None


def _init_worker(worker: Worker, parent_pid: int) -> None:
    global _WORKER
    _WORKER = worker
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """Make this pool process end when the ``tsr eval`` process that started it dies, even by SIGKILL.

    A killed parent cannot shut its pool down, and the workers would run on, holding models and cores.
    Linux delivers a signal on the parent's death (``PR_SET_PDEATHSIG``); elsewhere, and as a fallback,
    a daemon thread notices that the parent process has changed and exits.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="tsr-eval-parent-watch", daemon=True).start()


def _run_in_worker(task: Task, as_lines: bool) -> tuple[int, list[dict] | None, list[str] | None, dict]:
    """Run a task in a pool process; one form of its records travels back, never both.

    When they go to ``episodes.jsonl`` it is the JSON lines, encoded here (the main process decodes each
    once, rather than unpickling the record and encoding it again); otherwise the records themselves.
    """
    assert _WORKER is not None
    records, stats = _WORKER.run(task)
    if as_lines:
        return os.getpid(), None, [encode(record) for record in records], stats
    return os.getpid(), records, None, stats


def _requires(env_id: str) -> set[str]:
    """The data kwargs an id needs (empty for ids outside the suite, e.g. a user's own registration)."""
    return set(spec_of(env_id).requires) if env_id in registered_ids() else set()


def resolve_env_ids(selection: str | Sequence[str], env_kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """Env ids from ``"all"``, ids, or a comma list; ``all`` skips data-driven ids whose data is not given."""
    given = set(env_kwargs or {})
    names = selection.split(",") if isinstance(selection, str) else list(selection)
    ids: list[str] = []
    for name in (name.strip() for name in names):
        if name == "all":
            ids.extend(env_id for env_id in registered_ids() if _requires(env_id) <= given)
        elif name not in gym.registry:
            raise EvalInputError(f"unknown env id {name!r}; known ids: all, {', '.join(registered_ids())}")
        elif not _is_text_env(name):
            raise EvalInputError(
                f"{name} is not a text environment (a tsr_envs.TextEnv with instructions and text "
                f"replies); known ids: all, {', '.join(registered_ids())}"
            )
        elif missing := _requires(name) - given:
            raise EvalInputError(
                f"{name} needs data: pass " + " ".join(f"--env-arg {key}=..." for key in missing)
            )
        else:
            ids.append(name)
    if not ids:
        raise EvalInputError(f"no environment selected by {selection!r}")
    return list(dict.fromkeys(ids))


def _is_text_env(env_id: str) -> bool:
    entry = gym.spec(env_id).entry_point
    creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return isinstance(creator, type) and issubclass(creator, TextEnv)


def check_env_kwargs(per_env_kwargs: Mapping[str, dict[str, Any]]) -> None:
    """Build each env once here, so bad kwargs or data fail in one line before any worker starts."""
    for env_id, kwargs in per_env_kwargs.items():
        try:
            gym.make(env_id, **kwargs).close()
        except (ValueError, TypeError, OSError) as error:
            raise EvalInputError(f"cannot make {env_id} with {kwargs}: {error}") from None


def kwargs_for(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A data kwarg (``level_file``) goes only to the ids that require it; any other kwarg to every id."""
    data_keys = set().union(*(_requires(other) for other in registered_ids()))
    required = _requires(env_id)
    return {key: value for key, value in env_kwargs.items() if key in required or key not in data_keys}


def evaluate(
    agents: str | Agent | Sequence[str | Agent],
    env_ids: str | Sequence[str] = "all",
    *,
    episodes: int = 50,
    seeds: str | Sequence[int] | None = None,
    split: str = "test",
    workers: int = 1,
    out: str | os.PathLike[str] | None = None,
    max_turns: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_options: AgentOptions | None = None,
    batch_size: int = 16,
    arena: bool = False,
    progress: bool | None = None,
    plot: bool = True,
) -> EvalResults:
    """Run every agent on every env for the given seeds and summarise.

    ``agents`` are spec strings (``"random"``, ``"oracle"``, ``"hf:PATH"``, ``"openai:URL"`` with
    ``agent_options.model``, ``"python:MODULE:NAME"``) or agent objects.  Seeds are ``seeds`` if given,
    else the first ``episodes`` seeds of ``split`` (see ``tsr_envs.splits``); envs with a split
    instance pool (WebShop's goals) draw from ``split``'s part of it, with explicit seeds too.  With ``out``,
    every episode is appended to ``out/episodes.jsonl`` as it finishes, a rerun skips what is on file, and
    the summary is written as ``summary.json``, ``summary.md`` and (with ``plot``) PNG figures.  With
    ``arena``, all agents play clones of each instance together through ``tsr_envs.arena.TextArena``.
    """
    options = agent_options or AgentOptions()
    entries, agent_settings = _agent_entries(agents, options)
    env_kwargs = dict(env_kwargs or {})
    ids = resolve_env_ids(env_ids, env_kwargs)
    try:
        per_env_kwargs = {
            env_id: split_env_kwargs(env_id, split, kwargs_for(env_id, env_kwargs)) for env_id in ids
        }
        if seeds is None:
            seed_list = split_seeds(split, episodes)
    except SplitError as error:
        raise EvalInputError(str(error)) from None
    check_env_kwargs(per_env_kwargs)
    if seeds is not None:
        seed_list = (
            parse_seeds(seeds) if isinstance(seeds, str) else list(dict.fromkeys(int(s) for s in seeds))
        )
    if workers < 1 or batch_size < 1 or (max_turns is not None and max_turns < 1):
        raise EvalInputError("workers, batch size and max turns must be positive")
    if arena and importlib.util.find_spec("pettingzoo") is None:
        raise EvalInputError("the arena needs pettingzoo: pip install 'tsr-suite[eval]'")
    folder = ResultsFolder(out) if out is not None else None
    done: dict[RecordKey, dict[str, Any]] = {}
    if folder is not None:
        try:
            folder.path.mkdir(parents=True, exist_ok=True)
            probe = folder.path / ".tsr-write-check"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise EvalInputError(
                f"cannot write results to {folder.path}: {error.strerror or error}"
            ) from None
        folder.merge_settings(
            {"max_turns": max_turns, "env_kwargs": env_kwargs, "split": split, "agents": agent_settings}
        )
        done = {record_key(record): record for record in folder.read_records()}
    labels = tuple(entries)
    tasks = _plan(labels, ids, seed_list, done, workers, batch_size, arena)
    worker = Worker(entries, per_env_kwargs, max_turns, workers)
    with _records_out_of_gc() as settle:
        stats = _execute(tasks, worker, workers, folder, done, progress, settle)
    wanted = [(label, env_id, seed) for label in labels for env_id in ids for seed in seed_list]
    results = EvalResults([done[key] for key in wanted], agent_stats=stats)
    if folder is not None:
        results.save(folder.path, plot=plot)
    return results


def _agent_entries(
    agents: str | Agent | Sequence[str | Agent], options: AgentOptions
) -> tuple[dict[str, AgentEntry], dict[str, dict[str, Any]]]:
    items = [agents] if isinstance(agents, str) or not isinstance(agents, Sequence) else list(agents)
    if not items:
        raise EvalInputError("no agent given")
    entries: dict[str, AgentEntry] = {}
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        entry: AgentEntry = parse_agent_spec(item, options) if isinstance(item, str) else as_agent(item)
        label = entry.label if isinstance(entry, AgentSpec) else entry.name
        if label in entries:
            raise EvalInputError(f"agent {label!r} is given twice")
        entries[label] = entry
        settings[label] = _result_settings(entry)
    return entries, settings


def _result_settings(entry: AgentEntry) -> dict[str, Any]:
    """The options that change an agent's replies (a resumed run must use the same ones)."""
    if isinstance(entry, AgentSpec) and entry.kind in ("hf", "openai"):
        fields = asdict(entry.options)
        keys = ("temperature", "max_tokens") + (("seed",) if entry.kind == "hf" else ())
        return {key: fields[key] for key in keys}
    return {}


def _plan(
    labels: tuple[str, ...],
    ids: list[str],
    seeds: list[int],
    done: Mapping[RecordKey, Any],
    workers: int,
    batch_size: int,
    arena: bool,
) -> list[Task]:
    groups: list[tuple[tuple[str, ...], str, list[int]]] = []
    for env_id in ids:
        if arena:
            todo = [s for s in seeds if any((label, env_id, s) not in done for label in labels)]
            groups.append((labels, env_id, todo))
        else:
            groups.extend(
                ((label,), env_id, [s for s in seeds if (label, env_id, s) not in done]) for label in labels
            )
    tasks = []
    for players, env_id, todo in groups:
        size = max(1, min(batch_size, -(-len(todo) // workers)))
        tasks.extend(
            Task(players, env_id, tuple(todo[i : i + size]), arena) for i in range(0, len(todo), size)
        )
    return tasks


def _execute(
    tasks: list[Task],
    worker: Worker,
    workers: int,
    folder: ResultsFolder | None,
    done: dict[RecordKey, dict[str, Any]],
    progress: bool | None,
    settle: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, int]]:
    """Run the tasks, storing each finished task's new records; return the agents' summed counters.

    ``settle`` runs after each task's records are stored (see ``_records_out_of_gc``)."""
    total = sum(len(task.seeds) * (len(task.agents)) for task in tasks)
    show = sys.stderr.isatty() if progress is None else progress
    latest: dict[int, dict[str, dict[str, int]]] = {}
    with _progress_bar(total, show and bool(tasks)) as bar:

        def collect(pid: int, records: list[dict] | None, lines: list[str] | None, stats: dict) -> None:
            # Records come as dicts (this process, or a pool without a folder) or as JSON lines.
            if records is None:
                records = [json.loads(line) for line in lines or ()]
            fresh = [i for i, record in enumerate(records) if record_key(record) not in done]
            if folder is not None:
                folder.append([lines[i] if lines else encode(records[i]) for i in fresh])
            for i in fresh:
                done[record_key(records[i])] = records[i]
            latest[pid] = stats
            settle()
            bar.update(len(fresh))

        if workers == 1 or len(tasks) <= 1:
            try:
                for task in tasks:
                    records, stats = worker.run(task)
                    collect(os.getpid(), records, None, stats)
            finally:
                worker.close()
        else:
            _execute_in_pool(tasks, worker, workers, collect, folder is not None)
    summed: dict[str, dict[str, int]] = {}
    for stats in latest.values():
        for label, counters in stats.items():
            target = summed.setdefault(label, {})
            for key, value in counters.items():
                target[key] = target.get(key, 0) + value
    return summed


@contextlib.contextmanager
def _records_out_of_gc() -> Iterator[Callable[[], None]]:
    """Keep the finished transcripts out of the garbage collector's full passes while episodes run.

    Every record is hundreds of small dicts and lists that live until ``evaluate`` returns, and each full
    collection triggered by the envs' own allocations walks all of them again: measured, that was most of
    the harness's cost over a plain loop.  The yielded function moves everything alive into the
    permanent generation (``gc.freeze``) after each task; on exit it all goes back, unless the process had
    frozen objects of its own before the run (building a WebShop catalogue does): then nothing is
    unfrozen, since that would unfreeze the caller's objects too.  Frozen objects are still freed when
    nothing refers to them any more; only reference cycles among them wait for an unfreeze.
    """
    frozen_before = gc.get_freeze_count()
    try:
        yield gc.freeze
    finally:
        if not frozen_before:
            gc.unfreeze()


def _progress_bar(total: int, show: bool) -> Any:
    """A tqdm bar (the ``[eval]`` extra); without tqdm, a silent stand-in."""
    try:
        from tqdm import tqdm
    except ImportError:
        return contextlib.nullcontext(SimpleNamespace(update=lambda n: None))
    return tqdm(total=total, unit="episode", desc="tsr eval", disable=not show)


def _execute_in_pool(tasks: list[Task], worker: Worker, workers: int, collect: Any, as_lines: bool) -> None:
    # fork shares the parent's imports and agent objects without pickling; elsewhere spawn is the safe choice
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(
        min(workers, len(tasks)),
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(worker, os.getpid()),
    )
    try:
        pending = {pool.submit(_run_in_worker, task, as_lines) for task in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                collect(*future.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
