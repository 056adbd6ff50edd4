"""Reinforcement learning: LSTM policies (the whole network one genome) evolved by ESP, CMA-ES, SNES,
xNES, CoSyNE or PGPE, or trained by recurrent policy gradients.

- :mod:`~evolino.rl.policy`: :class:`PolicySpec` (genome layout, cell by cell with each
  cell's outgoing weights, for ESP), :class:`PolicyBatch` (``P`` policies in lockstep),
  :class:`Policy` (one policy: ``act``, ``rollout``, ``save``/``load``).
- :mod:`~evolino.rl.pole`: single / double pole balancing, vectorized over carts.
- :mod:`~evolino.rl.search`: :class:`PoleTask` (the literature's protocols) and
  :func:`evolve_policy`, the search driver.
- :mod:`~evolino.rl.tmaze`: the T-maze deep-memory task, vectorized (:class:`TMazeTask`).
- :mod:`~evolino.rl.rpg`: :func:`train_rpg` (:class:`~evolino.rl.rpg.RecurrentPolicyGradient`), the
  likelihood-ratio gradient through time of :mod:`~evolino.rl.rpg_grad`; same result type and policy files.
- :mod:`~evolino.rl.normalize`: running observation statistics (``evolve_policy(normalize_obs=True)``).
- :mod:`~evolino.rl.gym`: gymnasium environments (optional ``gymnasium``, imported lazily), and
  ``evaluate_policy`` on held-out episodes.
- :mod:`~evolino.rl.cli`: the ``evolino pole`` (``--search rpg`` included) and ``evolino gym`` subcommands.
"""

from .policy import Policy, PolicyBatch, PolicySpec
from .pole import PoleBalancing, PoleParams, generalization_score, rollout, run_episodes
from .search import PoleTask, SearchResult, evolve_policy
from .rpg import RecurrentPolicyGradient, train_rpg
from .tmaze import TMaze, TMazeTask

__all__ = [
    "Policy", "PolicyBatch", "PolicySpec", "PoleBalancing", "PoleParams", "generalization_score", "rollout",
    "run_episodes", "PoleTask", "SearchResult", "evolve_policy", "TMaze", "TMazeTask", "evaluate_policy",
    "RecurrentPolicyGradient", "train_rpg",
]


def evaluate_policy(policy, task, episodes: int = 100, seeds=None) -> dict:
    """Held-out score of ``policy`` on a gymnasium ``task`` (see :func:`evolino.rl.gym.evaluate_policy`)."""
    from .gym import evaluate_policy as _evaluate

    return _evaluate(policy, task, episodes, seeds)
