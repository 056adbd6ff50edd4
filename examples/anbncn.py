"""A context-sensitive language: a^n b^n c^n, learned from n <= 10 and tested far beyond.

The network reads a string ``S a^n b^n c^n T`` one symbol at a time and predicts, at
every step, the set of symbols that may come next (:class:`evolino.tasks.AnbncnTask`,
Gers & Schmidhuber 2001). Once the first ``b`` arrives, the rest of the string is
determined: the network must count the ``a``'s. A string is *accepted* when every
prediction is right; the generalization range is the largest ``N`` with all
``n <= N`` accepted. Settings: :data:`evolino.presets.ANBNCN`.

Run::

    python examples/anbncn.py [--generations 200] [--test-max 200] [--readout linear|svc] [--out anbncn.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evolino import EvolinoRegressor
from evolino.presets import ANBNCN
from evolino.tasks import AnbncnTask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--popsize", type=int, default=ANBNCN.popsize)
    ap.add_argument("--train-max", type=int, default=10)
    ap.add_argument("--test-max", type=int, default=200)
    ap.add_argument("--readout", choices=["linear", "svc"], default="linear")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="anbncn.png", help="figure path")
    args = ap.parse_args(argv)

    task = AnbncnTask(train_max=args.train_max, test_max=args.test_max)
    # the pseudo-inverse readout on raw one-hot symbols, as in benchmarks/anbncn.py's runs: with the
    # newer defaults (ridge="auto", standardization) seed 0 no longer learns the training strings
    model = EvolinoRegressor(**{**ANBNCN.estimator_kwargs(), "ridge": 0.0, "standardize": False,
                                "readout": args.readout, "popsize": args.popsize,
                                "max_generations": args.generations, "random_state": args.seed})
    t0 = time.perf_counter()
    model.fit(task.train_X, task.train_Y)
    wall = time.perf_counter() - t0
    N, accepted = task.score(model)
    print(f"a^n b^n c^n, trained on n = 1..{args.train_max} ({args.readout} readout, seed {args.seed}), "
          f"fit in {wall:.1f} s")
    print(f"  all n <= {N} accepted; {int(accepted.sum())} of n = 1..{args.test_max} accepted")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 4.5))
    n = np.arange(1, args.test_max + 1)
    a.plot(n, accepted.astype(int), "k.", ms=3)
    a.axvspan(0.5, args.train_max + 0.5, color="gray", alpha=0.25, label="training n")
    a.set_xlabel("n")
    a.set_ylabel("accepted")
    a.set_yticks([0, 1])
    a.set_title(f"a^n b^n c^n: every n <= {N} accepted")
    a.legend(loc="center right", fontsize=8)
    h = model.history_
    b.plot(h["evaluations"], h["best"], label="best so far")
    b.plot(h["evaluations"], h["gen_median"], alpha=0.5, label="generation median")
    b.set_xlabel("evaluations")
    b.set_ylabel("fitness")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"figure: {args.out}")
    return {"generalization_N": N}


if __name__ == "__main__":
    main()
