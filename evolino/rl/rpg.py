"""Recurrent policy gradients (RPG): train the rl package's LSTM policy by gradient ascent on the return.

Wierstra, Foerster, Peters & Schmidhuber, "Solving deep memory POMDPs with recurrent policy
gradients" (ICANN 2007). :class:`RecurrentPolicyGradient` samples batches of episodes with the
stochastic policy (softmax over discrete actions, a Gaussian around continuous ones) and follows
the likelihood-ratio gradient through time of :mod:`evolino.rl.rpg_grad` with Adam (or SGD);
:func:`train_rpg` runs it on a task as :func:`evolino.rl.evolve_policy` runs a search, and returns
the same :class:`~evolino.rl.search.SearchResult`.

The learned genome has the layout of an evolved one, so the result is an ordinary
:class:`~evolino.rl.policy.Policy` (saved and loaded the same way) that acts with the mode of the
learned distribution (argmax, or the mean action); the Gaussian's ``sigma`` is kept in
``policy.info``.

Tasks: :class:`~evolino.rl.tmaze.TMazeTask` (episodes in lockstep, half of every batch with the
goal north, half south) and :class:`~evolino.rl.search.PoleTask` (from the standard start, reward 1
per step balanced, training episodes capped at ``max_episode_steps``).
"""

from __future__ import annotations

import time

import numpy as np

from .._validate import EvolinoError, as_rng, check_choice, check_number, check_positive_int
from ..bptt.trainer import _Adam, _SGD, _clip
from ..loop import History, Result
from ..presets import RPG
from ..search.base import array, rng_from_str, rng_to_str, scalar
from .policy import Policy, PolicySpec
from .rpg_grad import BASELINES, Episodes, _with_forget_bias, advantages, policy_gradient, rollout
from .search import PoleTask, SearchResult, _plain_seed
from .tmaze import TMazeTask

__all__ = ["RecurrentPolicyGradient", "train_rpg", "Episodes", "rollout", "advantages", "policy_gradient",
           "HEADS", "BASELINES"]

HEADS = ("auto", "softmax", "gaussian")
OPTIMIZERS = ("adam", "sgd")


# --- environments: batched episodes of the rl tasks ------------------------------------
class _TMazeEpisodes:
    """T-maze episodes in lockstep; even episodes have the goal north, odd ones south (balanced batches)."""

    def __init__(self, task: TMazeTask, spec: PolicySpec, head: str):
        if (spec.n_inputs, spec.head, spec.n_outputs) != (3, "argmax", 4):
            raise EvolinoError(f"a T-maze policy needs 3 inputs and head='argmax' with 4 outputs, got {spec.n_inputs}, "
                               f"{spec.head!r}, {spec.n_outputs}: use spec=task.default_spec(n_cells)")
        self.maze, self.max_steps = task.maze, task.maze.max_steps

    def reset(self, B):
        self.pos, self.north = np.zeros(B, np.int64), np.arange(B) % 2 == 0
        self.success = np.zeros(B, bool)
        return self.maze.observe(self.pos, self.north)

    def step(self, action, alive):
        new, r, done, ok = self.maze.step(self.pos, self.north, action)
        self.pos = np.where(alive, new, self.pos)
        self.success |= alive & ok
        return self.maze.observe(self.pos, self.north), r, done


class _PoleEpisodes:
    """Pole balancing from the standard start; reward 1 per step balanced (the standard fitness)."""

    def __init__(self, task, spec: PolicySpec, head: str, max_steps: int):
        self.env, self.head, self.max_steps, self.success = task.env, spec.head, max_steps, None
        want = "softmax" if spec.head == "argmax" else "gaussian"
        if head != want:
            raise EvolinoError(f"a pole policy with head {spec.head!r} needs head={want!r} (or 'auto'), got {head!r}")

    def reset(self, B):
        self.s = self.env.initial_state(B)
        return self.env.observe(self.s)

    def step(self, action, alive):
        if self.head == "argmax":
            u = np.where(action >= 1, 1.0, -1.0)  # as evolino.rl.pole: output 1 pushes right
        else:
            u = action[:, 0] if self.head == "tanh" else 2.0 * action[:, 0] - 1.0
        self.s = np.where(alive[:, None], self.env.step(self.s, u), self.s)
        failed = self.env.failed(self.s)
        return self.env.observe(self.s), (~failed).astype(np.float64), failed


