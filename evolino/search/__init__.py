"""Search strategies behind one ask/tell protocol (see :mod:`evolino.search.base`).

- :class:`ESP`: Enforced SubPopulations, one subpopulation per unit (memory cell).
- :class:`CMAES`: CMA-ES from the ``cma`` package, optionally separable, with IPOP/BIPOP restarts.
- :func:`make_strategy`: either one by name.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_choice, check_positive_int
from .base import SearchStrategy
from .cmaes import CMAES
from .esp import ESP

__all__ = ["ESP", "CMAES", "SearchStrategy", "make_strategy", "STRATEGIES"]

STRATEGIES = ("esp", "cmaes")


def make_strategy(name, n_params, *, popsize=None, seed=None, units=None, x0=None, **options):
    """Build a search strategy by name.

    Parameters
    ----------
    name : {"esp", "cmaes"}
    n_params : int or object with ``n_params``
        Genome length. An object such as an ``LSTMSpec`` also supplies defaults:
        ``units = obj.cell_slices`` and (ESP) ``init = obj.init`` when present.
    popsize : int, optional
        Networks per generation. ESP: must be a multiple of ``trials`` (default 10)
        and sets ``subpop_size = popsize // trials``. CMA-ES: pycma's ``popsize``.
    seed : None, int or numpy.random.Generator
    units : list of slices or index arrays, optional
        ESP's grouping of genome indices; ignored by CMA-ES (so callers can always pass it).
    x0 : array of shape (n_params,), optional
        CMA-ES: initial mean (default: zeros, or ``obj.init(rng, 1)[0]`` when
        ``n_params`` is an object with ``init``). ESP: centre of the initial
        subpopulations (overrides ``init``).
    **options
        Passed to :class:`ESP` or :class:`CMAES` (unknown names raise).

    Returns
    -------
    ESP or CMAES
    """
    name = check_choice(name, "name", STRATEGIES)
    spec = None if isinstance(n_params, (int, np.integer)) else n_params
    if spec is not None:
        if not hasattr(spec, "n_params"):
            raise TypeError(f"n_params must be an int or have an n_params attribute, got {n_params!r}")
        n = check_positive_int(spec.n_params, "n_params")
        if units is None:
            units = getattr(spec, "cell_slices", None)
    else:
        n = check_positive_int(n_params, "n_params")
    if x0 is not None:
        x0 = check_array(x0, "x0", ndims=(1,), dtype=np.float64, finite=True)
        if x0.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {x0.shape}")
    if popsize is not None:
        popsize = check_positive_int(popsize, "popsize")

    if name == "esp":
        if popsize is not None:
            trials = options.get("trials", 10)
            trials = check_positive_int(trials, "trials")
            if popsize % trials:
                raise ValueError(f"popsize ({popsize}) must be a multiple of trials ({trials}) for ESP")
            if "subpop_size" in options and options["subpop_size"] * trials != popsize:
                raise ValueError(f"popsize ({popsize}) != subpop_size * trials "
                                 f"({options['subpop_size']} * {trials})")
            options["subpop_size"] = popsize // trials
        if x0 is not None:
            options["init"] = x0
        elif "init" not in options and spec is not None and callable(getattr(spec, "init", None)):
            options["init"] = spec.init
        return ESP(n, units=units, seed=seed, **options)

    if x0 is None:
        if spec is not None and callable(getattr(spec, "init", None)):
            # a separate stream, so the strategy's own samples do not depend on it
            x0 = np.asarray(spec.init(np.random.default_rng(_child_seed(seed)), 1)[0], dtype=np.float64)
        else:
            x0 = np.zeros(n)
    return CMAES(x0, popsize=popsize, seed=seed, **options)


def _child_seed(seed):
    """An int derived from ``seed`` for the CMA-ES starting point (None stays None)."""
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        # drawing would advance the caller's generator; spawn keeps it deterministic and independent
        return seed.spawn(1)[0]
    return np.random.SeedSequence(seed).spawn(1)[0]
