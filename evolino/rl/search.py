"""Policy search: evolve a whole LSTM policy with any strategy of :mod:`evolino.search` on a task.

A *task* bundles an environment with its protocol (see :class:`PoleTask`, and
:class:`evolino.rl.gym.GymTask`): it builds the picklable fitness function
``fn(genomes (m, n)) -> (m,)`` (lower is better) that evaluators map over the
population, and after each generation decides whether the search has solved it.
:func:`evolve_policy` runs :func:`evolino.loop.run_search` on it.

Pole-balancing protocols (Gomez, Schmidhuber & Miikkulainen, JMLR 2008):

- ``fitness="standard"``: fitness = steps balanced from the standard start, up to
  100,000; solved when a network balances all 100,000. Evaluations to solve are
  counted up to and including the solving network (its index in the generation).
- ``fitness="damping"`` (Gruau et al. 1996): fitness ``0.1 f1 + 0.9 f2`` over 1,000
  steps, which rewards calm control; the best network of every generation is
  then tested for 100,000 steps and the search is solved when it passes (and,
  with ``require_generalization``, balances at least 200 of the 625 starts of
  the generalization test). These tests are not counted as evaluations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .._backend import check_backend
from .._validate import check_choice, check_positive_int
from ..evaluate import Serial
from ..loop import History, Result, run_search
from ..presets import POLE
from .policy import Policy, PolicyBatch, PolicySpec
from .pole import PoleBalancing, generalization_score, run_episodes

__all__ = ["PoleTask", "PoleFitness", "SearchResult", "evolve_policy", "make_pole_strategy"]

FITNESS = ("standard", "damping")
GENERALIZATION_PASS = 200


class PoleFitness:
    """Picklable pole-balancing fitness of policy genomes, lower is better.

    ``standard``: ``-steps`` balanced (up to ``max_steps``); ``damping``: ``-(0.1 f1 + 0.9 f2)``.

    Parameters
    ----------
    spec : PolicySpec
    env : dict
        Keyword arguments of :class:`PoleBalancing` (plain data, cheap to pickle).
    fitness : {"standard", "damping"}
    max_steps : int
    backend : {"auto", "numpy", "numba"}, default="auto"
        Episode backend (see :func:`evolino.rl.pole.run_episodes`).
    """

    def __init__(self, spec: PolicySpec, env: dict, fitness: str, max_steps: int, backend: str = "auto"):
        self.spec, self.env_kwargs, self.fitness, self.max_steps = spec, dict(env), fitness, max_steps
        self.backend = check_backend(backend)
        self.obs_norm = None  # (mean, std) the policies' inputs are normalized with, or None
        self._env = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_env"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._env = None

    @property
    def env(self) -> PoleBalancing:
        if self._env is None:
            self._env = PoleBalancing(**self.env_kwargs)
        return self._env

    def __call__(self, genomes) -> np.ndarray:
        """Fitness ``(m,)`` of genomes ``(m, n_params)``."""
        res = run_episodes(self.env, PolicyBatch(self.spec, genomes, self.obs_norm), max_steps=self.max_steps,
                           damping=self.fitness == "damping", backend=self.backend)
        score = res.damping[:, 0] if self.fitness == "damping" else res.steps[:, 0].astype(np.float64)
        return -score


class PoleTask:
    """Pole balancing with the literature's protocol.

    Parameters
    ----------
    n_poles : {1, 2}, default=2
    velocities : bool, default=False
    fitness : {"standard", "damping"}, default="standard"
    max_steps : int, optional
        Steps of a fitness episode; 100,000 (standard) or 1,000 (damping).
    test_steps : int, default=100000
        Steps the generation's best must balance (damping fitness) to solve.
    require_generalization : bool, default=False
        Also require >= 200 of the 625 generalization starts (damping fitness).
    backend : {"auto", "numpy", "numba"}, default="auto"
        Episode backend of the fitness, the tests and the generalization score (see
        :func:`evolino.rl.pole.run_episodes`); not part of :meth:`describe`.
    """

    def __init__(self, n_poles: int = 2, *, velocities: bool = False, fitness: str = "standard",
                 max_steps: int | None = None, test_steps: int = 100_000, require_generalization: bool = False,
                 backend: str = "auto"):
        self.env = PoleBalancing(n_poles, velocities=velocities)
        self.fitness = check_choice(fitness, "fitness", FITNESS)
        default = 100_000 if fitness == "standard" else 1000
        self.max_steps = check_positive_int(default if max_steps is None else max_steps, "max_steps")
        self.test_steps = check_positive_int(test_steps, "test_steps")
        self.require_generalization = bool(require_generalization)
        self.backend = check_backend(backend)

    def __repr__(self):
        return (f"PoleTask(n_poles={self.env.n_poles}, velocities={self.env.velocities}, "
                f"fitness={self.fitness!r}, max_steps={self.max_steps})")

    def describe(self) -> dict:
        return {**self.env.to_dict(), "fitness": self.fitness, "max_steps": self.max_steps}

    def default_spec(self, n_cells: int = 2, **options) -> PolicySpec:
        return PolicySpec(self.env.n_obs, n_cells, **options)

    def fitness_fn(self, spec: PolicySpec) -> PoleFitness:
        kw = {"n_poles": self.env.n_poles, "velocities": self.env.velocities}
        return PoleFitness(spec, kw, self.fitness, self.max_steps, self.backend)

    def passes_test(self, spec: PolicySpec, genome, obs_norm=None) -> bool:
        """Does ``genome`` balance ``test_steps`` from the standard start (and generalize, if required)?"""
        batch = PolicyBatch(spec, np.reshape(genome, (1, -1)), obs_norm)
        if run_episodes(self.env, batch, max_steps=self.test_steps, backend=self.backend).steps[0, 0] < self.test_steps:
            return False
        return (not self.require_generalization
                or generalization_score(self.env, batch, backend=self.backend)[0] >= GENERALIZATION_PASS)

    def policy_inputs(self, policy, seed=None) -> np.ndarray:
        """Raw inputs ``(T, I)`` a policy sees in one episode from the standard start (for normalization)."""
        from .pole import rollout

        states = rollout(self.env, policy, max_steps=min(1000, self.max_steps), backend=self.backend)["states"]
        return self.env.observe(states)

    def check(self, spec: PolicySpec, status: dict, genomes, obs_norm=None) -> tuple[bool, np.ndarray | None, int | None]:
        """After a generation: ``(solved, champion genome, evaluations to solve)``."""
        f = status["fitness"]
        if self.fitness == "standard":
            winners = np.flatnonzero(f <= -self.max_steps)
            if winners.size == 0:
                return False, None, None
            i = int(winners[0])
            return True, genomes[i].copy(), int(status["evaluations"] - len(f) + i + 1)
        i = int(np.argmin(f))
        # a network that falls early fails the long test early too, so testing every generation is cheap
        if not self.passes_test(spec, genomes[i], obs_norm):
            return False, None, None
        return True, genomes[i].copy(), int(status["evaluations"])

    def generalization(self, spec: PolicySpec, genome, obs_norm=None) -> int:
        """Starts of the 625-start test the policy balances for 1,000 steps."""
        batch = PolicyBatch(spec, np.reshape(genome, (1, -1)), obs_norm)
        return int(generalization_score(self.env, batch, backend=self.backend)[0])


@dataclass
class SearchResult:
    """Outcome of :func:`evolve_policy`.

    Attributes
    ----------
    policy : Policy
        The solving network, or the best ever found if unsolved.
    solved : bool
    evaluations : int
        Evaluations to solve (or all spent, if unsolved).
    generations : int
    history : History
    generalization : int or None
        Generalization score of ``policy`` (pole tasks, when computed).
    strategy : object
        The search strategy, as left at the end (``state_dict()`` to resume).
    result : evolino.loop.Result
        The search's own result (best genome and fitness, stop reason, history).
    normalizer : RunningMeanStd or None
        The observation statistics at the end (``normalize_obs=True``).
    """

    policy: Policy
    solved: bool
    evaluations: int
    generations: int
    history: History
    generalization: int | None = None
    strategy: object = field(default=None, repr=False)
    result: Result | None = field(default=None, repr=False)
    normalizer: object = field(default=None, repr=False)


class _Recording:
    """Evaluator wrapper that keeps the last population it scored (the loop's status lacks genomes)
    and can swap in the current fitness function (observation statistics change between generations)."""

    def __init__(self, inner):
        self.inner, self.genomes, self.fitness_fn = inner, None, None

    def evaluate(self, fitness_fn, genomes):
        self.genomes = genomes
        return self.inner.evaluate(self.fitness_fn or fitness_fn, genomes)


def make_pole_strategy(search: str, spec: PolicySpec, *, popsize=None, seed=None, **options):
    """A strategy with the defaults of :data:`evolino.presets.POLE` (small LSTM policies).

    ESP: 5 trials per chromosome, subpopulations from ``spec.init`` at scale 2,
    Cauchy mutation 0.1. CoSyNE: population from ``spec.init`` at scale 2. CMA-ES, SNES,
    xNES, PGPE: mean 0, ``sigma0 = 1``. ``options`` override them.
    """
    from ..search import STRATEGIES, make_strategy

    search = check_choice(search, "search", STRATEGIES)
    options = {**POLE.search_options(search), **options}
    if search not in ("esp", "cosyne"):
        options.setdefault("x0", np.zeros(spec.n_params))
    return make_strategy(search, spec, popsize=popsize, seed=seed, init_scale=POLE.init_scale, **options)


def evolve_policy(task, *, spec: PolicySpec | None = None, n_cells: int = POLE.n_cells, search: str = "esp",
                  popsize: int | None = None, seed=None, max_evaluations: int | None = POLE.max_evaluations,
                  max_generations: int | None = None, evaluator=None, callbacks=(), search_options=None,
                  generalization: bool = True, normalize_obs: bool = False, resume: dict | None = None
                  ) -> SearchResult:
    """Evolve an LSTM policy for ``task`` until it is solved or a budget runs out.

    Parameters
    ----------
    task : PoleTask, TMazeTask or evolino.rl.gym.GymTask
    spec : PolicySpec, optional
        Default ``task.default_spec(n_cells)``.
    n_cells : int, default=2
    search : {"esp", "cmaes", "snes", "xnes", "cosyne", "pgpe"}, default="esp"
    popsize : int, optional
        Networks per generation (ESP: a multiple of its ``trials``, 10 by default).
    seed : None, int or numpy.random.Generator
    max_evaluations, max_generations : int, optional
        Budgets over the whole search (a resumed one included).
    evaluator : optional
        ``evaluate(fitness_fn, genomes)``, e.g. a parallel one from ``evolino.evaluate``.
    callbacks : sequence of callables
        ``callback(status) -> bool | None`` after every generation (see :mod:`evolino.loop`);
        the status also holds ``solved`` (bool) and ``normalizer`` (the
        :class:`~evolino.rl.normalize.RunningMeanStd`, or None).
    search_options : dict, optional
        Extra keyword arguments of the strategy.
    generalization : bool, default=True
        Compute the champion's generalization score (pole tasks).
    normalize_obs : bool, default=False
        Normalize the policies' inputs by a running mean and std. After each generation
        one episode of the generation's best (``task.policy_inputs``; not counted as an
        evaluation) adds to the statistics, and the next generation is scored with them.
        The returned policy carries the statistics its fitness was measured with.
    resume : dict, optional
        ``{"strategy": state_dict, "history": dict, "normalizer": state or None, "champion_norm":
        (mean, std) or None}`` from an earlier run with the same settings (what
        ``evolino pole --resume`` stores): the search continues exactly where it stopped.

    Returns
    -------
    SearchResult
    """
    from .normalize import RunningMeanStd

    spec = task.default_spec(n_cells) if spec is None else spec
    if not isinstance(spec, PolicySpec):
        raise TypeError(f"spec must be a PolicySpec, got {type(spec).__name__}")
    strategy = make_pole_strategy(search, spec, popsize=popsize, seed=seed, **dict(search_options or {}))
    fitness_fn = task.fitness_fn(spec)
    recorder = _Recording(Serial() if evaluator is None else evaluator)
    norm = RunningMeanStd(spec.n_inputs) if normalize_obs else None
    history, time_offset = None, 0.0
    champion_norm = None  # statistics the best-ever genome was scored with
    if resume is not None:
        strategy.load_state_dict(resume["strategy"])
        history = History(resume.get("history"))
        time_offset = float(history["time"][-1]) if history["time"] else 0.0
        if norm is not None and resume.get("normalizer") is not None:
            norm.load_state_dict(resume["normalizer"])
        champion_norm = resume.get("champion_norm")
    outcome = {"solved": False, "genome": None, "evaluations": None, "norm": None}
    state = {"champion_norm": champion_norm, "best": strategy.best[1]}

    def use_current_statistics():
        if norm is not None:
            fn = copy.copy(fitness_fn)  # a new object: parallel evaluators send it to their workers again
            fn.obs_norm = norm.frozen()
            recorder.fitness_fn = fn

    use_current_statistics()

    def check(status):
        now = recorder.fitness_fn.obs_norm if norm is not None else None
        if status["best_fitness"] < state["best"]:
            state["best"], state["champion_norm"] = status["best_fitness"], now
        solved, genome, evals = task.check(spec, status, recorder.genomes, obs_norm=now)
        status["solved"], status["normalizer"] = solved, norm
        status["champion_norm"] = state["champion_norm"]
        if solved:
            outcome.update(solved=True, genome=genome, evaluations=evals, norm=now)
        elif norm is not None:
            f = np.where(np.isfinite(status["fitness"]), status["fitness"], np.inf)
            best = Policy(spec, recorder.genomes[int(np.argmin(f))], info=task.describe(), obs_norm=now)
            norm.update(task.policy_inputs(best))
            use_current_statistics()
        return solved

    result = run_search(strategy, fitness_fn, evaluator=recorder, max_evaluations=max_evaluations,
                        max_generations=max_generations, callbacks=(check, *callbacks), history=history,
                        time_offset=time_offset)
    if outcome["solved"]:
        genome, used = outcome["genome"], outcome["norm"]
    else:
        genome, used = strategy.best[0], state["champion_norm"]
    info = {**task.describe(), "search": search, "seed": _plain_seed(seed), "normalize_obs": bool(normalize_obs)}
    policy = Policy(spec, genome, info=info, obs_norm=used)
    score = (task.generalization(spec, genome, used) if generalization and hasattr(task, "generalization")
             else None)
    evals = outcome["evaluations"] if outcome["solved"] else strategy.evaluations
    return SearchResult(policy, outcome["solved"], evals, strategy.generation, result.history, score, strategy,
                        result, norm)


def _plain_seed(seed):
    return int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
