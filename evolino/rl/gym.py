"""Gymnasium adapter: evolve an LSTM policy on any gymnasium environment.

gymnasium is an optional dependency (``pip install evolino[gym]``), imported only here
and only when used.

All ``m x E`` episodes of a population chunk (``m`` candidates, ``E`` episodes each)
run in one vector environment, and the ``m`` policies step in lockstep. By default
the vector environment is gymnasium's ``SyncVectorEnv`` with one seed per
sub-environment, so a candidate's episodes depend only on its own seeds and the
fitness is the same whatever chunk an evaluator puts it in. ``vectorization="vector"``
uses the environment's own vectorized implementation where it has one (e.g.
CartPole): faster, but its starts are drawn from one seed per chunk.

Observation masking hides entries of the observation vector to make a task
partially observable: ``CartPole-v1`` with ``mask=(1, 3)`` shows only the cart
position and the pole angle, not their velocities.

Seeding: ``seeding="fixed"`` gives every candidate of every generation the same
``E`` episode seeds (derived from ``seed``), a common test that ranks candidates
fairly; ``seeding="genome"`` derives the seeds from ``seed`` and the genome's bytes,
so each new candidate meets new episodes, still deterministically on every evaluator.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .._validate import EvolinoError, check_choice, check_number, check_positive_int
from .policy import PolicyBatch, PolicySpec

__all__ = ["GymTask", "GymFitness", "rollout", "make_env", "evaluate_policy", "heldout_seeds", "validation_seeds"]

SEEDING = ("fixed", "genome")
VECTORIZATION = ("sync", "vector")
VALIDATED = 3  # candidates per generation tried on the validation episodes
HELDOUT_POOL = 1000  # held-out seeds the validation seeds keep clear of


def _gym():
    try:
        import gymnasium
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the gymnasium adapter needs gymnasium: pip install 'evolino[gym]'") from exc
    return gymnasium


def make_env(env_id, **kwargs):
    """``gymnasium.make(env_id)``, or ``env_id(**kwargs)`` for an environment factory (a callable
    returning an env, e.g. one that adds wrappers or reshapes rewards); ValueError naming
    ``env_id`` if it is not registered."""
    gym = _gym()
    if callable(env_id):
        return env_id(**kwargs)
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string or an environment factory, got {type(env_id).__name__}")
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise EvolinoError(f"unknown gymnasium environment id {env_id!r}: {exc}") from exc
    try:
        return gym.make(env_id, **kwargs)
    except (gym.error.DependencyNotInstalled, ImportError) as exc:  # the environment's own extra is missing
        raise EvolinoError(f"gymnasium environment {env_id!r} cannot be made: {exc}") from exc


def _describe_spaces(env, mask):
    """Observation width, kept indices, and the action head for ``env``'s spaces."""
    gym = _gym()
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise TypeError(f"observations must be a 1-D Box space, got {obs_space}")
    n = obs_space.shape[0]
    mask = tuple(int(i) for i in mask)
    bad = [i for i in mask if not 0 <= i < n]
    if bad:
        raise ValueError(f"mask indices {bad} out of range for observations of size {n}")
    if len(set(mask)) != len(mask):
        raise ValueError(f"mask has repeated indices: {mask}")
    keep = np.array([i for i in range(n) if i not in mask], dtype=np.int64)
    if keep.size == 0:
        raise ValueError(f"mask hides all {n} observation entries")
    if isinstance(act_space, gym.spaces.Discrete):
        if act_space.n < 2:
            raise TypeError(f"a Discrete action space needs at least 2 actions, got {act_space}")
        action = {"head": "argmax", "n_outputs": int(act_space.n), "start": int(act_space.start)}
    elif isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise TypeError(f"a Box action space must be bounded, got {act_space}")
        action = {"head": "tanh", "n_outputs": int(act_space.shape[0]), "low": low.tolist(), "high": high.tolist()}
    else:
        raise TypeError(f"action space {act_space} is not supported (Discrete or 1-D Box)")
    return keep, action


def _to_env_actions(action, out):
    """Policy outputs ``(..., O)`` or indices ``(...)`` -> actions of the environment."""
    if action["head"] == "argmax":
        return out + action["start"]
    low, high = np.asarray(action["low"]), np.asarray(action["high"])
    return low + (out + 1.0) * 0.5 * (high - low)


def env_name(env_id) -> str:
    """A readable name of an id or a factory (for messages and ``describe``)."""
    return env_id if isinstance(env_id, str) else getattr(env_id, "__qualname__", repr(env_id))


