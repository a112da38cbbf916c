"""PPO with a value head and GAE over model tokens: the maths, training, KL reference and exact resume."""

from __future__ import annotations

import pytest
import torch

from tests.tsr_train.training_utils import assert_finite_metrics, same_weights, tiny_config, weights
from tsr_train.cli import train
from tsr_train.metrics import read_metrics
from tsr_train.ppo import PolicyWithValue, gae, make_batch
from tsr_train.trajectory import Trajectory


def test_gae_runs_over_model_tokens_only():
    # positions: model, model, env, env, model (last); reward 1 on the last model token
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    rewards = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.4, 9.0, 9.0, 0.5]])  # env-token values must be ignored
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert torch.allclose(advantages, torch.tensor([[0.8, 0.6, 0.0, 0.0, 0.5]]))
    assert torch.allclose(returns, torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]]))

    advantages, _ = gae(rewards, values, mask, gamma=0.5, lam=1.0)
    # discounting counts model tokens: the first token is 2 steps before the reward, not 4
    assert advantages[0, 0].item() == pytest.approx(0.25 - 0.2)
    advantages, _ = gae(rewards, values, mask, gamma=1.0, lam=0.0)  # one-step TD errors
    assert torch.allclose(advantages, torch.tensor([[0.2, 0.1, 0.0, 0.0, 0.5]]))


def test_uniform_groups_get_no_advantage_but_still_train_the_value():
    from tsr_train.config import PPOSettings
    from tsr_train.ppo import advantages_and_returns, uniform_group_rows

    rewards = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.5, 0.5])  # groups of 2: failed throughout, mixed, equal
    uniform = uniform_group_rows(rewards, 2)
    assert uniform.tolist() == [True, True, False, False, True, True]
    mask = torch.ones(6, 2)
    token_rewards = torch.zeros(6, 2)
    token_rewards[:, 1] = rewards
    values = torch.full((6, 2), 0.3)  # a value that expects more than the failures earned
    plain, plain_returns = advantages_and_returns(
        token_rewards, values, mask, uniform, PPOSettings(skip_uniform_groups=False)
    )
    assert (plain[:2] < 0).all()  # R - V pushes down every move of the group that failed throughout
    for whiten in (False, True):
        settings = PPOSettings(skip_uniform_groups=True, whiten_advantages=whiten)
        skipped, returns = advantages_and_returns(token_rewards, values, mask, uniform, settings)
        assert (skipped[uniform] == 0).all()
        assert (skipped[~uniform] != 0).all()
        assert torch.equal(returns, plain_returns)  # the value head still learns the uniform groups
        if not whiten:
            assert torch.equal(skipped[~uniform], plain[~uniform])


def test_batch_aligns_action_mask_with_next_token():
    t = Trajectory("tsr/FrozenLake-v0", 0, prompt_ids=[5, 6], completion_ids=[7, 8, 9], env_mask=[1, 0, 1])
    batch = make_batch([t], [1.0], pad_id=0, device="cpu")
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert batch.targets.tolist() == [[6, 7, 8, 9]]
    assert batch.action_mask.tolist() == [[0.0, 1.0, 0.0, 1.0]]  # prompt token 6 is not an action


@pytest.mark.parametrize("detach", [True, False])
def test_value_loss_reaches_the_trunk_only_when_not_detached(tiny_model_dir, detach):
    from transformers import AutoModelForCausalLM

    agent = PolicyWithValue(AutoModelForCausalLM.from_pretrained(tiny_model_dir), detach_value=detach)
    torch.nn.init.normal_(agent.value_head.weight)  # a head that has learned something (it starts at 0)
    ids = torch.tensor([[3, 4, 5, 6]])
    _, values = agent(ids, torch.ones_like(ids))
    ((values - 1.0) ** 2).sum().backward()  # a value loss alone
    trunk_moved = any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.model.parameters())
    assert agent.value_head.weight.grad.abs().sum() > 0
    assert trunk_moved is not detach


@pytest.mark.slow
def test_ppo_steps_change_weights_and_log_finite_metrics(tiny_model_dir, tmp_path):
    config = tiny_config(tiny_model_dir, tmp_path / "run", "ppo", rollout_filter_ratio=0.5)
    config.ppo.kl_coef = 0.05
    config.ppo.max_kl = 0.0  # no trust region: every step must move the weights
    final = train(config)
    assert not same_weights(weights(final), weights(tiny_model_dir))
    records = assert_finite_metrics(
        tmp_path / "run",
        2,
        "loss",
        "policy_loss",
        "value_loss",
        "kl_ref",
        "approx_kl",
        "rollout/success",
        "rollout/score",
        "rollout/invalid_rate",
        "search/candidates_generated",
        "filter/kept_fraction",
        "ppo/uniform_group_fraction",
    )
    assert records[0]["filter/kept_fraction"] == 0.5
    assert records[1]["kl_ref"] != 0.0  # the policy moved away from the frozen reference after one step
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "grpo"])  # GRPO's goes through a Trainer callback
@pytest.mark.parametrize("max_kl", [1e-9, 1e3])
def test_trust_region_shortens_or_undoes_steps_that_move_the_policy_too_far(
    tiny_model_dir, tmp_path, max_kl, algo
):
    config = tiny_config(tiny_model_dir, tmp_path / "run", algo)
    getattr(config, algo).max_kl = max_kl
    final = train(config)
    records = assert_finite_metrics(tmp_path / "run", 2, "trust/kl", "trust/step_fraction", "rollout/score")
    if max_kl < 1e-6:  # no fraction of any step is that close: every step undone, the weights unchanged
        assert [r["trust/step_fraction"] for r in records] == [0.0, 0.0]
        assert [r["trust/kl"] for r in records] == [0.0, 0.0]
        assert same_weights(weights(final), weights(tiny_model_dir))
    else:
        assert [r["trust/step_fraction"] for r in records] == [1.0, 1.0]
        assert all(r["trust/kl"] > 0 for r in records)
        assert not same_weights(weights(final), weights(tiny_model_dir))


