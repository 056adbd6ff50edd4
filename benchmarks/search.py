"""Search strategies: evaluations to reach 1e-8 on standard functions, and bookkeeping overhead.

Part 1 - evaluations until the best fitness is <= 1e-8 on sphere, ellipsoid
(condition 1e6) and Rosenbrock, n = 10 and 30, for ESP (evolino defaults: every
parameter its own unit, subpop_size 20, trials 10, Cauchy scale 0.01) and CMA-ES
(pycma defaults, sigma0 = 0.5), over ``--seeds`` seeds. Both start in the same box:
CMA-ES from x0 ~ U[-1, 1]^n, ESP's chromosomes ~ U[-1, 1]. A run that has not
reached 1e-8 within ``--budget`` evaluations (or that CMA-ES stopped by its own
criteria) is a failure. Reported: median and interquartile range of the evaluations
of the successful runs, the number of failures, and the median best f at the end.

Part 2 - the strategy's own time per generation (ask + tell, with a trivial fitness)
against the time to evaluate the same population of LSTM networks: ``evolino.lstm.forward``
on P genomes of an ``LSTMSpec(1, H)`` over one sequence of T = 1000 steps (the state
collection alone; readout and error come on top, so the ratio is an upper bound).
ESP uses the LSTM's cells as units. Forward: median of ``--repeats`` timings; strategy:
median and mean over ``--gens`` generations (pycma decomposes the covariance only
every few generations, so the mean is the amortised cost and the ratio uses it).
BLAS is pinned to ``--threads`` threads (default 1: on a shared 2-core machine
multi-threaded OpenBLAS eigendecompositions are erratic).

Usage::

    python benchmarks/search.py            # full: 10 seeds, n = 10 and 30
    python benchmarks/search.py --quick    # 3 seeds, n = 10, a smaller budget
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evolino.lstm import LSTMSpec, forward
from evolino.search import CMAES, ESP
from evolino.search.functions import ellipsoid, rosenbrock, sphere


FUNCTIONS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock}
TARGET = 1e-8


def make(name, n, seed):
    if name == "esp":
        return ESP(n, seed=seed, init=lambda rng, size: rng.uniform(-1.0, 1.0, (size, n)))
    x0 = np.random.default_rng([seed, 1]).uniform(-1.0, 1.0, n)
    return CMAES(x0, 0.5, seed=seed)


def evals_to_target(es, fn, budget):
    """Evaluations when best <= TARGET was first reached (counted to the evaluation), or None."""
    while es.evaluations < budget and not es.stop():
        X = es.ask()
        f = fn(X)
        hit = np.flatnonzero(f <= TARGET)
        if hit.size:
            return es.evaluations + int(hit[0]) + 1, float(f.min())
        es.tell(f)
    return None, es.best[1]


def part1(seeds, dims, budget):
    rows = []
    for fname, fn in FUNCTIONS.items():
        for n in dims:
            med = {}
            for name in ("esp", "cmaes"):
                t0 = time.perf_counter()
                res = [evals_to_target(make(name, n, s), fn, budget) for s in range(seeds)]
                ok = np.array([r[0] for r in res if r[0] is not None], dtype=float)
                fails = sum(r[0] is None for r in res)
                med[name] = np.median(ok) if ok.size else np.nan
                q1, q3 = (np.percentile(ok, [25, 75]) if ok.size else (np.nan, np.nan))
                rows.append((fname, n, name, med[name], q1, q3, fails, seeds,
                             float(np.median([r[1] for r in res])), time.perf_counter() - t0))
            rows[-1] += (med["esp"] / med["cmaes"],)
            rows[-2] += (np.nan,)
    print(f"\n### Evaluations to reach f <= 1e-8 ({seeds} seeds, budget {budget:,} evaluations)\n")
    print("| function | n | strategy | median evals | IQR | failures | median best f | ESP / CMA-ES | time s |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|")
    for fname, n, name, m, q1, q3, fails, total, fbest, secs, ratio in rows:
        med_s = "-" if np.isnan(m) else f"{m:,.0f}"
        iqr = "-" if np.isnan(q1) else f"{q1:,.0f} - {q3:,.0f}"
        rat = "-" if np.isnan(ratio) else f"{ratio:.1f}x"
        print(f"| {fname} | {n} | {name} | {med_s} | {iqr} | {fails}/{total} | {fbest:.2e} | {rat} | {secs:.1f} |")


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def strategy_seconds(es, gens):
    """Median ask+tell seconds per generation over ``gens`` generations (after 3 warm-up ones)."""
    rng = np.random.default_rng(0)
    times = []
    for g in range(gens + 3):
        t0 = time.perf_counter()
        X = es.ask()
        t1 = time.perf_counter()
        f = rng.random(len(X))  # the fitness itself is not timed
        t2 = time.perf_counter()
        es.tell(f)
        t3 = time.perf_counter()
        if g >= 3:
            times.append((t1 - t0) + (t3 - t2))
    return float(np.median(times)), float(np.mean(times))


def part2(cells, T, repeats, gens):
    rows = []
    X = np.random.default_rng(0).normal(size=(T, 1))
    for H in cells:
        spec = LSTMSpec(1, H)
        n = spec.n_params
        configs = [("esp (cells as units)", lambda: ESP(n, units=spec.cell_slices, init=spec.init, seed=0))]
        if n <= 2000:
            configs += [("cmaes (full, default popsize)", lambda: CMAES(spec.init(0, 1)[0], 0.1, seed=0)),
                        ("cmaes (full, popsize 200)", lambda: CMAES(spec.init(0, 1)[0], 0.1, popsize=200, seed=0))]
        configs += [("cmaes (separable, default popsize)",
                     lambda: CMAES(spec.init(0, 1)[0], 0.1, diagonal=True, seed=0)),
                    ("cmaes (separable, popsize 200)",
                     lambda: CMAES(spec.init(0, 1)[0], 0.1, diagonal=True, popsize=200, seed=0))]
        for label, build in configs:
            es = build()
            P = es.popsize
            genomes = spec.init(1, P)
            t_eval = median_seconds(lambda: forward(spec, genomes, X), repeats)
            med, mean = strategy_seconds(es, gens)
            rows.append((H, n, label, P, med, mean, t_eval))
    print(f"\n### Strategy overhead per generation vs evaluating the population (LSTM forward, T={T}, 1 input)\n")
    print("| H | n_params | strategy | P | ask+tell ms (median) | ask+tell ms (mean) | forward ms "
          "| overhead / forward |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for H, n, label, P, med, mean, t_eval in rows:
        print(f"| {H} | {n} | {label} | {P} | {1e3 * med:.2f} | {1e3 * mean:.2f} | {1e3 * t_eval:.1f} | "
              f"{mean / t_eval:.4f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, n = 10, budget 2e4, H = 10 only")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=200_000, help="evaluations per run")
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--cells", type=int, nargs="+", default=[10, 40], help="H of the LSTM in part 2")
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gens", type=int, default=40, help="generations timed per strategy in part 2")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.dims, args.cells, args.repeats, args.gens = 3, 20_000, [10], [10], 3, 10
    import cma
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(args.threads):
        blas = {(d.get("internal_api"), d.get("num_threads")) for d in threadpool_info()}
        print(f"numpy {np.__version__}; cma {cma.__version__}; BLAS (api, threads) {sorted(blas)}")
        part1(args.seeds, args.dims, args.budget)
        part2(args.cells, args.T, args.repeats, args.gens)


if __name__ == "__main__":
    main()
