"""Adapters that put the suite's environments into other projects' training loops.

* :mod:`tsr_envs.integrations.trl` — TRL's ``GRPOTrainer(environment_factory=...)`` tool-calling loop;
* :mod:`tsr_envs.integrations.openenv` — an OpenEnv server (``tsr serve-openenv``).

Each imports only what its host project needs, when it is imported, so ``import tsr_envs`` stays light.
"""
