"""The TSR study: does training on search-built rollouts leave a better policy than naive rollouts?

For every (env, algorithm, rollout strategy, training seed) cell, the same starting model is trained with
the default recipe of ``tsr train`` (only the strategy changes), then the *final policy alone* — plain
sampling, no search — is evaluated on test-split instances.  Search is a training-time device in TSR, so
the fair question is how good the policy it leaves behind is, not how good policy + search is.

Two budgets are reported:

* **equal optimizer steps**: every cell trains ``steps`` steps;
* **equal generated tokens**: a search generates more tokens per step than naive sampling, so naive is
  trained further (its run resumed, bit for bit) until it has generated as many tokens as the search
  cell of the same seed, and evaluated there.

Cells are independent and appended to ``cells.jsonl`` as they finish, so the grid runs in the background,
in shards on several cores (``--shard i/n``: a shard owns whole (env, algo, seed) rows, so a naive run's
token-matched extensions stay in the shard that trained it), and resumes where it stopped.
``summarise`` turns whatever has finished into ``results.json``, ``results.md`` and ``curves.png`` (the
policy-alone held-out success during training, mean over seeds, one line per strategy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsr_train.config import EMBEDDED, RolloutConfig, TrainConfig, checkpoint_step, latest_checkpoint
from tsr_train.metrics import METRICS_FILE, read_metrics

STUDY_FILE = "study.json"
CELLS_FILE = "cells.jsonl"
BASELINE_FILE = "baseline.jsonl"
RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"
CURVES_FILE = "curves.png"
#: two-sided 95% Student-t quantiles by degrees of freedom (the normal 1.96 beyond the table)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


@dataclass
class StudyConfig:
    """The grid, and the few recipe settings a variant study may change (``None`` = the default recipe)."""

    envs: tuple[str, ...] = ("tsr/FrozenLake-v0", "tsr/Sokoban-v0")
    algos: tuple[str, ...] = ("grpo", "ppo")
    strategies: tuple[str, ...] = ("naive", "best-of-4", "beam-2x2", "lookahead-1x4")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = TrainConfig.steps
    #: test-split episodes each final policy is evaluated on
    eval_episodes: int = 200
    #: also train naive to the generated tokens of each search (the equal-token budget)
    token_budget: bool = True
    model: str | None = None
    #: a fresh folder by default: the committed ones under benchmarks/results/ hold cells from other
    #: models and recipes, and a folder refuses cells that would not compare with its own
    out_dir: str = "runs/tsr_study"
    #: recipe overrides, by ``RolloutConfig`` / ``TrainConfig`` field name (e.g. {"scorer": "score"}), or
    #: ``"ppo.NAME"`` / ``"grpo.NAME"`` for a field of the nested settings
    rollout_overrides: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)

    def train_config(
        self, env_id: str, algo: str, search: str, seed: int, steps: int | None = None
    ) -> TrainConfig:
        rollout = RolloutConfig(env_id=env_id, search=search, **self.rollout_overrides)
        top = {key: value for key, value in self.train_overrides.items() if "." not in key}
        config = TrainConfig(
            algo=algo,
            model=self.model,
            steps=steps or self.steps,
            seed=seed,
            out_dir=str(self.cell_dir(env_id, algo, search, seed)),
            save_every=self.steps,
            rollout=rollout,
            **top,
        )
        # "ppo.kl_coef"-style keys override one field of the nested PPO or GRPO settings.
        for key, value in self.train_overrides.items():
            if "." in key:
                group, name = key.split(".", 1)
                config = dataclasses.replace(
                    config, **{group: dataclasses.replace(getattr(config, group), **{name: value})}
                )
        return config

    def check(self) -> None:
        """Raise ``ValueError`` naming what is wrong with a grid that cannot run, before any cell trains.

        Why up front: a grid runs for hours, cell after cell, and a typo in its last env or strategy, or a
        recipe override that no cell accepts, would otherwise surface as a traceback hours in.
        """
        from tsr_train.cli import check_env, looks_local
        from tsr_train.strategies import make_strategy

        for env_id in self.envs:
            check_env(env_id, self.rollout_overrides.get("env_kwargs", {}))
        for strategy in self.strategies:
            try:
                make_strategy(strategy)
            except ValueError as error:
                raise ValueError(f"bad strategy {strategy!r}: {error}") from None
        if self.model not in (None, EMBEDDED) and looks_local(self.model) and not Path(self.model).exists():
            raise ValueError(f"model path {self.model!r} does not exist")
        for algo in self.algos:
            for strategy in self.strategies:
                try:
                    self.train_config(self.envs[0], algo, strategy, self.seeds[0])
                except (ValueError, TypeError) as error:
                    raise ValueError(f"the recipe does not hold for {algo} {strategy}: {error}") from None

    def cell_dir(self, env_id: str, algo: str, search: str, seed: int) -> Path:
        return Path(self.out_dir) / "runs" / env_id.split("/")[-1] / algo / search / f"seed{seed}"

    def rows(self) -> list[tuple[str, str, int]]:
        """The (env, algo, seed) rows, in run order: env-major, so a partial grid has whole envs."""
        return [(env, algo, seed) for env in self.envs for algo in self.algos for seed in self.seeds]


class RecipeMismatch(ValueError):
    """The study folder holds runs trained with another recipe than the one asked for now."""


#: the files whose bytes make a local model what it is: its weights and its tokenizer
_MODEL_FILES = ("*.safetensors", "*.bin", "tokenizer.json")


def model_fingerprint(model: str | Path) -> str | None:
    """SHA-256 of a local model's weights and tokenizer; ``None`` for a hub id, which cannot be read here.

    The study records it because a model rebuilt from the same recipe need not be the same model: float
    rounding differs between CPU types and library versions, and 3,000 warm-up steps amplify it (the
    default model rebuilt on another machine ended at warm-up loss 0.3388 instead of 0.3357).
    """
    root = Path(model)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted({found for pattern in _MODEL_FILES for found in root.glob(pattern)}):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def check_starting_model(config: StudyConfig, fingerprint: str | None, manifest: dict | None) -> None:
    """Refuse to add cells to a folder whose cells were trained from another starting model.

    Compared by the weights' fingerprint, or for folders recorded before it was, by the tiny model's build
    record (its recipe and final warm-up loss).  Nothing is compared when the folder has no cells yet.
    """
    out = Path(config.out_dir)
    if not _holds_cells(out):
        return
    saved = json.loads((out / STUDY_FILE).read_text())
    if saved.get("model_sha256") and fingerprint:
        before, now = saved["model_sha256"], fingerprint
    elif saved.get("model_manifest") and manifest:
        keys = ("config", "final_loss")
        before, now = ({k: m.get(k) for k in keys} for m in (saved["model_manifest"], manifest))
    else:
        return
    if before != now:
        raise RecipeMismatch(
            f"{out} holds cells trained from another starting model than {config.model} ({before} there, "
            f"{now} now), so new cells would not be comparable with them. Choose another --out, or use "
            f"the model that folder was trained from (its {STUDY_FILE} records which)."
        )


def check_recipe(config: StudyConfig) -> None:
    """Refuse to add cells to a folder whose runs were trained with a different recipe.

    A study compares cells, so every cell in one folder must share the recipe; a default that changed
    between sessions (``naive_mix`` did) would otherwise put new cells beside old ones silently.  Each run
    already in the folder is compared, field by field, with the configuration this study would give the
    same cell; only ``steps`` may differ (the equal-token runs train further), and ``out_dir``, so that a
    study folder can be moved or cloned elsewhere and resumed there.
    """
    from tsr_train.cli import CONFIG_FILE

    for saved in sorted((Path(config.out_dir) / "runs").glob(f"*/*/*/*/{CONFIG_FILE}")):
        previous = TrainConfig.load(saved)
        rollout = previous.rollout
        mine = config.train_config(
            rollout.env_id, previous.algo, rollout.search, previous.seed, previous.steps
        )
        changed = [change for change in previous.differences(mine) if change[0] != "out_dir"]
        if changed:
            details = "; ".join(f"{name}: {old!r} there, {new!r} now" for name, old, new in changed)
            raise RecipeMismatch(
                f"{saved.parent} was trained with another recipe ({details}). Pass the same --set "
                "overrides (and --model, --steps) to resume this study, or choose another --out."
            )


def _read(path: Path) -> list[dict]:
    return read_metrics(path)  # the same one-JSON-object-per-line format


def _append(path: Path, record: dict) -> None:
    with path.open("a") as handle:  # one short write per line: safe for concurrent shards
        handle.write(json.dumps(record) + "\n")


def generated_tokens(run_dir: Path, up_to_step: int | None = None) -> int:
    """Tokens the run's rollouts generated (search candidates and lookahead continuations included)."""
    records = [r for r in _read(run_dir / METRICS_FILE) if r["step"] > 0]
    if up_to_step is not None:
        records = [r for r in records if r["step"] <= up_to_step]
    return int(sum(r.get("search/generated_tokens", 0.0) for r in records))


