"""Automatic scales: choose ``input_scale``, ``init_scale`` and the gate regime from the data before evolution.

The two scales decide the regime of a random LSTM: how far the inputs drive the
cells from their operating point (``input_scale`` times standardized inputs) and
how strongly the cells interact (``init_scale``: weights of order
``init_scale / sqrt(fan-in)``) and whether they start as remembering LSTM cells or as an
echo state network (``gates``, :meth:`evolino.lstm.LSTMSpec.init`). Good values depend on the data (2 sines want a
nearly linear filter bank, 1e-5; Mackey-Glass a nonlinear one, 3). So, as a
*generation 0*, a few random networks are scored at every point of a small grid
with the run's own fitness, and the point whose best half scores best is kept.
It costs ``len(grid) * n_networks`` evaluations (240 by default), made through the run's
evaluator, and is recorded in the results. A network wider than :data:`PROBE_CELLS` cells is probed
over the grid at that width (:func:`narrow`; the weights scale as ``init_scale / sqrt(fan-in)``, so
a scale gives a similar regime at any width, while a probe's cost falls with the square of it), and
the :data:`PROBE_KEEP` best points are scored again at its own width, which decides.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import numpy as np

__all__ = ["INPUT_SCALES", "INIT_SCALES", "GATES", "N_NETWORKS", "LAG_GRID", "LAG_GAIN", "LAG_ROWS", "PROBE_CELLS", "PROBE_KEEP", "NOISE_GRID",
           "narrow", "choose_scales", "choose_lags", "choose_noise", "generation_zero"]

# half-decades over the regimes seen on the benchmarks. 1e-5 and 1e-4 (an almost linear filter bank) fixed 8
# superimposed sines (median test NRMSE 5e7 -> 6e-3); they need the default horizon's long run, which sees the
# slow instability that short free runs miss in that regime (benchmarks/RESULTS.md)
INPUT_SCALES = (1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
INIT_SCALES = (0.5, 1.0, 2.0)  # weakly to strongly coupled cells
GATES = ("lstm", "reservoir")  # remembering cells, or an echo state network (LSTMSpec.init)
N_NETWORKS = 4  # random networks per grid point; the best two are averaged
# orders of the linear autoregression beside the cells (lags="auto"), probed alone first: a network of
# zero weights has zero cell outputs, so its readout is the autoregression (one evaluation per order)
LAG_GRID = (1, 2, 4, 8, 16, 32, 64)
# the lags are kept only if they at least halve the random networks' validation loss: a smaller gain was
# within selection noise on NARMA-10 (validation 0.228 -> 0.208 with 64 lags, test 0.181 -> 0.195 over five
# seeds) and the laser one-step; a linear recurrence (sums of sines) gains orders of magnitude
LAG_GAIN = 0.5
# fit steps per autoregression weight an order must leave (the order itself is chosen on validation). Four
# kept MSO-8 (225 fit steps) at 32 lags, test NRMSE 2.1e-11; two allow 64: 2.0e-14 (RESULTS "width from the data")
LAG_ROWS = 2
# a network wider than this is probed over the grid at this width (its probes cost 1/9 of 300 cells' each),
# then the PROBE_KEEP best points at its own width: at 300 cells on Mackey-Glass the same choice as the full grid
# at 0.4x its CPU time (RESULTS "wide networks")
PROBE_CELLS = 100
PROBE_KEEP = 6
# std of the noise on the fed-back targets (standardized units) probed by noise="auto"
NOISE_GRID = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def narrow(fitness, spec, n_cells=PROBE_CELLS):
    """The run's fitness and spec at ``min(spec.n_cells, n_cells)`` cells, for generation 0's probes.

    Parameters
    ----------
    fitness : EvolinoFitness
    spec : LSTMSpec
    n_cells : int

    Returns
    -------
    fitness : EvolinoFitness
        A shallow copy (the data arrays are shared) scoring genomes of the narrow spec, or ``fitness`` itself.
    spec : LSTMSpec
    """
    if spec.n_cells <= n_cells:
        return fitness, spec
    spec = dataclasses.replace(spec, n_cells=int(n_cells))
    fn = copy.copy(fitness)
    fn.spec = spec
    return fn, spec


def choose_scales(fitness, spec, evaluator, *, input_scale="auto", init_scale="auto", gates="auto", seed=0,
                  n_networks=N_NETWORKS, return_best=False, probe_cells=None, keep=PROBE_KEEP):
    """Score random networks over the grid of the scales given as ``"auto"``; return the choice.

    Parameters
    ----------
    fitness : EvolinoFitness
        The run's fitness; copies with each ``input_scale`` are evaluated.
    spec : LSTMSpec
    evaluator : object with ``evaluate(fitness_fn, genomes)``
    input_scale, init_scale : float or "auto"
        A float is kept as it is; ``"auto"`` is searched over :data:`INPUT_SCALES` / :data:`INIT_SCALES`.
    gates : {"lstm", "reservoir", "auto"}
        ``"auto"``: both of :data:`GATES`.
    seed : int
        Seeds the random networks (one stream per grid point).
    n_networks : int
    return_best : bool, default=False
        Also return the best genome ``(spec.n_params,)`` scored at the chosen point.
    probe_cells : int, optional
        A wider ``spec`` is probed over the whole grid at this width (:func:`narrow`), and the
        ``keep`` best points are scored again at the full width, which decides.
    keep : int, default=PROBE_KEEP

    Returns
    -------
    chosen : dict
        ``input_scale``, ``init_scale`` (floats), ``gates`` and ``scale_evaluations`` (int).
    table : list of dict
        Per grid point: ``input_scale``, ``init_scale``, ``gates``, ``score`` (mean of the best half), ``best``.
    best : ndarray of shape (spec.n_params,)
        Only with ``return_best``.
    """
    if probe_cells and spec.n_cells > probe_cells and "auto" in (input_scale, init_scale, gates):
        return _narrow_first(fitness, spec, evaluator, probe_cells, keep, seed, n_networks, return_best,
                             input_scale=input_scale, init_scale=init_scale, gates=gates)
    inputs = INPUT_SCALES if input_scale == "auto" else (float(input_scale),)
    inits = INIT_SCALES if init_scale == "auto" else (float(init_scale),)
    regimes = GATES if gates == "auto" else (gates,)
    table, champions = [], []
    for k, (r, g, a) in enumerate(itertools.product(regimes, inits, inputs)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CA1E, k]))
        genomes = spec.init(rng, n_networks, g, gates=r)
        fn = copy.copy(fitness)  # shallow: the data arrays are shared, only the scale differs
        fn.input_scale = a
        f = np.asarray(evaluator.evaluate(fn, genomes), dtype=np.float64)
        champions.append(genomes[int(np.argmin(f))])
        table.append(dict(input_scale=a, init_scale=g, gates=r, score=_best_half(f), best=float(f.min())))
    k = min(range(len(table)), key=lambda i: table[i]["score"])
    pick = table[k]
    chosen = dict(input_scale=pick["input_scale"], init_scale=pick["init_scale"], gates=pick["gates"],
                  scale_evaluations=len(table) * n_networks)
    if return_best:
        return chosen, table, champions[k]
    return chosen, table


def choose_lags(fitness, spec, evaluator, chosen, *, seed=0, n_networks=N_NETWORKS, grid=LAG_GRID):
    """``lags="auto"``: whether the readout also reads the last inputs, and how many.

    First the order: a network of zero weights (zero cell outputs, so its readout is a linear
    autoregression on the lags) is scored with each order of ``grid`` that leaves at least
    :data:`LAG_ROWS` fit steps per autoregression weight, and the best is kept. Then ``n_networks`` random networks at the
    ``chosen`` scales are scored without lags and with that order; the lags are kept if the
    mean of their best half is at most :data:`LAG_GAIN` times that without them. A series a linear recurrence continues (sums of
    sines) gets the order it needs; one the cells already forecast better gets none.

    Parameters
    ----------
    fitness : EvolinoFitness
        The run's fitness without lags, at the chosen input scale.
    spec : LSTMSpec
    evaluator : object with ``evaluate(fitness_fn, genomes)``
    chosen : dict
        ``input_scale``, ``init_scale``, ``gates`` of the random networks.
    seed : int
    n_networks : int
    grid : sequence of int

    Returns
    -------
    lags : int
        0 or an order of ``grid``.
    table : list of dict
        ``lags``, ``score`` per probe (``network``: "zero" or "random"), in order.
    evaluations : int
    """
    n_fit, I = len(fitness.fit_idx), spec.n_inputs
    orders = [L for L in grid if LAG_ROWS * (L * I + 1) <= n_fit] or [min(grid)]
    zero = np.zeros((1, spec.n_params))
    table = []
    for L in orders:
        f = float(np.asarray(evaluator.evaluate(fitness.with_lags(L), zero), dtype=np.float64)[0])
        table.append(dict(network="zero", lags=L, score=f))
    best = min(table, key=lambda r: r["score"])["lags"]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1A65]))
    genomes = spec.init(rng, n_networks, chosen["init_scale"], gates=chosen["gates"])
    scores = {}
    for L in (0, best):
        scores[L] = _best_half(evaluator.evaluate(fitness.with_lags(L), genomes))
        table.append(dict(network="random", lags=L, score=scores[L]))
    lags = best if scores[best] <= LAG_GAIN * scores[0] else 0
    return lags, table, len(orders) + 2 * n_networks


def choose_noise(fitness, spec, evaluator, chosen, *, seed=0, n_networks=N_NETWORKS, grid=NOISE_GRID):
    """``noise="auto"``: the std of the noise on the fed-back targets the readout is fitted on.

    The same ``n_networks`` random networks at the ``chosen`` scales are scored with every level
    of ``grid`` (:meth:`~evolino.fitness.EvolinoFitness.with_noise`; their free runs start from
    clean inputs), and the level whose best half scores best is kept (the first of equal scores).

    Parameters
    ----------
    fitness : EvolinoFitness
        The run's fitness at the chosen input scale and lags, with a ``noise_draw``.
    spec : LSTMSpec
    evaluator : object with ``evaluate(fitness_fn, genomes)``
    chosen : dict
        ``init_scale`` and ``gates`` of the random networks.
    seed : int
    n_networks : int
    grid : sequence of float

    Returns
    -------
    noise : float
    table : list of dict
        ``noise``, ``score`` per level, in order.
    evaluations : int
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4015E]))
    genomes = spec.init(rng, n_networks, chosen["init_scale"], gates=chosen["gates"])
    table = [dict(noise=float(level), score=_best_half(evaluator.evaluate(fitness.with_noise(level), genomes)))
             for level in grid]
    best = min(table, key=lambda r: r["score"])["noise"]
    return best, table, len(grid) * n_networks


