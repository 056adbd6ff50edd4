"""Generations per second of Evolino's fitness on Serial, Pool(2) and Ray(2), with dispatch overhead.

Usage::

    python benchmarks/parallel.py [--large-generations 8] [--small-generations 60] [--no-ray]

Cases: P=64, H=32, T=1000 (compute-bound) and P=40, H=10, T=300 (overhead-bound). The
fitness is the real :class:`evolino.fitness.EvolinoFitness` (teacher-forced run, pseudo-
inverse readout, closed-loop validation NRMSE) on two superimposed sines. Evaluators are
timed generation by generation in turn (serial, pool, ray, serial, ...) so that load from
other processes on the machine hits all of them alike; times are medians over generations.
Each generation gets fresh genomes and all evaluators must return bit-identical fitness.
"serial" runs with numpy's default BLAS threads (what a user gets), "serial 1T" pinned to one
BLAS thread (the kernel's small matrix products can be faster that way).

Also measured, for the scaling model of docs/scaling.md (a calculation, printed at the end):
- dispatch overhead: best of 20 calls of a fitness that does no work (``ZeroFitness``), for
  W = 1, 2, 4, 8 workers on both cases' genomes and for 16..256 large-case genomes on 2
  workers; fitted by least squares as ``d(W, bytes) = a + alpha * W + beta * bytes``;
- chunk cost ``t(m)``: one single-threaded call of the fitness on ``m`` candidates.
The model predicts one generation of P candidates on W workers (each with a core of its own)
as ``t(ceil(P / W)) + d(min(W, P), 8 * P * n_params)``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from evolino.evaluate import Pool, Ray, Serial
from evolino.fitness import EvolinoFitness
from evolino.lstm import LSTMSpec
from evolino.readout import Linear

CASES = (("large", 64, 32, 1000), ("small", 40, 10, 300))
WORKERS_FIT = (1, 2, 4, 8)
POP_FIT = (16, 64, 256)  # large-case genomes on 2 workers: the bytes term of the dispatch fit
WORKERS_MODEL = (2, 8, 64, 512)
WEAK_PER_WORKER = 8  # weak scaling: population grows with the workers, 8 candidates each
BLAS = ThreadpoolController()  # inspect the loaded libraries once, not at every limit


class SerialOneThread(Serial):
    """Serial with BLAS pinned to one thread during the call."""

    def evaluate(self, fitness_fn, genomes, seeds=None):
        with BLAS.limit(limits=1):
            return super().evaluate(fitness_fn, genomes, seeds)


class ZeroFitness:
    """No work: what remains of a call is dispatch (send chunks, wake workers, gather)."""

    def __call__(self, genomes):
        return np.zeros(len(genomes))


def make_case(P, H, T, n_gens, seed=0):
    """EvolinoFitness on two sines of T steps (10% washout, 75/25 fit/validation) and genome sets."""
    spec = LSTMSpec(1, H)
    t = np.arange(T)
    Y = (np.sin(0.2 * t) + np.sin(0.311 * t))[None, :, None]  # (B=1, T, O=1)
    washout = T // 10
    split = washout + int(0.75 * (T - washout))
    fn = EvolinoFitness.from_data(spec, Y, washout=washout, validation=T - split, feedback=True, readout=Linear())
    rng = np.random.default_rng(seed)
    return fn, [spec.init(rng, P) for _ in range(n_gens)]


def timed(ev, fn, genomes):
    t0 = time.perf_counter()
    out = ev.evaluate(fn, genomes)
    return time.perf_counter() - t0, out


def dispatch_overhead(ev, genomes, reps=20):
    """Best-of-``reps`` seconds of one call with ZeroFitness (after one call that sends it).

    The minimum, not the median: this is the floor cost of dispatch, which load from other
    processes on a shared machine can only raise."""
    fn = ZeroFitness()
    ev.evaluate(fn, genomes)
    return float(min(timed(ev, fn, genomes)[0] for _ in range(reps)))


def dispatch_sweep(make, cases, big_genomes):
    """Points ``(W, bytes, seconds)`` of dispatch overhead for evaluators built by ``make(W)``."""
    points = []
    for w in WORKERS_FIT:
        with make(w) as ev:
            for _, _, _, _, _, genome_sets in cases:
                points.append((w, genome_sets[0].nbytes, dispatch_overhead(ev, genome_sets[0])))
            if w == 2:
                for P in POP_FIT:
                    points.append((w, big_genomes[:P].nbytes, dispatch_overhead(ev, big_genomes[:P])))
    return points


def fit_dispatch(points):
    """Least-squares ``(a, alpha, beta)`` of ``seconds = a + alpha * W + beta * bytes``."""
    A = np.array([[1.0, w, nbytes] for w, nbytes, _ in points])
    y = np.array([d for _, _, d in points])
    return tuple(float(v) for v in np.linalg.lstsq(A, y, rcond=None)[0])


def chunk_costs(fn, genomes, sizes, reps):
    """Best-of-``reps`` single-thread seconds of ``fn`` on the first ``m`` genomes, for each m
    (the minimum: load from other processes can only add to it)."""
    out = {}
    with BLAS.limit(limits=1):
        for m in sizes:
            fn(genomes[:m])
            out[m] = float(min(timed(Serial(), fn, genomes[:m])[0] for _ in range(reps)))
    return out


def interp_chunk(costs, m):
    """Chunk cost at size m, linear between measured sizes (chunk sizes beyond the largest: proportional)."""
    sizes = sorted(costs)
    if m >= sizes[-1]:
        return costs[sizes[-1]] * m / sizes[-1]
    return float(np.interp(m, sizes, [costs[s] for s in sizes]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large-generations", type=int, default=8)
    ap.add_argument("--small-generations", type=int, default=60)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray evaluator")
    args = ap.parse_args(argv)
    gens = {"large": args.large_generations, "small": args.small_generations}

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"start method {mp.get_start_method()}, load average {os.getloadavg()[0]:.2f}")
    cases = [(name, P, H, T, *make_case(P, H, T, gens[name] + 1)) for name, P, H, T in CASES]
    big_genomes = LSTMSpec(1, 32).init(np.random.default_rng(1), max(POP_FIT))

    # Pools first: forking after ray.init would copy Ray's threads into the workers.
    sweeps = {"pool": dispatch_sweep(Pool, cases, big_genomes)}
    evaluators = {"serial": Serial(), "serial 1T": SerialOneThread(), "pool(2)": Pool(2)}
    for ev in evaluators.values():
        ev.evaluate(ZeroFitness(), big_genomes[:2])  # start the pool's workers before Ray
    if not args.no_ray:
        import ray

        # 8 logical CPUs only so that Ray(8) can be placed for the dispatch fit; compute uses Ray(2).
        ray.init(address="local", num_cpus=max(WORKERS_FIT), include_dashboard=False, log_to_driver=False)
        sweeps["ray"] = dispatch_sweep(lambda w: Ray(n_workers=w), cases, big_genomes)
        evaluators["ray(2)"] = Ray(n_workers=2)

    rows, chunk = [], {}
    for name, P, H, T, fn, genome_sets in cases:
        for ev in evaluators.values():  # start workers and send fn: not part of the timing
            ev.evaluate(fn, genome_sets[0])
        times = {k: [] for k in evaluators}
        for genomes in genome_sets[1:]:
            ref = None
            for k, ev in evaluators.items():
                dt, out = timed(ev, fn, genomes)
                times[k].append(dt)
                if ref is None:
                    ref = out
                elif not np.array_equal(out, ref):
                    raise AssertionError(f"{k} fitness differs from serial on case {name}")
        med = {k: float(np.median(v)) for k, v in times.items()}
        best = {k: float(np.min(v)) for k, v in times.items()}
        for k, ev in evaluators.items():
            kind = k.split("(")[0]
            if kind.startswith("serial"):
                d = dispatch_overhead(ev, genome_sets[0])
            else:  # measured in the sweep, 2 workers, these genomes
                d = next(d for w, b, d in sweeps[kind] if w == 2 and b == genome_sets[0].nbytes)
            rows.append((f"{name}: P={P} H={H} T={T}", k, med[k], best[k], med["serial"] / med[k],
                         med["serial 1T"] / med[k], best["serial 1T"] / best[k], d))
        sizes = sorted({1, 2, 4, 8, 16, P // 2, P})
        chunk[name] = (P, genome_sets[0].shape[1], med["serial 1T"],
                       chunk_costs(fn, genome_sets[0], sizes, reps=3 if name == "large" else 9))

    for ev in evaluators.values():
        ev.close()
    if not args.no_ray:
        ray.shutdown()
    fits = {kind: fit_dispatch(points) for kind, points in sweeps.items()}

    print(f"\n### generations per second ({gens['large']} / {gens['small']} generations, median and best), "
          "all evaluators bit-identical\n")
    print("| case | evaluator | s / gen (median) | s / gen (best) | gen / s (median) | ratio to serial | "
          "ratio to serial 1T | ratio to serial 1T (best) | dispatch overhead (ms / gen) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for case, k, s, sb, r, r1, rb, d in rows:
        print(f"| {case} | {k} | {s:.4f} | {sb:.4f} | {1 / s:.2f} | {r:.2f}x | {r1:.2f}x | {rb:.2f}x | {1e3 * d:.2f} |")

    print("\n### dispatch overhead, ms per call (best of 20, ZeroFitness), and its least-squares fit\n")
    print("| evaluator | " + " | ".join(f"W={w}, {b / 1e6:.2f} MB" for w, b, _ in sweeps["pool"]) + " |")
    print("|---|" + "---:|" * len(sweeps["pool"]))
    for kind, points in sweeps.items():
        print(f"| {kind} | " + " | ".join(f"{1e3 * d:.2f}" for _, _, d in points) + " |")
    print("\n| evaluator | a (ms) | alpha (ms / worker) | beta (ms / MB) |")
    print("|---|---:|---:|---:|")
    for kind, (a, alpha, beta) in fits.items():
        print(f"| {kind} | {1e3 * a:.3f} | {1e3 * alpha:.3f} | {1e9 * beta:.3f} |")

    print("\n### chunk cost t(m): one worker (1 BLAS thread) evaluating m candidates, ms\n")
    for name, (P, _, _, costs) in chunk.items():
        print(f"| {name} | " + " | ".join(f"m={m}: {1e3 * costs[m]:.1f}" for m in sorted(costs)) + " |")

    print("\n### scaling model (a calculation from the numbers above, not a measurement)\n")
    print("t_gen = t(ceil(P/W)) + d(min(W, P), 8 * P * n_params); speed-up against serial 1T, "
          "whose per-candidate cost is t(P_case)/P_case; one core per worker, local dispatch (no network)\n")
    print("| population | evaluator | W | P | predicted s / gen | predicted gen / s | speed-up | efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, (a, alpha, beta) in fits.items():
        for name, (P0, n, _, costs) in chunk.items():
            per_candidate = costs[P0] / P0
            for label, pop in ((f"{name} case, P fixed", lambda W: P0),
                               (f"{name} net, P = {WEAK_PER_WORKER} W", lambda W: WEAK_PER_WORKER * W)):
                for W in WORKERS_MODEL:
                    P = pop(W)
                    m = math.ceil(P / W)
                    t = interp_chunk(costs, m) + a + alpha * min(W, P) + beta * 8 * P * n
                    speed = P * per_candidate / t
                    print(f"| {label} | {kind} | {W} | {P} | {t:.4f} | {1 / t:.1f} | {speed:.1f}x | "
                          f"{100 * speed / W:.0f}% |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
