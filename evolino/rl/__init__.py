"""Reinforcement learning: LSTM policies (the whole network one genome) evolved by ESP or CMA-ES.

Pole balancing (single / double pole, with or without velocities) is built in and
vectorized over the population; :mod:`evolino.rl.gym` adapts gymnasium environments.
"""

from .policy import Policy, PolicyBatch, PolicySpec
from .pole import PoleBalancing, PoleParams, generalization_score, rollout, run_episodes

__all__ = [
    "Policy", "PolicyBatch", "PolicySpec", "PoleBalancing", "PoleParams", "generalization_score", "rollout",
    "run_episodes",
]
from .search import PoleTask, SearchResult, evolve_policy  # noqa: E402

__all__ += ["PoleTask", "SearchResult", "evolve_policy"]
