"""ESP: Enforced SubPopulations (Gomez & Miikkulainen 1999), as used by Evolino.

The genome is split into *units* (for an LSTM: one memory cell, ``spec.cell_slices``).
Each unit has its own subpopulation of ``subpop_size`` chromosomes (that unit's
weights). One generation:

1. **Assembly** (``ask``). ``trials`` rounds; in each round every subpopulation is
   shuffled and network ``j`` takes the ``j``-th chromosome of every shuffled
   subpopulation. So ``popsize = subpop_size * trials`` networks, and every
   chromosome takes part in exactly ``trials`` networks, with random partners.
2. **Chromosome fitness** (``tell``). ``chromosome_fitness="best"``: the best fitness
   of the networks the chromosome took part in: the rule of PyBrain's Evolino
   (``EvolinoPopulation.setIndividualFitness``, "max fitness distribution"; PyBrain's
   Evolino came from Schmidhuber's group at IDSIA). The Evolino papers' own wording
   could not be consulted here. ``"mean"``: their average (the original ESP's
   cumulative fitness divided by the trials, Gomez & Miikkulainen 1999).
3. **Recombination** within each subpopulation: the best quarter (at least one)
   survives unchanged; the rest is replaced by offspring of the best quarter. Parent
   one goes round the best quarter in rank order, parent two is drawn at random from
   it; with ``crossover=True`` the child is a one-point crossover of the two inside
   the unit (ESP's operator), with ``crossover=False`` a copy of parent one (PyBrain's
   Evolino, ``EvolinoSubReproduction``: clone the best quarter round-robin, mutate).
4. **Mutation**: every offspring weight gets Cauchy noise of scale ``mutation_scale``
   (heavy tails: mostly small steps, occasionally large jumps).
5. **Burst mutation** (ESP's escape from stagnation): when the best-ever network has
   not improved for ``patience`` generations, every subpopulation is re-created around
   the best-ever network's unit: one exact copy plus ``subpop_size - 1`` Cauchy
   perturbations of scale ``burst_scale``; this replaces step 3-4 of that generation.

Defaults and their sources:

- ``subpop_size=20``: smallest subpopulation of Gomez & Miikkulainen's experiments
  (20-100; summarised in Gomez et al. 2008, JMLR, App. B) and PyBrain's Evolino demo.
- ``trials=10``: "each neuron participates in about 10 trials" (Gomez & Miikkulainen 1999).
- ``mutation_scale=0.01``: PyBrain's ``EvolinoTrainer`` default ``mutationAlpha``.
- ``patience=10``: burst after 10 generations without improvement (ESP, pole tasks).
- initial chromosomes: uniform in ``[-0.1, 0.1]`` (PyBrain's ``initialWeightRange``),
  unless ``init`` is given (the trainer passes ``spec.init``).

A fixed Cauchy scale makes ESP good at exploring and poor at fine convergence: it
needs about ``mutation_scale / distance`` generations per factor of improvement once
it is closer to the optimum than ``mutation_scale`` (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_choice, check_number, check_positive_int
from .base import SearchStrategy, array, scalar

__all__ = ["ESP", "resolve_units"]

_INIT_RANGE = 0.1


def resolve_units(units, n_params):
    """Validate a grouping of genome indices; return ``(n_params, unit_of (n,), pos (n,), sizes (K,))``.

    ``unit_of[i]`` is the unit of parameter ``i`` and ``pos[i]`` its position inside
    the unit (in the order the unit lists its indices).
    """
    if units is None:
        if n_params is None:
            raise ValueError("give n_params or units")
        n = check_positive_int(n_params, "n_params")
        return n, np.arange(n), np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    if isinstance(units, (str, bytes)) or not hasattr(units, "__len__") or len(units) == 0:
        raise ValueError(f"units must be a non-empty list of slices or index arrays, got {units!r}")
    if n_params is None:
        # a slice needs a length to resolve; take it from the largest stop
        stops = [u.stop for u in units if isinstance(u, slice)]
        if any(s is None for s in stops):
            raise ValueError("units: open-ended slices need n_params")
        sizes = [np.asarray(u).max() + 1 for u in units if not isinstance(u, slice) and np.size(u)]
        n = int(max(stops + sizes, default=0))
    else:
        n = check_positive_int(n_params, "n_params")
    idx = []
    for k, u in enumerate(units):
        if isinstance(u, slice):
            ii = np.arange(n)[u]
        else:
            ii = np.asarray(u)
            if ii.ndim != 1 or not (np.issubdtype(ii.dtype, np.integer)):
                raise ValueError(f"units[{k}] must be a slice or a 1-D integer index array, got {u!r}")
        if ii.size == 0:
            raise ValueError(f"units[{k}] is empty")
        if ii.min() < 0 or ii.max() >= n:
            raise ValueError(f"units[{k}] has indices outside range({n})")
        idx.append(ii.astype(np.int64))
    flat = np.concatenate(idx)
    counts = np.bincount(flat, minlength=n)
    if flat.size != n or np.any(counts != 1):
        missing = np.flatnonzero(counts == 0)[:5].tolist()
        twice = np.flatnonzero(counts > 1)[:5].tolist()
        raise ValueError(
            f"units must partition range({n}) exactly (every index in one unit); "
            f"missing e.g. {missing}, repeated e.g. {twice}")
    unit_of = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    for k, ii in enumerate(idx):
        unit_of[ii] = k
        pos[ii] = np.arange(ii.size)
    return n, unit_of, pos, np.array([ii.size for ii in idx], dtype=np.int64)


class ESP(SearchStrategy):
    """Enforced SubPopulations: one subpopulation per unit, networks assembled from them.

    Parameters
    ----------
    n_params : int, optional
        Genome length ``n``. May be omitted when ``units`` covers it.
    units : list of slices or 1-D int arrays, optional
        Groups of genome indices, one subpopulation each; they must partition
        ``range(n_params)`` exactly. For an LSTM: ``spec.cell_slices``. Default: every
        parameter is its own unit.
    subpop_size : int, default=20
        Chromosomes per subpopulation (>= 2).
    trials : int, default=10
        Networks each chromosome takes part in per generation.
        ``popsize = subpop_size * trials``.
    popsize : int, optional
        Networks per generation instead of ``subpop_size``: a multiple of ``trials``,
        giving ``subpop_size = popsize // trials`` (if both are given they must agree).
    mutation_scale : float, default=0.01
        Scale of the Cauchy noise added to every offspring weight.
    patience : int or None, default=10
        Burst mutation after this many generations without a new best; None: never.
    burst_scale : float, optional
        Cauchy scale of burst mutation; default ``mutation_scale``.
    crossover : bool, default=True
        One-point crossover inside the unit between two parents of the best quarter
        (ESP); False: offspring are mutated copies (Evolino/PyBrain variant).
    chromosome_fitness : {"best", "mean"}, default="best"
        How a chromosome's fitness is derived from its ``trials`` networks.
    seed : None, int or numpy.random.Generator
    init : callable or array, optional
        ``init(rng, size) -> (size, n_params)`` (e.g. ``spec.init``), or an array
        ``(subpop_size, n_params)`` (row ``j`` gives chromosome ``j`` of every unit),
        or a centre ``(n_params,)`` (subpopulations = centre + Cauchy noise of scale
        ``mutation_scale``, as a burst would make them). Default: uniform in
        ``[-0.1, 0.1]``.

    Notes
    -----
    ``ask()`` twice without ``tell`` returns the same population.

    Examples
    --------
    >>> import numpy as np
    >>> es = ESP(6, units=[slice(0, 3), slice(3, 6)], subpop_size=8, trials=4, seed=0)
    >>> es.popsize
    32
    >>> for _ in range(3):
    ...     X = es.ask()
    ...     es.tell(np.sum(X**2, axis=1))
    >>> es.generation, es.evaluations
    (3, 96)
    """

    def __init__(self, n_params=None, *, units=None, subpop_size=None, trials=10, popsize=None,
                 mutation_scale=0.01, patience=10, burst_scale=None, crossover=True, chromosome_fitness="best",
                 seed=None, init=None):
        n, self._unit_of, self._pos, self._unit_size = resolve_units(units, n_params)
        super().__init__(n, seed)
        self.trials = check_positive_int(trials, "trials")
        if popsize is not None:
            popsize = check_positive_int(popsize, "popsize")
            if popsize % self.trials:
                raise ValueError(f"popsize ({popsize}) must be a multiple of trials ({self.trials}) for ESP; "
                                 f"try popsize={max(1, round(popsize / self.trials)) * self.trials}")
            if subpop_size is not None and subpop_size * self.trials != popsize:
                raise ValueError(f"popsize ({popsize}) != subpop_size * trials ({subpop_size} * {self.trials})")
            subpop_size = popsize // self.trials
        self.subpop_size = check_positive_int(20 if subpop_size is None else subpop_size, "subpop_size", minimum=2)
        self.mutation_scale = check_number(mutation_scale, "mutation_scale", low=0.0, low_open=True)
        self.patience = None if patience is None else check_positive_int(patience, "patience")
        self.burst_scale = (self.mutation_scale if burst_scale is None
                            else check_number(burst_scale, "burst_scale", low=0.0, low_open=True))
        if not isinstance(crossover, (bool, np.bool_)):
            raise TypeError(f"crossover must be a bool, got {crossover!r}")
        self.crossover = bool(crossover)
        self.chromosome_fitness = check_choice(chromosome_fitness, "chromosome_fitness", ("best", "mean"))
        self.n_units = len(self._unit_size)
        self.n_keep = max(1, self.subpop_size // 4)
        self.stale = 0  # generations since the best ever improved
        self.bursts = 0
        self._choice = None  # (P, K) chromosome index of each unit in each pending network
        self.pop = self._initial_population(init)  # (S, n): row j holds chromosome j of every unit

    @property
    def popsize(self) -> int:
        return self.subpop_size * self.trials

    def subpopulation(self, k: int) -> np.ndarray:
        """Chromosomes of unit ``k``, ``(subpop_size, unit size)`` (a copy), in the unit's index order."""
        k = check_positive_int(k, "k", minimum=0)
        if k >= self.n_units:
            raise ValueError(f"k must be < n_units ({self.n_units}), got {k}")
        ii = np.flatnonzero(self._unit_of == k)
        return self.pop[:, ii[np.argsort(self._pos[ii])]].copy()

    # --- initial population -------------------------------------------------
    def _initial_population(self, init):
        S, n = self.subpop_size, self.n_params
        if init is None:
            return self.rng.uniform(-_INIT_RANGE, _INIT_RANGE, size=(S, n))
        if callable(init):
            pop = check_array(init(self.rng, S), "init(rng, size)", ndims=(2,), dtype=np.float64, finite=True)
            if pop.shape != (S, n):
                raise ValueError(f"init(rng, size) must return shape ({S}, {n}), got {pop.shape}")
            return pop.copy()
        arr = check_array(init, "init", ndims=(1, 2), dtype=np.float64, finite=True)
        if arr.ndim == 1:
            if arr.shape != (n,):
                raise ValueError(f"init must have shape ({n},) or ({S}, {n}), got {arr.shape}")
            return self._around(arr, self.mutation_scale)
        if arr.shape != (S, n):
            raise ValueError(f"init must have shape ({n},) or ({S}, {n}), got {arr.shape}")
        return arr.copy()

    def _around(self, centre, scale):
        """Subpopulations re-created around ``centre`` ``(n,)``: one exact copy + Cauchy perturbations."""
        pop = centre[None, :] + scale * self.rng.standard_cauchy((self.subpop_size, self.n_params))
        pop[0] = centre
        return pop

    # --- one generation -----------------------------------------------------
    def _sample(self):
        S, T, K = self.subpop_size, self.trials, self.n_units
        perm = self.rng.permuted(np.broadcast_to(np.arange(S), (T, K, S)), axis=2)  # (T, K, S)
        self._choice = perm.transpose(0, 2, 1).reshape(T * S, K)  # network t*S+j takes perm[t, k, j] of unit k
        return self._assemble(self._choice)

    def _assemble(self, choice):
        """Genomes ``(P, n)`` from chromosome indices ``choice`` ``(P, K)``."""
        return self.pop[choice[:, self._unit_of], np.arange(self.n_params)]

    def _update(self, genomes, f, improved):
        cf = self._chromosome_fitness(f)  # (S, K)
        self.stale = 0 if improved else self.stale + 1
        if self.patience is not None and self.stale >= self.patience and self._best_x is not None:
            self.pop = self._around(self._best_x, self.burst_scale)
            self.bursts += 1
            self.stale = 0
        else:
            self.pop = self._recombine(cf)
        self._choice = None

    def _chromosome_fitness(self, f):
        """Fitness ``(S, K)`` of chromosome ``c`` of unit ``k`` from its ``trials`` networks."""
        S, T = self.subpop_size, self.trials
        perm = self._choice.reshape(T, S, self.n_units)  # perm[t, j, k]: chromosome of unit k in network t*S+j
        where = np.argsort(perm, axis=1)  # where[t, c, k]: network (within round t) holding chromosome c
        per_trial = f.reshape(T, S)[np.arange(T)[:, None, None], where]  # (T, S, K)
        if self.chromosome_fitness == "best":
            return per_trial.min(axis=0)
        with np.errstate(invalid="ignore"):
            return per_trial.mean(axis=0)

    def _recombine(self, cf):
        S, K, keep = self.subpop_size, self.n_units, self.n_keep
        n_child = S - keep
        order = np.argsort(cf, axis=0, kind="stable")  # (S, K): ranks, best first
        cols = np.arange(self.n_params)
        src = np.empty((S, K), dtype=np.int64)
        src[:keep] = order[:keep]
        src[keep:] = order[np.arange(n_child) % keep]
        pop = self.pop[src[:, self._unit_of], cols]  # (S, n)
        if n_child == 0:
            return pop
        if self.crossover:
            mate = np.take_along_axis(order, self.rng.integers(0, keep, size=(n_child, K)), axis=0)
            other = self.pop[mate[:, self._unit_of], cols]  # (n_child, n)
            cut = self.rng.integers(1, np.maximum(self._unit_size, 2), size=(n_child, K))  # (n_child, K)
            tail = self._pos[None, :] >= cut[:, self._unit_of]
            pop[keep:] = np.where(tail, other, pop[keep:])
        pop[keep:] += self.mutation_scale * self.rng.standard_cauchy((n_child, self.n_params))
        return pop

    # --- state --------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically: plain arrays, ints, floats, strings."""
        d = self._base_state()
        d.update(
            kind="esp",
            pop=self.pop.copy(),
            choice=(np.zeros((0, self.n_units), dtype=np.int64) if self._choice is None else self._choice.copy()),
            unit_of=self._unit_of.copy(),
            subpop_size=int(self.subpop_size),
            trials=int(self.trials),
            stale=int(self.stale),
            bursts=int(self.bursts),
        )
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` output; the strategy must have the same units and sizes."""
        if scalar(d, "kind", str) != "esp":
            raise ValueError(f"state_dict is for {scalar(d, 'kind', str)!r}, not 'esp'")
        if (scalar(d, "subpop_size", int), scalar(d, "trials", int)) != (self.subpop_size, self.trials):
            raise ValueError("state_dict has a different subpop_size or trials")
        if not np.array_equal(array(d, "unit_of", np.int64), self._unit_of):
            raise ValueError("state_dict has different units")
        pop = array(d, "pop")
        choice = array(d, "choice", np.int64).reshape(-1, self.n_units)
        if pop.shape != self.pop.shape:
            raise ValueError(f"state_dict['pop'] must have shape {self.pop.shape}, got {pop.shape}")
        self._load_base_state(d)
        self.pop = pop
        self._choice = choice if len(choice) else None
        self.stale = scalar(d, "stale", int)
        self.bursts = scalar(d, "bursts", int)