def heldout_curve(run_dir: Path, up_to_step: int) -> list[list[float]]:
    """The run's ``[step, held-out success]`` checks up to ``up_to_step`` (the policy alone, validation)."""
    return [
        [r["step"], r["heldout/success"]]
        for r in _read(run_dir / METRICS_FILE)
        if "heldout/success" in r and r["step"] <= up_to_step
    ]


def run_summary(run_dir: Path, up_to_step: int) -> dict[str, Any]:
    """What a cell's record keeps of its run folder, so that a checkout without the runs can summarise.

    A run with the drift guard on also keeps ``guard_naive_steps``: how many of its steps the guard
    rolled out naively, the share of the run in which the search did not build the batch.
    """
    summary = {
        "generated_tokens": generated_tokens(run_dir, up_to_step),
        "rollout_success": rollout_success(run_dir, up_to_step),
        "heldout_curve": heldout_curve(run_dir, up_to_step),
    }
    guarded = [
        r["guard/naive_step"]
        for r in _read(run_dir / METRICS_FILE)
        if "guard/naive_step" in r and r["step"] <= up_to_step
    ]
    if guarded:
        summary["guard_naive_steps"] = int(sum(guarded))
    return summary


def rollout_success(run_dir: Path, up_to_step: int) -> float | None:
    """Mean success of the run's own training rollouts (with its search) over steps 1..``up_to_step``."""
    values = [
        r["rollout/success"]
        for r in _read(run_dir / METRICS_FILE)
        if 0 < r["step"] <= up_to_step and "rollout/success" in r
    ]
    return statistics.fmean(values) if values else None


