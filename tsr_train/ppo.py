"""PPO with a value head and GAE over model tokens, on search-built multi-turn trajectories.

TRL removed its ``PPOTrainer`` in 1.13 (PR #7020) and the last one took no custom rollouts anyway,
so the PPO loop lives here, written to be read top to bottom like CleanRL.  It reuses
what it can: TRL's ``selective_log_softmax``/``entropy_from_logits``/``pad``, accelerate's ``Accelerator``
for the device, mixed precision, DDP, trackers and ``save_state``/``load_state`` checkpoints (model,
optimizer and every RNG, so a resumed run continues bit for bit), and the same ``Trajectory`` objects,
reward choice and instance filter as GRPO.

One training step:

1. roll out ``seeds_per_step`` groups of ``group_size`` trajectories with the rollout strategy;
2. drop the groups with the smallest reward spread (``filter_ratio``);
3. score the trajectories once with the current model (old log-probs, values) and the frozen reference;
4. put the trajectory's reward on its last model token (minus ``kl_coef`` x the per-token KL estimate, with
   ``kl_in_reward``; by default the KL to the reference is a loss term instead, see step 6);
5. run GAE over the model tokens only: environment tokens are context, not actions, so they are skipped
   and the next model token is the next time step, whichever turn it belongs to; the groups whose
   trajectories all earned the same reward get no advantage, as in GRPO (``skip_uniform_groups``);
6. ``epochs`` x ``minibatches`` clipped policy + clipped value updates, plus ``kl_coef`` x the exact KL
   to the reference (over the whole vocabulary at each model token);
7. a trust region (``max_kl``): while the updated policy's exact KL from the rollout policy, over the whole
   vocabulary at each model token of the batch, exceeds ``max_kl``, the step is halved (or, after four
   halvings, undone).

As with GRPO, a search's tokens are scored as if the model had sampled them (old log-probs are recomputed,
not the sampling ones), so the search acts as a better behaviour policy and PPO's objective is unchanged.
With several processes (``accelerate launch``) each one rolls out its share of the groups (the step's
seeds must divide among them), the instance filter chooses over all of them, and DDP averages the
gradients; the metrics logged are the main process's.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from trl.trainer.utils import entropy_from_logits, pad, selective_log_softmax

from tsr_train.collect import collect, make_drift_guard, summed_over_processes
from tsr_train.config import (
    CHECKPOINTS_DIR,
    PPOSettings,
    TrainConfig,
    latest_checkpoint,
    lr_factor,
    rollout_seed,
)
from tsr_train.filtering import filtered_rows, kept_groups, trajectory_reward
from tsr_train.heldout import HeldOutCheck
from tsr_train.metrics import MetricsLogger, rollout_metrics
from tsr_train.policy import HFPolicy
from tsr_train.trust_region import trust_region

if TYPE_CHECKING:
    from pathlib import Path

    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tsr_train.trajectory import Trajectory


class PolicyWithValue(nn.Module):
    """A causal LM and a scalar value head on its last hidden state (one forward pass).

    With ``detach_value`` the head reads that state detached: the trunk is then trained by the policy
    loss alone, and the value head is a linear read-out of the policy's own features.
    """

    def __init__(self, model: PreTrainedModel, *, detach_value: bool = False) -> None:
        super().__init__()
        self.model = model
        self.detach_value = detach_value
        self.value_head = nn.Linear(model.config.hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)  # start from V = 0: no bias before the first returns
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[-1].detach() if self.detach_value else out.hidden_states[-1]
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)
        return out.logits, values


@dataclass
class Batch:
    """Trajectories as right-padded tensors, shifted so that position ``t`` predicts token ``t + 1``."""

    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    targets: torch.Tensor  # (B, L-1): input_ids[:, 1:]
    action_mask: torch.Tensor  # (B, L-1): 1 where the target is a model token of the completion
    rewards: torch.Tensor  # (B,)


def make_batch(trajectories: list[Trajectory], rewards: list[float], pad_id: int, device) -> Batch:
    sequences, masks = [], []
    for t in trajectories:
        sequences.append(torch.tensor(list(t.prompt_ids) + list(t.completion_ids)))
        masks.append(torch.tensor([0] * len(t.prompt_ids) + list(t.env_mask)))
    input_ids = pad(sequences, padding_value=pad_id).to(device)
    attention_mask = pad([torch.ones_like(s) for s in sequences]).to(device)
    action_mask = pad(masks).to(device)[:, 1:].float()
    rewards_tensor = torch.tensor(rewards, device=device)
    return Batch(input_ids, attention_mask, input_ids[:, 1:], action_mask, rewards_tensor)


def token_logprobs(agent: nn.Module, batch: Batch, rows, temperature: float):
    """Log-probs of the taken tokens, values, and the temperature-scaled logits, for the rows ``rows``."""
    logits, values = agent(batch.input_ids[rows], batch.attention_mask[rows])
    logits = logits[:, :-1].float()
    logprobs = selective_log_softmax(logits, batch.targets[rows], temperature=temperature)
    return logprobs, values[:, :-1].float(), logits / temperature


def kl_to_reference(reference: nn.Module, logits: torch.Tensor, batch: Batch, rows, temperature: float):
    """Per-token KL(policy || reference) over the whole vocabulary, ``(B, L-1)``, for the rows ``rows``.

    ``logits`` are the policy's temperature-scaled logits for those rows.  Exact, not a sampled
    estimate: it counts the probability the policy moved onto tokens it did not sample.
    """
    with torch.no_grad():
        ref_logits = reference(
            input_ids=batch.input_ids[rows], attention_mask=batch.attention_mask[rows]
        ).logits
        ref_logp = torch.log_softmax(ref_logits[:, :-1].float() / temperature, dim=-1)
    logp = torch.log_softmax(logits, dim=-1)
    return (logp.exp() * (logp - ref_logp)).sum(-1)


def uniform_group_rows(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``(B,)``: True on the rows of each group (``group_size`` consecutive rows) of equal rewards."""
    groups = rewards.view(-1, group_size)
    uniform = (groups == groups[:, :1]).all(dim=1)
    return uniform.repeat_interleave(group_size)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns over the positions where ``mask`` is 1, skipping the others.

    Each row is one episode; its model tokens are its time steps.  The value after the last model token
    is 0 (the episode is over).  ``rewards``/``values``/``mask`` are ``(B, T)``; the outputs too, zero off
    the mask.
    """
    advantages = torch.zeros_like(values)
    for row in range(values.shape[0]):
        steps = mask[row].nonzero().squeeze(-1)
        step_rewards, step_values = rewards[row, steps].tolist(), values[row, steps].tolist()
        row_advantages = [0.0] * len(steps)
        next_value, running = 0.0, 0.0
        for i in reversed(range(len(steps))):
            delta = step_rewards[i] + gamma * next_value - step_values[i]
            running = delta + gamma * lam * running
            row_advantages[i] = running
            next_value = step_values[i]
        advantages[row, steps] = torch.tensor(row_advantages, dtype=values.dtype, device=values.device)
    returns = (advantages + values) * mask
    return advantages, returns


def advantages_and_returns(
    token_rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    uniform_rows: torch.Tensor,
    ppo: PPOSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the model tokens, whitened with ``ppo.whiten_advantages``, then, with
    ``ppo.skip_uniform_groups``, zero on the ``uniform_rows`` (last, so that whitening cannot move them).

    The returns are GAE's whatever the options: the value head learns every state, the uniform groups' too.
    """
    advantages, returns = gae(token_rewards, values * mask, mask, ppo.gamma, ppo.lam)
    if ppo.whiten_advantages and mask.sum() > 1:
        mean = masked_mean(advantages, mask)
        std = masked_mean((advantages - mean) ** 2, mask).sqrt()
        advantages = (advantages - mean) / (std + 1e-8) * mask
    if ppo.skip_uniform_groups:
        advantages = advantages * (~uniform_rows).unsqueeze(1)
    return advantages, returns


