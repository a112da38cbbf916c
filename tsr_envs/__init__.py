"""Cloneable text environments for multi-turn RL of LLM agents.

Importing this package registers every environment under Gymnasium's ``tsr/`` namespace::

    import gymnasium as gym
    import tsr_envs

    env = gym.make("tsr/Sokoban-v0")
    observation, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step("<answer>Up || Left</answer>")
"""

from tsr_envs.core import EnvState, TextEnv, Transition
from tsr_envs.parsing import ParsedReply, parse_reply
from tsr_envs.registration import register_all, registered_ids

register_all()

__all__ = ["EnvState", "ParsedReply", "TextEnv", "Transition", "evaluate", "parse_reply", "registered_ids"]


def __getattr__(name: str):
    # ``evaluate`` pulls in the evaluation harness (and its optional plotting); load it only when asked.
    if name == "evaluate":
        from tsr_envs.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'tsr_envs' has no attribute {name!r}")
