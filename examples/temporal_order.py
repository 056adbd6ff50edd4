"""Sequence classification with long time lags: the temporal order problem, with EvolinoClassifier.

Task (Hochreiter & Schmidhuber, Neural Computation 1997, experiment 6a, "temporal
order"): a sequence of 100-110 symbols starts with ``B`` and ends with ``E``; all other
symbols are random distractors from ``a, b, c, d`` except two relevant ones, at
steps 10-20 and 50-60, each ``X`` or ``Y``. The class is their order: ``XX``, ``XY``,
``YX`` or ``YY``. It is read at the last step, 40-100 steps after the symbols that
decide it. Symbols are one-hot (8 inputs).

The classifier sees whole sequences (``X`` a list of ``(T_i, 8)`` arrays, ``y`` one
label per sequence). Baselines: chance (25 %) and a logistic regression on the
symbol counts of each sequence, which knows *which* relevant symbols occurred but
not their order (so it cannot tell ``XY`` from ``YX``).

Run::

    python examples/temporal_order.py [--readout linear|svc] [--generations 20] [--seed 0] [--out temporal_order.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix

from evolino import EvolinoClassifier

SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
CLASSES = ("XX", "XY", "YX", "YY")


def temporal_order(n, rng):
    """``n`` sequences (list of ``(T_i, 8)`` one-hot arrays) and their labels ``(n,)``."""
    X, y = [], []
    for _ in range(n):
        T = int(rng.integers(100, 111))
        seq = list(rng.integers(0, 4, T))  # distractors a-d
        seq[0], seq[-1] = SYMBOLS.index("B"), SYMBOLS.index("E")
        first, second = rng.integers(0, 2, 2)  # 0 = X, 1 = Y
        seq[int(rng.integers(10, 21))] = 4 + first
        seq[int(rng.integers(50, 61))] = 4 + second
        X.append(np.eye(len(SYMBOLS))[seq])
        y.append(CLASSES[2 * first + second])
    return X, np.array(y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readout", choices=["linear", "svc"], default="linear")
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--cells", type=int, default=6)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="temporal_order.png", help="figure path")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    X_train, y_train = temporal_order(args.train, rng)
    X_test, y_test = temporal_order(args.test, rng)

    clf = EvolinoClassifier(args.cells, readout=args.readout, input_scale=1.0, init_scale=3.0,
                            search="esp", max_generations=args.generations, search_options={"mutation_scale": 0.3},
                            random_state=args.seed)
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    wall = time.perf_counter() - t0
    acc = clf.score(X_test, y_test)

    counts = lambda X: np.array([x.sum(axis=0) for x in X])  # noqa: E731 - order-blind features
    base = LogisticRegression(max_iter=1000).fit(counts(X_train), y_train).score(counts(X_test), y_test)

    print(f"temporal order, {args.train} training / {args.test} test sequences of 100-110 steps, seed {args.seed}\n")
    print("| model | test accuracy | / chance |")
    print("|---|---:|---:|")
    print("| chance | 0.250 | 1.00 |")
    print(f"| logistic regression on symbol counts (order-blind) | {base:.3f} | {base / 0.25:.2f} |")
    print(f"| EvolinoClassifier ({args.cells} cells, {args.readout} readout, {args.generations} generations) "
          f"| {acc:.3f} | {acc / 0.25:.2f} |")
    print(f"\nfit: {clf.history_['evaluations'][-1]} networks evaluated in {wall:.1f} s; "
          f"validation loss of the chosen network {clf.best_fitness_:.3f}")
    print("\nconfusion matrix (rows: true, columns: predicted)", CLASSES)
    cm = confusion_matrix(y_test, clf.predict(X_test), labels=CLASSES)
    print(cm)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        a.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    a.set_xticks(range(4), CLASSES)
    a.set_yticks(range(4), CLASSES)
    a.set_xlabel("predicted")
    a.set_ylabel("true")
    a.set_title(f"test accuracy {acc:.2f} (order-blind baseline {base:.2f})", fontsize=9)
    h = clf.history_
    b.plot(h["evaluations"], h["best"], label="best so far")
    b.plot(h["evaluations"], h["gen_median"], alpha=0.5, label="generation median")
    b.set_xlabel("evaluations")
    b.set_ylabel("validation loss")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"figure: {args.out}")
    return {"accuracy": acc, "baseline": base}


if __name__ == "__main__":
    main()
