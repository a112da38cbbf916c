"""Sokoban text environment: generated or Boxoban levels, an optimal solver and deadlock detection."""

from tsr_envs.sokoban.boxoban import load_boxoban
from tsr_envs.sokoban.env import BoxobanEnv, SokobanEnv
from tsr_envs.sokoban.generator import generate_level
from tsr_envs.sokoban.level import ACTIONS, Board, Level
from tsr_envs.sokoban.solver import lower_bound, plan, solve

__all__ = [
    "ACTIONS",
    "Board",
    "BoxobanEnv",
    "Level",
    "SokobanEnv",
    "generate_level",
    "load_boxoban",
    "lower_bound",
    "plan",
    "solve",
]
