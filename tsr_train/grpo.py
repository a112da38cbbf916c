"""GRPO through TRL: the one module that speaks ``trl.GRPOTrainer``'s ``rollout_func`` contract.

TRL owns the optimisation (group-normalised advantages, clipped loss, optimizer, checkpoints with RNG
states, ``report_to``); this module only tells it where trajectories come from.  The ``rollout_func`` hook
is experimental in TRL 1.16 (TRL's docs mark it so), so everything that depends on its shape lives here:

* the dataset is one string per env instance, ``"seed:<n>"``; TRL repeats each one ``num_generations``
  times consecutively, so rows ``[k*K, (k+1)*K)`` of a call are one group = ``K`` trajectories of one seed;
* ``SearchRollout.__call__`` decodes the seeds, runs the rollout strategy (naive or search) with the
  trainer's current weights, and returns the trajectories' exact token ids with ``env_mask`` (1 = model
  token, trained; 0 = env token, context only) — nothing is re-tokenised;
* instance filtering masks every token of a dropped group (``env_mask`` all 0): TRL still computes its
  advantage, but it adds nothing to the loss or to the token count the loss is normalised by;
* ``SearchRollout.reward`` is the reward function: it hands back the reward the rollout computed (episode
  return, success or final score) and logs the rollout and search statistics through TRL's ``log_metric``.

What the optimizer sees is unchanged GRPO.  With a search, the trained tokens come from the search policy,
not from the model alone; TRL recomputes the old log-probs on them, so the first-pass ratio is 1 and the
update acts as advantage-weighted imitation of the search's choices — TSR's intent.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import torch
from accelerate import PartialState
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation

from tsr_train.collect import DriftGuard, collect, make_drift_guard, summed_over_processes
from tsr_train.config import CHECKPOINTS_DIR, TrainConfig, rollout_seed
from tsr_train.filtering import filtered_rows, trajectory_reward
from tsr_train.heldout import HeldOutCheck
from tsr_train.metrics import MetricsLogger, rollout_metrics
from tsr_train.policy import HFPolicy, VLLMPolicy
from tsr_train.ppo import make_batch
from tsr_train.trust_region import action_distributions, trust_region

if TYPE_CHECKING:
    from pathlib import Path

    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tsr_train.config import RolloutConfig
    from tsr_train.ppo import Batch
    from tsr_train.strategies import RolloutBatch
    from tsr_train.trajectory import Trajectory

SEED_PREFIX = "seed:"


def seed_prompts(seeds: list[int]) -> list[str]:
    """The prompt column of the training dataset: one ``"seed:<n>"`` per env instance."""
    return [f"{SEED_PREFIX}{seed}" for seed in seeds]


def parse_seed(prompt: str) -> int:
    if not isinstance(prompt, str) or not prompt.startswith(SEED_PREFIX):
        raise ValueError(f"expected a prompt of the form 'seed:<n>', got {prompt!r}")
    return int(prompt[len(SEED_PREFIX) :])


class SearchRollout:
    """``rollout_func`` and reward function for ``GRPOTrainer``, sharing the rewards they computed."""

    def __init__(self, config: TrainConfig, guard: DriftGuard | None = None) -> None:
        self.config = config.rollout
        self.run_seed = config.seed
        self.guard = guard
        #: the last batch rolled out, which the trust region measures the optimizer's steps on
        self.trajectories: list[Trajectory] = []
        self._pending: dict[str, float] = {}
        self._warned = False

    def __call__(self, prompts: list[str], trainer: GRPOTrainer) -> dict[str, Any]:
        seeds = [parse_seed(prompt) for prompt in prompts]
        tokenizer = trainer.processing_class
        step_seed = rollout_seed(self.run_seed, trainer.state.global_step, trainer.accelerator.process_index)
        rollout = self.guard.rollout(self.config) if self.guard else self.config
        if getattr(trainer.args, "use_vllm", False):
            batch = self._collect_with_vllm(trainer, rollout, seeds, step_seed)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
                policy = HFPolicy(
                    model,
                    tokenizer,
                    max_new_tokens=self.config.max_new_tokens,
                    temperature=self.config.temperature,
                )
                batch = collect(policy, rollout, seeds, step_seed)
        trajectories = batch.trajectories
        self.trajectories = trajectories
        if len(trajectories) != len(seeds):
            raise RuntimeError(f"strategy returned {len(trajectories)} trajectories for {len(seeds)} prompts")
        rewards = [trajectory_reward(t, self.config.reward) for t in trajectories]
        keep = filtered_rows(seeds, rewards, self.config.filter_ratio)
        self._pending = rollout_metrics(batch, self.config.reward)
        self._pending["filter/kept_fraction"] = sum(keep) / len(keep)
        if self.guard:
            counts = (batch.stats.candidates_invalid, batch.stats.candidates_generated)
            self._pending.update(self.guard.observe(*summed_over_processes(trainer.accelerator, *counts)))
        # TRL counts a row that does not end with EOS as truncated: close each episode with one untrained
        # EOS, unless the model's own last reply already ended with it.
        eos = tokenizer.eos_token_id
        closing = [[] if t.completion_ids and t.completion_ids[-1] == eos else [eos] for t in trajectories]
        return {
            "prompt_ids": [list(t.prompt_ids) for t in trajectories],
            "completion_ids": [
                [*t.completion_ids, *end] for t, end in zip(trajectories, closing, strict=True)
            ],
            "logprobs": [
                [*t.logprobs, *(0.0 for _ in end)] for t, end in zip(trajectories, closing, strict=True)
            ],
            "env_mask": [
                [*(t.env_mask if kept else [0] * len(t.env_mask)), *(0 for _ in end)]
                for t, kept, end in zip(trajectories, keep, closing, strict=True)
            ],
            "tsr_reward": rewards,
        }

    def _collect_with_vllm(
        self, trainer: GRPOTrainer, rollout: RolloutConfig, seeds: list[int], step_seed: int
    ) -> RolloutBatch:
        """The rollouts sampled by TRL's vLLM engine, whose weights TRL synced for this step.

        ``finish`` runs even if this rank's rollout fails, so that the other ranks' lockstep calls
        complete instead of hanging.
        """
        policy = VLLMPolicy(
            trainer.vllm_generation,
            trainer.processing_class,
            max_new_tokens=self.config.max_new_tokens,
            temperature=self.config.temperature,
        )
        if self.config.search != "naive" and policy.prefix_caching() is False and not self._warned:
            self._warned = True
            warnings.warn(
                "vLLM prefix caching is off: every candidate of a search pays its whole context's prefill",
                stacklevel=2,
            )
        try:
            return collect(policy, rollout, seeds, step_seed)
        finally:
            policy.finish()

    def reward(self, tsr_reward: list[float], log_metric=None, **_: Any) -> list[float]:
        """The reward function TRL calls: the rollout's own rewards, plus the step's rollout statistics."""
        if log_metric is not None:
            for name, value in self._pending.items():
                log_metric(name, value)
        self._pending = {}
        return list(tsr_reward)


class MetricsCallback(TrainerCallback):
    """Forwards each training log of the Trainer to our ``MetricsLogger`` (console line, JSONL, PNG).

    It also runs the held-out check: before the first step (logged as step 0, the starting policy) and
    after every ``eval_every``-th step, merged into that step's record.
    """

    def __init__(self, logger: MetricsLogger, heldout: HeldOutCheck) -> None:
        self.logger = logger
        self.heldout = heldout
        self._step_started = time.perf_counter()
        self._heldout_metrics: dict[str, float] = {}

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step == 0 and self.heldout.due(0) and PartialState().is_main_process:
            self.logger.log(0, self.heldout(model, processing_class, 0))

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.heldout.due(state.global_step) and PartialState().is_main_process:
            self._heldout_metrics = self.heldout(model, processing_class, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:  # the end-of-training summary has no "loss"
            elapsed = time.perf_counter() - self._step_started
            self.logger.log(state.global_step, {**logs, **self._heldout_metrics, "step_time_s": elapsed})
            self._heldout_metrics = {}

    def on_save(self, args, state, control, **kwargs):
        self.logger.plot()


class LogitsOnly:
    """A causal LM called as ``(input_ids, attention_mask) -> (logits, None)``, as the trust region does."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits, None

    def eval(self) -> None:
        self.model.eval()


