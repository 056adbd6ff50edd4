"""T-maze (Bakker 2002): success rate of evolved LSTM policies against the corridor length.

A run succeeds when some candidate reaches the goal arm for both signals (north and
south) within the budget. For every strategy and corridor length it runs ``--runs``
searches (seeds 0..runs-1) and prints the fraction that succeeded, the median
evaluations of the successful ones, and the seconds per run.

Usage::

    python benchmarks/tmaze.py --lengths 10,50,100 --searches esp,cmaes,snes,cosyne --runs 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from evolino.rl import evolve_policy
from evolino.rl.tmaze import TMazeTask

# the CLI's pole settings where they apply; CMA-ES with IPOP restarts (its plain runs stop on the return-2 plateau)
OPTIONS = {"esp": {}, "cmaes": {"restarts": "ipop"}, "snes": {}, "xnes": {}, "cosyne": {}, "pgpe": {}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", default="10,50,100")
    ap.add_argument("--searches", default="esp,cmaes,snes,cosyne")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cells", type=int, default=2)
    ap.add_argument("--max-evaluations", type=int, default=10_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",")]
    searches = [s.strip() for s in args.searches.split(",")]
    print(f"# T-maze, {args.runs} runs per cell, LSTM with {args.cells} cells, budget {args.max_evaluations:,}")
    print("command: python benchmarks/tmaze.py " + " ".join(sys.argv[1:] if argv is None else argv))
    rows = []
    for N in lengths:
        for search in searches:
            for seed in range(args.runs):
                t0 = time.perf_counter()
                res = evolve_policy(TMazeTask(N), n_cells=args.cells, search=search, seed=seed,
                                    max_evaluations=args.max_evaluations, search_options=OPTIONS[search])
                rows.append({"length": N, "search": search, "seed": seed, "solved": res.solved,
                             "evaluations": res.evaluations, "best_return": -float(res.strategy.best[1]),
                             "seconds": time.perf_counter() - t0})
                print(f"  N={N} {search} seed {seed}: {'solved' if res.solved else 'FAILED'} "
                      f"{res.evaluations} evals, best mean return {rows[-1]['best_return']:.2f}, "
                      f"{rows[-1]['seconds']:.0f} s", flush=True)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=1)
    print("\n| corridor length N | search | runs | success rate | median evals (successful runs) | s per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for N in lengths:
        for search in searches:
            r = [x for x in rows if x["length"] == N and x["search"] == search]
            ok = [x["evaluations"] for x in r if x["solved"]]
            med = f"{np.median(ok):,.0f}" if ok else "–"
            print(f"| {N} | {search} | {len(r)} | {len(ok)}/{len(r)} | {med} | "
                  f"{np.mean([x['seconds'] for x in r]):.0f} |")


if __name__ == "__main__":
    main()
