"""Superimposed sines (MSO): Evolino (ESP and CMA-ES) over seeds, beside Evolino's numbers and an ESN anchor.

Protocol (``evolino.tasks.SinesTask``): ``y(n) = sum_k sin(a_k n)``, ``n = 0..699``;
washout steps 1-100, teacher-forced training on steps 101-400 (the trainer holds
out the last 25 % of them, steps 326-400, as its closed-loop validation part, and
refits the final readout on all of 101-400), then closed-loop generation of steps
401-700; test NRMSE = RMSE / std of the target over those 300 steps.
Frequencies: the first K of 0.2, 0.311, 0.42, 0.51, 0.63, ... (``SinesTask(terms=K)``),
plus the Evolino/PyBrain 5-sine set 0.2, 0.311, 0.42, 0.51, **0.74** (the row
"5*"; see benchmarks/REFERENCES.md §1.1).

Rows (every seed runs every row; configurations were chosen by the exploration
recorded in benchmarks/RESULTS.md, on seeds 0-1, before this table was run):

- ``demo``: exactly what ``evolino sines`` runs by default, read from
  ``evolino.presets.SINES`` (40 cells, ``input_scale`` 1e-5, ESP 10 x 4, Cauchy 1e-4,
  75 generations), 2 sines only.
- ``esp``: 40 cells, ``input_scale`` 1e-5, ESP with subpopulations of 10, 4 trials
  (40 networks per generation), Cauchy scale 1e-4, burst mutation after 5
  stagnant generations; 3,000 evaluations.
- ``cmaes``: 40 cells, ``input_scale`` 1e-5, separable CMA-ES (``diagonal=True``),
  ``sigma0`` 0.1, pycma's default population (30); 3,000 evaluations.
- ``dct`` / ``gains``: the same 40 cells and scales, full CMA-ES (40 networks, ``sigma0`` 0.1) over a
  compressed genome (:mod:`evolino.genome`): 16 low-frequency DCT coefficients per weight array
  (240 genes), or 12 gains and bias shifts, on top of the best of 40 random networks.
- 6-8 sines (optional, ``--terms 6,7,8``): the same with 80 cells.

For every run the **generation-1 best** is also scored on the test window: the
trainer is run again with ``max_generations=1`` and the same seed (the first
population does not depend on the budget), i.e. the best of the first population
of random networks, each with its least-squares readout. ``gen-1 / final`` is what
evolution adds.

ESN anchor (ReservoirPy, optional): a tanh echo state network, the previous
value as its input (teacher-forced on the same 400 steps, its own output fed
back in the same 300 closed-loop steps), ReservoirPy's ``Ridge`` readout. Its
spectral radius, input scaling and ridge are chosen per seed from a small grid by
the same validation as Evolino's (readout fitted on steps 101-325, closed loop on
326-400), then the readout is refitted on steps 101-400. Skipped with a message
if ReservoirPy is not installed.

Reference numbers: Evolino (Schmidhuber et al. 2007) as tabulated by later ESN
papers, recalled, **NOT VERIFIED** (benchmarks/REFERENCES.md §1.1); the target of
issue 5 is a median 10x below them.

BLAS is pinned to one thread (threadpoolctl); times are wall seconds of
``Evolino.fit`` and CPU seconds of the process.

Usage::

    python benchmarks/sines.py                 # 10 seeds, 2-5 sines (+ 5*), demo/esp/cmaes, ESN
    python benchmarks/sines.py --quick         # 3 seeds, half the evaluations
    python benchmarks/sines.py --terms 6,7,8 --seeds 3 --rows esp,cmaes --no-esn
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from evolino import Evolino
from evolino.presets import SINES
from evolino.tasks import SinesTask, nrmse

# Evolino 2007 test NRMSE, recalled; status from benchmarks/REFERENCES.md §1.1
REFERENCE = {2: 4.15e-3, 3: 8.04e-3, 4: 0.110, 5: 0.166, "5*": 0.166}
REFERENCE_STATUS = "NOT VERIFIED"
EVOLINO_5 = (0.2, 0.311, 0.42, 0.51, 0.74)
BUDGET = 3000


def configs(budget):
    """Trainer keyword arguments of each row (the seed is added per run)."""
    big = dict(input_scale=1e-5, max_generations=None, max_evaluations=budget)
    return {
        # what `evolino sines` runs by default: the preset itself, never a copy of it
        "demo": {k: v for k, v in SINES.trainer_kwargs().items() if k != "washout"},
        "esp": dict(n_cells=40, search="esp", search_options=dict(subpop_size=10, trials=4, mutation_scale=1e-4,
                                                                   patience=5), **big),
        "cmaes": dict(n_cells=40, search="cmaes", popsize=None, search_options=dict(sigma0=0.1, diagonal=True),
                      **big),
        # compressed genomes (evolino.genome) on the best of 40 random networks, full-covariance CMA-ES
        "dct": dict(n_cells=40, search="cmaes", encoding="dct", encoding_options={"coefficients": 16}, **big),
        "gains": dict(n_cells=40, search="cmaes", encoding="gains", **big),
    }


def make_task(terms):
    return SinesTask(freqs=EVOLINO_5) if terms == "5*" else SinesTask(terms=int(terms))


def run_evolino(task, cfg, seed, cells_override=None):
    """One seed: final and generation-1 test NRMSE, evaluations, wall/CPU seconds."""
    cfg = dict(cfg)
    if cells_override:
        cfg["n_cells"] = cells_override
    n_cells = cfg.pop("n_cells")
    tr = Evolino(n_cells, washout=task.washout, seed=seed, **cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    net = tr.fit(task.train_series)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    test, _ = task.score(net)
    first = dict(cfg, max_generations=1, max_evaluations=None)
    tr1 = Evolino(n_cells, washout=task.washout, seed=seed, **first)
    net1 = tr1.fit(task.train_series)
    # the generation-1 population must be the one the long run started from
    assert np.isclose(tr1.history_["gen_best"][0], tr.history_["gen_best"][0], rtol=1e-9, atol=0), "gen-1 differs"
    test1, _ = task.score(net1)
    return dict(test=test, gen1_test=test1, gen1_val=tr.history_["gen_best"][0], val=tr.best_fitness_,
                evaluations=tr.history_["evaluations"][-1], generations=tr.history_["generation"][-1],
                wall=wall, cpu=cpu)


# --- echo state network anchor (ReservoirPy) -------------------------------------------
class ESNAnchor:
    """ReservoirPy ESN whose input is the previous value; ``generate`` mirrors ``EvolinoNetwork.generate``.

    Parameters
    ----------
    units, sr, input_scaling, ridge, seed : as ReservoirPy's ``Reservoir`` / ``Ridge``
    bias : float
        Constant input bias of the reservoir units (Jaeger's MG network has one).
    """

    def __init__(self, units, sr, input_scaling, ridge, seed, bias=0.0):
        from reservoirpy.nodes import Reservoir, Ridge

        self.units, self.sr, self.input_scaling, self.ridge, self.seed = units, sr, input_scaling, ridge, seed
        self.res = Reservoir(units, sr=sr, lr=1.0, input_scaling=input_scaling, bias=bias, seed=seed)
        self._Ridge = Ridge

    @staticmethod
    def _inputs(Y):  # (L, 1) -> previous values (L, 1), 0 first, as evolino's teacher forcing
        return np.vstack([np.zeros((1, Y.shape[1])), Y[:-1]])

    def states(self, Y):
        """Teacher-forced states ``(L, units)`` from the zero state."""
        if self.res.initialized:  # ReservoirPy cannot reset a node that has not run yet
            self.res.reset()
        return self.res.run(self._inputs(Y))

    def fit(self, Y, washout, end=None):
        """Readout on teacher-forced steps ``[washout, end)`` of ``Y`` ``(T, 1)``."""
        end = len(Y) if end is None else end
        S = self.states(Y[:end])
        return self.fit_states(S, Y[:end], washout)

    def fit_states(self, S, Y, washout):
        self.readout = self._Ridge(ridge=self.ridge)
        self.readout.fit(S[washout:], Y[washout:])
        return self

    def generate(self, n_steps, *, Y_prefix):
        """Closed loop after a teacher-forced prefix ``(L, 1)`` or ``(B, L, 1)`` -> ``(n_steps, 1)`` / ``(B, ...)``."""
        Yb = Y_prefix if Y_prefix.ndim == 3 else Y_prefix[None]
        out = np.empty((Yb.shape[0], n_steps, Yb.shape[2]))
        for b, Y in enumerate(Yb):
            self.states(Y)
            out[b] = self.free_run(Y[-1], n_steps)
        return out if Y_prefix.ndim == 3 else out[0]

    def free_run(self, y_last, n_steps):
        """``n_steps`` outputs ``(n_steps, 1)`` from the reservoir's current state, fed back."""
        out = np.empty((n_steps, len(y_last)))
        y = y_last
        with np.errstate(all="ignore"):
            for t in range(n_steps):
                y = self.readout.step(self.res.step(y))
                out[t] = y
        return out


def esn_select(Y, washout, validation, grid, units, seed, bias=0.0):
    """Pick (sr, input_scaling, ridge) by Evolino's closed-loop validation, refit on all steps.

    ``Y`` ``(T, 1)``; the last ``validation`` fraction of the post-washout steps is
    the validation part. Returns ``(esn, chosen dict, validation NRMSE)``.
    """
    T = len(Y)
    split = T - max(1, int(round(validation * (T - washout))))
    best = (np.inf, None)
    for sr in grid["sr"]:
        for scale in grid["input_scaling"]:
            esn = ESNAnchor(units, sr, scale, 0.0, seed, bias)
            S = esn.states(Y[:split])
            state = esn.res.state.copy()  # after the teacher-forced prefix: every ridge starts its free run here
            for ridge in grid["ridge"]:
                esn.ridge = ridge
                esn.fit_states(S, Y[:split], washout)
                esn.res.state = state.copy()
                gen = esn.free_run(Y[split - 1], T - split)
                err = nrmse(gen, Y[split:]) if np.all(np.isfinite(gen)) else np.inf
                if err < best[0]:
                    best = (err, dict(sr=sr, input_scaling=scale, ridge=ridge))
    chosen = best[1] or dict(sr=grid["sr"][0], input_scaling=grid["input_scaling"][0], ridge=grid["ridge"][0])
    esn = ESNAnchor(units, chosen["sr"], chosen["input_scaling"], chosen["ridge"], seed, bias).fit(Y, washout)
    return esn, chosen, best[0]


ESN_UNITS = 500
ESN_GRID = dict(sr=(0.8, 1.0, 1.25), input_scaling=(1.0, 1e-2, 1e-4), ridge=(1e-10, 1e-8, 1e-6))


def run_esn(task, seed):
    t0, c0 = time.perf_counter(), time.process_time()
    esn, chosen, val = esn_select(task.train_series, task.washout, 0.25, ESN_GRID, ESN_UNITS, seed)
    test, _ = task.score(esn)
    return dict(test=test if np.isfinite(test) else np.inf, val=val, wall=time.perf_counter() - t0,
                cpu=time.process_time() - c0, **chosen)


# --- table -------------------------------------------------------------------------------
def q(values):
    v = np.asarray(values, dtype=float)
    return np.median(v), np.percentile(v, 25), np.percentile(v, 75)


def fmt(x):
    return "inf" if not np.isfinite(x) else f"{x:.2e}"


def table(results, esn, n_seeds):
    rows = []
    head = ("| sines | row | cells | test NRMSE median | IQR (25-75 %) | gen-1 test NRMSE median | gen-1 / final "
            "| evaluations | wall s (median) | CPU s (median) | Evolino 2007 [status] | Evolino / ours "
            "| target (Evolino/10) met |")
    rows.append(head)
    rows.append("|" + "---|" * 13)
    for (terms, row), runs in results.items():
        m, lo, hi = q([r["test"] for r in runs])
        g1 = np.median([r["gen1_test"] for r in runs])
        ref = REFERENCE.get(terms)
        refs = f"{ref:.3g} [{REFERENCE_STATUS}]" if ref else "-"
        ratio = f"{ref / m:.2g}x" if ref else "-"
        met = ("yes" if m <= ref / 10 else "NO") if ref else "-"
        rows.append(f"| {terms} | {row} | {runs[0]['cells']} | {fmt(m)} | {fmt(lo)} - {fmt(hi)} | {fmt(g1)} "
                    f"| {g1 / m:.1f}x | {int(np.median([r['evaluations'] for r in runs]))} "
                    f"| {np.median([r['wall'] for r in runs]):.1f} | {np.median([r['cpu'] for r in runs]):.1f} "
                    f"| {refs} | {ratio} | {met} |")
    for terms, runs in esn.items():
        m, lo, hi = q([r["test"] for r in runs])
        ref = REFERENCE.get(terms)
        picks = {}
        for r in runs:
            key = f"sr {r['sr']}, in {r['input_scaling']:g}, ridge {r['ridge']:g}"
            picks[key] = picks.get(key, 0) + 1
        common = max(picks, key=picks.get)
        name = f"ESN (ReservoirPy {ESN_UNITS} units; most chosen: {common}, {picks[common]}/{len(runs)})"
        rows.append(f"| {terms} | {name} "
                    f"| - | {fmt(m)} | {fmt(lo)} - {fmt(hi)} | - | - | - "
                    f"| {np.median([r['wall'] for r in runs]):.1f} | {np.median([r['cpu'] for r in runs]):.1f} "
                    f"| {ref:.3g} [{REFERENCE_STATUS}] "
                    f"| {ref / m:.2g}x | {'yes' if m <= ref / 10 else 'NO'} |")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, half the evaluation budget")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default 10, quick 3)")
    p.add_argument("--terms", default="2,3,4,5,5*", help="comma-separated sine counts; 5* = Evolino's 0.74 set")
    p.add_argument("--rows", default="demo,esp,cmaes", help="comma-separated rows: demo (2 sines only), esp, cmaes, dct, gains")
    p.add_argument("--budget", type=int, default=None, help=f"evaluations of the esp/cmaes rows (default {BUDGET})")
    p.add_argument("--no-esn", action="store_true", help="skip the ReservoirPy ESN anchor")
    p.add_argument("--json", default=None, help="also write all per-run results to this JSON file")
    args = p.parse_args(argv)
    n_seeds = args.seeds or (3 if args.quick else 10)
    budget = args.budget or (BUDGET // 2 if args.quick else BUDGET)
    terms_list = [t.strip() if t.strip() == "5*" else int(t) for t in args.terms.split(",")]
    rows = [r.strip() for r in args.rows.split(",")]
    cfgs = configs(budget)
    for r in rows:
        if r not in cfgs:
            p.error(f"--rows: unknown row {r!r}; choose from {sorted(cfgs)}")
    results, esn = {}, {}
    c_start = time.process_time()
    with threadpool_limits(limits=1):
        print(f"# sines benchmark: seeds 0..{n_seeds - 1}, budget {budget} evaluations (esp/cmaes rows); "
              f"BLAS pinned to 1 thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for terms in terms_list:
            task = make_task(terms)
            freqs = EVOLINO_5 if terms == "5*" else None
            for row in rows:
                if row == "demo" and terms != 2:
                    continue
                cells = 80 if (row != "demo" and terms != "5*" and terms >= 6) else None
                runs = []
                for seed in range(n_seeds):
                    r = run_evolino(task, cfgs[row], seed, cells)
                    r["cells"] = cells or cfgs[row]["n_cells"]
                    runs.append(r)
                    label = f"{terms} sines{' ' + str(freqs) if freqs else ''}"
                    print(f"# {label} {row} seed {seed}: test {fmt(r['test'])} "
                          f"(gen-1 {fmt(r['gen1_test'])}), validation {fmt(r['val'])} (gen-1 {fmt(r['gen1_val'])}), "
                          f"{r['evaluations']} evals, {r['generations']} gens, {r['wall']:.1f} s", flush=True)
                results[(terms, row)] = runs
            if not args.no_esn and REFERENCE.get(terms):
                try:
                    import reservoirpy  # noqa: F401
                except ImportError:
                    print("# ESN anchor skipped: ReservoirPy not installed (pip install reservoirpy)")
                    args.no_esn = True
                    continue
                esn[terms] = []
                for seed in range(n_seeds):
                    r = run_esn(task, seed)
                    esn[terms].append(r)
                    print(f"# {terms} sines ESN seed {seed}: test {fmt(r['test'])}, validation {fmt(r['val'])}, "
                          f"sr {r['sr']}, input scaling {r['input_scaling']:g}, ridge {r['ridge']:g}, "
                          f"{r['wall']:.1f} s", flush=True)
    print()
    print(table(results, esn, n_seeds))
    print(f"\nCPU time of the whole benchmark: {time.process_time() - c_start:.0f} s")
    if args.json:
        out = {"args": vars(args), "evolino": {f"{t}|{r}": v for (t, r), v in results.items()},
               "esn": {str(t): v for t, v in esn.items()}}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