def evaluate_final(model_dir: Path, config: StudyConfig, env_id: str) -> dict[str, float]:
    """The policy alone on ``eval_episodes`` test-split instances (plain sampling, sampling seed 0)."""
    from tsr_train.heldout import evaluate_policy
    from tsr_train.policy import load_causal_lm

    rollout = RolloutConfig(env_id=env_id, **config.rollout_overrides)
    model, tokenizer = load_causal_lm(model_dir)
    result = evaluate_policy(
        model,
        tokenizer,
        env_id,
        split="test",
        episodes=config.eval_episodes,
        max_turns=rollout.max_turns,
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        env_kwargs=rollout.env_kwargs,
    )
    record = {"success": result.success, "score": result.score, "invalid_rate": result.invalid_rate}
    by_map = success_by_map(env_id, rollout.env_kwargs, result.outcomes)
    return {**record, "success_by_map": by_map} if by_map is not None else record


def best_heldout_record(run_dir: Path, config: StudyConfig, env_id: str) -> dict[str, dict]:
    """The test success of a run's best validation checkpoint, as ``{"best_heldout": {...}}``.

    With its step and validation success.  The grid's number stays the last policy's; this one shows
    what selecting on validation would have given instead (``{}`` for a run that kept no checkpoint).
    """
    from tsr_train.heldout import BEST_HELDOUT_DIR, read_best_heldout

    best = read_best_heldout(run_dir)
    if best is None:
        return {}
    test = evaluate_final(run_dir / BEST_HELDOUT_DIR, config, env_id)
    return {"best_heldout": {"step": best["step"], "validation_success": best["success"], **test}}


#: The kwarg that gives an env a few fixed instances, and the env attribute naming an episode's one.
FIXED_INSTANCE_INDEX = {"maps": "map_index", "levels": "level_index"}


def success_by_map(
    env_id: str, env_kwargs: dict[str, Any], outcomes: tuple[tuple[int, bool], ...]
) -> dict[str, list[float]] | None:
    """For an env with a set of fixed instances (FrozenLake ``maps``, Sokoban ``levels``), success on each.

    ``{"success": [one per map or level], "episodes": [one per map or level]}``; ``None`` for other envs
    (without making them).  On ``tsr/FrozenLake-Hard-v0`` and ``tsr/Sokoban-Hard-v0`` it tells a policy
    that solves one easy instance from one that learned them all.
    """
    import gymnasium as gym

    kwargs = {**gym.spec(env_id).kwargs, **env_kwargs}
    fixed = [
        (name, attribute)
        for name, attribute in FIXED_INSTANCE_INDEX.items()
        if len(kwargs.get(name) or ()) > 1
    ]
    if not fixed:
        return None
    name, index_attribute = fixed[0]
    env = gym.make(env_id, **env_kwargs).unwrapped
    count = len(kwargs[name])
    wins, counts = [0] * count, [0] * count
    for seed, success in outcomes:
        env.reset(seed=seed)
        index = getattr(env, index_attribute)
        wins[index] += success
        counts[index] += 1
    env.close()
    return {"success": [w / n if n else None for w, n in zip(wins, counts, strict=True)], "episodes": counts}


