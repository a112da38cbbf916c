"""Evaluation harness: run any agent on any set of registered envs and seeds, and report.

From Python::

    from tsr_envs.evaluation import evaluate

    results = evaluate(["random", "oracle"], "tsr/FrozenLake-v0", episodes=100, out="runs/baselines")
    print(results.table())

From the shell: ``tsr eval --agent random,oracle --env all --episodes 100 --out runs/baselines`` and
``tsr report runs/a runs/b``.  Seeds come from fixed splits so numbers are comparable; ``tsr_envs.splits``
owns them (``SPLITS``), and ``split_seeds`` is re-exported here for convenience.
"""

from tsr_envs.evaluation.agents import Agent, AgentOptions, OracleAgent, RandomAgent, make_agent
from tsr_envs.evaluation.errors import EvalInputError
from tsr_envs.evaluation.report import EvalResults, load_results, merge
from tsr_envs.evaluation.runner import evaluate
from tsr_envs.evaluation.seed_lists import parse_seeds
from tsr_envs.splits import split_seeds

__all__ = [
    "Agent",
    "AgentOptions",
    "EvalInputError",
    "EvalResults",
    "OracleAgent",
    "RandomAgent",
    "evaluate",
    "load_results",
    "make_agent",
    "merge",
    "parse_seeds",
    "split_seeds",
]
