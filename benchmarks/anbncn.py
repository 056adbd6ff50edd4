"""a^n b^n c^n with linear (Evolino) and SVM (Evoke) readouts over seeds, and the cost of SVM readouts.

Part 1 - generalization (``evolino.tasks.anbncn``): strings ``S a^n b^n c^n T``, one
symbol per step, next-symbol-set targets, outputs on above 0.5; trained on
n = 1..10 (each string its own sequence), tested on n = 1..``--test-max``; the
generalization range is the largest N such that all n <= N are accepted. Every
seed runs every row with ``evolino.EvolinoRegressor(**ANBNCN.estimator_kwargs())`` (4 cells,
ESP with Cauchy mutation 0.3, initial weights x3, readout fitted and scored on
all steps of every string), 40 networks per generation:

- ``linear``: least-squares (pseudo-inverse) readout, NRMSE fitness - Evolino.
- ``svc``: one linear max-margin SVC per output symbol (``C=1``, liblinear),
  fitness = misclassified outputs + margin tie-breaker - Evoke.
- ``linear (long)``: the linear readout with ``--long`` times the generations,
  about the SVC row's wall time.

Reference numbers (benchmarks/REFERENCES.md §1.3), all **NOT VERIFIED**: gradient
LSTM with peepholes, Gers & Schmidhuber 2001, about 1..28 (recalled); Evolino 2007
"about the same" (recalled); LSTM trained by a decoupled extended Kalman filter
(Gers, Perez-Ortiz, Eck & Schmidhuber 2002) "up to 1000 and more" (a secondary
summary). No Evoke number was found.

Part 2 - readout cost (``--timing``): fit time per candidate of each readout on
states of random LSTM networks (``evolino.lstm.forward``), median of
``--repeats``, against the batched least-squares ``Linear``, for the shapes of
the tasks: a^n b^n c^n (175 steps, 4 cells, 4 outputs), sines (300 steps, 10
cells, input_scale 1e-3: nearly collinear states), and longer series (1,000 and
3,000 steps, 30 cells). The LSTM forward time per candidate is printed beside
them. SVR: C=1, epsilon=0.01 (targets of unit scale).

Usage::

    python benchmarks/anbncn.py                # 10 seeds, 200 generations, timing too
    python benchmarks/anbncn.py --quick        # 2 seeds, 50 generations
    python benchmarks/anbncn.py --timing-only
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from evolino import EvolinoRegressor, LSTMSpec, forward
from evolino.lstm import prepare
from evolino.sequences import teacher_inputs
from evolino.readout import Linear
from evolino.readout_svm import SVC, SVR
from evolino.tasks import SinesTask
from evolino.presets import ANBNCN
from evolino.tasks.anbncn import AnbncnTask

REFERENCE_N = 28  # gradient LSTM, Gers & Schmidhuber 2001: recalled, NOT VERIFIED


def run_anbncn(seeds, generations, long_factor, test_max):
    task = AnbncnTask(train_max=10, test_max=test_max)
    rows = [("linear", dict(readout="linear"), generations),
            ("svc", dict(readout="svc", C=1.0), generations),
            ("linear (long)", dict(readout="linear"), generations * long_factor)]
    results = {}
    for name, kw, gens in rows:
        Ns, train_ok, times = [], [], []
        for seed in seeds:
            model = EvolinoRegressor(**{**ANBNCN.estimator_kwargs(), **kw, "max_generations": gens, "random_state": seed})
            t0 = time.perf_counter()
            model.fit(task.train_X, task.train_Y)
            times.append(time.perf_counter() - t0)
            N, ok = task.score(model)
            Ns.append(N)
            train_ok.append(int(ok[:10].sum()))
            print(f"  {name:14s} seed {seed}: N = {N:4d}, {train_ok[-1]}/10 training strings, {times[-1]:.1f} s",
                  flush=True)
        results[name] = dict(N=np.array(Ns), train=np.array(train_ok), time=np.array(times), gens=gens)
    return results


def print_anbncn(results, seeds, test_max):
    print(f"\n### a^n b^n c^n: generalization range over {len(seeds)} seeds "
          f"(train n = 1..10, test n = 1..{test_max})\n")
    print("| readout | generations | evaluations | seeds with all 10 training strings | median N | mean N | best N "
          "| N per seed | median N / 28 (gradient LSTM, NOT VERIFIED) | s per run |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for name, r in results.items():
        N = r["N"]
        print(f"| {name} | {r['gens']} | {40 * r['gens']:,} | {int(np.sum(r['train'] == 10))}/{len(N)} | "
              f"{np.median(N):.1f} | {N.mean():.1f} | {N.max()} | {', '.join(map(str, N))} | "
              f"{np.median(N) / REFERENCE_N:.2f} | {r['time'].mean():.1f} |")
    lin, svc = results["linear"], results["svc"]
    print(f"\nSVC / linear wall time per run: {svc['time'].mean() / lin['time'].mean():.0f}x")
    print("\nReferences (benchmarks/REFERENCES.md §1.3): gradient LSTM (Gers & Schmidhuber 2001) about 1..28, "
          "Evolino 2007 'about the same' - both recalled, NOT VERIFIED; LSTM + DEKF (Gers et al. 2002) "
          "'up to 1000 and more' - SECONDARY. N is capped at the test range.")


# --- part 2: readout cost ---------------------------------------------------------
def _states(kind, N, H, P, rng):
    """States ``(P, N, H)`` of random LSTMs and targets ``(N, O)`` for one task shape."""
    if kind == "anbncn":
        task = AnbncnTask()
        spec = LSTMSpec(4, H)
        X = np.concatenate(task.train_X)[None]
        Y = np.concatenate(task.train_Y)
        h = forward(spec, spec.init(rng, P, scale=3.0), X)[:, 0]
        return h[:, :N], Y[:N]
    series = SinesTask(terms=2, washout=0, train=N, test=1).series[:N]
    spec = LSTMSpec(1, H)
    w = prepare(spec, spec.init(rng, P), 1e-3 if kind == "sines" else 1.0)
    h = forward(spec, w, teacher_inputs(series[None]))[:, 0]
    return h, series / series.std()


def _time(readout, S, Y, repeats, budget):
    """Median seconds per candidate of ``readout.fit`` (fewer candidates if one is very slow)."""
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            t0 = time.perf_counter()
            readout.fit(S[:1], Y)
            one = time.perf_counter() - t0
            if one * len(S) > budget:  # slow solver: time single candidates
                times.append(one)
                continue
            t0 = time.perf_counter()
            readout.fit(S, Y)
            times.append((time.perf_counter() - t0) / len(S))
    return float(np.median(times))


def run_timing(repeats, P=20, budget=20.0):
    shapes = [("anbncn", 175, 4), ("sines", 300, 10), ("long", 1000, 30), ("long", 3000, 30)]
    readouts = [
        ("Linear (pinv)", lambda O: Linear()),
        ("SVR liblinear", lambda O: SVR(C=1.0, epsilon=0.01)),
        ("SVR liblinear, max_samples=200", lambda O: SVR(C=1.0, epsilon=0.01, max_samples=200)),
        ("SVR libsvm", lambda O: SVR(C=1.0, epsilon=0.01, solver="libsvm")),
        ("SVC liblinear", lambda O: SVC(C=1.0)),
        ("SVC libsvm", lambda O: SVC(C=1.0, solver="libsvm")),
    ]
    rng = np.random.default_rng(0)
    print(f"\n### Readout fit time per candidate (ms; median of {repeats}; {P} candidates per fit call)\n")
    head = " | ".join(f"{k} N={N} H={H}" for k, N, H in shapes)
    print(f"| readout | {head} |")
    print("|---|" + "---:|" * len(shapes))
    data = [_states(k, N, H, P, rng) for k, N, H in shapes]
    fwd = []
    for (k, N, H), (S, Y) in zip(shapes, data):
        spec = LSTMSpec(4 if k == "anbncn" else 1, H)
        g = spec.init(rng, P)
        X = np.zeros((1, N, spec.n_inputs))
        t0 = time.perf_counter()
        for _ in range(repeats):
            forward(spec, g, X)
        fwd.append((time.perf_counter() - t0) / repeats / P)
    base = [_time(Linear(), S, Y, repeats, budget) for S, Y in data]
    print("| LSTM forward (for scale) | " + " | ".join(f"{f * 1e3:.3f}" for f in fwd) + " |")
    for name, make in readouts:
        cells = []
        for (k, N, H), (S, Y), b in zip(shapes, data, base):
            is_svc = name.startswith("SVC")
            Yk = (Y > 0.5).astype(float) if is_svc else Y
            if is_svc and k != "anbncn":
                Yk = (Y > 0).astype(float)
            t = _time(make(Yk.shape[1]), S, Yk, repeats, budget)
            cells.append(f"{t * 1e3:.3f}" + ("" if name.startswith("Linear") else f" ({t / b:.0f}x)"))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n(Nx) = time / Linear's on the same states. a^n b^n c^n has 4 outputs: an SVM readout fits 4 machines.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--long", type=int, default=10, help="generation factor of the 'linear (long)' row")
    ap.add_argument("--test-max", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 50 generations, 2 timing repeats")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.generations, args.repeats, args.long = 2, 50, 2, 4
    seeds = list(range(args.seeds))
    if not args.timing_only:
        results = run_anbncn(seeds, args.generations, args.long, args.test_max)
        print_anbncn(results, seeds, args.test_max)
    if not args.no_timing:
        run_timing(args.repeats)


if __name__ == "__main__":
    main()
