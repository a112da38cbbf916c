"""A trust region on the exact KL between the policy before and after an update, for both trainers.

Why exact: PPO's ratio clip and its ``approx_kl`` (and GRPO's clip) see only the sampled token at each
position, but an update can move probability onto tokens the policy never sampled; the collapses seen in
the TSR study were such steps, one update making nearly every reply invalid.  The KL here is summed over
the whole vocabulary at every model token of the step's batch, and a step that goes too far is shortened
by a line search, as in TRPO.  PPO applies it after its epochs of updates (``PPOSettings.max_kl``), GRPO
after each optimizer step (``GRPOSettings.max_kl``, through ``tsr_train.grpo.GRPOTrustRegion``).

``agent`` is any module called as ``agent(input_ids, attention_mask)`` that returns the logits first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import nn

    from tsr_train.ppo import Batch


def action_distributions(agent: nn.Module, batch: Batch, temperature: float) -> torch.Tensor:
    """Log-probabilities over the whole vocabulary at every model-token position of ``batch``: ``(N, V)``."""
    logits, _ = agent(batch.input_ids, batch.attention_mask)
    at_actions = logits[:, :-1][batch.action_mask.bool()]
    return torch.log_softmax(at_actions.float() / temperature, dim=-1)


#: the step fractions the trust region tries, longest first; when none is close enough the step is undone
STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def step_kl_from(
    agent: nn.Module, batch: Batch, behaviour: torch.Tensor, temperature: float, accelerator
) -> float:
    """KL(behaviour || agent) over the vocabulary, averaged over the model tokens of all processes."""
    with torch.no_grad(), accelerator.autocast():
        current = action_distributions(agent, batch, temperature)
        kl_sum = (behaviour.exp() * (behaviour - current)).sum()
        count = torch.tensor(float(len(current)), device=kl_sum.device)
        kl_sum, count = accelerator.reduce(torch.stack([kl_sum, count]), "sum")
    return (kl_sum / count.clamp(min=1.0)).item()


def trust_region(
    agent: nn.Module,
    unwrapped: nn.Module,
    batch: Batch,
    behaviour: torch.Tensor,
    weights_before: list[torch.Tensor],
    max_kl: float,
    temperature: float,
    accelerator,
) -> tuple[float, float]:
    """Backtrack the step's update (a line search, as in TRPO) until its exact KL is at most ``max_kl``.

    The weights become ``before + f * (after - before)`` for the first fraction ``f`` of
    ``STEP_FRACTIONS`` that is close enough, or ``before`` (``f = 0``) if none is.  The optimizer keeps
    its moments: they are statistics of the gradients seen, whatever step was taken.  Returns ``(f, kl)``.
    """
    agent.eval()
    params = list(unwrapped.parameters())
    weights_after = [p.detach().clone() for p in params]
    for fraction in (*STEP_FRACTIONS, 0.0):
        if fraction < 1.0:
            with torch.no_grad():
                for p, before, after in zip(params, weights_before, weights_after, strict=True):
                    p.copy_(before + fraction * (after - before))
        step_kl = step_kl_from(agent, batch, behaviour, temperature, accelerator)
        if step_kl <= max_kl or fraction == 0.0:
            return fraction, step_kl
    raise AssertionError("unreachable: the last fraction, 0, always returns")