def _check_spec(spec, keep, action, env_id):
    env_id = env_name(env_id)
    if spec.n_inputs != len(keep):
        raise ValueError(f"policy has {spec.n_inputs} inputs but {env_id} shows {len(keep)} (after masking)")
    if spec.head != action["head"] or spec.n_outputs != action["n_outputs"]:
        raise ValueError(f"policy head {spec.head!r} with {spec.n_outputs} outputs does not match the action "
                         f"space of {env_id} (needs head {action['head']!r} with {action['n_outputs']} outputs)")


class GymFitness:
    """Picklable fitness: ``-mean return`` over ``episodes`` episodes of each genome.

    Parameters
    ----------
    spec : PolicySpec
    env_id : str
    mask : tuple of int
    episodes : int
    seed : int
    seeding : {"fixed", "genome"}
    max_steps : int or None
        Cap on steps per episode besides the environment's own time limit.
    vectorization : {"sync", "vector"}
    env_kwargs : dict
    """

    def __init__(self, spec, env_id, *, mask=(), episodes=1, seed=0, seeding="fixed", max_steps=None,
                 vectorization="sync", env_kwargs=None):
        self.spec, self.env_id, self.mask = spec, env_id, tuple(mask)
        self.episodes, self.seed, self.seeding, self.max_steps = episodes, seed, seeding, max_steps
        self.vectorization, self.env_kwargs = vectorization, dict(env_kwargs or {})
        self.obs_norm = None  # (mean, std) the policies' inputs are normalized with, or None
        probe = make_env(env_id, **self.env_kwargs)
        try:
            self.keep, self.action = _describe_spaces(probe, self.mask)
        finally:
            probe.close()
        _check_spec(spec, self.keep, self.action, env_id)
        self._venv, self._n = None, 0

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_venv"} | {"_venv": None, "_n": 0}

    def close(self):
        if self._venv is not None:
            self._venv.close()
        self._venv, self._n = None, 0

    def _vector_env(self, n):
        if self._venv is None or self._n != n:
            self.close()
            gym = _gym()
            if self.vectorization == "vector":
                if callable(self.env_id):
                    raise ValueError("vectorization='vector' needs a registered environment id, not a factory")
                self._venv = gym.make_vec(self.env_id, num_envs=n, vectorization_mode="vector_entry_point",
                                          **self.env_kwargs)
            else:
                env_id, kw = self.env_id, self.env_kwargs
                self._venv = gym.vector.SyncVectorEnv([lambda: make_env(env_id, **kw)] * n)
            self._n = n
        return self._venv

    def episode_seeds(self, genomes, seeds=None) -> np.ndarray:
        """Seeds ``(m, E)`` of the episodes of genomes ``(m, n)``.

        ``seeds`` ``(m,)``: per-candidate seeds from the evaluator (see
        ``evolino.evaluate.candidate_seeds``); they replace the ``seeding`` rule.
        """
        m, E = len(genomes), self.episodes
        if seeds is not None:
            seeds = np.asarray(seeds).reshape(m, -1)
            return np.stack([np.random.SeedSequence([self.seed, *map(int, s)]).generate_state(E, dtype=np.uint32)
                             for s in seeds]).astype(np.int64)
        if self.seeding == "fixed":
            base = np.random.SeedSequence(self.seed).generate_state(E, dtype=np.uint32)
            return np.broadcast_to(base.astype(np.int64), (m, E)).copy()
        out = np.empty((m, E), np.int64)
        for i, g in enumerate(np.ascontiguousarray(genomes, dtype=np.float64)):
            digest = hashlib.sha256(g.tobytes()).digest()
            words = np.frombuffer(digest, dtype=np.uint32)
            out[i] = np.random.SeedSequence([self.seed, *words.tolist()]).generate_state(E, dtype=np.uint32)
        return out

    def returns(self, genomes, seeds=None) -> np.ndarray:
        """Returns ``(m, E)`` of the episodes of genomes ``(m, n_params)`` (``seeds``: see :meth:`episode_seeds`)."""
        batch = PolicyBatch(self.spec, genomes, self.obs_norm)
        return self.run(batch, self.episode_seeds(genomes, seeds))

    def run(self, batch: PolicyBatch, seeds) -> np.ndarray:
        """Returns ``(m, E)`` of ``m`` policies on episodes with the given seeds ``(m, E)``."""
        seeds = np.asarray(seeds, dtype=np.int64)
        m, E = seeds.shape
        if batch.size != m:
            raise ValueError(f"seeds must have one row per policy ({batch.size}), got shape {seeds.shape}")
        venv = self._vector_env(m * E)
        seeds = seeds.reshape(-1)
        if self.vectorization == "vector":
            obs, _ = venv.reset(seed=int(seeds[0]))
        else:
            obs, _ = venv.reset(seed=[int(s) for s in seeds])
        total = np.zeros(m * E)
        done = np.zeros(m * E, bool)
        h = batch.initial_state(E)
        t = 0
        while not done.all() and (self.max_steps is None or t < self.max_steps):
            obs = np.asarray(obs, dtype=np.float64)
            if not np.all(np.isfinite(obs[~done])):
                raise ValueError(f"{env_name(self.env_id)} returned non-finite observations")
            x = np.where(done[:, None], 0.0, obs)[:, self.keep].reshape(m, E, -1)
            h, out = batch.act(h, x)
            actions = _to_env_actions(self.action, out.reshape(m * E, *out.shape[2:]))
            obs, reward, term, trunc, _ = venv.step(actions)
            reward = np.asarray(reward, dtype=np.float64)
            total += np.where(done, 0.0, reward)
            # after a sub-environment ends, the vector env resets it on the next step: ignore the rest
            done |= np.asarray(term, bool) | np.asarray(trunc, bool)
            t += 1
        if not np.all(np.isfinite(total)):
            raise ValueError(f"{env_name(self.env_id)} returned non-finite rewards")
        return total.reshape(m, E)

    def __call__(self, genomes, seeds=None) -> np.ndarray:
        """Fitness ``(m,)``: minus the mean return (``seeds``: optional per-candidate seeds ``(m,)``)."""
        return -self.returns(genomes, seeds).mean(axis=1)


