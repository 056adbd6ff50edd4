"""CMA-ES through the ``cma`` package (Hansen), behind evolino's ask/tell protocol.

What this module adds to ``cma.CMAEvolutionStrategy``:

- **Own random numbers.** Samples come from the strategy's ``numpy.random.Generator``
  through pycma's ``randn`` option; pycma's ``seed`` option (which would reseed NumPy's
  global RNG) is disabled. A run leaves ``np.random.get_state()`` untouched.
- **Separable CMA for large genomes.** ``diagonal=None`` chooses ``CMA_diagonal=True``
  (sep-CMA, Ros & Hansen 2008: O(n) memory and time per sample) when ``n > 2000``,
  where a full covariance (O(n^2) memory, O(n^3) decompositions) stops paying off.
- **Restarts.** ``restarts="ipop"`` (Auger & Hansen 2005): whenever pycma's own
  termination criteria fire, start again from ``x0`` with twice the population size.
  ``"bipop"`` (Hansen 2009): alternate between that doubling regime and short local
  runs with a random smaller population and ``sigma0 * 10**(-2u)``, ``u ~ U(0, 1)``,
  the regime with the smaller evaluation budget so far going next; the same rule as
  ``cma.fmin``. Random choices come from the strategy's Generator.
- **Exact resume without pickle.** pycma is deterministic given its random numbers,
  so the state is the generator's state at construction plus every told fitness
  vector; ``load_state_dict`` replays them (ask, tell, ...), which reproduces the
  strategy bit for bit (tested). Replay costs one ask/tell per recorded generation.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .._validate import check_choice, check_number, check_positive_int
from .base import SearchStrategy, array, check_mean, rng_from_str, rng_to_str, scalar

__all__ = ["CMAES", "DIAGONAL_THRESHOLD"]

DIAGONAL_THRESHOLD = 2000  # n above which diagonal=None selects separable CMA

# options this class sets itself (from its own arguments), so they may not be passed
_RESERVED = {"randn": "the strategy's Generator", "seed": "seed=", "popsize": "popsize=",
             "CMA_diagonal": "diagonal="}
# termination reasons that end the whole search rather than one restart
_GLOBAL_STOPS = {"ftarget", "maxfevals", "callback"}
_QUIET = {"verbose": -9, "verb_disp": 0, "verb_log": 0, "verb_time": False}


def _valid_option_names():
    import cma  # lazy: importing pycma takes about a second

    return set(cma.CMAOptions().keys())


def _total_memory() -> int:
    """Physical memory of this machine in bytes (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _check_covariance_memory(n: int, fraction: float) -> None:
    """Refuse a full covariance whose matrices would not fit in ``fraction`` of memory.

    pycma keeps the covariance ``C``, its eigenvectors ``B`` and a copy during the
    update: about three ``n x n`` float64 matrices.
    """
    need = 3 * 8 * n * n
    total = _total_memory()
    if total and need > fraction * total:
        raise ValueError(
            f"full-covariance CMA-ES on {n} parameters needs about {need / 2**30:.1f} GiB, more than "
            f"max_memory_fraction={fraction} of this machine's {total / 2**30:.1f} GiB: use diagonal=True "
            "(separable CMA-ES) or search='esp'"
        )


class CMAES(SearchStrategy):
    """Covariance matrix adaptation evolution strategy (pycma) with optional IPOP/BIPOP restarts.

    Parameters
    ----------
    x0 : array of shape (n,)
        Initial mean (also the restart point).
    sigma0 : float, default=0.5
        Initial step size (pycma's; per coordinate standard deviation).
    popsize : int, optional
        Samples per generation; default pycma's ``4 + floor(3 ln n)``. With restarts
        this is the first run's size; ``popsize`` then follows the current run.
    diagonal : bool or None, default=None
        True: separable CMA (``CMA_diagonal=True``); None: True when ``n > 2000``.
    restarts : {None, "ipop", "bipop"}, default=None
    max_restarts : int, default=9
        Restarts allowed (large-population restarts for BIPOP), as in ``cma.fmin``.
    max_memory_fraction : float, default=0.5
        A full covariance needing more than this fraction of the machine's memory
        (about ``24 n^2`` bytes) is refused with a ValueError suggesting
        ``diagonal=True`` or ESP, instead of swapping or being killed mid-run.
    seed : None, int or numpy.random.Generator
    **cma_options
        Any other ``cma.CMAOptions`` entry (e.g. ``tolfun=1e-12``, ``CMA_active=False``);
        unknown names raise ValueError. Output is silenced unless ``verbose`` is given.

    Notes
    -----
    ``ask()`` twice without ``tell`` returns the same population.
    ``load_state_dict`` expects a strategy built with the same ``x0``, ``sigma0``,
    ``popsize``, ``diagonal``, restart settings and options; the saved RNG state
    replaces the seed.

    Examples
    --------
    >>> import numpy as np
    >>> es = CMAES(np.ones(5), 0.5, seed=1)
    >>> for _ in range(200):
    ...     X = es.ask()
    ...     es.tell(np.sum(X**2, axis=1))
    >>> bool(es.best[1] < 1e-10)
    True
    """

    def __init__(self, x0, sigma0=0.5, *, popsize=None, diagonal=None, restarts=None, max_restarts=9,
                 max_memory_fraction=0.5, seed=None, **cma_options):
        x0 = check_mean(x0)
        super().__init__(x0.size, seed)
        self.x0 = x0.copy()
        self.sigma0 = check_number(sigma0, "sigma0", low=0.0, low_open=True)
        self.popsize0 = None if popsize is None else check_positive_int(popsize, "popsize", minimum=2)
        if diagonal is not None and not isinstance(diagonal, (bool, np.bool_)):
            raise TypeError(f"diagonal must be None or a bool, got {diagonal!r}")
        self.diagonal = bool(self.n_params > DIAGONAL_THRESHOLD if diagonal is None else diagonal)
        self.max_memory_fraction = check_number(max_memory_fraction, "max_memory_fraction", low=0.0, low_open=True)
        if not self.diagonal:
            _check_covariance_memory(self.n_params, self.max_memory_fraction)
        self.restarts = check_choice(restarts, "restarts", (None, "ipop", "bipop"))
        self.max_restarts = check_positive_int(max_restarts, "max_restarts", minimum=0)
        valid = _valid_option_names()
        for name in cma_options:
            if name in _RESERVED:
                raise ValueError(f"cma option {name!r} is set by CMAES itself; use {_RESERVED[name]} instead")
            check_choice(name, "cma option", valid)
        self.cma_options = dict(cma_options)
        self._rng0 = rng_to_str(self.rng)  # replay starts here
        self._history = []  # told fitness vectors (cleaned), one per generation
        self._start()

    # --- runs and restarts ----------------------------------------------------
    def _start(self):
        """(Re)initialise the restart bookkeeping and the first run."""
        self.irun = 0  # runs started so far - 1
        self.runs_with_small = 0
        self._budget = {"small": 0, "large": 0}  # evaluations spent per BIPOP regime
        self._maxiter0 = None
        self._stop = {}
        self._final = False
        self.es = self._new_run(self.popsize0, self.sigma0, maxiter=None)
        self._first_popsize = self.es.popsize
        self._maxiter0 = float(self.es.opts["maxiter"])
        self._regime = "small"  # cma.fmin books the first run as BIPOP's small regime
        self._run_start_evals = 0

    def _new_run(self, popsize, sigma, maxiter):
        opts = dict(_QUIET)
        opts.update(self.cma_options)
        opts.update(randn=self._randn, seed=np.nan, CMA_diagonal=self.diagonal)
        if popsize is not None:
            opts["popsize"] = int(popsize)
        if maxiter is not None:
            opts["maxiter"] = maxiter
        import cma

        return cma.CMAEvolutionStrategy(self.x0, sigma, opts)

    def _randn(self, *shape):
        # pycma's sampler calls randn(n_samples, n); keep the Generator we own
        return self.rng.standard_normal(shape)

    def _restart(self):
        self._budget[self._regime] += self.evaluations - self._run_start_evals
        self.irun += 1
        popsize0, sigma = self._first_popsize, self.sigma0
        if self.restarts == "ipop" or self._budget["small"] >= max(1, self._budget["large"]):
            self._regime = "large"
            popsize = popsize0 * 2 ** (self.irun - self.runs_with_small)
            # IPOP lets pycma's default maxiter follow the new popsize; BIPOP's large runs keep the first one
            maxiter = self._maxiter0 if self.restarts == "bipop" else None
        else:  # BIPOP: a short local run with a smaller, random population
            self._regime = "small"
            self.runs_with_small += 1
            u_sigma, u_pop = self.rng.uniform(size=2)
            sigma = self.sigma0 * 0.01 ** u_sigma
            mult = 2 ** (self.irun - self.runs_with_small)
            popsize = max(2, int(popsize0 * mult ** (u_pop ** 2)))
            maxiter = min(self._maxiter0, 0.5 * self._budget["large"] / popsize)
        self.es = self._new_run(popsize, sigma, maxiter)
        self._run_start_evals = self.evaluations

    @property
    def popsize(self) -> int:
        return int(self.es.popsize)

    @property
    def sigma(self) -> float:
        """Current step size of the current run."""
        return float(self.es.sigma)

    @property
    def mean(self) -> np.ndarray:
        """Current mean ``(n,)`` of the current run (a copy)."""
        return np.array(self.es.mean, dtype=np.float64)

    # --- one generation ---------------------------------------------------------
    def _sample(self):
        return np.array(self.es.ask(), dtype=np.float64)

    def _update(self, genomes, f, improved):
        self._history.append(f.copy())
        finite = np.isfinite(f)
        if finite.all():
            g = f
        elif finite.any():
            # pycma wants finite values; rank-wise "worse than every finite one" is what inf means
            worst = f[finite].max()
            g = np.where(finite, f, worst + abs(worst) + 1.0)
        else:
            g = np.zeros_like(f)
        self.es.tell(list(genomes), g.tolist())
        # evaluate pycma's criteria once per generation: stop() may update internal counters
        reasons = dict(self.es.stop())
        self._stop = {}
        if not reasons:
            return
        # restart-counting counts large-population runs only, as cma.fmin does
        can_restart = (self.restarts is not None and not (set(reasons) & _GLOBAL_STOPS)
                       and self.irun - self.runs_with_small < self.max_restarts)
        if can_restart:
            self._restart()
        else:
            self._stop = reasons

    def stop(self) -> dict:
        """pycma's termination reasons (after the last allowed restart); empty: go on."""
        return dict(self._stop)

    # --- state ------------------------------------------------------------------
    def _config(self) -> str:
        return json.dumps({
            "x0": self.x0.tolist(), "sigma0": self.sigma0, "popsize": self.popsize0, "diagonal": self.diagonal,
            "restarts": self.restarts, "max_restarts": self.max_restarts,
            "cma_options": {k: repr(v) for k, v in sorted(self.cma_options.items())},
        }, sort_keys=True)

    def state_dict(self) -> dict:
        """Initial RNG state, configuration and every told fitness vector (replayed on load)."""
        d = self._base_state()
        sizes = np.array([len(h) for h in self._history], dtype=np.int64)
        d.update(
            kind="cmaes",
            config=self._config(),
            rng0=self._rng0,
            fitness_history=(np.concatenate(self._history) if self._history else np.zeros(0)),
            generation_sizes=sizes,
        )
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` output by replaying its recorded generations."""
        if scalar(d, "kind", str) != "cmaes":
            raise ValueError(f"state_dict is for {scalar(d, 'kind', str)!r}, not 'cmaes'")
        if scalar(d, "config", str) != self._config():
            raise ValueError("state_dict was saved by a CMAES with a different x0, sigma0, popsize, "
                             "diagonal, restarts or options")
        flat = array(d, "fitness_history")
        sizes = array(d, "generation_sizes", np.int64).reshape(-1)
        if sizes.sum() != flat.size:
            raise ValueError("state_dict's fitness_history does not match its generation_sizes")
        pending = array(d, "pending").reshape(-1, self.n_params)
        # replay from the very beginning through the public methods
        rng_from_str(self.rng, scalar(d, "rng0", str))
        self._rng0 = scalar(d, "rng0", str)
        self.generation = self.evaluations = 0
        self._best_x, self._best_f, self._pending = None, float("inf"), None
        self._history = []
        self._start()
        for f in np.split(flat, np.cumsum(sizes)[:-1]) if sizes.size else []:
            if len(f) != self.popsize:
                raise ValueError("state_dict does not replay: a recorded generation has the wrong size")
            self.ask()
            self.tell(f)
        if len(pending):
            if not np.array_equal(self.ask(), pending):
                raise ValueError("state_dict does not replay to its pending population")
        if (self.generation, self.evaluations) != (scalar(d, "generation", int), scalar(d, "evaluations", int)):
            raise ValueError("state_dict's counters disagree with its history")
        if rng_to_str(self.rng) != scalar(d, "rng", str):
            raise ValueError("state_dict does not replay to its saved random state")
