"""Side-by-side forecasting benchmark: tasks x rows (evolino with default arguments, tuned, generation 1; baselines).

Tasks (protocols in the task classes' docstrings; data fixed, the seed varies the model):

- ``mg``: Mackey-Glass NRMSE84 (``MackeyGlassTask()``: 100 washout + 2,000 training
  steps; 50 test runs of 1,000 teacher-forced + 84 free steps; lower is better).
- ``lorenz``: Lorenz-63 valid prediction time (``LorenzTask()``: 100 + 5,000 training
  samples; 20 segments of 300 teacher-forced + 1,000 free steps; median VPT in
  Lyapunov times, threshold 0.4; higher is better).
- ``narma``: NARMA-10 test NRMSE (``Narma10Task()``: 200 washout, 2,000 train, 2,000 test).
- ``mso8``: 8 superimposed sines (``SinesTask(terms=8)``: washout 100, train 300,
  closed-loop test 300; test NRMSE).
- ``laser``: Santa Fe laser one-step-ahead NRMSE over the held-out tail
  (``LaserTask().score``); ``laser-cl``: its 20 x 50-step free runs, median over
  segments of RMSE / std of the training series (``LaserTask().score_closed_loop``).
- ``lorenz-long`` (not in the default run): ``lorenz`` with free runs of 3,000 steps, past the
  1,000-step ceiling of 18.1 Lyapunov times.

Every row fits on the task's training part only, in standardised units (mean and
std of the training series; ``baselines.Scaled`` converts back), and every
closed-loop task is run in closed loop (the model's outputs fed back).
Hyper-parameters are chosen per task (and per seed for seeded rows) on a
validation split carved from the training part (``baselines.Protocol``; readout
fitted on the rows before ``split``), then the readout is refitted on all
training rows:

- closed-loop tasks: free runs on windows of the last part of the training series:
  ``mg``: last 500 steps, windows of 200 teacher-forced + 84 free steps every 42;
  ``lorenz``: last 2,000 samples, 200 + 800 every 100, loss = -mean VPT;
  ``mso8``: the sines protocol's own (fit on steps 101-325, closed loop on 326-400);
  ``laser-cl``: last 1,250 samples, 100 + 50 every 50, loss = median over windows
  of the RMS error. Loss of mg and laser-cl: in standardised units, i.e. RMS
  error / std of the training series.
- one-step and input-driven tasks (``laser``, ``narma``): NRMSE on the last 25 % of
  the post-washout training rows.

Rows (``ROWS``; ``row(bench, seed) -> dict(score=..., fit_cpu=..., params=...)``):
``esn`` (ReservoirPy, 500 units, ``ESN_GRID``), ``nvar`` (ReservoirPy NVAR / NG-RC,
``NVAR_GRID``), ``ar`` (linear ridge on lags, ``AR_GRID``), ``persistence``,
``evolino`` (``Evolino()`` with default arguments: only washout, feedback and, for one-step
use, ``horizon=1`` follow from the task) and its variants in ``EVOLINO_ROWS``, named by what they
add to it: ``-use`` the forecast length the task scores (``USE_HORIZON``: 84 steps on mg, 50 on
laser-cl), ``-Ngen`` N generations, ``-step`` CMA-ES's initial step 0.3 on the gains instead of 0.1
(``-step5``: 0.5), ``-lean`` / ``-lean150`` / ``-lean200`` 100 / 150 / 200 cells and generation 1
only, ``-gen1`` the same trainer stopped after its first generation (random networks + readout, a
reservoir; the others are commented in the table); ``evolino-wide`` (generation 1 at ``WIDE`` cells), ``evolino-tuned`` (``EVOLINO_TUNED``,
400 evaluations) and ``evolino-tuned-gen1``. Evolino rows get the same standardised data as the
others (its own standardization is then the identity). ``fit_cpu`` = process CPU seconds
of the whole fit, model selection included. Deterministic rows (nvar, ar,
persistence) are run once (the first seed) and stand for every seed. A run that raises
or scores non-finite is a failure; medians count failures as the worst value
(inf for NRMSE, 0 for VPT). BLAS is pinned to one thread.

Adding a row: a function ``row_x(bench, seed)`` that trains on ``bench.Ys`` (and
``bench.Xs`` when ``bench.mode == "driven"``; standardised, first
``bench.washout`` steps not fitted), times its fit, and returns
``dict(score=bench.test(bench.scaled(net)), fit_cpu=..., params={...})``, where
``net`` has evolino's ``generate(n, Y_prefix=(B, L, O))`` and ``predict(X)`` /
``predict(Y=...)``; then an entry in ``ROWS`` (and ``DETERMINISTIC`` if the seed
does not matter). A variant of evolino's defaults is one line of ``EVOLINO_ROWS``.

Usage::

    python benchmarks/forecasting.py                                   # all tasks, baseline rows, 5 seeds
    python benchmarks/forecasting.py --tasks lorenz,mso8 --rows esn,ar --seeds 2
    python benchmarks/forecasting.py --rows evolino --tasks mso8 --seeds 0,1
    python benchmarks/forecasting.py --merge results/forecasting.json results/forecasting_evolino_a.json ...
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines as bl  # noqa: E402

from evolino.tasks import (LaserTask, LorenzTask, MackeyGlassTask, Narma10Task, SinesTask,  # noqa: E402
                           valid_prediction_time)

ESN_UNITS = 500
ESN_GRID = bl.grid(sr=(0.6, 0.9, 1.2), lr=(0.3, 1.0), input_scaling=(0.1, 1.0))
ESN_RIDGES = (1e-10, 1e-7, 1e-4, 1e-1)  # 3 x 2 x 2 x 4 = 48 combinations
NVAR_GRID = [dict(delay=d, strides=s, order=o) for d, s in ((1, 1), (2, 1), (5, 1), (10, 1), (20, 1), (10, 2))
             for o in (2, 3)]
NVAR_RIDGES = (1e-9, 1e-6, 1e-3, 1.0)  # 6 x 2 x 4 = 48 (feature sets > baselines.MAX_FEATURES skipped)
AR_GRID = [dict(lags=p) for p in (1, 2, 4, 8, 16, 32, 64)]
AR_RIDGES = (1e-10, 1e-6, 1e-2, 1e2, 1e4)  # 35


@dataclass
class Bench:
    """One task as the rows see it: training data (task units), validation protocol, test."""

    name: str
    metric: str
    higher_better: bool
    mode: str  # "closed", "onestep" or "driven"
    Y: np.ndarray
    X: np.ndarray | None
    washout: int
    test: Callable  # model in task units -> score
    proto: dict  # Protocol fields besides mode, Y, X, washout
    observed: np.ndarray | None = None  # input-driven tasks: all outputs, for the persistence reference

    def __post_init__(self):
        self.ym, self.ys = self.Y.mean(axis=0), self.Y.std(axis=0)
        self.xm, self.xs = (None, None) if self.X is None else (self.X.mean(axis=0), self.X.std(axis=0))
        self.Ys = (self.Y - self.ym) / self.ys
        self.Xs = None if self.X is None else (self.X - self.xm) / self.xs

    def protocol(self):
        return bl.Protocol(self.mode, self.Ys, self.Xs, self.washout, **self.proto)

    def scaled(self, model):
        return bl.Scaled(model, self.ym, self.ys, self.xm, self.xs)

    @property
    def worst(self):
        return 0.0 if self.higher_better else np.inf


def rms_loss(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))  # standardised units: / std of the training series


def median_rms_loss(pred, truth):  # the laser's closed-loop score: median over windows
    per = np.sqrt(np.mean((pred - truth) ** 2, axis=(1, 2)))
    return float(np.median(np.where(np.isfinite(per), per, np.inf)))


def nrmse_loss(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)) / np.std(truth))


def make_bench(name):
    if name == "mg":
        t = MackeyGlassTask()
        n = len(t.train_series)
        return Bench(name, "NRMSE84", False, "closed", t.train_series, None, t.washout, lambda m: t.score(m)[0],
                     dict(split=n - 500, warm=200, horizon=84, stride=42, loss=rms_loss))
    if name in ("lorenz", "lorenz-long"):
        # lorenz-long: free runs of 3,000 steps (54 Lyapunov times) instead of 1,000 (18.1, which the
        # defaults already reach): the same data and fit, a test that can show what evolution adds
        t = LorenzTask() if name == "lorenz" else LorenzTask(horizon=3000)
        n = len(t.train_series)

        def vpt_loss(pred, truth):  # standardised units: the scale of each variable is ~1
            return -float(np.mean(valid_prediction_time(pred, truth, np.ones(3), threshold=t.threshold,
                                                        sample_every=t.sample_every, lyapunov=t.lyapunov)))

        return Bench(name, "median VPT (Lyapunov times)", True, "closed", t.train_series, None, t.washout,
                     lambda m: t.score(m)[0], dict(split=n - 2000, warm=200, horizon=800, stride=100, loss=vpt_loss))
    if name == "narma":
        t = Narma10Task()
        return Bench(name, "test NRMSE", False, "driven", t.train_targets, t.train_inputs, t.washout,
                     lambda m: t.score(m)[0], dict(split=t.washout + (3 * t.train) // 4, loss=nrmse_loss),
                     observed=t.targets)
    if name == "mso8":
        t = SinesTask(terms=8)
        n = len(t.train_series)
        return Bench(name, "test NRMSE", False, "closed", t.train_series, None, t.washout, lambda m: t.score(m)[0],
                     dict(split=n - t.train // 4, warm=None, horizon=t.train // 4, loss=nrmse_loss))
    if name in ("laser", "laser-cl"):
        t = LaserTask()
        n = len(t.train_series)
        if name == "laser":
            return Bench(name, "one-step NRMSE", False, "onestep", t.train_series, None, t.washout,
                         lambda m: t.score(m)[0], dict(split=t.washout + (3 * t.train) // 4, loss=nrmse_loss))
        return Bench(name, "50-step free-run RMSE/std, median", False, "closed", t.train_series, None, t.washout,
                     lambda m: t.score_closed_loop(m)[0],
                     dict(split=n - 1250, warm=t.warm, horizon=t.horizon, stride=50, loss=median_rms_loss))
    raise ValueError(name)


TASKS = ("mg", "lorenz", "narma", "mso8", "laser", "laser-cl")
ALL_TASKS = TASKS + ("lorenz-long",)  # the default run is TASKS


# --- rows: row(bench, seed) -> dict(score, fit_cpu, params) ---------------------------------
def _baseline(b, make, configs, ridges):
    c0 = time.process_time()
    model, chosen, val, tried = bl.select(b.protocol(), make, configs, ridges)
    fit_cpu = time.process_time() - c0
    return dict(score=b.test(b.scaled(model)), fit_cpu=fit_cpu, params=chosen, val_loss=val, tried=tried)


def row_esn(b, seed):
    n_in = b.Y.shape[1] if b.X is None else b.X.shape[1]

    def make(**cfg):
        return bl.ESN(n_in, units=ESN_UNITS, seed=seed, feedback=b.mode != "driven", **cfg)

    return _baseline(b, make, ESN_GRID, ESN_RIDGES)


def row_nvar(b, seed):
    n_in = b.Y.shape[1] if b.X is None else b.X.shape[1]
    return _baseline(b, lambda **cfg: bl.NVAR(n_in, feedback=b.mode != "driven", **cfg), NVAR_GRID, NVAR_RIDGES)


def row_ar(b, seed):
    n_in = b.Y.shape[1] if b.X is None else b.X.shape[1]
    return _baseline(b, lambda **cfg: bl.LinearAR(n_in, feedback=b.mode != "driven", **cfg), AR_GRID, AR_RIDGES)


def row_persistence(b, seed):
    # input-driven: the previous observed output (NARMA's y(t)), which no other row sees
    return dict(score=b.test(bl.Persistence(b.observed)), fit_cpu=0.0, params={})


# evolino rows: "evolino" = default arguments (only what the data dictate: washout, feedback);
# "evolino-tuned" = EVOLINO_TUNED[task] on top; "-gen1" = the best network of the first generation
# (random networks + readout: a reservoir), the same trainer stopped after one generation.
EVOLINO_TUNED = {  # settings found by hand on seed 0 (benchmarks/RESULTS.md), 400 evaluations each, ESP on weights
    "mg": dict(search="esp", n_cells=150, input_scale=3.0, init_scale=1.0, gates="lstm", horizon=84),
    "lorenz": dict(search="esp", n_cells=150, input_scale=0.3, init_scale=1.0, gates="lstm", horizon=400, loss="vpt"),
    "narma": dict(search="esp", n_cells=100, input_scale=3e-3, init_scale=1.0, gates="reservoir"),
    "mso8": dict(search="esp", n_cells=80, input_scale=1e-5, init_scale=1.0, gates="lstm", horizon=None),
    "laser": dict(search="esp", n_cells=100, input_scale=0.3, init_scale=1.0, gates="reservoir"),
    "laser-cl": dict(search="esp", n_cells=100, input_scale=0.3, init_scale=1.0, gates="reservoir", horizon=50),
}
TUNED_BUDGET = dict(max_generations=None, max_evaluations=400)


# "evolino-<encoding>": the tuned settings, one budget, each genome encoding (evolino.genome); the yardstick
# is "evolino-tuned-gen1" (the best of 40 random networks at the same settings, a reservoir).
ENCODING_BUDGET = dict(max_generations=None, max_evaluations=800)
ENCODING_ROWS = {
    "evolino-direct": dict(search="esp"),
    "evolino-dct": dict(search="cmaes", encoding="dct", encoding_options={"coefficients": 64}),
    "evolino-gains": dict(search="cmaes", encoding="gains"),
    "evolino-gains-cell": dict(search="cmaes", encoding="gains", encoding_options={"per_cell": True},
                               search_options={"diagonal": True}),  # measured worse (mso8 seed 0: 0.08 vs 2.6e-4)
}


def _evolino(b, seed, cfg, generations=None):
    from evolino import Evolino

    cfg = dict(cfg)
    if generations is not None:
        cfg.update(max_generations=generations, max_evaluations=None)
    if b.mode == "onestep":  # one-step use: validate one-step predictions (free runs of one step)
        cfg.setdefault("horizon", 1)
    tr = Evolino(washout=b.washout, feedback=b.mode != "driven", seed=seed, **cfg)
    c0 = time.process_time()
    net = tr.fit(b.Ys, X=b.Xs)
    fit_cpu = time.process_time() - c0
    model = net
    chosen = {k: v for k, v in getattr(tr, "chosen_", {}).items() if isinstance(v, (int, float, str))}
    chosen["refitted"] = int(tr.refitted_)  # 0: the final refit's closed loop scored worse, the evolved readout kept
    h = tr.history_
    params = {k: v for k, v in cfg.items() if isinstance(v, (int, float, str)) or v is None}
    return dict(score=b.test(b.scaled(model)), fit_cpu=fit_cpu,
                params=dict(params, **chosen, generations=h["generation"][-1], genes=tr.encoding_.n_params),
                curve=dict(evaluations=[e + chosen.get("scale_evaluations", 0) for e in h["evaluations"]],
                           best=h["best"]))


USE_HORIZON = {"mg": 84, "laser-cl": 50}  # the length of the forecasts each task scores (NRMSE84, 50-step runs)


def _use(b):
    return {"horizon": USE_HORIZON[b.name]} if b.name in USE_HORIZON else {}


STEP3 = {"search_options": {"sigma0": 0.3}}  # CMA-ES's step on the gains 0.3 for 0.1: gains exp(+-0.3)

# name: (with the task's forecast length ("-use"), settings beside the defaults, generations or None for
# the defaults'); "-use" is the one setting a user knows from their use, "-gen1" what evolution adds to it
EVOLINO_ROWS = {
    "evolino": (False, {}, None),
    "evolino-gen1": (False, {}, 1),
    "evolino-10gen": (False, {}, 10),  # what evolution adds to a wide generation 1
    "evolino-20gen": (False, {}, 20),
    "evolino-lags": (False, {"lags": "auto"}, None),  # an autoregression beside the cells if it helps
    "evolino-f32": (False, {"evolution_dtype": "float32"}, None),  # generation 0 and evolution in float32
    "evolino-clean": (False, {"noise": 0.0}, None),  # the defaults before noise="auto": clean teacher forcing
    "evolino-noise": (False, {"noise": 1e-4}, None),  # noise (standardized) on the fed-back training targets
    "evolino-step": (False, STEP3, None),
    "evolino-10gen-step": (False, STEP3, 10),
    "evolino-10gen-noise": (False, {**STEP3, "noise": 1e-4}, 10),
    "evolino-lean": (False, {"n_cells": 100}, 1),  # the cheapest evolino
    "evolino-lean150": (False, {"n_cells": 150}, 1),
    "evolino-lean200": (False, {"n_cells": 200}, 1),
    "evolino-use": (True, {}, None),
    "evolino-use-gen1": (True, {}, 1),
    "evolino-use-10gen": (True, {}, 10),
    "evolino-use-20gen": (True, {}, 20),
    "evolino-use-30gen": (True, {}, 30),
    "evolino-use-20gen-step": (True, STEP3, 20),
    "evolino-use-40gen-step": (True, STEP3, 40),
    "evolino-use-20gen-step-val40": (True, {**STEP3, "validation": 0.4}, 20),  # 40 % held out, not 25 %
    "evolino-use-20gen-step5": (True, {"search_options": {"sigma0": 0.5}}, 20),
    "evolino-use-lean": (True, {"n_cells": 150}, 1),
    "evolino-use-lean200": (True, {"n_cells": 200}, 1),
}


def _evolino_row(name):
    use, cfg, generations = EVOLINO_ROWS[name]

    def row(b, seed):
        return _evolino(b, seed, {**(_use(b) if use else {}), **copy.deepcopy(cfg)}, generations=generations)
    return row


WIDE = {"n_cells": 300}  # generation 0's grid at 100 cells (autoscale.PROBE_CELLS), its six best points at 300


def row_evolino_wide(b, seed):  # generation 1 of a wide network: width where the default spends evolution
    return _evolino(b, seed, dict(WIDE), generations=1)


def row_evolino_tuned(b, seed):
    return _evolino(b, seed, {**EVOLINO_TUNED[b.name], **TUNED_BUDGET})


def row_evolino_tuned_gen1(b, seed):
    return _evolino(b, seed, EVOLINO_TUNED[b.name], generations=1)


def _encoding_row(name):
    def row(b, seed):
        return _evolino(b, seed, {**EVOLINO_TUNED[b.name], **ENCODING_BUDGET, **ENCODING_ROWS[name]})
    return row


ROWS = {"esn": row_esn, "nvar": row_nvar, "ar": row_ar, "persistence": row_persistence,
        **{name: _evolino_row(name) for name in EVOLINO_ROWS},
        "evolino-wide": row_evolino_wide, "evolino-tuned": row_evolino_tuned, "evolino-tuned-gen1": row_evolino_tuned_gen1}
ROWS.update({name: _encoding_row(name) for name in ENCODING_ROWS})
DETERMINISTIC = {"nvar", "ar", "persistence"}
BASELINES = ("esn", "nvar", "ar", "persistence")


# --- running and reporting -------------------------------------------------------------------
def run_one(b, row, seed):
    try:
        with np.errstate(all="ignore"):
            r = ROWS[row](b, seed)
        r["score"] = float(r["score"])
        r["failed"] = not np.isfinite(r["score"])
    except Exception as exc:  # a failure is counted, not fatal
        r = dict(score=np.nan, fit_cpu=np.nan, params={}, failed=True,
                 error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc(limit=3))
    r["seed"] = seed
    return r


def fmt(x):
    if not np.isfinite(x):
        return "inf" if x > 0 else "nan"
    return f"{x:.3g}" if 1e-2 <= abs(x) < 1e3 else f"{x:.2e}"


def summarize(b, runs):
    runs = [r for r in runs if "copied_from" not in r]  # a deterministic row counts its one run
    s = np.array([b.worst if r["failed"] else r["score"] for r in runs])
    cpu = [r["fit_cpu"] for r in runs if np.isfinite(r["fit_cpu"])]
    picks = {}
    for r in runs:
        key = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in r["params"].items())
        picks[key] = picks.get(key, 0) + 1
    common = max(picks, key=picks.get) if picks else ""
    q25, q75 = (float(np.nan_to_num(np.percentile(s, q), nan=np.inf)) for q in (25, 75))  # inf - inf is NaN
    return dict(median=float(np.median(s)), q25=q25, q75=q75,
                failures=sum(r["failed"] for r in runs), n=len(runs),
                fit_cpu=float(np.median(cpu)) if cpu else np.nan, chosen=f"{common} ({picks.get(common, 0)}/{len(runs)})")


def table(summary, benches):
    lines = ["| task | metric | row | median | IQR (25-75 %) | failures | fit CPU s (median) | chosen (most often) |",
             "|" + "---|" * 8]
    for (task, row), s in summary.items():
        b = benches[task]
        det = " (deterministic)" if row in DETERMINISTIC else ""
        lines.append(f"| {task} | {b.metric}{' ↑' if b.higher_better else ' ↓'} | {row}{det} | {fmt(s['median'])} "
                     f"| {fmt(s['q25'])} - {fmt(s['q75'])} | {s['failures']}/{s['n']} | {s['fit_cpu']:.2f} "
                     f"| {s['chosen']} |")
    return "\n".join(lines)


def parse_seeds(text):
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    return list(range(int(text)))


def evolution_table(summary, runs):
    """What evolution adds: each encoding row's final test score beside the reservoir (evolino-tuned-gen1).

    "x gen-1" is the improvement factor of the medians (> 1: evolution paid); "x fitness" the median over
    runs of the run's own validation fitness, first generation / last.
    """
    lines = ["| task | row | genes | gen-1 (reservoir) | final | x gen-1 | x fitness | fit CPU s |", "|" + "---|" * 8]
    for t in ALL_TASKS:
        ref = summary.get(f"{t}|evolino-tuned-gen1")
        if ref is None:
            continue
        b = make_bench(t)
        for name in ENCODING_ROWS:
            s = summary.get(f"{t}|{name}")
            if s is None:
                continue
            gain = s["median"] / ref["median"] if b.higher_better else ref["median"] / s["median"]
            fit = [r["curve"]["best"][0] / r["curve"]["best"][-1] for r in runs.get(f"{t}|{name}", [])
                   if r.get("curve") and r["curve"]["best"][-1] != 0]
            genes = {r["params"].get("genes") for r in runs.get(f"{t}|{name}", [])} - {None}
            lines.append(f"| {t} ({b.metric}) | {name} | {', '.join(map(str, sorted(genes))) or '-'} | "
                         f"{fmt(ref['median'])} | {fmt(s['median'])} | {fmt(gain)} | "
                         f"{fmt(float(np.median(fit))) if fit else '-'} | {s['fit_cpu']:.1f} |")
    return "\n".join(lines)


def plot_curves(runs, task, path):
    """Best validation fitness against evaluations (generation 0 included), one line per encoding row and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, name in enumerate(ENCODING_ROWS):
        for j, r in enumerate(runs.get(f"{task}|{name}", [])):
            c = r.get("curve")
            if c:
                ax.plot(c["evaluations"], np.abs(c["best"]), color=f"C{k}", alpha=0.7, label=name if j == 0 else None)
    b = make_bench(task)
    ax.set(xlabel="evaluations", ylabel="best validation fitness" + (" (|-VPT fraction|)" if b.higher_better else ""),
           yscale="log", title=f"{task}: best fitness by genome encoding")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def merge(paths, plot=None):
    """One table from several result files: every row beside the best baseline and the ESN's fit time."""
    summary, runs = {}, {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        summary.update(data["summary"])
        runs.update(data.get("runs", {}))
    tasks = [t for t in ALL_TASKS if any(k.startswith(t + "|") for k in summary)]
    lines = ["| task | row | median | failures | fit CPU s | / best baseline | CPU / ESN |", "|" + "---|" * 7]
    for t in tasks:
        b = make_bench(t)
        base = {r: summary[f"{t}|{r}"] for r in BASELINES if f"{t}|{r}" in summary}
        best_row = (max if b.higher_better else min)(base, key=lambda r: base[r]["median"]) if base else None
        esn = base.get("esn", {}).get("fit_cpu", np.nan)
        for key in sorted(k for k in summary if k.startswith(t + "|")):
            row, s = key.split("|")[1], summary[key]
            ratio = s["median"] / base[best_row]["median"] if best_row else np.nan
            lines.append(f"| {t} ({b.metric}{' ↑' if b.higher_better else ' ↓'}) | {row} | {fmt(s['median'])} | "
                         f"{s['failures']}/{s['n']} | {s['fit_cpu']:.1f} | {fmt(ratio)} (best: {best_row}) | "
                         f"{fmt(s['fit_cpu'] / esn) if np.isfinite(esn) and esn > 0 else '-'} |")
    if any(f"{t}|{name}" in summary for t in ALL_TASKS for name in ENCODING_ROWS):
        lines += ["", evolution_table(summary, runs)]
    if plot is not None:
        task, path = plot
        plot_curves(runs, task, path)
        lines += ["", f"figure: {path}"]
    return "\n".join(lines)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--merge":  # python benchmarks/forecasting.py --merge a.json b.json ... [--plot TASK PNG]
        rest, plot = argv[1:], None
        if "--plot" in rest:
            i = rest.index("--plot")
            plot, rest = (rest[i + 1], rest[i + 2]), rest[:i] + rest[i + 3:]
        print(merge(rest, plot))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(ALL_TASKS)}")
    p.add_argument("--rows", default=",".join(BASELINES), help=f"comma-separated, from {', '.join(ROWS)}")
    p.add_argument("--seeds", default="5", help="N (seeds 0..N-1) or a comma-separated list (default 5)")
    p.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "forecasting.json"), help="per-run results (JSON)")
    p.add_argument("--wide-cells", type=int, default=WIDE["n_cells"],
                   help=f"cells of the evolino-wide row (default {WIDE['n_cells']})")
    args = p.parse_args(argv)
    if args.wide_cells < 1:
        p.error(f"--wide-cells: a positive number of cells, got {args.wide_cells}")
    WIDE["n_cells"] = args.wide_cells
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for t in tasks:
        if t not in ALL_TASKS:
            p.error(f"--tasks: unknown task {t!r}; choose from {list(ALL_TASKS)}")
    for r in rows:
        if r not in ROWS:
            p.error(f"--rows: unknown row {r!r}; choose from {list(ROWS)}")
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError:
        p.error(f"--seeds: expected N or a comma-separated list of ints, got {args.seeds!r}")
    if not seeds:
        p.error("--seeds: at least one seed")
    c_start = time.process_time()
    results, summary, benches = {}, {}, {}
    with threadpool_limits(limits=1):
        if any(r in ("esn", "nvar") for r in rows):
            bl.self_check()
        print(f"# forecasting benchmark: tasks {tasks}, rows {rows}, seeds {seeds}; BLAS pinned to 1 thread; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        for task in tasks:
            b = benches[task] = make_bench(task)
            for row in rows:
                runs = []
                for seed in seeds:
                    if row in DETERMINISTIC and runs:
                        runs.append(dict(runs[0], seed=seed, copied_from=seeds[0]))
                        continue
                    r = run_one(b, row, seed)
                    runs.append(r)
                    msg = r.get("error") or ", ".join(f"{k} {v}" for k, v in r["params"].items())
                    print(f"# {task} {row} seed {seed}: {b.metric} {fmt(r['score'])}, fit {r['fit_cpu']:.2f} s CPU; "
                          f"{msg}", flush=True)
                results[(task, row)] = runs
                summary[(task, row)] = summarize(b, runs)
    print()
    print(table(summary, benches))
    total = time.process_time() - c_start
    print(f"\nCPU time of the whole benchmark: {total:.0f} s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        out = dict(args=vars(args), cpu_seconds=total,
                   grids=dict(esn=dict(units=ESN_UNITS, grid=ESN_GRID, ridges=ESN_RIDGES),
                              nvar=dict(grid=NVAR_GRID, ridges=NVAR_RIDGES, max_features=bl.MAX_FEATURES),
                              ar=dict(grid=AR_GRID, ridges=AR_RIDGES)),
                   summary={f"{t}|{r}": s for (t, r), s in summary.items()},
                   runs={f"{t}|{r}": v for (t, r), v in results.items()})
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
        print(f"per-run results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