def test_trust_region_takes_the_longest_fraction_of_the_step_within_the_bound():
    from accelerate import Accelerator

    from tsr_train.trust_region import action_distributions, trust_region

    torch.manual_seed(0)
    agent = ToyAgent()
    t = Trajectory("tsr/FrozenLake-v0", 0, prompt_ids=[1, 2], completion_ids=[3, 4, 5], env_mask=[1, 1, 1])
    batch = make_batch([t], [1.0], pad_id=0, device="cpu")
    before = agent.logits.detach().clone()
    update = torch.randn_like(before)

    def kl_after(fraction: float) -> float:
        with torch.no_grad():
            agent.logits.copy_(before + fraction * update)
            moved = action_distributions(agent, batch, 1.0)
        return float((behaviour.exp() * (behaviour - moved)).sum(-1).mean())

    with torch.no_grad():
        behaviour = action_distributions(agent, batch, 1.0)
    half, quarter = kl_after(0.5), kl_after(0.25)
    kl_after(1.0)  # the agent as the optimizer left it
    bound = (half + quarter) / 2  # the half step goes too far, the quarter step does not
    accelerator = Accelerator(cpu=True)
    fraction, step_kl = trust_region(agent, agent, batch, behaviour, [before], bound, 1.0, accelerator)
    assert fraction == 0.25 and step_kl == pytest.approx(quarter, rel=1e-5)
    assert torch.allclose(agent.logits, before + 0.25 * update)


def test_exact_kl_to_the_reference_counts_mass_moved_onto_unsampled_tokens():
    from types import SimpleNamespace

    from tsr_train.ppo import kl_to_reference

    t = Trajectory("tsr/FrozenLake-v0", 0, prompt_ids=[1], completion_ids=[2], env_mask=[1])
    batch = make_batch([t], [1.0], pad_id=0, device="cpu")
    reference_logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])

    def reference(input_ids, attention_mask):
        return SimpleNamespace(logits=reference_logits)

    # the policy keeps the sampled token's probability but moves the rest from token 1 onto token 2
    p_ref = torch.softmax(reference_logits[0, 0], -1)
    p = torch.tensor([p_ref[0].item(), 0.01, 1 - p_ref[0].item() - 0.01])
    kl = kl_to_reference(reference, p.log().view(1, 1, 3), batch, [0], temperature=1.0)
    assert kl.shape == (1, 1)
    assert kl.item() == pytest.approx(float((p * (p.log() - p_ref.log())).sum()), rel=1e-5)
    assert kl.item() > 0.05  # a sampled estimate on token 0 would read log(p/p_ref) = 0 here


def test_a_run_saved_before_the_trust_region_the_kl_loss_and_group_skipping_loads_as_it_ran():
    from tsr_train.config import TrainConfig

    saved = TrainConfig(algo="ppo").to_dict()
    for name in ("max_kl", "kl_in_reward", "skip_uniform_groups"):  # configs saved before the fields existed
        del saved["ppo"][name]
    old = TrainConfig.from_dict(saved).ppo
    assert old.max_kl == 0.0 and old.kl_in_reward is True and old.skip_uniform_groups is False
    now = TrainConfig.from_dict(TrainConfig(algo="ppo").to_dict()).ppo
    assert now.max_kl > 0 and now.kl_in_reward is False and now.skip_uniform_groups is True


class ToyAgent(torch.nn.Module):
    """A policy whose logits depend on the position only: the smallest thing with an exact KL."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(5, 8))

    def forward(self, input_ids, attention_mask):
        logits = self.logits[: input_ids.shape[1]].expand(input_ids.shape[0], -1, -1)
        return logits, torch.zeros(input_ids.shape)


@pytest.mark.slow
def test_ppo_resume_continues_bit_for_bit(tiny_model_dir, tmp_path):
    def config(run: str, steps: int):
        return tiny_config(tiny_model_dir, tmp_path / run, "ppo", steps=steps, rollout_max_turns=1)

    straight = train(config("a", 4))
    train(config("b", 2))
    resumed = train(config("b", 4), resume=True)
    assert same_weights(weights(straight), weights(resumed))
    a, b = read_metrics(tmp_path / "a" / "metrics.jsonl"), read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    strip = ("step_time_s", "search/wall_time_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in a] == [
        {k: v for k, v in r.items() if k not in strip} for r in b
    ]