def generation_zero(fitness, final_fitness, spec, evaluator, scales, *, lags, noise, seed):
    """The settings given as ``"auto"``, chosen before evolution from random networks.

    Parameters
    ----------
    fitness : EvolinoFitness
        The run's fitness in the evolution's precision, without lags or noise.
    final_fitness : EvolinoFitness
        The same in the network's precision (float32's rounding blurs the lags' halving test).
    spec : LSTMSpec
    evaluator : object with ``evaluate(fitness_fn, genomes)``
    scales : dict
        ``input_scale``, ``init_scale``, ``gates``: values or ``"auto"`` (:func:`choose_scales`).
    lags : int or "auto"
        :func:`choose_lags`.
    noise : float or "auto"
        :func:`choose_noise` (feedback with a ``noise_draw`` only; otherwise 0).
    seed : int

    Returns
    -------
    chosen : dict
        ``input_scale``, ``init_scale``, ``gates``, ``lags``, ``noise``, ``scale_evaluations``.
    tables : dict
        ``scales``, ``lags``, ``noise``: the probes' tables (empty where nothing was chosen).
    """
    if "auto" not in scales.values():
        chosen, scale_table = {**scales, "scale_evaluations": 0}, []
    else:
        if not spec.forget_gate and scales["gates"] == "auto":  # no forget gate: cells integrate, no reservoir
            scales = {**scales, "gates": "lstm"}
        chosen, scale_table = choose_scales(fitness, spec, evaluator, seed=seed, probe_cells=PROBE_CELLS, **scales)
    chosen["lags"], lag_table, noise_table = lags, [], []
    probe = final_fitness.with_lags(0)
    probe.input_scale = chosen["input_scale"]
    if lags == "auto":  # the autoregression beside the cells
        chosen["lags"], lag_table, n = choose_lags(probe, spec, evaluator, chosen, seed=seed)
        chosen["scale_evaluations"] += n
    chosen["noise"] = 0.0 if noise == "auto" else float(noise)
    if noise == "auto" and probe.has_noise_draw:
        chosen["noise"], noise_table, n = choose_noise(probe.with_lags(chosen["lags"]), spec, evaluator, chosen,
                                                       seed=seed)
        chosen["scale_evaluations"] += n
    return chosen, dict(scales=scale_table, lags=lag_table, noise=noise_table)