def _train_cell(config: StudyConfig, env_id: str, algo: str, search: str, seed: int, steps: int) -> Path:
    from tsr_train.cli import train

    train_config = config.train_config(env_id, algo, search, seed, steps)
    run_dir = Path(train_config.out_dir)
    if checkpoint_step(latest_checkpoint(run_dir)) >= steps and (run_dir / "final").exists():
        return run_dir / "final"
    return train(train_config, resume=(run_dir / "config.json").exists())


def run(config: StudyConfig, *, shard: tuple[int, int] = (0, 1), log=print) -> Path:
    """Train and evaluate every cell of this shard not yet in ``cells.jsonl``; returns the output folder."""
    from tsr_train.tiny_model import read_manifest, resolve_model

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, model=str(resolve_model(config.model)))
    fingerprint, manifest = model_fingerprint(config.model), read_manifest(config.model)
    check_recipe(config)
    check_starting_model(config, fingerprint, manifest)
    record = {"model_sha256": fingerprint, "model_manifest": manifest}
    record_study(config, record)
    index, count = shard
    if index == 0:
        # Under the folder's lock: processes started together would each evaluate the same baseline.
        with _folder_lock(out):
            baselines = {r["env"] for r in _read(out / BASELINE_FILE)}
            for env_id in config.envs:
                if env_id not in baselines:
                    result = evaluate_final(Path(config.model), config, env_id)
                    _append(out / BASELINE_FILE, {"env": env_id, **result})
                    log(f"[baseline] {env_id}: success {result['success']:.3f}")
    for row_index, (env_id, algo, seed) in enumerate(config.rows()):
        if row_index % count != index:
            continue
        for search in config.strategies:
            _equal_steps_cell(config, env_id, algo, search, seed, log)
        if config.token_budget and "naive" in config.strategies:
            _equal_token_cells(config, env_id, algo, seed, log)
        summarise(record_study(config, record))
    return out


_GRID_FIELDS = ("envs", "algos", "strategies", "seeds")


def folder_grid(config: StudyConfig, saved: dict[str, Any]) -> StudyConfig:
    """``config`` with its grid widened by the grid ``saved`` in its folder's study.json.

    Processes that share a folder (one per seed, say, or a later run that adds a strategy) each run
    their own grid; the folder's record and tables must stay about every cell in it, not only the last
    process's.  Entries already recorded keep their order; new ones follow (seeds sorted).  The
    equal-token budget stays recorded once any process ran it, since its cells stay in the folder.
    """
    widened: dict[str, Any] = {"token_budget": config.token_budget or bool(saved.get("token_budget"))}
    for name in _GRID_FIELDS:
        merged = list(saved.get(name, ()))
        merged += [value for value in getattr(config, name) if value not in merged]
        widened[name] = tuple(sorted(merged) if name == "seeds" else merged)
    return dataclasses.replace(config, **widened)


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the study folder: the processes sharing it take turns inside."""
    import fcntl  # POSIX only, like the shards that need it

    folder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # closing the descriptor releases the lock


#: what makes two records the same study, whatever their grids
_RECIPE_FIELDS = ("steps", "eval_episodes", "rollout_overrides", "train_overrides", "model_sha256")


def record_study(config: StudyConfig, extra: dict[str, Any]) -> StudyConfig:
    """Widen the folder's study.json by ``config``'s grid (plus ``extra`` fields); returns the whole study.

    Called when a process starts and again before each of its summaries, under a lock on the folder:
    processes that start together would otherwise each read the old record and the last to write would
    drop the others' grids, and a process would table only the grids recorded before it started.  A
    record without cells yet is widened too when it is of the same study (recipe and starting model),
    so processes started together on a new folder see each other's grids from the start; one of another
    study is replaced, since nothing in the folder depends on it.
    """
    out = Path(config.out_dir)
    with _folder_lock(out):
        saved = json.loads((out / STUDY_FILE).read_text()) if (out / STUDY_FILE).exists() else {}
        mine = {**dataclasses.asdict(config), **extra}
        if not _holds_cells(out) and any(saved.get(name) != mine.get(name) for name in _RECIPE_FIELDS):
            saved = {}
        whole = folder_grid(config, saved)
        _write(out / STUDY_FILE, json.dumps({**saved, **dataclasses.asdict(whole), **extra}, indent=2) + "\n")
    return whole


def recorded_study(out_dir: str | Path) -> StudyConfig:
    """The study a folder's study.json records (its whole grid and recipe), or the default one if none."""
    path = Path(out_dir) / STUDY_FILE
    if not path.exists():
        return dataclasses.replace(StudyConfig(), out_dir=str(out_dir))
    saved = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(StudyConfig)}
    return StudyConfig(
        **{name: tuple(v) if isinstance(v, list) else v for name, v in saved.items() if name in names}
    )


