"""FrozenLake text environment."""

from tsr_envs.frozenlake.env import FrozenLakeEnv
from tsr_envs.frozenlake.maps import LakeMap, random_map

__all__ = ["FrozenLakeEnv", "LakeMap", "random_map"]
