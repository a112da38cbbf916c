"""Configuration of a training run, as plain dataclasses (the TRL style: one field per knob, documented).

``TrainConfig`` is what ``tsr train`` builds from its flags and what the TSR study (``tsr_train.study``)
builds in code; it is saved next to the checkpoints (``config.json``) so that a resumed run can check it
is resuming the same experiment.  Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsr_envs.splits import split_seeds

ALGOS = ("grpo", "ppo")
#: What a trajectory is rewarded with: the env's summed reward, 1.0/0.0 for solved, or the final ``score``
#: minus one per invalid turn (see ``tsr_train.filtering.trajectory_reward``).
REWARDS = ("return", "success", "score")
REPORT_TO = ("none", "tensorboard", "wandb")
VLLM_MODES = ("colocate", "server")
#: How the learning rate moves over a run: held, or decayed to zero at its last step (``lr_factor``).
LR_SCHEDULES = ("constant", "linear", "cosine")
#: TRL 1.16's GRPO losses that work with token-level importance sampling (its "luspo" needs sequence level)
GRPO_LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo", "vespo")
GRPO_SCALE_REWARDS = ("batch", "group", "none")
SCORER_NAMES = ("reward+score", "score", "success")
SELECTION_NAMES = ("argmax", "softmax")
#: The name of the embedded tiny model wherever a model path is accepted (``--model embedded``).
EMBEDDED = "embedded"
#: Training runs with different ``seed``s train on disjoint train-split instances, this far apart.
SEED_STRIDE = 1_000_000
#: where both trainers put ``checkpoint-<step>`` folders, under the run's ``out_dir``
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class RolloutConfig:
    """How the trajectories of one optimizer step are collected."""

    env_id: str = "tsr/FrozenLake-v0"
    #: rollout strategy spec for ``tsr_train.strategies.make_strategy`` ("naive", "best-of-4", "beam-2x3")
    search: str = "naive"
    #: turns per episode (the env's own step limit also applies)
    max_turns: int = 5
    #: distinct env instances (seeds) per optimizer step: the number of groups
    seeds_per_step: int = 4
    #: trajectories per seed: the group GRPO normalises over and the filter measures the spread of
    group_size: int = 4
    #: what a trajectory is trained on: the env's return, success (1/0) or score (see REWARDS)
    reward: str = "return"
    #: keep this fraction of groups, those with the largest reward spread (1.0 = no filtering)
    filter_ratio: float = 1.0
    #: the longest reply, in tokens
    max_new_tokens: int = 48
    #: sampling temperature of the rollouts and of the held-out check
    temperature: float = 1.0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    #: how the search values a candidate: "reward+score", "score" or "success" (``tsr_train.scoring``)
    scorer: str = "reward+score"
    #: how the search commits candidates: "argmax" or "softmax" over their values
    selection: str = "argmax"
    #: softmax selection only: the temperature of the softmax over candidate values
    selection_temperature: float = 0.1
    # Why 1 by default: GRPO learns from the contrast inside a group, and a group of search-built
    # trajectories loses it twice: the search hides the policy's own mistakes, and once the search
    # succeeds on an instance the whole group succeeds, whatever the policy alone would do.  One naive
    # member keeps both in view.  Measured with best-of-4 and GRPO (TSR study), final success with 0 vs
    # 1: a fixed hard map 0.518 vs 0.983 (3 seeds), deterministic random maps 0.346 vs 0.616 (4 seeds),
    # slippery random maps 0.15 vs 0.185 (seed 0).  Not measured with PPO, where it applies the same way.
    # Why not 2 (five seeds each, GRPO best-of-4): on random ice 2 ends level with naive (0.457 against
    # 0.372 with 1, naive 0.438), but on the rare-reward FrozenLake-Hard maps, where search pays off, it
    # leaves fewer search-built members per group and ends at 0.505 against 0.622 (naive 0.157).
    #: trajectories of each group rolled out naively (the rest with the search; naive runs ignore it):
    #: they keep the policy's own mistakes and a reward spread in every group
    naive_mix: int = 1
    #: 0 = off; else, after a step in which more than this share of the policy's sampled replies (every
    #: candidate, summed over processes) was invalid, the next step is rolled out wholly naively, so that
    #: the policy's invalid replies reach the optimizer with their penalty (``tsr_train.collect.DriftGuard``)
    drift_guard: float = 0.0

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.scorer not in SCORER_NAMES:
            raise ValueError(f"scorer must be one of {', '.join(SCORER_NAMES)}, got {self.scorer!r}")
        if self.selection not in SELECTION_NAMES:
            raise ValueError(f"selection must be one of {', '.join(SELECTION_NAMES)}, got {self.selection!r}")
        if not self.selection_temperature > 0:
            raise ValueError(f"selection temperature must be positive, got {self.selection_temperature}")
        if not 0 <= self.naive_mix <= self.group_size:
            raise ValueError(f"naive mix must be in 0..group-size ({self.group_size}), got {self.naive_mix}")
        if not 0.0 <= self.drift_guard < 1.0:
            raise ValueError(f"drift guard must be in [0, 1) (0 = off), got {self.drift_guard}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.filter_ratio <= 1.0:
            raise ValueError(f"filter ratio must be in (0, 1], got {self.filter_ratio}")
        for name in ("max_turns", "seeds_per_step", "group_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


@dataclass
class GRPOSettings:
    """The GRPO knobs passed through to ``trl.GRPOConfig`` (clip-higher as in StarPO-S), and our trust region.

    ``scale_rewards="batch"``: advantages are divided by the reward spread of the whole batch, not of each
    group.  Per-group scaling turns one -0.1 format penalty in a group of zeros into advantages of about
    +-1.5, as large as a success, which drove the policy to empty or overlong replies at lr >= 5e-4.
    ``beta = 0.05``: a KL penalty to the starting model.  Without it, search-built GRPO at lr 5e-4
    collapsed (FrozenLake, best-of-4, seed 1: invalid replies 0% -> 99% and replies 6 -> 42 tokens between
    steps 20 and 30): the search commits only its valid candidates, so the optimizer never sees the
    policy's own invalid replies penalised while probability mass drifts to them.  With it the same run
    stayed at 0-2% invalid.

    ``num_iterations``: TRL reuses each rollout batch for this many optimizer steps, each clipped against
    the rollout's log-probabilities; TRL counts every update as a step, so ``steps`` then counts updates
    and a run makes ``steps / num_iterations`` rollout batches (the study keeps the default, 1).
    """

    #: KL penalty to the starting model (TRL's beta); see the class docstring
    beta: float = 0.05
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    loss_type: str = "dapo"
    scale_rewards: str = "batch"
    num_iterations: int = 1
    # Why available: TRL's clip sees only the sampled tokens, and one update can move probability onto
    # tokens the policy never sampled.  Measured in the TSR study (random Sokoban, best-of-4, seed 3): at
    # step 272 an update with a gradient norm of 0.96 (0.03 at the steps around it) took the share of
    # invalid candidate replies from 3% to 98% and the KL to the reference from 0.06 to 5.0 per token,
    # and every validation reply was invalid for the next 80 steps.  Off by default until measured.
    #: shorten an optimizer step whose exact KL from the weights before it, averaged over the model tokens
    #: of the step's batch, exceeds this, halving it up to four times, else undo it (0 = off)
    max_kl: float = 0.0

    def __post_init__(self) -> None:
        # Checked here, not left to TRL, so a mistyped flag fails before a model loads, naming the flag.
        if self.loss_type not in GRPO_LOSS_TYPES:
            choices = ", ".join(GRPO_LOSS_TYPES)
            raise ValueError(f"grpo-loss-type must be one of {choices}, got {self.loss_type!r}")
        if self.scale_rewards not in GRPO_SCALE_REWARDS:
            choices = ", ".join(GRPO_SCALE_REWARDS)
            raise ValueError(f"grpo-scale-rewards must be one of {choices}, got {self.scale_rewards!r}")
        _check_at_least_one(self, "grpo", "num_iterations")
        _check_at_least_zero(self, "grpo", "beta", "max_kl")
        _check_positive(self, "grpo", "epsilon", "epsilon_high")


@dataclass
class PPOSettings:
    """PPO with a value head and GAE over model tokens (RAGEN's defaults: gamma = lambda = 1)."""

    gamma: float = 1.0
    lam: float = 1.0
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.5
    #: weight of the KL to a frozen copy of the initial model, per model token (0 = no reference)
    kl_coef: float = 0.05
    # Why in the loss: in the reward, the KL penalty goes through the returns, so the value learns to
    # expect it and the advantage keeps only its surprise, and once the policy drifts the summed
    # penalties (gamma = 1, every later token of the episode) make returns of -100 and more, whose value
    # loss takes over the clipped gradient.  Measured on FrozenLake-Hard-v0 (best-of-4, seed 1, with the
    # trust region): in the reward, invalid replies rose to 0.6-0.9 of some batches from step 60, and by
    # step 90 the value loss was 2,100, the gradient norm 350 before clipping and 89% of replies invalid.
    #: the KL to the reference as the sampled per-token estimate subtracted from the reward (the classic
    #: RLHF PPO), instead of its exact value (whole vocabulary) as a loss term
    kl_in_reward: bool = False
    entropy_coef: float = 0.0
    #: passes over each rollout batch, each split into ``minibatches`` gradient updates; a training *step*
    #: is one rollout batch with all its updates, so step counts compare across algorithms and searches
    epochs: int = 2
    minibatches: int = 1
    max_grad_norm: float = 1.0
    # Why off: whitening centres the advantages on the batch mean, so at the start (V = 0) every token
    # of a failed episode gets a negative advantage, on instances the policy cannot solve yet as on the
    # others, and pushing down every action sampled in a state moves their mass onto tokens the policy
    # never samples (see ``max_kl``).  Uncentred, a failure's advantage is R - V: about 0 while V is,
    # and negative only where the value expects more.  Measured on FrozenLake-Hard-v0 (best-of-4, seed
    # 0, lr 5e-4, no trust region): whitened, the policy collapsed at step 4; unwhitened, at step 37.
    #: centre the advantages on their batch mean and divide them by their spread
    whiten_advantages: bool = False
    # Why a trust region on the exact KL: the ratio clip and ``approx_kl`` see only the sampled token at
    # each position, but pushing down every action sampled in a state moves their probability onto a
    # token the policy never samples.  Measured on FrozenLake-Hard-v0 (best-of-4, seed 0, whitened, lr
    # 2.5e-4): at step 3, with approx_kl 0.002, one step made "<answer>" the likeliest token after
    # "<answer>"; the per-token KL to the reference went from 0.01 to 5.5 and soon every reply was
    # invalid.  The KL penalty in the reward then swamped the value loss, whose gradient shares the
    # clipped norm, and the run never recovered.  That step's exact KL over the batch was 0.40, against
    # 0.0003-0.05 for the steps before and after.  With ``max_kl = 0.05`` the same run at lr 5e-4,
    # whitened or not, trained 40 steps without a collapse (unwhitened and without it: step 37).
    #: shorten a step whose exact KL from the rollout policy, averaged over the batch's model tokens,
    #: exceeds this, halving it up to four times, else undo it (0 = no trust region)
    max_kl: float = 0.05
    # Why on: GRPO gets no gradient from a group whose trajectories all earned the same reward, but PPO's
    # R - V pushes down every move of a group that failed throughout, on instances the policy cannot
    # solve yet as on the others, and the value head cannot tell them apart early on.  Measured on
    # FrozenLake-Hard-v0 (best-of-4, 200 steps, without this): 57-99 of 200 steps had no success at all,
    # their mean policy loss was +0.13 to +0.22 against -0.09 to -0.15 on the other steps, and the drops
    # in validation success followed them.  With it (same maps, seeds 0-2), best-of-4 beat naive by 0.26
    # on average and by more than 0.15 on every seed (without it: 0.10 over 5 seeds), and its rollouts
    # succeeded 0.57 of the time (without it: 0.25-0.46).  It is GRPO's own rule, hence the default.  On
    # random FrozenLake-v0 instances (naive, one seed, 400 steps) it did not hurt: 0.255 against 0.21.
    #: zero the advantages of every group whose trajectories all earned the same reward, as GRPO's group
    #: baseline does; their tokens still count in the loss's mean, and the value head still learns them
    skip_uniform_groups: bool = True
    #: detach the value head from the trunk, so value-loss gradients never move the policy.  Measured on
    #: FrozenLake-v0 (400 steps) not to make PPO stable, so off: with the shared trunk seed 0 trained well
    #: and seed 1 collapsed at step 137 (value loss 0.1 -> 260 in four steps, every reply invalid);
    #: detached, seed 1 trained and seed 0 diverged within 7 steps.  The value gradient shares the clipped
    #: gradient norm, so detaching also makes the policy's own steps larger.
    detach_value_head: bool = False

    def __post_init__(self) -> None:
        _check_at_least_one(self, "ppo", "epochs", "minibatches")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ppo-{name} must be in [0, 1], got {getattr(self, name)}")
        _check_at_least_zero(self, "ppo", "vf_coef", "kl_coef", "entropy_coef", "max_kl")
        _check_positive(self, "ppo", "clip_range", "clip_range_value", "max_grad_norm")


def _check_at_least_one(settings: object, section: str, *names: str) -> None:
    for name in names:
        if (value := getattr(settings, name)) < 1:
            raise ValueError(f"{section}-{name.replace('_', '-')} must be at least 1, got {value}")


def _check_at_least_zero(settings: object, section: str, *names: str) -> None:
    for name in names:
        if (value := getattr(settings, name)) < 0:
            raise ValueError(f"{section}-{name.replace('_', '-')} must be >= 0, got {value}")


def _check_positive(settings: object, section: str, *names: str) -> None:
    for name in names:
        if (value := getattr(settings, name)) <= 0:
            raise ValueError(f"{section}-{name.replace('_', '-')} must be positive, got {value}")


@dataclass
class TrainConfig:
    """A whole run: algorithm, model, optimisation, output."""

    #: the optimizer: TRL's GRPO or this package's PPO
    algo: str = "grpo"
    #: a Hugging Face causal LM (local path or hub id); ``None`` or ``"embedded"`` = the embedded tiny model
    model: str | None = None
    #: optimizer steps; each is one rollout batch (seeds-per-step x group-size trajectories)
    steps: int = 400
    learning_rate: float = 5e-4
    #: "constant", or "linear" / "cosine" decay from lr to 0 over ``steps`` (a run extended with
    #: --resume --steps N stretches the decay from there on, so it differs from one trained to N).
    #: Constant by default: the decay left naive GRPO's learning on random ice where it was, while it
    #: helps a search-trained GRPO policy keep what it learned where rewards are rare (the study's
    #: report, benchmarks/results/README.md)
    lr_schedule: str = "constant"
    #: seeds the model's sampling, the search and which train-split instances the run sees
    seed: int = 0
    out_dir: str = "runs/tsr-train"
    #: checkpoint every this many steps (and always at the end)
    save_every: int = 10
    #: log the policy's own success (plain sampling, validation seeds) every this many steps; 0 = never
    eval_every: int = 10
    #: validation episodes per held-out check
    eval_episodes: int = 50
    # Why on: a search-trained policy can swing from check to check.  Measured on FrozenLake-Hard-v0
    # (GRPO, best-of-4, 200 steps): one run was at 0.64 validation success at step 190 and 0.04 at
    # step 200.  Keeping the best checkpoint costs one save per improvement and changes no update.
    #: keep the weights of the held-out check with the best validation success in OUT/best-heldout
    keep_best_heldout: bool = True
    report_to: str = "none"
    #: GRPO on a GPU: generate the rollouts with TRL's vLLM engine (needs the vllm package)
    use_vllm: bool = False
    #: with --use-vllm: "colocate" (an engine in each training process) or "server" (trl vllm-serve)
    vllm_mode: str = "colocate"
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"report-to must be one of {', '.join(REPORT_TO)}, got {self.report_to!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.save_every < 1:
            raise ValueError(f"save-every must be at least 1, got {self.save_every}")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ValueError("eval-every must be >= 0 and eval-episodes >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"lr must be positive, got {self.learning_rate}")
        if self.lr_schedule not in LR_SCHEDULES:
            choices = ", ".join(LR_SCHEDULES)
            raise ValueError(f"lr-schedule must be one of {choices}, got {self.lr_schedule!r}")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"vllm-mode must be one of {', '.join(VLLM_MODES)}, got {self.vllm_mode!r}")
        if self.use_vllm and self.algo != "grpo":
            raise ValueError("--use-vllm needs --algo grpo (vLLM generates through TRL's GRPO trainer)")
        if self.algo == "grpo" and self.rollout.group_size < 2:
            raise ValueError("GRPO needs a group size of at least 2 (its baseline is the group mean)")

    @property
    def train_seeds(self) -> list[int]:
        """The env seeds of the whole run, one per group: step ``i`` uses the ``i``-th slice.

        They come from the train split only (never validation or test), and runs with different
        ``seed``s use disjoint stretches of it.
        """
        return split_seeds("train", self.steps * self.rollout.seeds_per_step, offset=self.seed * SEED_STRIDE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, other: TrainConfig) -> list[tuple[str, Any, Any]]:
        """(dotted field name, this value, the other's) for every field the two set differently.

        When both runs use the same algorithm, the other algorithm's settings (``ppo.*`` for GRPO,
        ``grpo.*`` for PPO) are left out: they never take effect, so a changed default there does not
        make two runs different experiments.
        """
        mine, theirs = self.to_dict(), other.to_dict()
        if self.algo == other.algo:
            unused = next(algo for algo in ALGOS if algo != self.algo)
            mine.pop(unused), theirs.pop(unused)
        return _leaf_differences(mine, theirs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config ``to_dict`` saved; a field added since takes the value that matches older code."""
        nested = {"rollout": RolloutConfig, "grpo": GRPOSettings, "ppo": PPOSettings}
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {
            key: (nested[key](**{**BEFORE_FIELD_EXISTED.get(key, {}), **value}) if key in nested else value)
            for key, value in data.items()
            if key in known
        }
        return cls(**kwargs)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text()))


#: For each field added after runs were saved: the value that behaves as the code did before it existed
#: (not its default), so that a saved run is never taken to have used a feature it predates.
BEFORE_FIELD_EXISTED: dict[str, dict[str, Any]] = {
    "ppo": {"max_kl": 0.0, "kl_in_reward": True, "skip_uniform_groups": False}
}


def _leaf_differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    changed = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changed += _leaf_differences(before, after, f"{prefix}{key}.")
        elif before != after:
            changed.append((f"{prefix}{key}", before, after))
    return changed


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The fraction of the peak learning rate used by optimizer step ``step`` (0-based) of ``total_steps``.

    The same curves as Hugging Face's ``linear`` and ``cosine`` schedules without warm-up, which GRPO
    gets through TRL, so that PPO and GRPO runs decay alike.  A pure function of the step, so a resumed
    run needs no scheduler state to continue exactly.
    """
    progress = min(step / total_steps, 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"lr schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The ``checkpoint-<step>`` folder with the highest step under ``out_dir/checkpoints``, if any."""
    prefix = "checkpoint-"
    folders = [
        p for p in (Path(out_dir) / CHECKPOINTS_DIR).glob(prefix + "*") if p.name[len(prefix) :].isdigit()
    ]
    return max(folders, key=lambda p: int(p.name[len(prefix) :]), default=None)


def checkpoint_step(checkpoint: Path | None) -> int:
    """The step a ``checkpoint-<step>`` folder was saved at (0 for none)."""
    return 0 if checkpoint is None else int(checkpoint.name.rsplit("-", 1)[1])


def rollout_seed(run_seed: int, step: int, process_index: int = 0) -> int:
    """The seed of the rollout strategy's generator at one step of one process.

    Derived, not carried: a strategy made afresh from it at step ``step`` draws the same random streams
    (honest clones of stochastic envs) as in an uninterrupted run, which is what makes resume exact.
    """
    return int(np.random.SeedSequence([run_seed, step, process_index]).generate_state(1)[0])
