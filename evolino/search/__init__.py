"""Search strategies behind one ask/tell protocol (see :mod:`evolino.search.base`).

- :class:`ESP`: Enforced SubPopulations, one subpopulation per unit (memory cell).
- :class:`CMAES`: CMA-ES from the ``cma`` package, optionally separable, with IPOP/BIPOP restarts.
- :class:`SNES`, :class:`XNES`: separable and exponential natural evolution strategies (JMLR 2014).
- :class:`CoSyNE`: cooperative synapse neuroevolution, one subpopulation per weight (JMLR 2008).
- :class:`PGPE`: policy gradients with parameter-based exploration, symmetric sampling (2010).
- :func:`make_strategy`: the one factory, used by the trainer, the estimators, RL and the CLI.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_choice, check_number, check_positive_int
from .base import SearchStrategy
from .cmaes import CMAES
from .cosyne import CoSyNE
from .esp import ESP
from .nes import SNES, XNES
from .pgpe import PGPE

__all__ = ["ESP", "CMAES", "SNES", "XNES", "CoSyNE", "PGPE", "SearchStrategy", "make_strategy", "STRATEGIES",
           "start_seed"]

STRATEGIES = ("esp", "cmaes", "snes", "xnes", "cosyne", "pgpe")
# strategies that start from one point x0 (the rest start from a population)
_MEAN_BASED = {"cmaes": CMAES, "snes": SNES, "xnes": XNES, "pgpe": PGPE}


def start_seed(seed):
    """The seed of a strategy's starting point, derived from the run's ``seed`` (the one rule).

    The starting point (CMA-ES mean) comes from its own stream so that the strategy's
    samples do not depend on how it was drawn. None stays None; a Generator is spawned
    from (not drawn from), so the caller's stream does not advance.
    """
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return seed.spawn(1)[0]
    return np.random.SeedSequence(seed).spawn(1)[0]


def make_strategy(name, spec_or_n, *, popsize=None, seed=None, init_scale=1.0, init_options=None, units=None,
                  x0=None, **options):
    """Build a search strategy by name.

    Parameters
    ----------
    name : {"esp", "cmaes", "snes", "xnes", "cosyne", "pgpe"}
    spec_or_n : int or object with ``n_params``
        Genome length, or a spec (``LSTMSpec``, ``PolicySpec``) that also supplies
        ``units = spec.cell_slices`` (ESP's units) and random genomes ``spec.init``.
    popsize : int, optional
        Networks per generation (ESP: a multiple of ``trials``, see :class:`ESP`;
        CMA-ES: pycma's ``popsize``; PGPE: even). Strategy default if None.
    seed : None, int or numpy.random.Generator
    init_scale : float, default=1.0
        Scale of the random initial genomes, ``spec.init(rng, size, init_scale)``: the
        initial population of ESP and CoSyNE (from the strategy's own generator) and the
        mean of CMA-ES, SNES, xNES and PGPE (from :func:`start_seed`). Without a spec: the
        population strategies' uniform default, mean 0.
    init_options : dict, optional
        More keyword arguments of ``spec.init`` (e.g. ``{"gates": "reservoir"}`` for an LSTMSpec).
    units : list of slices or index arrays, optional
        ESP's grouping of genome indices (default ``spec.cell_slices``); ignored by the others.
    x0 : array of shape (n_params,), optional
        Mean strategies: initial mean; ESP and CoSyNE: centre of the initial population.
    **options
        Passed to the strategy's class (unknown names raise).

    Returns
    -------
    ESP, CMAES, SNES, XNES, CoSyNE or PGPE
    """
    name = check_choice(name, "name", STRATEGIES)
    spec = None if isinstance(spec_or_n, (int, np.integer)) else spec_or_n
    if spec is not None and not hasattr(spec, "n_params"):
        raise TypeError(f"spec_or_n must be an int or have an n_params attribute, got {spec_or_n!r}")
    n = check_positive_int(spec.n_params if spec is not None else spec_or_n, "n_params")
    scale = check_number(init_scale, "init_scale", low=0.0)
    has_init = spec is not None and callable(getattr(spec, "init", None))
    extra = dict(init_options or {})
    if units is None and spec is not None:
        units = getattr(spec, "cell_slices", None)
    if x0 is not None:
        x0 = check_array(x0, "x0", ndims=(1,), dtype=np.float64, finite=True)
        if x0.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {x0.shape}")
    if name in ("esp", "cosyne"):
        if x0 is not None:
            options["init"] = x0
        elif "init" not in options and has_init:
            options["init"] = lambda rng, size: spec.init(rng, size, scale, **extra)
        if name == "cosyne":
            return CoSyNE(n, popsize=popsize, seed=seed, **options)
        return ESP(n, units=units, popsize=popsize, seed=seed, **options)
    if x0 is None:
        if has_init:
            x0 = np.asarray(spec.init(np.random.default_rng(start_seed(seed)), 1, scale, **extra)[0], dtype=np.float64)
        else:
            x0 = np.zeros(n)
    return _MEAN_BASED[name](x0, popsize=popsize, seed=seed, **options)