class GRPOTrustRegion(TrainerCallback):
    """After each optimizer step, shorten it while its exact KL over the step's batch exceeds ``max_kl``.

    Before the step it keeps the weights and the policy's whole distribution at every model token of
    the batch the rollout just built; after it, ``tsr_train.trust_region.trust_region`` backtracks.  With
    ``num_iterations = 1`` (the default) the weights before the step are the rollout policy's, as in PPO;
    with more, each update is bounded against the one before.  The metrics go into the step's log as
    ``trust/kl`` and ``trust/step_fraction``: this callback runs first, so the trackers see them too.
    Not for sharded training (DeepSpeed ZeRO-3, FSDP): it copies the whole weights.
    """

    def __init__(
        self, rollout: SearchRollout, max_kl: float, temperature: float, accelerator: Accelerator
    ) -> None:
        self.rollout = rollout
        self.max_kl = max_kl
        self.temperature = temperature
        self.accelerator = accelerator  # the trainer's: the KL is averaged over every process's tokens
        self._before: tuple[Batch, torch.Tensor, list[torch.Tensor]] | None = None
        self._metrics: dict[str, float] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, processing_class=None, **kwargs):
        rows = self.rollout.trajectories
        batch = make_batch(rows, [0.0] * len(rows), processing_class.pad_token_id, model.device)
        with torch.no_grad(), self.accelerator.autocast():
            behaviour = action_distributions(LogitsOnly(model), batch, self.temperature)
        self._before = (batch, behaviour, [p.detach().clone() for p in model.parameters()])

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        batch, behaviour, weights = self._before
        policy, training = LogitsOnly(model), model.training
        fraction, step_kl = trust_region(
            policy, model, batch, behaviour, weights, self.max_kl, self.temperature, self.accelerator
        )
        model.train(training)  # TRL files the step's metrics under "eval" if the model is left in eval mode
        self._before = None
        self._metrics = {"trust/kl": step_kl, "trust/step_fraction": fraction}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:
            logs.update(self._metrics)
            self._metrics = {}