def _best_half(scores) -> float:
    """Mean of the better half of a probe's scores (at least one): a grid point is as good as its best networks."""
    f = np.sort(np.asarray(scores, dtype=np.float64))
    return float(np.mean(f[: max(1, len(f) // 2)]))


def _narrow_first(fitness, spec, evaluator, probe_cells, keep, seed, n_networks, return_best, **scales):
    """:func:`choose_scales` over the grid at ``probe_cells`` cells, then its ``keep`` best points at full width."""
    fn, small = narrow(fitness, spec, probe_cells)
    chosen, table = choose_scales(fn, small, evaluator, seed=seed, n_networks=n_networks, **scales)
    for r in table:
        r["n_cells"] = small.n_cells
    points = [{k: r[k] for k in ("input_scale", "init_scale", "gates")}
              for r in sorted(table, key=lambda r: r["score"])[:keep]]
    rescored = [choose_scales(fitness, spec, evaluator, seed=seed, n_networks=n_networks, return_best=True, **p)
                for p in points]  # each: (chosen, its one-row table, its best genome)
    wide = [dict(t[0], n_cells=spec.n_cells) for _, t, _ in rescored]
    c, _, g = min(rescored, key=lambda x: x[1][0]["score"])  # the first of equal scores, as in the grid
    c["scale_evaluations"] = chosen["scale_evaluations"] + len(wide) * n_networks
    out = (c, table + wide)
    return out + (g,) if return_best else out
