"""Reinforcement learning: LSTM policies (the whole network one genome) evolved by ESP or CMA-ES.

- :mod:`~evolino.rl.policy`: :class:`PolicySpec` (genome layout, cell by cell with each
  cell's outgoing weights, for ESP), :class:`PolicyBatch` (``P`` policies in lockstep),
  :class:`Policy` (one policy: ``act``, ``rollout``, ``save``/``load``).
- :mod:`~evolino.rl.pole`: single / double pole balancing, vectorized over carts.
- :mod:`~evolino.rl.search`: :class:`PoleTask` (the literature's protocols) and
  :func:`evolve_policy`, the search driver.
- :mod:`~evolino.rl.gym`: gymnasium environments (optional ``gymnasium``, imported lazily).
- :mod:`~evolino.rl.cli`: the ``evolino pole`` and ``evolino gym`` subcommands.
"""

from .policy import Policy, PolicyBatch, PolicySpec
from .pole import PoleBalancing, PoleParams, generalization_score, rollout, run_episodes
from .search import PoleTask, SearchResult, evolve_policy

__all__ = [
    "Policy", "PolicyBatch", "PolicySpec", "PoleBalancing", "PoleParams", "generalization_score", "rollout",
    "run_episodes", "PoleTask", "SearchResult", "evolve_policy",
]