def _environment(task, spec: PolicySpec, head: str, max_steps):
    if isinstance(task, TMazeTask):
        return _TMazeEpisodes(task, spec, head)
    if isinstance(task, PoleTask):
        if spec.n_inputs != task.env.n_obs:
            raise EvolinoError(f"spec has {spec.n_inputs} inputs but {task!r} gives {task.env.n_obs}: "
                               "use task.default_spec(n_cells)")
        return _PoleEpisodes(task, spec, head, min(task.max_steps, max_steps))
    raise EvolinoError(f"task must be a TMazeTask or a PoleTask, got {type(task).__name__}")


def _resolve_head(head: str, spec: PolicySpec) -> str:
    head = check_choice(head, "head", HEADS)
    natural = "softmax" if spec.head == "argmax" else "gaussian"
    if head == "auto":
        return natural
    if head != natural:
        raise EvolinoError(f"head={head!r} does not fit a policy with spec.head={spec.head!r}: use head={natural!r} "
                           "or 'auto'")
    return head


# --- the learner ------------------------------------------------------------------------
class RecurrentPolicyGradient:
    """RPG on one task: parameters, optimizer and random stream; ``update()`` takes one step.

    Defaults from :data:`evolino.presets.RPG` (measured on the T-maze).

    Parameters
    ----------
    task : TMazeTask or PoleTask
    spec : PolicySpec, optional
        Default ``task.default_spec(n_cells, direct=direct)``.
    n_cells : int, default=4
    direct : bool, default=True
        Input-to-output weights in the default spec (the cells then only need to carry memory).
    episodes : int, default=32
        Episodes sampled per gradient step (a T-maze batch is half goal-north, half goal-south).
    lr : float, default=0.03
        Learning rate, > 0. Adam's step size: each parameter moves by about ``lr`` per step.
    optimizer : {"adam", "sgd"}, default="adam"
        Adam (Kingma & Ba 2015), or SGD with ``momentum`` (then ``lr`` multiplies the raw gradient).
    momentum : float, default=0.9
        SGD only, in ``[0, 1)``.
    head : {"auto", "softmax", "gaussian"}, default="auto"
        The stochastic policy: softmax over the outputs for ``spec.head="argmax"``, a Gaussian
        around the ``tanh`` / ``logistic`` output otherwise ("auto" picks it).
    sigma : float, default=0.5
        Initial standard deviation of the Gaussian head (all outputs).
    learn_sigma : bool, default=True
        Learn ``log sigma`` with the weights (else it stays ``sigma``).
    baseline : {"mean", "none"}, default="mean"
    gamma : float, default=1.0
        Discount of the returns-to-go, in ``(0, 1]``; 1 follows the undiscounted return the tasks score.
    entropy : float, default=0.0
        Weight of an entropy bonus (keeps the policy exploring), >= 0.
    clip : float, optional
        Maximal Euclidean norm of the gradient of a step (None: no clipping).
    init_scale : float, default=2.0
        Scale of the initial genome (:meth:`PolicySpec.init`).
    forget_bias : float or None, default=5.0
        Initial forget-gate biases (cells that remember from the start); None keeps ``spec.init``'s.
    max_episode_steps : int, default=1000
        Cap on a training episode (pole balancing; the T-maze has its own step limit).
    seed : None, int or numpy.random.Generator
        Seeds the initial genome and every sampled action: one seed reproduces a run exactly.
    genome : array of shape (n_params,), optional
        Start from this genome (e.g. an evolved policy) instead of a random one.

    Attributes
    ----------
    genome : ndarray (n_params,)
    log_std : ndarray (O,) or None
    generation, evaluations : int
        Gradient steps and training episodes so far.
    best : (genome, fitness)
        Best deterministic fitness checked so far (lower is better, the task's fitness).
    """

    def __init__(self, task, *, spec=None, n_cells: int = RPG.n_cells, direct: bool = RPG.direct,
                 episodes: int = RPG.episodes, lr: float = RPG.lr, optimizer: str = "adam", momentum: float = 0.9,
                 head: str = "auto", sigma: float = RPG.sigma, learn_sigma: bool = True, baseline: str = "mean",
                 gamma: float = 1.0, entropy: float = 0.0, clip=None, init_scale: float = RPG.init_scale,
                 forget_bias=RPG.forget_bias, max_episode_steps: int = 1000, seed=None, genome=None):
        if not isinstance(task, (TMazeTask, PoleTask)):
            raise EvolinoError(f"task must be a TMazeTask or a PoleTask for recurrent policy gradients, got "
                               f"{type(task).__name__}")
        if spec is None:
            spec = task.default_spec(check_positive_int(n_cells, "n_cells"), direct=bool(direct))
        if not isinstance(spec, PolicySpec):
            raise EvolinoError(f"spec must be a PolicySpec, got {type(spec).__name__}")
        self.task, self.spec = task, spec
        self.episodes = check_positive_int(episodes, "episodes")
        self.lr = check_number(lr, "lr", low=0.0, low_open=True)
        self.optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        mu = check_number(momentum, "momentum", low=0.0)
        if mu >= 1.0:
            raise EvolinoError(f"momentum must be < 1, got {mu}")
        self.head = _resolve_head(head, spec)
        sigma = check_number(sigma, "sigma", low=0.0, low_open=True)
        self.learn_sigma = bool(learn_sigma)
        self.baseline = check_choice(baseline, "baseline", BASELINES)
        self.gamma = check_number(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        self.entropy = check_number(entropy, "entropy", low=0.0)
        self.clip = None if clip is None else check_number(clip, "clip", low=0.0, low_open=True)
        init_scale = check_number(init_scale, "init_scale", low=0.0, low_open=True)
        self.env = _environment(task, spec, self.head, check_positive_int(max_episode_steps, "max_episode_steps"))
        self.seed, self.rng = seed, as_rng(seed)
        if genome is None:
            g = spec.init(self.rng, 1, init_scale)[0]
            if spec.forget_gate and forget_bias is not None:
                g = _with_forget_bias(spec, g, check_number(forget_bias, "forget_bias"))
        else:
            g = np.array(genome, np.float64)
        if g.shape != (spec.n_params,) or not np.all(np.isfinite(g)):
            raise EvolinoError(f"genome must be a finite array of shape ({spec.n_params},) for this spec")
        n_std = spec.n_outputs if self.head == "gaussian" else 0
        self.theta = np.concatenate([g, np.full(n_std, np.log(sigma))])  # one vector for the optimizer
        n = self.theta.size
        self._opt = _Adam(n, np.float64, self.lr, (0.9, 0.999)) if self.optimizer == "adam" else \
            _SGD(n, np.float64, self.lr, mu)
        self.generation = self.evaluations = 0
        self._best = (None, float("inf"))

    @property
    def popsize(self) -> int:
        """Episodes per gradient step (the CLI's "networks per generation")."""
        return self.episodes

    @property
    def genome(self) -> np.ndarray:
        """The current policy weights ``(n_params,)`` (a copy), in :class:`PolicySpec`'s layout."""
        return self.theta[: self.spec.n_params].copy()

    @property
    def log_std(self):
        """The Gaussian head's ``log sigma`` ``(O,)`` (a copy), or None for the softmax head."""
        return self.theta[self.spec.n_params:].copy() if self.head == "gaussian" else None

    @property
    def best(self):
        """``(genome (n_params,), fitness)``: the best deterministic fitness checked; ``(None, inf)`` before."""
        g, f = self._best
        return (None if g is None else g.copy()), f

    def rollout(self) -> Episodes:
        """``episodes`` episodes of the current stochastic policy (advances the random stream)."""
        return rollout(self.spec, self.genome, self.env, self.episodes, self.rng, head=self.head,
                       log_std=self.log_std)

    def update(self) -> Episodes:
        """Sample a batch, take one gradient step; returns the batch (raises if the gradient is not finite)."""
        eps = self.rollout()
        self.evaluations += self.episodes
        self.generation += 1
        if not self.step(self.gradient(eps)):
            raise FloatingPointError("the policy gradient is not finite: try a smaller lr or a clip")
        return eps

    def gradient(self, episodes: Episodes) -> np.ndarray:
        """The gradient estimate ``g`` (ascent direction of the return) on ``theta``'s layout."""
        weights = advantages(episodes, self.gamma, self.baseline)
        _, dg, dstd = policy_gradient(self.spec, self.genome, episodes, weights, head=self.head,
                                      log_std=self.log_std, entropy=self.entropy)
        if dstd is None:
            return dg
        return np.concatenate([dg, dstd if self.learn_sigma else np.zeros_like(dstd)])

    def step(self, grad) -> bool:
        """Move ``theta`` along ``grad``; False (and no move) if it is not finite."""
        g = np.array(grad, np.float64)
        if not np.all(np.isfinite(g)):
            return False
        _clip(g, self.clip)
        self._opt.step(self.theta, -g)  # the optimizers minimize
        return True

    def check(self):
        """Deterministic fitness of the current genome and the task's verdict ``(fitness, solved, evals)``."""
        g = self.genome
        f = self.task.fitness_fn(self.spec)(g[None])
        solved, _, evals = self.task.check(self.spec, {"fitness": f, "evaluations": self.evaluations}, g[None])
        if f[0] < self._best[1]:
            self._best = (g, float(f[0]))
        return float(f[0]), bool(solved), evals

    # --- exact resume: plain arrays and scalars, as the search strategies' state_dict --------------
    def state_dict(self) -> dict:
        """Weights, optimizer moments, counters, best so far and the random stream: arrays, scalars, strings."""
        o = self._opt
        return {"kind": "rpg", "theta": self.theta.copy(), "generation": self.generation,
                "evaluations": self.evaluations, "rng": rng_to_str(self.rng), "best_fitness": self._best[1],
                "best_genome": np.zeros(0) if self._best[0] is None else self._best[0].copy(),
                "opt_v": o.v.copy(), "opt_m": getattr(o, "m", np.zeros(0)).copy(), "opt_t": getattr(o, "t", 0)}

    def load_state_dict(self, d: dict) -> None:
        """Continue exactly from :meth:`state_dict` output (a learner built with the same arguments)."""
        if scalar(d, "kind", str) != "rpg":
            raise EvolinoError(f"state_dict is for {scalar(d, 'kind', str)!r}, not 'rpg'")
        theta = array(d, "theta")
        if theta.shape != self.theta.shape:
            raise EvolinoError("state_dict was saved by a learner with a different number of parameters")
        self.theta[:] = theta
        self.generation, self.evaluations = scalar(d, "generation", int), scalar(d, "evaluations", int)
        rng_from_str(self.rng, scalar(d, "rng", str))
        best = array(d, "best_genome")
        self._best = (best if best.size else None, scalar(d, "best_fitness", float))
        self._opt.v[:] = array(d, "opt_v")
        if self.optimizer == "adam":
            self._opt.m[:], self._opt.t = array(d, "opt_m"), scalar(d, "opt_t", int)


def train_rpg(task, *, spec: PolicySpec | None = None, n_cells: int = RPG.n_cells, episodes: int = RPG.episodes,
              lr: float = RPG.lr, seed=None, max_evaluations: int | None = RPG.max_evaluations,
              max_generations: int | None = None,
              callbacks=(), generalization: bool = True, resume: dict | None = None, **options) -> SearchResult:
    """Train an LSTM policy for ``task`` by recurrent policy gradients until solved or out of budget.

    Each generation samples ``episodes`` episodes with the current stochastic policy, checks the
    deterministic policy (argmax / mean action) with the task's own fitness and solve test (as
    :func:`evolino.rl.evolve_policy` does; these checks are not counted as evaluations), then, unless
    solved, takes one gradient step and calls the callbacks.

    Parameters
    ----------
    task : TMazeTask or PoleTask
        Pole tasks train on episodes of at most ``max_episode_steps`` steps, reward 1 per step balanced.
    spec, n_cells, episodes, lr, seed
        See :class:`RecurrentPolicyGradient`.
    max_evaluations : int, optional
        Budget of training episodes (one evaluation = one episode).
    max_generations : int, optional
        Budget of gradient steps.
    callbacks : sequence of callables
        ``callback(status) -> bool | None`` after every generation, with the keys of
        :func:`evolino.loop.run_search` (``fitness`` = minus the batch's returns ``(episodes,)``,
        ``best_fitness`` = the best deterministic fitness) plus ``solved`` and ``success_rate``
        (fraction of the batch's episodes that succeeded, T-maze; None otherwise).
    generalization : bool, default=True
        Compute the final policy's generalization score (pole tasks).
    resume : dict, optional
        ``{"strategy": state_dict, "history": dict}`` of an earlier run with the same settings.
    **options
        Further keyword arguments of :class:`RecurrentPolicyGradient` (``optimizer``, ``head``,
        ``sigma``, ``baseline``, ``gamma``, ``clip``, ``init_scale``, ...).

    Returns
    -------
    SearchResult
        ``policy`` (the solving genome, else the best checked one), ``solved``, ``evaluations``
        (training episodes to solve, or all spent), ``generations`` (gradient steps), ``history``,
        ``strategy`` (the :class:`RecurrentPolicyGradient`) and ``result`` (:class:`evolino.loop.Result`).
    """
    learner = RecurrentPolicyGradient(task, spec=spec, n_cells=n_cells, episodes=episodes, lr=lr, seed=seed,
                                      **options)
    if max_evaluations is not None:
        max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
    if max_generations is not None:
        max_generations = check_positive_int(max_generations, "max_generations")
    if callable(callbacks) or not all(callable(cb) for cb in callbacks):
        raise EvolinoError("callbacks must be a sequence of callables, e.g. callbacks=(fn,)")
    history, offset = History(), 0.0
    if resume is not None:
        learner.load_state_dict(resume["strategy"])
        history = History(resume.get("history"))
        offset = float(history["time"][-1]) if history["time"] else 0.0
    spec, reason, solved, evals_to_solve = learner.spec, None, False, None
    t0 = time.perf_counter()
    while reason is None:
        if max_evaluations is not None and learner.evaluations >= max_evaluations:
            reason = "max_evaluations"
            break
        if max_generations is not None and learner.generation >= max_generations:
            reason = "max_generations"
            break
        eps = learner.rollout()
        learner.evaluations += learner.episodes
        learner.generation += 1
        _, solved, evals_to_solve = learner.check()
        # step before the callbacks, so that a checkpoint written by one resumes bit for bit
        finite = solved or learner.step(learner.gradient(eps))
        returns = eps.returns
        status = {"generation": learner.generation, "evaluations": learner.evaluations,
                  "best_fitness": learner.best[1], "gen_best": -float(returns.max()),
                  "gen_median": -float(np.median(returns)), "elapsed": offset + time.perf_counter() - t0,
                  "strategy": learner, "fitness": -returns, "solved": solved,
                  "success_rate": None if eps.success is None else float(eps.success.mean())}
        history.append(status)
        stop = any(bool(cb(status)) for cb in callbacks)
        reason = "solved" if solved else "diverged" if not finite else "callback" if stop else None
    genome = learner.genome if solved else learner.best[0]
    if genome is None:  # stopped before the first check
        genome = learner.genome
    info = {**task.describe(), "search": "rpg", "seed": _plain_seed(seed), "normalize_obs": False,
            "head": learner.head}
    if learner.head == "gaussian":
        info["sigma"] = np.exp(learner.log_std).tolist()
    policy = Policy(spec, genome, info=info)
    score = task.generalization(spec, genome) if generalization and hasattr(task, "generalization") else None
    evals = evals_to_solve if solved else learner.evaluations
    result = Result(genome.copy(), learner.best[1], learner.evaluations, learner.generation, reason, history)
    return SearchResult(policy, solved, evals, learner.generation, history, score, learner, result, None)