def grpo_args(config: TrainConfig, out_dir: Path) -> GRPOConfig:
    """Map a ``TrainConfig`` onto ``trl.GRPOConfig``: one optimizer step = one generation batch."""
    rollout, grpo = config.rollout, config.grpo
    rows = rollout.seeds_per_step * rollout.group_size
    num_processes = PartialState().num_processes
    if rows % num_processes:
        raise ValueError(f"seeds-per-step x group-size ({rows}) must divide among {num_processes} processes")
    cuda = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(out_dir / CHECKPOINTS_DIR),
        max_steps=config.steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_schedule,  # lr_factor's curves
        per_device_train_batch_size=rows // num_processes,
        gradient_accumulation_steps=1,
        num_generations=rollout.group_size,
        beta=grpo.beta,
        epsilon=grpo.epsilon,
        epsilon_high=grpo.epsilon_high,
        num_iterations=grpo.num_iterations,
        loss_type=grpo.loss_type,
        scale_rewards=grpo.scale_rewards,
        temperature=rollout.temperature,  # TRL rescales logits by it when scoring the sampled tokens
        seed=config.seed,
        # Step i trains on seeds [i*G, (i+1)*G) whatever the total number of steps, as in PPO: a run
        # extended with --resume --steps N then sees exactly the seeds a longer run would have seen.
        shuffle_dataset=False,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_every,
        report_to=[] if config.report_to == "none" else [config.report_to],
        disable_tqdm=True,  # our MetricsLogger draws the bar
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        remove_unused_columns=False,
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
    )


def build_grpo_trainer(
    config: TrainConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    logger: MetricsLogger,
) -> GRPOTrainer:
    rollout = SearchRollout(config, make_drift_guard(config.rollout, logger.records))
    dataset = Dataset.from_dict({"prompt": seed_prompts(config.train_seeds)})
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rollout.reward,
        args=grpo_args(config, out_dir),
        train_dataset=dataset,
        processing_class=tokenizer,
        rollout_func=rollout,
        callbacks=[MetricsCallback(logger, HeldOutCheck(config))],
    )
    trainer.remove_callback(PrinterCallback)
    if config.grpo.max_kl > 0:
        trust = GRPOTrustRegion(rollout, config.grpo.max_kl, config.rollout.temperature, trainer.accelerator)
        trainer.callback_handler.callbacks.insert(0, trust)  # before the trackers and our logger
    return trainer