class StepCounter:
    """The number of finished training steps, checkpointed by ``accelerator.save_state`` with the rest."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def train_ppo(
    config: TrainConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    *,
    resume: bool = False,
) -> PreTrainedModel:
    """Train ``model`` in place with PPO for ``config.steps`` steps; returns it (unwrapped)."""
    ppo, rollout = config.ppo, config.rollout
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=not cuda,
        mixed_precision="bf16" if cuda and torch.cuda.is_bf16_supported() else "no",
        log_with=None if config.report_to == "none" else config.report_to,
        project_dir=str(out_dir),
    )
    set_seed(config.seed, device_specific=True)
    agent = PolicyWithValue(model, detach_value=ppo.detach_value_head)
    reference = None
    if ppo.kl_coef > 0:
        reference = copy.deepcopy(model).eval().requires_grad_(False).to(accelerator.device)
    optimizer = torch.optim.AdamW(agent.parameters(), lr=config.learning_rate)
    agent, optimizer = accelerator.prepare(agent, optimizer)
    counter = StepCounter()
    accelerator.register_for_checkpointing(counter)
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))  # weights, optimizer, step, python/numpy/torch RNGs
    if config.report_to != "none":
        accelerator.init_trackers("tsr-train", config={"env": rollout.env_id, "search": rollout.search})
    logger = MetricsLogger(
        out_dir,
        config.steps,
        start_step=counter.step,
        enabled=accelerator.is_main_process,
        title=f"PPO {rollout.search} on {rollout.env_id}",
    )
    unwrapped = accelerator.unwrap_model(agent)
    all_seeds = config.train_seeds
    heldout = HeldOutCheck(config)
    guard = make_drift_guard(rollout, logger.records)
    if counter.step == 0 and heldout.due(0) and accelerator.is_main_process:
        logger.log(0, heldout(unwrapped.model, tokenizer, 0))  # the starting policy

    while counter.step < config.steps:
        started = time.perf_counter()
        step = counter.step
        learning_rate = config.learning_rate * lr_factor(config.lr_schedule, step, config.steps)
        for param_group in optimizer.param_groups:
            param_group["lr"] = learning_rate
        # 1. Rollouts: this process's share of the step's groups, each seed repeated group_size times.
        step_seeds = all_seeds[step * rollout.seeds_per_step : (step + 1) * rollout.seeds_per_step]
        group_seeds = step_seeds[accelerator.process_index :: accelerator.num_processes]
        seeds = [seed for seed in group_seeds for _ in range(rollout.group_size)]
        agent.eval()
        policy = HFPolicy(
            unwrapped.model, tokenizer, max_new_tokens=rollout.max_new_tokens, temperature=rollout.temperature
        )
        rollout_batch = collect(
            policy,
            guard.rollout(rollout) if guard else rollout,
            seeds,
            rollout_seed(config.seed, step, accelerator.process_index),
        )
        trajectories = rollout_batch.trajectories
        rewards = [trajectory_reward(t, rollout.reward) for t in trajectories]

        # 2. Instance filtering: keep the groups whose reward spread is largest.
        size = rollout.group_size
        groups = [rewards[i : i + size] for i in range(0, len(rewards), size)]
        dropped: list[int] = []
        if accelerator.num_processes == 1:
            keep = kept_groups(groups, rollout.filter_ratio)
            rows = [g * size + j for g in keep for j in range(size)]
        else:
            # Chosen over the groups of all processes, as one process would choose.  Dropped groups are
            # masked, not removed: every process keeps its row count and makes the same number of
            # backward calls (DDP would hang otherwise), and one that keeps no group adds zero gradients.
            kept_rows = filtered_rows(seeds, rewards, rollout.filter_ratio)
            keep = [g for g in range(len(groups)) if kept_rows[g * size]]
            rows = list(range(len(trajectories)))
            dropped = [i for i, kept in enumerate(kept_rows) if not kept]
        batch = make_batch(
            [trajectories[i] for i in rows],
            [rewards[i] for i in rows],
            tokenizer.pad_token_id,
            accelerator.device,
        )
        batch.action_mask[dropped] = 0.0
        mask = batch.action_mask

        # 3-5. Score once with the behaviour weights, shape the reward, GAE over model tokens.
        with torch.no_grad(), accelerator.autocast():
            everything = torch.arange(len(rows), device=accelerator.device)
            old_logprobs, old_values, scaled_logits = token_logprobs(
                agent, batch, everything, rollout.temperature
            )
            # The trust region's reference point: the behaviour policy's whole distribution at each
            # model token, taken from this same pass rather than a forward pass of its own.
            behaviour = torch.log_softmax(scaled_logits[mask.bool()], dim=-1) if ppo.max_kl > 0 else None
            del scaled_logits
            token_rewards = torch.zeros_like(old_values)
            last = mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)  # index of each row's last model token
            token_rewards[torch.arange(len(rows)), last] = batch.rewards
            kl_ref = torch.zeros_like(old_values)
            if reference is not None:
                ref_logits = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
                ref_logprobs = selective_log_softmax(
                    ref_logits[:, :-1].float(), batch.targets, temperature=rollout.temperature
                )
                kl_ref = (old_logprobs - ref_logprobs) * mask
                if ppo.kl_in_reward:
                    token_rewards -= ppo.kl_coef * kl_ref
            uniform = uniform_group_rows(batch.rewards, size)
            advantages, returns = advantages_and_returns(token_rewards, old_values, mask, uniform, ppo)

        # 6. Clipped policy and value updates.
        if ppo.max_kl > 0:
            weights_before = [p.detach().clone() for p in unwrapped.parameters()]
        agent.train()
        stats: dict[str, list[float]] = {
            k: []
            for k in (
                "policy_loss",
                "value_loss",
                "kl_loss",
                "entropy",
                "approx_kl",
                "clip_frac",
                "loss",
                "grad_norm",
            )
        }
        for _ in range(ppo.epochs):
            order = torch.randperm(len(rows), device=accelerator.device)
            for rows_mb in order.chunk(ppo.minibatches):
                m = mask[rows_mb]
                with accelerator.autocast():
                    logprobs, values, logits = token_logprobs(agent, batch, rows_mb, rollout.temperature)
                log_ratio = logprobs - old_logprobs[rows_mb]
                ratio = log_ratio.exp()
                adv = advantages[rows_mb]
                clipped = ratio.clamp(1 - ppo.clip_range, 1 + ppo.clip_range)
                policy_loss = masked_mean(torch.max(-adv * ratio, -adv * clipped), m)
                old_v, ret = old_values[rows_mb], returns[rows_mb]
                v_clipped = old_v + (values - old_v).clamp(-ppo.clip_range_value, ppo.clip_range_value)
                value_loss = 0.5 * masked_mean(torch.max((values - ret) ** 2, (v_clipped - ret) ** 2), m)
                loss = policy_loss + ppo.vf_coef * value_loss
                if reference is not None and not ppo.kl_in_reward:
                    kl_loss = masked_mean(
                        kl_to_reference(reference, logits, batch, rows_mb, rollout.temperature), m
                    )
                    loss = loss + ppo.kl_coef * kl_loss
                    stats["kl_loss"].append(kl_loss.item())
                if ppo.entropy_coef > 0:
                    entropy = masked_mean(entropy_from_logits(logits), m)
                    loss = loss - ppo.entropy_coef * entropy
                    stats["entropy"].append(entropy.item())
                optimizer.zero_grad()
                accelerator.backward(loss)
                grad_norm = accelerator.clip_grad_norm_(agent.parameters(), ppo.max_grad_norm)
                optimizer.step()
                with torch.no_grad():
                    stats["policy_loss"].append(policy_loss.item())
                    stats["value_loss"].append(value_loss.item())
                    stats["approx_kl"].append(masked_mean((ratio - 1) - log_ratio, m).item())
                    clipped_tokens = ((ratio - 1).abs() > ppo.clip_range).float()
                    stats["clip_frac"].append(masked_mean(clipped_tokens, m).item())
                    stats["loss"].append(loss.item())
                    stats["grad_norm"].append(float(grad_norm))
        # 7. The trust region: shorten the step until the policy stays close to the one that rolled out.
        if ppo.max_kl > 0:
            fraction, step_kl = trust_region(
                agent,
                unwrapped,
                batch,
                behaviour,
                weights_before,
                ppo.max_kl,
                rollout.temperature,
                accelerator,
            )
            stats["trust/kl"], stats["trust/step_fraction"] = [step_kl], [fraction]
        counter.step += 1

        metrics = rollout_metrics(rollout_batch, rollout.reward)
        metrics.update({key: sum(v) / len(v) for key, v in stats.items() if v})
        metrics["filter/kept_fraction"] = len(keep) / max(len(groups), 1)
        if guard:
            counts = (rollout_batch.stats.candidates_invalid, rollout_batch.stats.candidates_generated)
            metrics.update(guard.observe(*summed_over_processes(accelerator, *counts)))
        metrics["ppo/uniform_group_fraction"] = uniform.float().mean().item()
        metrics["kl_ref"] = masked_mean(kl_ref, mask).item()
        metrics["value_mean"] = masked_mean(old_values, mask).item()
        metrics["learning_rate"] = learning_rate
        metrics["step_time_s"] = time.perf_counter() - started
        if heldout.due(counter.step) and accelerator.is_main_process:
            metrics.update(heldout(unwrapped.model, tokenizer, counter.step))
        logger.log(counter.step, metrics)
        if config.report_to != "none":
            accelerator.log(metrics, step=counter.step)
        if counter.step % config.save_every == 0 or counter.step == config.steps:
            accelerator.save_state(str(out_dir / CHECKPOINTS_DIR / f"checkpoint-{counter.step}"))
            logger.plot()

    logger.close()
    if accelerator.num_processes > 1:
        # Gloo's worker threads free each finished collective's tensors, which needs the GIL; the process
        # group's destructor (when the DDP wrapper goes, on return) joins those threads while holding it.
        # Without a pause after the last collective, a rank could hang at exit in that deadlock.
        accelerator.wait_for_everyone()
        time.sleep(0.2)  # releases the GIL, so the workers finish freeing before the group is torn down
    accelerator.end_training()
    return accelerator.unwrap_model(agent).model
