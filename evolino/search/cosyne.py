"""CoSyNE: cooperative synapse neuroevolution (Gomez, Schmidhuber & Miikkulainen, "Accelerated
neural evolution through cooperatively coevolved synapses", JMLR 9, 2008; Algorithm 1).

The population is an ``(m, n)`` matrix ``P``: column ``i`` is the subpopulation of weight
``i``, row ``j`` the network ``x_j = (x_1j, ..., x_nj)``. One generation:

1. **Evaluate** the ``m`` networks (``ask`` returns the rows).
2. **Recombine** (``O <- Recombine(P)``): the top quarter of the networks (at least
   two) are the parents; ``l`` offspring are made pairwise by one-point crossover of
   two parents drawn from the top quarter (both children of a cross are kept), then
   each offspring weight is mutated with probability ``mutation_rate`` by Cauchy noise
   of scale ``mutation_scale``.
3. **Sort** every subpopulation by the fitness of its network (all of a network's
   weights share its fitness, so this sorts the rows) and **replace** the ``l`` worst by
   the offspring.
4. **Permute** the rest: each surviving weight ``x_ij`` is marked with probability

       p_j = 1 - ((f_max - f_j) / (f_max - f_min)) ** (1 / n)

   (the paper's rule written for lower-is-better fitness: the best network is never
   broken up, the worst always), and within each subpopulation the marked weights are
   shuffled among themselves. ``(1 - p_j)^n`` is then the normalized fitness of network
   ``j``: the chance that it survives whole. A generation whose fitness values are all
   equal holds no ranking, so every survivor is marked. The offspring are not permuted:
   they have no fitness yet, and they already are new combinations.

The paper leaves ``l`` and the mutation settings to the experiment; here ``l`` defaults to
a quarter of the population, so the top quarter breeds, the bottom quarter is replaced,
and the middle half survives only through permutation (the number the JMLR paper's
description, "the top quarter ... recombined", suggests). Initial weights come from
``init`` (the trainer passes ``spec.init``), as for :class:`evolino.search.ESP`.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_number, check_positive_int
from .base import SearchStrategy, array, scalar

__all__ = ["CoSyNE", "permutation_probability"]

_INIT_RANGE = 0.1


def permutation_probability(fitness, n_params: int) -> np.ndarray:
    """``p_j = 1 - ((f_max - f_j) / (f_max - f_min)) ** (1 / n)`` per network (lower fitness is better).

    Parameters
    ----------
    fitness : array of shape (m,)
        Cleaned fitness (``inf`` = broken, counted as worse than the worst finite value).
    n_params : int
        Weights per network ``n``.

    Returns
    -------
    ndarray of shape (m,)
        Probability of marking each of the network's weights for permutation; all ones
        when every value is equal (no ranking to protect).
    """
    f = np.asarray(fitness, dtype=np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.ones_like(f)
    lo, hi = f[finite].min(), f[finite].max()
    if hi == lo:
        return np.where(finite, 0.0, 1.0) if not finite.all() else np.ones_like(f)
    g = np.where(finite, (hi - np.where(finite, f, hi)) / (hi - lo), 0.0)
    return 1.0 - g ** (1.0 / n_params)


class CoSyNE(SearchStrategy):
    """Cooperative synapse neuroevolution: one subpopulation per weight, probabilistic permutation.

    Parameters
    ----------
    n_params : int
        Weights per network ``n`` (one subpopulation each).
    popsize : int, default=40
        Networks per generation ``m`` (each subpopulation's size), >= 4.
    n_offspring : int, optional
        Offspring ``l`` per generation (replacing the ``l`` worst); default ``m // 4``.
    mutation_rate : float, default=0.3
        Probability that an offspring weight is mutated.
    mutation_scale : float, default=0.3
        Scale of the Cauchy mutation noise.
    seed : None, int or numpy.random.Generator
    init : callable or array, optional
        ``init(rng, m) -> (m, n)``, an array ``(m, n)``, or a centre ``(n,)`` (the
        population is the centre plus Cauchy noise of scale ``mutation_scale``).
        Default uniform in ``[-0.1, 0.1]``.

    Examples
    --------
    >>> import numpy as np
    >>> es = CoSyNE(4, popsize=20, seed=0)
    >>> for _ in range(5):
    ...     es.tell(np.sum(es.ask()**2, axis=1))
    >>> es.generation, es.evaluations
    (5, 100)
    """

    kind = "cosyne"

    def __init__(self, n_params, *, popsize=40, n_offspring=None, mutation_rate=0.3, mutation_scale=0.3, seed=None,
                 init=None):
        super().__init__(check_positive_int(n_params, "n_params"), seed)
        self._popsize = check_positive_int(40 if popsize is None else popsize, "popsize", minimum=4)
        m = self._popsize
        self.n_parents = max(2, m // 4)
        self.n_offspring = (max(1, m // 4) if n_offspring is None
                            else check_positive_int(n_offspring, "n_offspring"))
        if self.n_offspring > m - 1:
            raise ValueError(f"n_offspring must be < popsize ({m}), got {self.n_offspring}")
        self.mutation_rate = check_number(mutation_rate, "mutation_rate", low=0.0, high=1.0)
        self.mutation_scale = check_number(mutation_scale, "mutation_scale", low=0.0, low_open=True)
        self.pop = self._initial_population(init)

    @property
    def popsize(self) -> int:
        """Candidates per generation."""
        return self._popsize

    def _initial_population(self, init):
        m, n = self._popsize, self.n_params
        if init is None:
            return self.rng.uniform(-_INIT_RANGE, _INIT_RANGE, size=(m, n))
        if callable(init):
            pop = check_array(init(self.rng, m), "init(rng, size)", ndims=(2,), dtype=np.float64, finite=True)
            if pop.shape != (m, n):
                raise ValueError(f"init(rng, size) must return shape ({m}, {n}), got {pop.shape}")
            return pop.copy()
        arr = check_array(init, "init", ndims=(1, 2), dtype=np.float64, finite=True)
        if arr.shape == (n,):
            pop = arr[None, :] + self.mutation_scale * self.rng.standard_cauchy((m, n))
            pop[0] = arr
            return pop
        if arr.shape != (m, n):
            raise ValueError(f"init must have shape ({n},) or ({m}, {n}), got {arr.shape}")
        return arr.copy()

    # --- one generation -----------------------------------------------------
    def _sample(self):
        return self.pop.copy()

    def _update(self, genomes, f, improved):
        order = np.argsort(f, kind="stable")  # best first
        offspring = self._recombine(self.pop[order[: self.n_parents]])
        m, l = self._popsize, self.n_offspring
        pop = self.pop[order].copy()  # every subpopulation sorted by its networks' fitness
        pop[m - l:] = offspring
        # f_min and f_max of the whole generation, as in the paper
        p = permutation_probability(f, self.n_params)[order[: m - l]]
        pop[: m - l] = self._permute(pop[: m - l], p)
        self.pop = pop

    def _recombine(self, parents):
        """``l`` offspring ``(l, n)`` of ``parents`` (best first): one-point crossover, Cauchy mutation."""
        l, n = self.n_offspring, self.n_params
        n_pairs = (l + 1) // 2
        k = len(parents)
        a = self.rng.integers(0, k, size=n_pairs)
        b = (a + self.rng.integers(1, k, size=n_pairs)) % k  # a different parent
        cut = self.rng.integers(1, max(n, 2), size=n_pairs)  # child 1 = a[:cut] + b[cut:]
        tail = np.arange(n)[None, :] >= cut[:, None]
        c1 = np.where(tail, parents[b], parents[a])
        c2 = np.where(tail, parents[a], parents[b])
        children = np.stack([c1, c2], axis=1).reshape(2 * n_pairs, n)[:l]
        mutate = self.rng.random((l, n)) < self.mutation_rate
        noise = self.mutation_scale * self.rng.standard_cauchy((l, n))
        return children + np.where(mutate, noise, 0.0)

    def _permute(self, block, p):
        """Shuffle, within each column of ``block`` ``(r, n)``, the entries marked with row probability ``p``."""
        marked = self.rng.random(block.shape) < p[:, None]
        keys = self.rng.random(block.shape)
        out = block.copy()
        for i in np.flatnonzero(marked.sum(axis=0) > 1):
            rows = np.flatnonzero(marked[:, i])
            out[rows, i] = block[rows[np.argsort(keys[rows, i])], i]
        return out

    # --- state --------------------------------------------------------------
    def state_dict(self) -> dict:
        """The population and counters: plain arrays and scalars."""
        d = self._base_state()
        d.update(kind=self.kind, pop=self.pop.copy(), popsize=int(self._popsize), n_offspring=int(self.n_offspring))
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` output (a strategy with the same sizes)."""
        if scalar(d, "kind", str) != self.kind:
            raise ValueError(f"state_dict is for {scalar(d, 'kind', str)!r}, not {self.kind!r}")
        if (scalar(d, "popsize", int), scalar(d, "n_offspring", int)) != (self._popsize, self.n_offspring):
            raise ValueError("state_dict has a different popsize or n_offspring")
        pop = array(d, "pop")
        if pop.shape != self.pop.shape:
            raise ValueError(f"state_dict['pop'] must have shape {self.pop.shape}, got {pop.shape}")
        self._load_base_state(d)
        self.pop = pop
