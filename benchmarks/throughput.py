"""Generation throughput on the configuration of the reference implementation (PyBrain's Evolino).

Reference (issue 5, measured on this machine kind): PyBrain's Evolino, patched to
run on NumPy 2, on the 2-sine protocol with 10 LSTM cells, subpopulations of 8 and
4 networks per chromosome, i.e. 32 networks of 800 steps per generation:
**1.05 s per generation** (about 24k network-steps/s). Target: <= 21 ms (>= 50x).

What one generation costs here, on the same configuration:

- ``fitness+ask/tell``: ``ESP.ask()`` (8 chromosomes x 4 trials = 32 networks of 10
  cells), ``EvolinoFitness`` on those 32 genomes for one 800-step 2-sine sequence
  (washout 100, readout fitted teacher-forced on steps 100-624, validation in closed
  loop on steps 625-799, as the trainer splits it with ``validation=0.25``), then
  ``ESP.tell``. Median over ``--gens`` generations after 5 warm-up generations.
- ``Evolino.fit``: the whole public trainer (same spec, ESP options and data),
  wall time of ``--gens`` generations divided by their number, so loop, history and
  best-so-far bookkeeping are included.

Variants: with peepholes (evolino's default) and without (PyBrain's network has
none), float64 and float32. PyBrain's readout has no bias and scores the fitted
segment itself in closed loop; ours fits a bias and scores a held-out part; the
amount of work per network-step is the same order (one LSTM step + readout).

BLAS is pinned to ``--threads`` threads (default 1) with threadpoolctl, so the
numbers are per core. Both the process CPU time (``time.process_time``) and the wall
time are printed: on a shared machine whose load exceeds its cores the wall time
counts the time other jobs held the core, the CPU time does not; the load average
at the start is printed too. The target is judged on the CPU time, the number that
a dedicated core would give as wall time.

Usage::

    python benchmarks/throughput.py            # 200 generations per variant
    python benchmarks/throughput.py --quick    # 40 generations per variant
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from evolino import Evolino
from evolino.fitness import EvolinoFitness
from evolino.lstm import LSTMSpec
from evolino.readout import Linear
from evolino.search import ESP
from evolino.tasks import superimposed_sines

REFERENCE_S_PER_GEN = 1.05  # PyBrain Evolino, 10 cells, 32 networks x 800 steps (issue 5)
TARGET_S_PER_GEN = 0.021
CELLS, SUBPOP, TRIALS, STEPS, WASHOUT, VALIDATION = 10, 8, 4, 800, 100, 0.25
INPUT_SCALE = 1e-3  # the trainer's default


def _series(dtype):
    return superimposed_sines(STEPS, 2).astype(dtype)  # (800, 1)


def raw_generation_times(peepholes, dtype, gens, warmup, seed=0):
    """Seconds per generation of ESP ask + EvolinoFitness + ESP tell, ``(gens,)``."""
    spec = LSTMSpec(1, CELLS, peepholes=peepholes, dtype=dtype)
    Y = _series(dtype)[None]  # (1, 800, 1)
    split = STEPS - int(round(VALIDATION * (STEPS - WASHOUT)))
    fit = EvolinoFitness.from_data(spec, Y, washout=WASHOUT, validation=STEPS - split, feedback=True,
                                   readout=Linear(), input_scale=INPUT_SCALE)
    es = ESP(spec.n_params, units=spec.cell_slices, subpop_size=SUBPOP, trials=TRIALS, seed=seed,
             init=lambda rng, size: spec.init(rng, size))
    wall, cpu = [], []
    for g in range(warmup + gens):
        t0, c0 = time.perf_counter(), time.process_time()
        genomes = es.ask()  # (32, n_params)
        f = fit(genomes.astype(dtype, copy=False))  # (32,)
        es.tell(f)
        if g >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    assert genomes.shape[0] == SUBPOP * TRIALS
    return np.array(wall), np.array(cpu)


def trainer_time_per_generation(peepholes, dtype, gens, seed=0):
    """Wall seconds per generation of the public ``Evolino.fit`` on the same configuration."""
    tr = Evolino(CELLS, search="esp", washout=WASHOUT, validation=VALIDATION, peepholes=peepholes,
                 max_generations=gens, input_scale=INPUT_SCALE, dtype=dtype, seed=seed,
                 search_options={"subpop_size": SUBPOP, "trials": TRIALS})
    t0, c0 = time.perf_counter(), time.process_time()
    tr.fit(_series(dtype))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert tr.history_["evaluations"][-1] == gens * SUBPOP * TRIALS
    return wall / gens, cpu / gens


def _row(what, peep, dtype, wall, cpu):
    rate = SUBPOP * TRIALS * STEPS / cpu / 1e3
    return (f"| {what} | {peep} | {np.dtype(dtype).name} | {cpu * 1e3:.1f} | {wall * 1e3:.1f} | {rate:.0f}k "
            f"| {REFERENCE_S_PER_GEN / cpu:.0f}x | {REFERENCE_S_PER_GEN / wall:.0f}x "
            f"| {'yes' if cpu <= TARGET_S_PER_GEN else 'NO'} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="40 generations per variant")
    p.add_argument("--gens", type=int, default=None, help="timed generations per variant (default 200)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = p.parse_args(argv)
    gens = args.gens or (40 if args.quick else 200)
    warmup = 5
    with threadpool_limits(limits=args.threads):
        print(f"# generation throughput: {CELLS} cells, {SUBPOP * TRIALS} networks x {STEPS} steps per generation "
              f"(ESP subpop {SUBPOP} x {TRIALS} trials), 2 sines, washout {WASHOUT}, validation {VALIDATION}; "
              f"BLAS threads pinned to {args.threads} (threadpoolctl); {gens} generations after {warmup} warm-up; "
              f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"# reference: PyBrain Evolino {REFERENCE_S_PER_GEN * 1e3:.0f} ms/generation "
              f"({SUBPOP * TRIALS * STEPS / REFERENCE_S_PER_GEN / 1e3:.1f}k network-steps/s); "
              f"target <= {TARGET_S_PER_GEN * 1e3:.0f} ms (>= 50x), judged on CPU time")
        print()
        print("| what | peepholes | dtype | CPU ms/gen (median) | wall ms/gen (median) | network-steps/s (CPU) "
              "| speed-up vs PyBrain (CPU) | speed-up (wall) | target <= 21 ms |")
        print("|" + "---|" * 9)
        for peep in (True, False):
            for dtype in (np.float64, np.float32):
                wall, cpu = raw_generation_times(peep, dtype, gens, warmup)
                print(_row("fitness + ESP ask/tell", peep, dtype, float(np.median(wall)), float(np.median(cpu))),
                      flush=True)
        for peep in (True, False):
            wall, cpu = trainer_time_per_generation(peep, np.float64, gens)
            print(_row("Evolino.fit, whole trainer (mean)", peep, np.float64, wall, cpu), flush=True)


if __name__ == "__main__":
    main()
