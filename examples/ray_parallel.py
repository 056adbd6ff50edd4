"""Parallel evaluation on Ray: the same run, the same result, on two workers.

Evolino's fitness is evaluated serially, on a process pool or on Ray actors
(:mod:`evolino.evaluate`; ``pip install evolino[ray]``); every evaluator gives
bit-identical fitness, so one seed reproduces a run wherever it is evaluated. This
script trains on three superimposed sines twice, serially and on a local Ray instance
with ``--workers`` actors (``--address auto`` joins a running cluster instead of starting one), checks
that the two histories are identical, and plots both fitness curves. On a small problem
Ray's start-up and dispatch dominate; the speed-up needs work per generation
(docs: the scaling page and benchmarks/parallel.py).

Run::

    python examples/ray_parallel.py [--workers 2] [--generations 10] [--address auto] [--out ray.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evolino import Evolino
from evolino.tasks import SinesTask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--cells", type=int, default=20)
    ap.add_argument("--address", default="local", help="Ray cluster address, e.g. auto (default: a new local instance)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="ray.png", help="figure path")
    args = ap.parse_args(argv)

    from evolino.evaluate import Ray

    task = SinesTask(terms=3)
    kw = dict(n_cells=args.cells, input_scale=1e-5, max_generations=args.generations, seed=args.seed)
    runs = {}
    t0 = time.perf_counter()
    serial = Evolino(**kw)
    serial.fit(task.train_series)
    runs["serial"] = (serial.history_, time.perf_counter() - t0)
    with Ray(address=args.address, n_workers=args.workers) as evaluator:
        t0 = time.perf_counter()
        on_ray = Evolino(**kw, evaluator=evaluator)
        on_ray.fit(task.train_series)
        runs[f"Ray, {args.workers} workers"] = (on_ray.history_, time.perf_counter() - t0)
    same = serial.history_["best"] == on_ray.history_["best"] and np.array_equal(serial.network_.genome,
                                                                                 on_ray.network_.genome)
    for name, (h, wall) in runs.items():
        print(f"{name}: best validation NRMSE {h['best'][-1]:.3g} after {h['evaluations'][-1]} evaluations, "
              f"{wall:.1f} s" + (" (including actor start-up)" if name != "serial" else ""))
    print(f"identical histories and networks: {same}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for (name, (h, wall)), style in zip(runs.items(), ["-", "--"]):
        ax.semilogy(h["evaluations"], h["best"], style, lw=2, label=f"{name} ({wall:.1f} s)")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best validation NRMSE")
    ax.set_title(f"3 sines, seed {args.seed}: identical runs: {same}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"figure: {args.out}")
    return {"identical": bool(same)}


if __name__ == "__main__":
    main()
