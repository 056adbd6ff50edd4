"""T-maze (Bakker 2002): success rate of LSTM policies against the corridor length, evolved or by RPG.

A run succeeds when some candidate reaches the goal arm for both signals (north and
south) within the budget. For every method and corridor length it runs ``--runs``
runs (seeds 0..runs-1) and prints the fraction that succeeded, the median
evaluations and episodes of the successful ones, and the seconds per run.

``rpg`` (recurrent policy gradients, :func:`evolino.rl.rpg.train_rpg`, its own defaults from
``evolino.presets.RPG``: 4 cells with input-output weights) learns from sampled episodes rather
than scored candidates: it gets the same budget in episodes (an evolved candidate plays two, one
per signal, so ``2 * --max-evaluations``), its "evaluations" are episodes, and it is solved when
its deterministic (argmax) policy succeeds on both signals (checked after every batch, uncounted).

Usage::

    python benchmarks/tmaze.py --lengths 10,50,100 --searches esp,cmaes,snes,cosyne --runs 5
    python benchmarks/tmaze.py --lengths 5,10,20,50,100 --searches rpg --runs 5
    python benchmarks/tmaze.py --lengths 100 --searches snes-restarts --cells 4 --runs 20 --first-seed 10

``snes-restarts``: SNES that restarts from its initial mean and step after 20 generations without a
better candidate than the run's best (``patience=20``), which leaves the return-1.95 plateau.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from evolino.presets import RPG
from evolino.rl import evolve_policy
from evolino.rl.rpg import train_rpg
from evolino.rl.tmaze import TMazeTask

# the CLI's pole settings where they apply; CMA-ES with IPOP restarts (its plain runs stop on the return-2 plateau)
OPTIONS = {"esp": {}, "cmaes": {"restarts": "ipop"}, "snes": {}, "xnes": {}, "cosyne": {}, "pgpe": {},
           "snes-restarts": {"patience": 20}}  # SNES restarted after 20 generations without a better candidate
EPISODES_PER_EVALUATION = 2  # an evolved candidate plays both signals


def run_one(N, search, seed, cells, max_evaluations):
    """One run: ``(solved, evaluations, episodes, best mean return of the deterministic policy)``."""
    if search == "rpg":  # its own network (presets.RPG): the measured setting of gradient training
        res = train_rpg(TMazeTask(N), seed=seed, max_evaluations=EPISODES_PER_EVALUATION * max_evaluations)
        return res.solved, res.evaluations, res.evaluations, -float(res.strategy.best[1])
    res = evolve_policy(TMazeTask(N), n_cells=cells, search=search.split("-")[0], seed=seed,
                        max_evaluations=max_evaluations, search_options=OPTIONS[search])
    return res.solved, res.evaluations, EPISODES_PER_EVALUATION * res.evaluations, -float(res.strategy.best[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", default="10,50,100")
    ap.add_argument("--searches", default="esp,cmaes,snes,cosyne")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="runs use seeds first-seed .. first-seed + runs - 1")
    ap.add_argument("--cells", type=int, default=2, help="cells of the evolved policies (rpg: presets.RPG)")
    ap.add_argument("--max-evaluations", type=int, default=10_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",")]
    searches = [s.strip() for s in args.searches.split(",")]
    extra = f"; rpg: {RPG.n_cells} cells + input-output weights, {EPISODES_PER_EVALUATION * args.max_evaluations:,} episodes" \
        if "rpg" in searches else ""
    print(f"# T-maze, {args.runs} runs per cell, LSTM with {args.cells} cells, budget {args.max_evaluations:,}{extra}")
    print("command: python benchmarks/tmaze.py " + " ".join(sys.argv[1:] if argv is None else argv))
    rows = []
    for N in lengths:
        for search in searches:
            for seed in range(args.first_seed, args.first_seed + args.runs):
                t0 = time.perf_counter()
                solved, evals, episodes, best = run_one(N, search, seed, args.cells, args.max_evaluations)
                rows.append({"length": N, "search": search, "seed": seed, "solved": solved, "evaluations": evals,
                             "episodes": episodes, "best_return": best, "seconds": time.perf_counter() - t0})
                print(f"  N={N} {search} seed {seed}: {'solved' if solved else 'FAILED'} "
                      f"{evals} evals ({episodes} episodes), best mean return {best:.2f}, "
                      f"{rows[-1]['seconds']:.0f} s", flush=True)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=1)
    print("\n| corridor length N | search | runs | success rate | median evals (successful runs) "
          "| median episodes (successful runs) | s per run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for N in lengths:
        for search in searches:
            r = [x for x in rows if x["length"] == N and x["search"] == search]
            ok = [x for x in r if x["solved"]]
            med = f"{np.median([x['evaluations'] for x in ok]):,.0f}" if ok else "–"
            med_ep = f"{np.median([x['episodes'] for x in ok]):,.0f}" if ok else "–"
            print(f"| {N} | {search} | {len(r)} | {len(ok)}/{len(r)} | {med} | {med_ep} | "
                  f"{np.mean([x['seconds'] for x in r]):.0f} |")


if __name__ == "__main__":
    main()