class GymTask:
    """A gymnasium environment as a policy-search task.

    Parameters
    ----------
    env_id : str or callable
        A registered gymnasium id, e.g. ``"CartPole-v1"``, or a factory ``f(**env_kwargs) -> env``
        (wrappers, reward shaping; a module-level function, so parallel evaluators can pickle it).
    mask : sequence of int, default=()
        Observation indices hidden from the policy.
    episodes : int, default=3
        Episodes per evaluation (fitness = minus the mean return).
    seed : int, default=0
        Root of the episode seeds.
    seeding : {"fixed", "genome"}, default="fixed"
    target_return : float, optional
        Solved when a candidate's mean return reaches it; default the
        environment's ``reward_threshold`` (475 for CartPole-v1), or never.
    validation : int, default=20
        A candidate whose training mean reaches ``target_return`` must also reach it on this
        many episodes on validation seeds (:func:`validation_seeds`: disjoint from the
        training and the held-out seeds) before the search counts as solved; otherwise the
        search goes on. "Reach" on validation: the mean minus ``validation_se`` standard
        errors (:meth:`validation_score`). The best three such candidates of a generation are
        tried; their episodes are not counted as evaluations (as the pole's 100,000-step
        test). 0: the training episodes decide (a lucky candidate can stop the search: on
        CartPole with velocities hidden, 4 of 10 seeds reached 475 held out, held-out means
        290-490; with 20 validation episodes 8 of 10, 463-490; benchmarks/RESULTS.md).
    margin : float, default=0.0
        The search demands ``target_return + margin`` (training mean and validation score), so
        the policy it stops at has room for the episodes it will still fail; held out
        (:func:`evaluate_policy`) ``target_return`` decides. CartPole with velocities hidden:
        10 of 10 seeds held out >= 475 with ``margin=15``, 8 of 10 with validation alone
        (benchmarks/RESULTS.md).
    validation_se : float, default=1.0
        Standard errors of the validation mean (``std / sqrt(validation)``) it must clear the
        target by: a policy that barely reaches the target on its validation episodes is
        likely below it on others (held-out CartPole and Acrobot runs in benchmarks/RESULTS.md).
        0: the plain mean.
    max_steps : int, optional
        Extra cap on episode length.
    vectorization : {"sync", "vector"}, default="sync"
    env_kwargs : dict, optional
        Keyword arguments of ``gymnasium.make``.
    """

    def __init__(self, env_id: str, *, mask=(), episodes: int = 3, seed: int = 0, seeding: str = "fixed",
                 target_return: float | None = None, max_steps: int | None = None, vectorization: str = "sync",
                 env_kwargs: dict | None = None, validation: int = 20,
                 validation_se: float = 1.0, margin: float = 0.0):
        self.env_kwargs = dict(env_kwargs or {})
        probe = make_env(env_id, **self.env_kwargs)
        try:
            self.keep, self.action = _describe_spaces(probe, mask)
            threshold = probe.spec.reward_threshold if probe.spec is not None else None
        finally:
            probe.close()
        self.env_id, self.mask = env_id, tuple(int(i) for i in mask)
        self.episodes = check_positive_int(episodes, "episodes")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.seeding = check_choice(seeding, "seeding", SEEDING)
        self.validation = check_positive_int(validation, "validation", minimum=0)
        self.validation_se = check_number(validation_se, "validation_se", low=0.0)
        self.vectorization = check_choice(vectorization, "vectorization", VECTORIZATION)
        self.max_steps = None if max_steps is None else check_positive_int(max_steps, "max_steps")
        target = threshold if target_return is None else target_return
        self.target_return = None if target is None else check_number(target, "target_return")
        self.margin = check_number(margin, "margin", low=0.0)

    def __repr__(self):
        return f"GymTask({env_name(self.env_id)!r}, mask={self.mask}, episodes={self.episodes})"

    def describe(self) -> dict:
        return {"task": "gym", "env_id": env_name(self.env_id), "mask": list(self.mask), "episodes": self.episodes,
                "seeding": self.seeding, "validation": self.validation, "validation_se": self.validation_se,
                "margin": self.margin, "env_kwargs": self.env_kwargs, "action": self.action}

    def default_spec(self, n_cells: int = 2, **options) -> PolicySpec:
        return PolicySpec(len(self.keep), n_cells, n_outputs=self.action["n_outputs"], head=self.action["head"],
                          **options)

    def fitness_fn(self, spec: PolicySpec) -> GymFitness:
        return GymFitness(spec, self.env_id, mask=self.mask, episodes=self.episodes, seed=self.seed,
                          seeding=self.seeding, max_steps=self.max_steps, vectorization=self.vectorization,
                          env_kwargs=self.env_kwargs)

    def policy_inputs(self, policy, seed=None) -> np.ndarray:
        """Raw inputs ``(T, I)`` (observations after masking) of one episode of ``policy`` (for normalization)."""
        if seed is None:
            seed = int(np.random.SeedSequence(self.seed).generate_state(1, dtype=np.uint32)[0])
        obs = rollout(self.env_id, policy, seed=seed, max_steps=self.max_steps)["observations"]
        return obs[:, self.keep]

    def check(self, spec, status, genomes, obs_norm=None):
        """``(solved, champion, evaluations to solve)`` after a generation."""
        if self.target_return is None:
            return False, None, None
        f = status["fitness"]
        demand = self.target_return + self.margin
        winners = np.flatnonzero(-f >= demand)
        if winners.size == 0:
            return False, None, None
        if self.validation:  # the best (then the first) three, each on the validation episodes
            order = winners[np.lexsort((winners, f[winners]))][:VALIDATED]
            passed = [i for i in order.tolist() if self.validation_score(spec, genomes[i], obs_norm) >= demand]
            if not passed:
                return False, None, None
            i = int(passed[0])
        else:
            i = int(winners[0])
        return True, genomes[i].copy(), int(status["evaluations"] - len(f) + i + 1)

    def returns_on(self, spec, genome, seeds, obs_norm=None) -> np.ndarray:
        """Returns ``(E,)`` of one policy ``genome`` on the episodes of ``seeds`` ``(E,)``, in its own
        (then closed) environments."""
        fn = self.fitness_fn(spec)
        try:
            return fn.run(PolicyBatch(spec, np.reshape(genome, (1, -1)), obs_norm), np.reshape(seeds, (1, -1)))[0]
        finally:
            fn.close()

    def validation_returns(self, spec, genome, obs_norm=None) -> np.ndarray:
        """Returns ``(validation,)`` of ``genome`` on the episodes of :func:`validation_seeds`."""
        return self.returns_on(spec, genome, validation_seeds(self), obs_norm)

    def validation_score(self, spec, genome, obs_norm=None) -> float:
        """What :meth:`check` holds against the target: the mean of :meth:`validation_returns` minus
        ``validation_se`` standard errors (sample std, ``ddof=1``, over ``sqrt(validation)``)."""
        ret = self.validation_returns(spec, genome, obs_norm)
        se = float(ret.std(ddof=1)) / np.sqrt(len(ret)) if len(ret) > 1 else 0.0
        return float(ret.mean()) - self.validation_se * se


