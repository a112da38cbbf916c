"""The TRL ``environment_factory`` adapter: its contract, the tools TRL discovers, and 2 GRPO steps."""

from __future__ import annotations

import inspect
import os

import gymnasium as gym
import pytest

from tsr_envs.core import TextEnv, Transition
from tsr_envs.integrations.trl import (
    FrozenLakeTools,
    ReplyTools,
    SokobanTools,
    WebShopTools,
    environment_factory,
)

#: What TRL 1.16 turns into tools (``GRPOTrainer.__init__``): the public functions of the class.
STATE_API = {"clone", "get_state", "set_state", "legal_actions", "optimal_actions", "step", "render"}


def trl_tool_names(instance: object) -> set[str]:
    """The tool names TRL 1.16 derives from an environment instance (its own rule, restated)."""
    return {
        name
        for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("env_id", "tools_class", "tools"),
    [
        ("tsr/FrozenLake-v0", FrozenLakeTools, {"move"}),
        ("tsr/Sokoban-v0", SokobanTools, {"move"}),
        ("tsr/WebShop-v0", WebShopTools, {"search", "click"}),
    ],
)
def test_only_the_game_tools_are_exposed(env_id, tools_class, tools):
    instance = environment_factory(env_id)()
    assert type(instance) is tools_class
    assert trl_tool_names(instance) == tools
    assert not STATE_API & {name for name in dir(instance) if not name.startswith("_")}


class Counter(TextEnv):
    """A minimal third-party TextEnv: count up to three."""

    def _new_task(self, options):
        self._task, self._count = "count", 0

    def _get_dynamic(self):
        return (self._count,)

    def _set_dynamic(self, dynamic):
        (self._count,) = dynamic

    def _apply(self, action):
        self._count += 1
        return Transition(1.0 if self._count == 3 else 0.0, self._count == 3)

    def _render(self):
        return f"count {self._count}"

    def _score(self):
        return self._count / 3

    def _success(self):
        return self._count == 3

    def instructions(self):
        return "Say Inc three times."

    def legal_actions(self):
        return ["Inc"]


def test_other_text_envs_get_the_general_act_tool():
    if "test/Counter-v0" not in gym.registry:
        gym.register("test/Counter-v0", entry_point=Counter, max_episode_steps=10)
    instance = environment_factory("test/Counter-v0")()
    assert type(instance) is ReplyTools and trl_tool_names(instance) == {"act"}
    assert "`act`" in instance.reset(seed=0)
    assert instance.act("Inc || Inc || Inc").endswith("count 3") and instance.get_reward() == 1.0


def test_reset_takes_the_row_and_the_seed_picks_the_instance():
    make = environment_factory("tsr/Sokoban-v0")
    a, b, c = make(), make(), make()
    first = a.reset(prompt=[{"role": "user", "content": ""}], seed=10_003, extra="ignored")
    assert first == b.reset(seed=10_003) != c.reset(seed=10_004)
    env = gym.make("tsr/Sokoban-v0")
    observation, info = env.reset(seed=10_003)
    assert info["instructions"] in first and first.endswith(observation)
    assert "`move`" in first


def test_move_steps_the_env_and_reports_feedback_reward_and_observation():
    instance = environment_factory("tsr/FrozenLake-Deterministic-v0")()
    instance.reset(seed=10_014)  # one step left of the goal
    env = gym.make("tsr/FrozenLake-Deterministic-v0")
    env.reset(seed=10_014)
    assert env.unwrapped.optimal_actions() == ["Left"]
    text = instance.move("left")
    observation, reward, *_ = env.step("Left")
    assert "Feedback: You did: Left." in text and "Reward: +1.00" in text and text.endswith(observation)
    assert "The episode is over (solved)" in text
    assert instance.get_reward() == reward == 1.0 and instance.done and instance.success
    with pytest.raises(ValueError, match="episode is over"):
        instance.move("Up")


def test_separators_lists_and_bad_arguments_are_turns_not_crashes():
    instance = environment_factory("tsr/Sokoban-v0")()
    instance.reset(seed=10_000)
    assert "You did: Up, Left." in instance.move("Up, Left") or "Up" in instance.info["actions"]
    assert instance.info["actions"] == ["Up", "Left"]
    instance.move(["Down", "Right"])
    assert instance.info["actions"] == ["Down", "Right"]
    text = instance.move("Jump")
    assert "Invalid reply" in text and instance.info["action_is_valid"] is False
    assert instance.get_reward() == pytest.approx(-0.5)  # four moves at -0.1, one format penalty


def test_webshop_tools_search_and_click():
    instance = environment_factory("tsr/WebShop-v0")()
    first = instance.reset(seed=10_000)
    assert "`search`" in first
    assert "You did: search[" in instance.search("shoes")
    product = next(a for a in instance._env.unwrapped.legal_actions() if a.startswith("click[b"))
    assert "You did: click[" in instance.click(product[len("click[") : -1])


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="cannot make 'tsr/Nope-v0'"):
        environment_factory("tsr/Nope-v0")
    with pytest.raises(ValueError, match="bad keyword arguments"):
        environment_factory("tsr/Sokoban-v0", colour="red")
    with pytest.raises(ValueError, match="not a TSR text environment"):
        environment_factory("CartPole-v1")
    instance = environment_factory("tsr/FrozenLake-v0")()
    with pytest.raises(ValueError, match="call reset"):
        instance.move("Up")
    with pytest.raises(ValueError, match="'seed' column must hold integers"):
        instance.reset(seed="7")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")
def test_two_grpo_steps_through_trls_tool_loop(tmp_path):
    pytest.importorskip("trl")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from tests.tsr_envs.tool_calling_model import build_tool_calling_model

    env_id = "tsr/FrozenLake-Deterministic-v0"
    env = gym.make(env_id)
    observation, info = env.reset(seed=0)
    model_dir = build_tool_calling_model(tmp_path / "model", [info["instructions"], observation] * 4)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    # goals one or two moves away, so some of 4 random walks reach them and the advantages are not zero
    seeds = [10_014, 10_019, 10_020, 10_022]
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": ""}]] * 4, "seed": seeds})
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_steps=2,
        max_completion_length=512,
        max_tool_calling_iterations=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,  # as tsr train runs on a CPU: accelerate's process state is shared by the session
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        environment_factory=environment_factory(env_id),
    )
    assert {tool.__name__ for tool in trainer._env_tools[None]} == {"move"}
    trainer.train()
    logs = [record for record in trainer.state.log_history if "loss" in record]
    assert len(logs) == 2
    assert all(record["tools/call_frequency"] > 0 for record in logs)
    assert all("rewards/FrozenLakeTools/mean" in record for record in logs)
    # every episode was played through the tools: each instance took at least one turn
    assert all(instance.info["turn"] >= 1 for instance in trainer._environment_pool[None])
    assert any(not torch.equal(before[name], p) for name, p in model.named_parameters())
