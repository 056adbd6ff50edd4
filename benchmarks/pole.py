"""Double pole balancing: evaluations to solve, beside the CoSyNE JMLR 2008 table.

For each configuration (with / without velocities, standard / damping fitness,
ESP / CMA-ES / SNES / xNES / CoSyNE / PGPE) it runs ``--runs`` independent searches
(seeds 0..runs-1) of an LSTM policy with :func:`evolino.rl.evolve_policy` and reports
the mean and median evaluations to solve over the solved runs and over all runs with
failures counted at the budget, the failures (budget exhausted) and the mean
generalization score of the solutions (625-start test, >= 200 passes). Then it
measures the episode-steps per second of the vectorized simulator (policy +
physics, all candidates in lockstep) against a per-candidate loop.

Usage::

    python benchmarks/pole.py --quick            # 5 runs per configuration
    python benchmarks/pole.py --runs 20          # the full table
    python benchmarks/pole.py --configs novel-standard-esp,novel-standard-cmaes --runs 10
    python benchmarks/pole.py --configs novel-standard-snes --json a.json   # rows to a file ...
    python benchmarks/pole.py --merge a.json b.json                         # ... tables from files

Reference numbers (Gomez, Schmidhuber & Miikkulainen, JMLR 9:937-965, 2008, Tables 3 and 4;
see benchmarks/REFERENCES.md section 4.1 for their status).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from evolino.presets import POLE
from evolino.rl import PolicyBatch, PoleBalancing, PoleParams, PoleTask, evolve_policy, run_episodes

SEARCHES = ("esp", "cmaes", "snes", "xnes", "cosyne", "pgpe", "snes-restarts")
PAPER_NAME = {"esp": "ESP", "cmaes": "CMA-ES", "cosyne": "CoSyNE"}
# method -> (with velocities, without velocities standard, without velocities damping)
PAPER = {
    "ESP": (3800, 7374, 26342),
    "NEAT": (3600, None, 6929),
    "CMA-ES": (895, 3521, 6061),
    "CoSyNE": (954, 1249, 3416),
}
COLUMN = {("vel", "standard"): 0, ("novel", "standard"): 1, ("novel", "damping"): 2}

# name -> (velocities, fitness, search)
CONFIGS = {
    f"{v}-{f}-{s}": (v == "vel", f, s)
    for (v, f) in COLUMN
    for s in SEARCHES
}

# settings of the LSTM policy and strategies (chosen on a few seeds outside the reported runs)
SETTINGS = {
    "n_cells": 2,
    "spec": {},  # PolicySpec options (peepholes, forget_gate), set from the command line
    "esp": {"popsize": 50, "options": {"trials": 5, "mutation_scale": 0.1}},
    "cmaes": {"popsize": None, "options": {"sigma0": 1.0, "restarts": "ipop"}},
    # NES and PGPE: the papers' defaults (population 4 + floor(3 ln n), their learning rates), from mean 0
    "snes": {"popsize": None, "options": {"sigma0": 1.0}},
    "xnes": {"popsize": None, "options": {"sigma0": 1.0}},
    "pgpe": {"popsize": None, "options": {"sigma0": 1.0}},
    "cosyne": {"popsize": 40, "options": {}},
    # the CLI's SNES (evolino.presets.POLE.command_options): step 2, restarted after 60 generations without a
    # better sample; chosen on seeds 0-9 (benchmarks/RESULTS.md "policy search")
    "snes-restarts": {"search": "snes", "popsize": None, "options": POLE.command_options("snes")},
}


def run_config(name, runs, max_evaluations, first_seed=0, log=print, on_run=None):
    velocities, fitness, search = CONFIGS[name]
    task = PoleTask(2, velocities=velocities, fitness=fitness)
    rows = []
    for seed in range(first_seed, first_seed + runs):
        t0 = time.perf_counter()
        res = evolve_policy(task, spec=task.default_spec(SETTINGS["n_cells"], **SETTINGS["spec"]),
                            search=SETTINGS[search].get("search", search),
                            seed=seed,
                            popsize=SETTINGS[search]["popsize"], search_options=SETTINGS[search]["options"],
                            max_evaluations=max_evaluations)
        rows.append({"seed": seed, "solved": res.solved, "evaluations": res.evaluations,
                     "generalization": res.generalization, "seconds": time.perf_counter() - t0})
        log(f"  {name} seed {seed}: {'solved' if res.solved else 'FAILED'} {res.evaluations} evals, "
            f"generalization {res.generalization}, {rows[-1]['seconds']:.0f} s")
        if on_run is not None:
            on_run(rows)
    return rows


def summarize(rows):
    solved = [r for r in rows if r["solved"]]
    ev = np.array([r["evaluations"] for r in solved], float)
    # failures counted at the evaluations they spent (the budget): a lower bound on the mean over all runs
    spent = np.array([r["evaluations"] for r in rows], float)
    bound = float(np.mean(spent))
    gen = np.array([r["generalization"] for r in solved], float)
    return {
        "runs": len(rows), "failures": len(rows) - len(solved),
        "mean": float(ev.mean()) if len(ev) else math.nan,
        "median": float(np.median(ev)) if len(ev) else math.nan,
        "mean_all": bound,
        "median_all": float(np.median(spent)),
        "generalization": float(gen.mean()) if len(gen) else math.nan,
        "seconds": float(np.mean([r["seconds"] for r in rows])),
    }


def fmt(x, digits=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def print_table(results):
    print("\n| task | fitness | search | runs | failures | mean evals (solved runs) | median evals (solved runs) "
          "| mean evals, failures at budget | median evals, failures at budget | mean generalization (/625)"
          " | paper, same method | ours (failures at budget) / paper | paper: ESP / NEAT / CMA-ES / CoSyNE "
          "| s per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, s in results.items():
        velocities, fitness, search = CONFIGS[name]
        col = COLUMN[("vel" if velocities else "novel", fitness)]
        same = PAPER[PAPER_NAME[search]][col] if search in PAPER_NAME else None
        ratio = s["mean_all"] / same if same else math.nan
        paper = " / ".join(fmt(PAPER[m][col]) for m in ("ESP", "NEAT", "CMA-ES", "CoSyNE"))
        task = "double pole, velocities" if velocities else "double pole, no velocities"
        print(f"| {task} | {fitness} | {search} | {s['runs']} | {s['failures']} | {fmt(s['mean'])} | "
              f"{fmt(s['median'])} | {fmt(s['mean_all'])} | {fmt(s.get('median_all'))} | {fmt(s['generalization'])} | "
              f"{fmt(same)} | {fmt(ratio, 2)} | {paper} | "
              f"{fmt(s['seconds'])} |")


# --- simulator throughput -------------------------------------------------------
def _steps_per_second(fn, n_steps):
    t0 = time.perf_counter()
    fn()
    return n_steps / (time.perf_counter() - t0)


def simulator_speed(populations=(1, 10, 100, 1000), steps=200):
    """Episode-steps per second: all P candidates in lockstep vs one candidate at a time."""
    # no failures, so that every episode runs all `steps`: an endless track and no angle limit
    env = PoleBalancing(2, velocities=False, params=PoleParams(track=1e9), failure_angle=1e9)
    spec = PoleTask(2, velocities=False).default_spec(SETTINGS["n_cells"], **SETTINGS["spec"])
    start = env.initial_state(1)
    print("\n| policies P | lockstep (NumPy): episode-steps/s | per-candidate loop, same NumPy code | ratio "
          "| per-candidate loop, plain floats (ScalarPolicy) | ratio lockstep / plain floats |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for P in populations:
        g = spec.init(0, P)
        batch = PolicyBatch(spec, g)
        check = run_episodes(env, batch, start, max_steps=steps)
        assert np.all(check.steps == steps), "the throughput episodes must not fail"
        vec = _steps_per_second(lambda: run_episodes(env, batch, start, max_steps=steps), P * steps)
        n_loop = min(P, 10)  # the loop's rate per candidate does not depend on P
        singles = [PolicyBatch(spec, g[i: i + 1]) for i in range(n_loop)]
        loop = _steps_per_second(lambda: [run_episodes(env, b, start, max_steps=steps) for b in singles],
                                 n_loop * steps)
        s0 = start[0].tolist()
        flt = _steps_per_second(lambda: [env._scalar_episode(b.scalar(0), s0, steps) for b in singles],
                                n_loop * steps)
        rows.append((P, vec, loop, flt))
        print(f"| {P} | {vec:,.0f} | {loop:,.0f} | {vec / loop:.1f} | {flt:,.0f} | {vec / flt:.1f} |")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 runs per configuration")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    ap.add_argument("--max-evaluations", type=int, default=20_000, help="budget per run (a failure beyond it)")
    ap.add_argument("--no-speed", action="store_true", help="skip the simulator throughput table")
    ap.add_argument("--cells", type=int, default=2, help="LSTM memory cells (default 2)")
    ap.add_argument("--no-peepholes", action="store_true", help="LSTM without peephole connections")
    ap.add_argument("--no-forget-gate", action="store_true", help="LSTM without forget gate")
    ap.add_argument("--direct", action="store_true", help="also connect the inputs straight to the outputs")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the per-run rows of every configuration to this file")
    ap.add_argument("--merge", nargs="+", default=None, metavar="FILE",
                    help="print the table from files written by --json (runs of one configuration are pooled)")
    args = ap.parse_args(argv)
    if args.merge:
        pooled = {}
        for path in args.merge:
            with open(path) as fh:
                for name, rows in json.load(fh)["rows"].items():
                    pooled.setdefault(name, []).extend(rows)
        print_table({name: summarize(rows) for name, rows in pooled.items()})
        return
    SETTINGS["n_cells"] = args.cells
    SETTINGS["spec"] = {"peepholes": not args.no_peepholes, "forget_gate": not args.no_forget_gate,
                        "direct": args.direct}
    runs = 5 if args.quick else args.runs
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    n_genes = PoleTask(2, velocities=False).default_spec(SETTINGS["n_cells"], **SETTINGS["spec"]).n_params
    print(f"# double pole balancing, {runs} runs per configuration, LSTM with {SETTINGS['n_cells']} cells "
          f"{SETTINGS['spec']} ({n_genes} genes without velocities), budget {args.max_evaluations:,} evaluations per run")
    print("command: python benchmarks/pole.py " + " ".join(sys.argv[1:] if argv is None else argv))
    results, raw = {}, {}
    for name in names:
        def save(rows, name=name):  # after every run, so a long benchmark leaves its finished runs behind
            raw[name] = rows
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump({"command": " ".join(sys.argv), "settings": SETTINGS, "rows": raw}, fh, indent=1)

        save(run_config(name, runs, args.max_evaluations, first_seed=args.first_seed,
                        log=lambda m: print(m, flush=True), on_run=save))
        results[name] = summarize(raw[name])
    print_table(results)
    if not args.no_speed:
        simulator_speed()


if __name__ == "__main__":
    main()