def rollout(env, policy, *, seed: int | None = None, max_steps: int | None = None) -> dict:
    """One recorded episode of ``policy`` (:class:`~evolino.rl.policy.Policy`) on a gymnasium env.

    Parameters
    ----------
    env : str, callable or gymnasium.Env
        An id or a factory (made with the policy's ``info["env_kwargs"]``), or an environment.
    policy : Policy
        Its ``info["mask"]`` (set by the search) selects the observations it sees.
    seed : int, optional
    max_steps : int, optional

    Returns
    -------
    dict
        ``return`` (float), ``steps`` (int), ``observations`` ``(T + 1, obs_dim)``,
        ``actions`` (list), ``rewards`` ``(T,)``.
    """
    own = isinstance(env, str) or (callable(env) and not hasattr(env, "step"))
    env = make_env(env, **policy.info.get("env_kwargs", {})) if own else env
    try:
        keep, action = _describe_spaces(env, policy.info.get("mask", ()))
        _check_spec(policy.spec, keep, action, getattr(env.spec, "id", "the environment"))
        obs, _ = env.reset(seed=seed)
        policy.reset(1)
        observations, actions, rewards = [np.asarray(obs, np.float64)], [], []
        while max_steps is None or len(actions) < max_steps:
            x = observations[-1]
            if not np.all(np.isfinite(x)):
                raise ValueError("the environment returned non-finite observations")
            out = policy.act(x[keep])
            a = _to_env_actions(action, np.asarray(out))
            a = int(a) if action["head"] == "argmax" else a
            obs, r, term, trunc, _ = env.step(a)
            actions.append(a)
            rewards.append(float(r))
            observations.append(np.asarray(obs, np.float64))
            if term or trunc:
                break
    finally:
        if own:
            env.close()
    return {"return": float(np.sum(rewards)), "steps": len(actions), "observations": np.stack(observations),
            "actions": actions, "rewards": np.asarray(rewards)}


