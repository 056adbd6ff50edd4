"""Benchmark: ``Linear(ridge="auto")`` (GCV over relative ridges) against ``ridge=0`` and a fixed ridge.

Run from the repository root::

    python benchmarks/readout_ridge.py            # full run, a few minutes
    python benchmarks/readout_ridge.py --quick    # smoke run

Four tables, BLAS pinned to one thread (threadpoolctl; evaluators run one process
per core), states of random LSTMs (``LSTMSpec(1, H).init``, peepholes and forget
gate on, ``evolino.lstm.forward``):

1. **Cost** of one ``Linear.fit`` on ``P = 40`` candidates: ``ridge=0`` (Evolino's
   pseudo-inverse), a fixed relative ridge (1e-6) and ``"auto"``; best of
   ``--repeat`` runs of the thread's CPU time. Two inputs: white noise ``u`` with
   target ``sin(u[t+1] + u[t])`` (well conditioned states) and a sine with its next
   value as target (nearly collinear states: ``ridge=0`` sends most candidates to
   the per-candidate ``lstsq`` fallback, "fallback" column).
2. **GCV against brute-force leave-one-out**: for each candidate and grid value,
   ``N`` refits by ``np.linalg.lstsq`` on the penalised system without one row;
   how often GCV picks the LOO-optimal grid value (or a neighbour), and the LOO
   error of GCV's pick relative to the best (the regret).
3. **Held-out one-step error** on noisy Mackey-Glass (next-step prediction,
   teacher-forced): median and best over 40 random networks of the test NRMSE for
   ``ridge=0``, a fixed ridge, ``"auto"``, ``"auto"`` without 0 in its grid, and
   an oracle that picks each network's grid value on the test steps.
4. **Closed-loop sines** (the regime where any penalty hurts): test NRMSE of the
   free run after teacher-forced training, as in ``evolino sines``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from evolino.lstm import LSTMSpec, forward, prepare, step
from evolino.readout import RIDGE_GRID, Linear
from evolino.tasks.mackey_glass import mackey_glass
from evolino.tasks.sines import superimposed_sines

FIXED = 1e-6  # the fixed relative ridge compared with


def best_time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return best


def lstm_states(H, N, P, inputs, seed=0, washout=100):
    """Cell outputs ``(P, N, H)`` of ``P`` random networks driven by ``inputs`` ``(washout + N, 1)``."""
    spec = LSTMSpec(1, H)
    return forward(spec, spec.init(seed, size=P), inputs)[:, washout:]


def cost_rows(args):
    rows = []
    for H in (10, 40, 150):
        for N in args.steps:
            for kind in ("noise", "sine"):
                T = N + 101
                if kind == "noise":
                    u = np.random.default_rng(1).normal(size=(T, 1))
                else:
                    u = np.sin(0.2 * np.arange(T))[:, None]
                S = lstm_states(H, N, args.P, u[:-1])
                Y = np.sin(u[101:] + u[100:-1]) if kind == "noise" else u[101:]  # predictable targets
                r0 = Linear(0.0).fit(S, Y)
                auto = Linear("auto").fit(S, Y)
                t0 = best_time(lambda: Linear(0.0).fit(S, Y), args.repeat)
                tf = best_time(lambda: Linear(FIXED).fit(S, Y), args.repeat)
                ta = best_time(lambda: Linear("auto").fit(S, Y), args.repeat)
                fallback = fallback_count(S, Y)
                rows.append(dict(H=H, N=N, kind=kind, t0=t0, tf=tf, ta=ta, fallback=fallback,
                                 zero=int((auto.ridge_ == 0).sum()), med=np.median(auto.ridge_),
                                 same=bool(np.array_equal(r0.coef_[auto.ridge_ == 0], auto.coef_[auto.ridge_ == 0]))))
    return rows


def fallback_count(S, Y):
    """Candidates whose ridge=0 solve takes the lstsq fallback (as evolino.readout decides)."""
    from evolino.readout import _PIVOT_TOL, _centre, _min_pivots

    c = _centre(S, Y)
    d = np.sqrt(np.where(c.live, c.d2, 1.0))
    m = c.live[:, :, None] & c.live[:, None, :]
    Gs = np.where(m, c.G / (d[:, :, None] * d[:, None, :]), 0.0)
    Gs[:, np.arange(S.shape[2]), np.arange(S.shape[2])] = 1.0
    return int((_min_pivots(Gs) <= _PIVOT_TOL).sum())


def _fit_centred(S, Y, lam):
    """Reference weights (H+1, O): centred pinv at lam = 0, penalised augmented lstsq otherwise."""
    if lam == 0:
        sm, ym = S.mean(0), Y.mean(0)
        W = np.linalg.lstsq(S - sm, Y - ym, rcond=None)[0]
        return np.vstack([W, ym - sm @ W])
    N, H = S.shape
    B = np.vstack([np.c_[S, np.ones(N)], np.sqrt(lam) * np.eye(H + 1)[:H]])
    return np.linalg.lstsq(B, np.vstack([Y, np.zeros((H, Y.shape[1]))]), rcond=None)[0]


def loo_brute_force(S, Y, lam):
    N = len(S)
    A = np.c_[S, np.ones(N)]
    keep = np.ones(N, bool)
    err = 0.0
    for i in range(N):
        keep[i] = False
        err += ((A[i] @ _fit_centred(S[keep], Y[keep], lam) - Y[i]) ** 2).sum()
        keep[i] = True
    return err


def noisy_mackey_glass(n, noise, seed=0):
    x = mackey_glass(n)
    return x + noise * x.std() * np.random.default_rng(seed).normal(size=x.shape)


def agreement_rows(args):
    rows = []
    for H, N in args.loo_shapes:
        y = noisy_mackey_glass(N + 101, 0.05)
        S = lstm_states(H, N, args.loo_P, y[:-1], seed=H + N)
        Y = y[101:]
        auto = Linear("auto").fit(S, Y)
        same = near = 0
        regret = []
        for p in range(args.loo_P):
            unit = ((S[p] - S[p].mean(0)) ** 2).sum() / H  # what a relative ridge means for it
            loo = np.array([loo_brute_force(S[p], Y, g * unit) for g in RIDGE_GRID])
            pick = int(np.flatnonzero(RIDGE_GRID == auto.ridge_[p])[0])
            best = int(np.argmin(loo))
            same += pick == best
            near += abs(pick - best) <= 1
            regret.append(loo[pick] / loo[best])
        rows.append(dict(H=H, N=N, P=args.loo_P, same=same, near=near, med=np.median(regret), worst=max(regret)))
    return rows


def nrmse(pred, y):
    return np.sqrt(((pred - y) ** 2).mean(axis=(-2, -1)) / y.var())


def forecast_rows(args):
    rows = []
    n_test, n_max = 1000, max(args.train)
    for noise in (0.0, 0.05):
        y = noisy_mackey_glass(101 + n_max + n_test, noise)
        Y = y[101:]  # the target of a step is the next value
        for H in (10, 40, 150):
            S = lstm_states(H, n_max + n_test, args.P, y[:-1], seed=3)
            te = slice(n_max, None)
            for n_train in args.train:
                tr = slice(n_max - n_train, n_max)  # the steps just before the held-out ones
                row = dict(noise=noise, H=H, N=n_train)
                for name, lin in (("r0", Linear(0.0)), ("fixed", Linear(FIXED)), ("auto", Linear("auto")),
                                  ("auto_no0", Linear("auto", grid=RIDGE_GRID[1:]))):
                    lin.fit(S[:, tr], Y[tr])
                    e = nrmse(lin.predict(S[:, te]), Y[te])
                    row[name] = (np.median(e), e.min())
                    if name == "auto":
                        row["chosen"] = np.median(lin.ridge_)
                # oracle: each network's best grid value judged on the held-out steps themselves
                e = np.min([nrmse(Linear(g).fit(S[:, tr], Y[tr]).predict(S[:, te]), Y[te]) for g in RIDGE_GRID], axis=0)
                row["oracle"] = (np.median(e), e.min())
                rows.append(row)
    return rows


def sines_rows(args):
    rows = []
    for terms, H, scale in ((2, 10, 1e-3), (5, 40, 1e-5), (5, 80, 1e-5)):
        y = superimposed_sines(700, terms)
        spec = LSTMSpec(1, H)
        g = spec.init(0, size=16)
        S, state = forward(spec, g, np.r_[[[0.0]], y[:399]] * scale, return_state=True)
        w = prepare(spec, g)
        row = dict(terms=terms, H=H, scale=scale)
        for name, lin in (("r0", Linear(0.0)), ("fixed", Linear(1e-12)), ("auto", Linear("auto")),
                          ("auto_no0", Linear("auto", grid=RIDGE_GRID[1:]))):
            lin.fit(S[:, 100:400], y[100:400])
            h, c = state
            prev = np.broadcast_to(y[399], (16, 1, 1)).copy()
            out = np.empty((16, 300, 1))
            for t in range(300):  # closed loop: each network's own output is its next input
                h, c = step(spec, w, (h, c), prev * scale)
                prev = lin.predict(h)
                out[:, t] = prev[:, 0]
            e = nrmse(out, y[400:700])
            row[name] = (np.median(e), e.min())
            if name == "auto":
                row["chosen"] = (int((lin.ridge_ == 0).sum()), np.median(lin.ridge_))
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small shapes, one repeat")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    a.P = 40
    a.steps = (1000, 2000)
    a.loo_shapes = ((5, 60), (10, 120), (20, 200), (40, 200))
    a.loo_P = 10
    a.train = (300, 2000)
    if a.quick:
        a.repeat, a.steps, a.loo_shapes, a.loo_P, a.train = 1, (1000,), ((5, 40),), 3, (300,)
    with threadpool_limits(1):
        print(f"## 1. cost of Linear.fit, P={a.P}, ms (thread CPU, best of {a.repeat}, BLAS 1 thread)\n")
        print(f"| H | N | input | ridge=0 | fixed {FIXED:g} | auto | auto / ridge=0 | auto / fixed | "
              "ridge=0 lstsq fallbacks | auto picked 0 (same coef) | auto median ridge |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in cost_rows(a):
            print(f"| {r['H']} | {r['N']} | {r['kind']} | {1e3 * r['t0']:.1f} | {1e3 * r['tf']:.1f} | "
                  f"{1e3 * r['ta']:.1f} | {r['ta'] / r['t0']:.2f} | {r['ta'] / r['tf']:.2f} | {r['fallback']}/{a.P} | "
                  f"{r['zero']}/{a.P} ({'yes' if r['same'] else 'NO'}) | {r['med']:.2g} |", flush=True)
        print("\n## 2. GCV pick vs brute-force leave-one-out pick (noisy Mackey-Glass next step, 5% noise)\n")
        print("| H | N | candidates | same grid value | within one step | median LOO regret | worst LOO regret |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in agreement_rows(a):
            print(f"| {r['H']} | {r['N']} | {r['P']} | {r['same']}/{r['P']} | {r['near']}/{r['P']} | "
                  f"{r['med']:.4f} | {r['worst']:.4f} |", flush=True)
        print(f"\n## 3. held-out one-step NRMSE, Mackey-Glass next step, {a.P} random networks "
              "(median / best; noise = std of added noise / std of series)\n")
        print(f"| noise | H | train steps | ridge=0 | fixed {FIXED:g} | auto | auto, grid without 0 | "
              "oracle (best grid value on the test steps) | auto median ridge |")
        print("|---:|---:|---:|---|---|---|---|---|---:|")
        for r in forecast_rows(a):
            cells = " | ".join(f"{r[k][0]:.3g} / {r[k][1]:.3g}" for k in ("r0", "fixed", "auto", "auto_no0", "oracle"))
            print(f"| {r['noise']:g} | {r['H']} | {r['N']} | {cells} | {r['chosen']:.2g} |", flush=True)
        print("\n## 4. closed-loop sines, 16 random networks, train 300 steps, free run 300 (median / best)\n")
        print("| sines | H | input_scale | ridge=0 | fixed 1e-12 | auto | auto, grid without 0 | auto picked 0 |")
        print("|---:|---:|---:|---|---|---|---|---:|")
        for r in sines_rows(a):
            cells = " | ".join(f"{r[k][0]:.2g} / {r[k][1]:.2g}" for k in ("r0", "fixed", "auto", "auto_no0"))
            print(f"| {r['terms']} | {r['H']} | {r['scale']:g} | {cells} | {r['chosen'][0]}/16 |", flush=True)


if __name__ == "__main__":
    main()