def _holds_cells(out: Path) -> bool:
    """Whether ``out`` has a study record and any cell or run in it (an empty record is not binding)."""
    return (out / STUDY_FILE).exists() and bool(_read(out / CELLS_FILE) or any((out / "runs").glob("*")))


def _done(config: StudyConfig) -> dict[tuple, dict]:
    return {
        (r["env"], r["algo"], r["strategy"], r["seed"], r["budget"], r.get("matched_to")): r
        for r in _read(Path(config.out_dir) / CELLS_FILE)
    }


def _equal_steps_cell(config: StudyConfig, env_id: str, algo: str, search: str, seed: int, log) -> None:
    if (env_id, algo, search, seed, "steps", None) in _done(config):
        return
    started = time.perf_counter()
    final = _train_cell(config, env_id, algo, search, seed, config.steps)
    train_time = time.perf_counter() - started
    run_dir = final.parent
    record = {
        "env": env_id,
        "algo": algo,
        "strategy": search,
        "seed": seed,
        "budget": "steps",
        "steps": config.steps,
        **run_summary(run_dir, config.steps),
        "train_time_s": round(train_time, 1),
        **evaluate_final(final, config, env_id),
        **best_heldout_record(run_dir, config, env_id),
    }
    _append(Path(config.out_dir) / CELLS_FILE, record)
    log(f"[cell] {env_id} {algo} {search} seed {seed}: success {record['success']:.3f} ({train_time:.0f} s)")


def _equal_token_cells(config: StudyConfig, env_id: str, algo: str, seed: int, log) -> None:
    """Resume the naive run of this seed to each search's generated tokens, cheapest search first.

    The number of steps comes from naive's tokens per step over its equal-steps run, so that each cell
    is one resumed run of a length known before it starts.  Where naive's replies grow or shrink later
    on, it ends above or below the search's tokens; each record keeps ``target_tokens`` beside
    ``generated_tokens`` so that the difference is visible.
    """
    done = _done(config)
    naive = done.get((env_id, algo, "naive", seed, "steps", None))
    if naive is None or not naive["generated_tokens"]:
        return
    targets = sorted(
        (done[key]["generated_tokens"], search)
        for search in config.strategies
        if search != "naive" and (key := (env_id, algo, search, seed, "steps", None)) in done
    )
    naive_dir = config.cell_dir(env_id, algo, "naive", seed)
    per_step = naive["generated_tokens"] / config.steps
    for tokens, search in targets:
        if (env_id, algo, "naive", seed, "tokens", search) in done:
            continue
        steps = max(config.steps, math.ceil(tokens / per_step))
        if steps < checkpoint_step(latest_checkpoint(naive_dir)):
            log(f"[skip] {env_id} {algo} naive seed {seed}: already past the {search} token budget")
            continue
        started = time.perf_counter()
        final = _train_cell(config, env_id, algo, "naive", seed, steps)
        record = {
            "env": env_id,
            "algo": algo,
            "strategy": "naive",
            "seed": seed,
            "budget": "tokens",
            "matched_to": search,
            "steps": steps,
            **run_summary(naive_dir, steps),
            "target_tokens": tokens,
            "train_time_s": round(time.perf_counter() - started, 1),
            **evaluate_final(final, config, env_id),
            **best_heldout_record(naive_dir, config, env_id),
        }
        _append(Path(config.out_dir) / CELLS_FILE, record)
        log(
            f"[tokens] {env_id} {algo} naive to {search} ({steps} steps) seed {seed}: {record['success']:.3f}"
        )


