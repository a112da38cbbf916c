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

__all__ = ["EnvState", "ParsedReply", "TextEnv", "Transition", "parse_reply", "registered_ids"]