def _training_seeds(task) -> set:
    return set(np.random.SeedSequence(task.seed).generate_state(task.episodes, dtype=np.uint32).tolist())


def validation_seeds(task: GymTask) -> np.ndarray:
    """The ``task.validation`` episode seeds ``(validation,)`` of :meth:`GymTask.check`.

    Drawn from their own stream (``SeedSequence([task.seed, 2])``), never a training seed
    nor one of the first ``HELDOUT_POOL`` (1,000) held-out seeds (:func:`heldout_seeds`), so the
    held-out score of :func:`evaluate_policy` stays out of sample.
    """
    n = check_positive_int(task.validation, "validation")
    taken = _training_seeds(task) | set(heldout_seeds(task, HELDOUT_POOL).tolist())
    pool = np.random.SeedSequence([task.seed, 2]).generate_state(n + len(taken), dtype=np.uint32)
    return np.array([s for s in pool.tolist() if s not in taken][:n], dtype=np.int64)


def heldout_seeds(task: GymTask, episodes: int) -> np.ndarray:
    """``episodes`` episode seeds ``(episodes,)`` disjoint from the ones ``task`` trains on ("fixed" seeding).

    Drawn from their own stream (``SeedSequence([task.seed, 1])``); any seed that
    happens to equal a training seed is dropped and replaced.
    """
    episodes = check_positive_int(episodes, "episodes")
    train = _training_seeds(task)
    pool = np.random.SeedSequence([task.seed, 1]).generate_state(episodes + len(train), dtype=np.uint32)
    return np.array([s for s in pool.tolist() if s not in train][:episodes], dtype=np.int64)


def evaluate_policy(policy, task: GymTask, episodes: int = 100, seeds=None) -> dict:
    """Score ``policy`` on held-out episodes, with gymnasium's definition of "solved".

    Parameters
    ----------
    policy : Policy
        As returned by the search (its observation statistics, if any, are applied).
    task : GymTask
        The task it was evolved on (environment, mask, step cap).
    episodes : int, default=100
        Episodes (gymnasium's environments define ``reward_threshold`` as an average over 100).
    seeds : sequence of int, optional
        Episode seeds; default :func:`heldout_seeds` (never the training seeds).

    Returns
    -------
    dict
        ``returns`` (list), ``mean``, ``std``, ``min``, ``max``, ``seeds`` (list),
        ``threshold`` (the environment's ``reward_threshold``, or the task's ``target_return``,
        or None) and ``solved`` (``mean >= threshold``; None without a threshold).
    """
    if not isinstance(task, GymTask):
        raise TypeError(f"task must be a GymTask, got {type(task).__name__} "
                        "(pole tasks are scored by generalization_score on the 625 starts)")
    if seeds is None:
        seeds = heldout_seeds(task, episodes)
    else:
        seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
        if seeds.size == 0:
            raise ValueError("seeds must not be empty")
    ret = task.returns_on(policy.spec, policy.genome, seeds, policy.obs_norm)
    threshold = task.target_return
    mean = float(ret.mean())
    return {"returns": ret.tolist(), "mean": mean, "std": float(ret.std()), "min": float(ret.min()),
            "max": float(ret.max()), "seeds": seeds.tolist(), "threshold": threshold,
            "solved": None if threshold is None else bool(mean >= threshold)}