def mean_ci(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% Student-t confidence interval (0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = _T95.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def summarise(config: StudyConfig) -> dict:
    """Aggregate the finished cells into ``results.json``, ``results.md`` and ``curves.png``."""
    out = Path(config.out_dir)
    records = list(_done(config).values())
    baselines = {r["env"]: r for r in _read(out / BASELINE_FILE)}
    grouped: dict[tuple, list[dict]] = {}
    for record in records:
        key = (record["env"], record["algo"], record["strategy"], record["budget"], record.get("matched_to"))
        grouped.setdefault(key, []).append(record)
    cells = []
    for (env_id, algo, strategy, budget, matched_to), runs in sorted(grouped.items(), key=str):
        runs.sort(key=lambda r: r["seed"])
        success = [r["success"] for r in runs]
        mean, half = mean_ci(success)
        cells.append(
            {
                "env": env_id,
                "algo": algo,
                "strategy": strategy,
                "budget": budget,
                "matched_to": matched_to,
                "seeds": [r["seed"] for r in runs],
                "success": success,
                "success_mean": mean,
                "success_ci95": half,
                "score": [r["score"] for r in runs],
                "invalid_rate": [r["invalid_rate"] for r in runs],
                "base_success": baselines.get(env_id, {}).get("success"),
                "generated_tokens": [r["generated_tokens"] for r in runs],
                "rollout_success": [
                    r["rollout_success"]
                    if "rollout_success" in r
                    else rollout_success(config.cell_dir(env_id, algo, strategy, r["seed"]), r["steps"])
                    for r in runs
                ],
                "steps": [r["steps"] for r in runs],
                "train_time_s": [r["train_time_s"] for r in runs],
                **(
                    {"success_by_map": [r.get("success_by_map") for r in runs]}
                    if any("success_by_map" in r for r in runs)
                    else {}
                ),
                **(
                    {"best_heldout": [r.get("best_heldout") for r in runs]}
                    if any("best_heldout" in r for r in runs)
                    else {}
                ),
            }
        )
    results = {
        "study": dataclasses.asdict(config),
        "baseline": baselines,
        "cells": cells,
    }
    _write(out / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    _write(out / TABLE_FILE, markdown(config, cells, baselines))
    plot_curves(config, records, out / CURVES_FILE)
    return results


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a concurrent shard never reads half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _fmt(cell: dict | None) -> str:
    if cell is None:
        return "–"
    return f"{cell['success_mean']:.3f} ± {cell['success_ci95']:.3f} ({len(cell['success'])})"


def on_seeds(cell: dict | None, seeds: list[int]) -> dict | None:
    """``cell`` restricted to ``seeds``, so that two cells compared side by side cover the same seeds."""
    if cell is None:
        return None
    success = [value for seed, value in zip(cell["seeds"], cell["success"], strict=True) if seed in seeds]
    if not success:
        return None
    mean, half = mean_ci(success)
    kept = [seed for seed in cell["seeds"] if seed in seeds]
    return {**cell, "seeds": kept, "success": success, "success_mean": mean, "success_ci95": half}


def markdown(config: StudyConfig, cells: list[dict], baselines: dict[str, dict]) -> str:
    """Two tables, rows = env x algorithm: equal optimizer steps, then equal generated tokens."""
    index = {(c["env"], c["algo"], c["strategy"], c["budget"], c["matched_to"]): c for c in cells}
    searches = [s for s in config.strategies if s != "naive"]
    lines = [
        f"**Equal optimizer steps** ({config.steps} steps): test success of the final policy alone",
        "",
        "| env | algo | base | " + " | ".join(config.strategies) + " | best search − naive (paired) |",
        "|" + "---|" * (len(config.strategies) + 4),
    ]
    for env_id in config.envs:
        base = baselines.get(env_id, {}).get("success")
        for algo in config.algos:
            row = [index.get((env_id, algo, s, "steps", None)) for s in config.strategies]
            naive = index.get((env_id, algo, "naive", "steps", None))
            searches = {s: c for s, c in zip(config.strategies, row, strict=True) if s != "naive"}
            lines.append(
                f"| {env_id.split('/')[-1]} | {algo.upper()} | "
                + ("–" if base is None else f"{base:.3f}")
                + " | "
                + " | ".join(_fmt(c) for c in row)
                + f" | {_best_paired_gap(searches, naive, last_success)} |"
            )
    lines += _strategy_table_header(
        config,
        "**Training rollouts** (same cells): success of the trajectories the optimizer was given, mean over "
        "steps — what the search itself achieves with the policy of the moment",
    )
    for env_id in config.envs:
        for algo in config.algos:
            parts = []
            for strategy in config.strategies:
                cell = index.get((env_id, algo, strategy, "steps", None))
                values = [v for v in (cell or {}).get("rollout_success", []) if v is not None]
                parts.append(_mean_ci_text(values))
            lines.append(f"| {env_id.split('/')[-1]} | {algo.upper()} | " + " | ".join(parts) + " |")
    lines += _by_map_lines(config, index)
    lines += _best_heldout_lines(config, index)
    if any(cell["budget"] == "tokens" for cell in cells):
        lines += [
            "",
            "**Equal generated tokens**: each search beside naive trained on as many generated tokens, "
            "both over the seeds whose naive run was extended",
            "",
            "| env | algo | " + " | ".join(f"{s} / naive (steps)" for s in searches) + " |",
            "|" + "---|" * (len(searches) + 2),
        ]
        for env_id in config.envs:
            for algo in config.algos:
                parts = []
                for search in searches:
                    naive = index.get((env_id, algo, "naive", "tokens", search))
                    mine = index.get((env_id, algo, search, "steps", None))
                    if naive is not None:  # only the seeds whose naive run was extended
                        mine = on_seeds(mine, naive["seeds"])
                    steps = "" if naive is None else f" ({statistics.fmean(naive['steps']):.0f})"
                    parts.append(f"{_fmt(mine)} / {_fmt(naive)}{steps}")
                lines.append(f"| {env_id.split('/')[-1]} | {algo.upper()} | " + " | ".join(parts) + " |")
    lines += [
        "",
        "Success of the final policy with plain sampling (temperature 1, no search) on "
        f"{config.eval_episodes} "
        "test-split instances; mean ± 95% CI (Student t) over training seeds (number of seeds). "
        "'base' = the model before training.",
        "",
    ]
    return "\n".join(lines)


def last_success(cell: dict) -> dict[int, float]:
    """Each seed's test success of its last policy."""
    return dict(zip(cell["seeds"], cell["success"], strict=True))


def best_heldout_success(cell: dict) -> dict[int, float]:
    """Each seed's test success of its best validation checkpoint, for the runs that kept one."""
    pairs = zip(cell["seeds"], cell["best_heldout"], strict=True) if "best_heldout" in cell else ()
    return {seed: best["success"] for seed, best in pairs if best is not None}


@dataclass(frozen=True)
class PairedGap:
    """A search's test success minus naive's, paired by training seed: mean and 95% CI half-width."""

    strategy: str
    mean: float
    ci95: float
    seeds: int

    def __str__(self) -> str:
        return f"{self.mean:+.3f} ± {self.ci95:.3f} ({self.strategy}, {self.seeds})"


def strongest(gaps: Iterable[PairedGap]) -> PairedGap | None:
    """The largest gain among those measured on the most seeds (``None`` for no gaps).

    A search tried on one seed that happened to go well must not stand in for one measured on five.
    """
    return max(gaps, key=lambda gap: (gap.seeds, gap.mean), default=None)


def best_paired_gap(searches: dict[str, dict | None], naive: dict | None, by_seed) -> PairedGap | None:
    """The search that beats naive most, paired by seed (``None`` when no search shares a seed with naive).

    Only the searches run on the most seeds compete (:func:`strongest`).

    Pairing compares each search run with the naive run of its own seed, which removes what the seed
    alone decides (the training instances, the sampling) from the comparison.  ``by_seed`` maps a cell
    to its success per seed (the last policy's, or the best validation checkpoint's).
    """
    if naive is None or not any(searches.values()):
        return None
    baseline = by_seed(naive)
    gaps = []
    for strategy, cell in searches.items():
        mine = by_seed(cell) if cell is not None else {}
        shared = [seed for seed in mine if seed in baseline]
        if shared:
            mean, half = mean_ci([mine[seed] - baseline[seed] for seed in shared])
            gaps.append(PairedGap(strategy, mean, half, len(shared)))
    return strongest(gaps)


def _best_paired_gap(searches: dict[str, dict | None], naive: dict | None, by_seed) -> str:
    gap = best_paired_gap(searches, naive, by_seed)
    return "–" if gap is None else str(gap)


def _best_heldout_lines(config: StudyConfig, index: dict[tuple, dict]) -> list[str]:
    """Equal steps, each run's best validation checkpoint instead of its last policy (cells that kept one)."""
    rows = []
    for env_id in config.envs:
        for algo in config.algos:
            cells = {s: index.get((env_id, algo, s, "steps", None)) for s in config.strategies}
            parts = []
            for cell in cells.values():
                kept = best_heldout_success(cell) if cell is not None else {}
                if not kept:
                    parts.append("–")
                    continue
                mean, half = mean_ci(list(kept.values()))
                last = on_seeds(cell, list(kept))
                parts.append(f"{mean:.3f} ± {half:.3f} ({len(kept)}; last {last['success_mean']:.3f})")
            if any(part != "–" for part in parts):
                searches = {s: c for s, c in cells.items() if s != "naive"}
                gap = _best_paired_gap(searches, cells.get("naive"), best_heldout_success)
                rows.append(
                    f"| {env_id.split('/')[-1]} | {algo.upper()} | " + " | ".join(parts) + f" | {gap} |"
                )
    if not rows:
        return []
    title = (
        "**Best validation checkpoint** (same cells): test success of each run's checkpoint with the best "
        "held-out (validation) success, beside the last policy's on the same seeds"
    )
    return _strategy_table_header(config, title, last_column="best search − naive (paired)") + rows


def _strategy_table_header(config: StudyConfig, title: str, last_column: str | None = None) -> list[str]:
    """A blank line, ``title``, and the head of a table with one column per strategy (and ``last_column``)."""
    columns = [*config.strategies, *([last_column] if last_column else [])]
    return [
        "",
        title,
        "",
        "| env | algo | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 2),
    ]


_BY_MAP_HEADER = [
    "",
    "**By map** (same cells): test success on each fixed map or level, mean over seeds",
    "",
    "| env | algo | strategy | seeds | success on map (level) 0, 1, ... |",
    "|---|---|---|---|---|",
]


def _by_map_lines(config: StudyConfig, index: dict[tuple, dict]) -> list[str]:
    """The equal-steps cells' test success on each fixed map or level, for envs with several (else none)."""
    rows: list[str] = []
    for env_id in config.envs:
        for algo in config.algos:
            for strategy in config.strategies:
                cell = index.get((env_id, algo, strategy, "steps", None)) or {}
                per_seed = [m for m in cell.get("success_by_map", []) if m is not None]
                if not per_seed:
                    continue
                means = []
                for values in zip(*(m["success"] for m in per_seed), strict=True):
                    played = [v for v in values if v is not None]
                    means.append(f"{statistics.fmean(played):.2f}" if played else "–")
                rows.append(
                    f"| {env_id.split('/')[-1]} | {algo.upper()} | {strategy} | {len(per_seed)} | "
                    + ", ".join(means)
                    + " |"
                )
    return _BY_MAP_HEADER + rows if rows else []


def plot_curves(config: StudyConfig, records: list[dict], path: Path) -> Path | None:
    """Held-out (validation) success of the policy alone during training, mean over seeds.

    Each equal-steps cell's curve comes from its record, or from its run folder for records written
    before records kept it.  If some cell has neither (a checkout without the run folders), the plot
    is left as it was rather than redrawn without that cell; returns ``None`` then, or with no curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    for record in records:
        if record["budget"] != "steps":
            continue
        run_dir = config.cell_dir(record["env"], record["algo"], record["strategy"], record["seed"])
        points = record.get("heldout_curve") or heldout_curve(run_dir, record["steps"])
        if not points:
            return None
        by_step = curves.setdefault((record["env"], record["algo"], record["strategy"]), {})
        for step, success in points:
            by_step.setdefault(int(step), []).append(success)
    if not curves:
        return None
    # A folder's grid is the union of what its processes ran, so some (env, algo) pairs may have no cells.
    panels = [
        (env_id, algo)
        for env_id in config.envs
        for algo in config.algos
        if any((env_id, algo, search) in curves for search in config.strategies)
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (env_id, algo) in zip(axes[0], panels, strict=True):
        for search in config.strategies:
            by_step = curves.get((env_id, algo, search))
            if by_step:
                steps = sorted(by_step)
                ax.plot(steps, [statistics.fmean(by_step[s]) for s in steps], marker=".", label=search)
        ax.set_title(f"{env_id.split('/')[-1]} {algo.upper()}")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("held-out success (policy alone)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def variants_markdown(main_dir: Path, variants_dir: Path) -> str:
    """One table of the design-space variants beside the default recipe on the same (env, algo, seeds).

    Each subfolder of ``variants_dir`` is a study run with one recipe override; its rows are compared
    with the main grid's naive and best-of-4 cells restricted to the seeds the variant ran.
    """
    main = {
        (r["env"], r["algo"], r["strategy"], r["seed"]): r
        for r in _read(main_dir / CELLS_FILE)
        if r["budget"] == "steps"
    }
    lines = [
        "| variant | env | algo | strategy | seeds | success | default best-of-4 | naive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted(p for p in variants_dir.iterdir() if (p / CELLS_FILE).exists()):
        study = json.loads((folder / "study.json").read_text())
        override = {**study["rollout_overrides"], **study["train_overrides"]}
        label = ", ".join(f"{k}={v}" for k, v in override.items()) or "default recipe"
        grouped: dict[tuple, list[dict]] = {}
        for record in _read(folder / CELLS_FILE):
            grouped.setdefault((record["env"], record["algo"], record["strategy"]), []).append(record)
        for (env_id, algo, strategy), runs in sorted(grouped.items()):
            seeds = sorted(r["seed"] for r in runs)
            columns = [_mean_ci_text([r["success"] for r in runs])]
            for reference in ("best-of-4", "naive"):
                found = [main[key]["success"] for s in seeds if (key := (env_id, algo, reference, s)) in main]
                columns.append(_mean_ci_text(found) if len(found) == len(seeds) else "–")
            lines.append(
                f"| {label} | {env_id.split('/')[-1]} | {algo.upper()} | {strategy} | "
                f"{','.join(map(str, seeds))} | " + " | ".join(columns) + " |"
            )
    return "\n".join(lines) + "\n"


def _mean_ci_text(values: list[float]) -> str:
    if not values:
        return "–"
    mean, half = mean_ci(values)
    return f"{mean:.3f} ± {half:.3f}"
