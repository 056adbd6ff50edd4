"""CPU seconds per pole-balancing evaluation: the NumPy episode loop against the compiled episodes.

Setting: the project's pole default, ``evolino pole --no-velocities`` (double pole without velocities,
LSTM with 2 cells without peepholes and forget gate, standard fitness: steps balanced up to 100,000,
xNES with its default population), on one thread (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` are set to 1 before anything is imported).

What is measured, in one process:

1. a search with the compiled backend records the population of every generation: the workload a
   search really evaluates (early networks fall within tens of steps, later ones balance thousands,
   the solving one 100,000);
2. every recorded generation is scored by :class:`evolino.rl.search.PoleFitness` on both backends, side
   by side (NumPy then compiled, generation after generation), timing the CPU seconds
   (``time.process_time``) of each; the two fitness vectors are compared;
3. the solution's 625-start generalization test (1,000 steps each) and its 100,000-step test, both backends;
4. in fresh processes: the compiled kernels' cold start (empty numba cache: compiling) and warm start
   (cache filled: loading), on one thread and then on two.

Usage::

    python benchmarks/pole_speed.py                # seed 0, every generation
    python benchmarks/pole_speed.py --every 3      # score every third generation only (quicker)
    python benchmarks/pole_speed.py --no-compile   # skip the cold / warm start
    python benchmarks/pole_speed.py --rounding-check  # also: do two NumPy variants agree where the backends differ?

Steps survived are equal on both backends except for networks that balance for a long time in a
rounding-sensitive regime (chattering around ``x' = 0`` and ``u = 0``, where the friction sign and the
minimum force switch): there any change of rounding changes the step of failure. ``--rounding-check``
runs those networks once more with the NumPy loop in lockstep to the end (no switch to plain floats,
``scalar_after=None``), a rounding variant of NumPy itself, and counts where it differs from NumPy too.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from evolino.presets import POLE  # noqa: E402
from evolino.rl import PolicyBatch, PoleTask, evolve_policy, generalization_score, run_episodes  # noqa: E402
from evolino.rl.search import PoleFitness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMPILE = """
import time
t0 = time.perf_counter()
import numpy as np
from evolino.rl import PolicyBatch, PolicySpec, PoleBalancing
from evolino.rl._pole_numba import run_compiled
t1 = time.perf_counter()
env = PoleBalancing(2, velocities=False)
spec = PolicySpec(env.n_obs, 2, peepholes=False, forget_gate=False)
batch = PolicyBatch(spec, spec.init(0, 2))
starts = np.broadcast_to(env.initial_state(1), (2, 1, env.n_state))
times = []
for parallel in (False, True):
    t = time.perf_counter()
    run_compiled(env, batch, starts, 100, False, parallel=parallel)
    times.append(time.perf_counter() - t)
print(f"{t1 - t0:.2f} {times[0]:.2f} {times[1]:.2f}")
"""


class Recorder:
    """An evaluator that keeps every population it scores."""

    def __init__(self):
        self.populations = []

    def evaluate(self, fitness_fn, genomes):
        self.populations.append(np.array(genomes))
        return fitness_fn(genomes)


def cpu(fn):
    """(CPU seconds of this process, result) of ``fn()``."""
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def compile_rows():
    """Cold and warm start of the compiled pole kernels, each in a fresh process (2 threads allowed,
    as in use): the first call compiles (or loads) the kernel, the second spreads it over the threads."""
    rows = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), NUMBA_NUM_THREADS="2")
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for kind in ("cold (empty cache)", "warm (cache filled)"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COMPILE], env=env, capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            imp, serial, parallel = (float(v) for v in out.split())
            rows.append((kind, imp, serial, parallel, wall, cpu_s))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the recorded search (default 0)")
    ap.add_argument("--every", type=int, default=1, help="score every k-th recorded generation (default 1: all)")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold / warm start measurement")
    ap.add_argument("--rounding-check", action="store_true",
                    help="rerun the networks whose steps differ between backends with a NumPy rounding variant")
    args = ap.parse_args(argv)
    print("command: python benchmarks/pole_speed.py " + " ".join(sys.argv[1:] if argv is None else argv))

    task = PoleTask(2, velocities=False, backend="numba")
    spec = task.default_spec(POLE.n_cells, peepholes=False, forget_gate=False)
    run_episodes(task.env, PolicyBatch(spec, spec.init(0, 1)), max_steps=10, backend="numba")  # load / compile
    recorder = Recorder()
    t_search, res = cpu(lambda: evolve_policy(task, spec=spec, search=POLE.search, seed=args.seed,
                                              evaluator=recorder, generalization=False))
    pops = recorder.populations
    print(f"# double pole without velocities, {spec.n_params}-gene LSTM policy (2 cells, no peepholes, no forget "
          f"gate), {POLE.search}, seed {args.seed}: {'solved' if res.solved else 'NOT solved'} after "
          f"{res.evaluations:,} evaluations, {len(pops)} generations ({t_search:.1f} CPU s, compiled, whole search)")

    kw = {"n_poles": 2, "velocities": False}
    fns = {b: PoleFitness(spec, kw, "standard", task.max_steps, backend=b) for b in ("numpy", "numba")}
    chosen = pops[:: max(1, args.every)]
    if pops[-1] is not chosen[-1]:
        chosen.append(pops[-1])  # the solving generation
    cpu_s = {"numpy": 0.0, "numba": 0.0}
    n_eval = n_steps = 0
    differ = []  # (genome, NumPy steps, compiled steps) where the backends disagree
    for g in chosen:
        fit = {}
        for b in ("numpy", "numba"):
            t, fit[b] = cpu(lambda b=b: fns[b](g))
            cpu_s[b] += t
        n_eval += len(g)
        n_steps += int(-fit["numpy"].sum())
        differ += [(g[i], int(-fit["numpy"][i]), int(-fit["numba"][i]))
                   for i in np.flatnonzero(fit["numpy"] != fit["numba"])]
    mismatched = len(differ)
    rows = [(f"fitness of {len(chosen)} recorded generations ({n_steps:,} episode-steps)", n_eval,
             cpu_s["numpy"], cpu_s["numba"])]
    best = PolicyBatch(spec, res.policy.genome[None])
    gen = {}
    for b in ("numpy", "numba"):
        t, gen[b] = cpu(lambda b=b: generalization_score(task.env, best, backend=b))
        gen[b + "_cpu"] = t
    rows.append((f"generalization test of the solution (625 starts x 1,000 steps; score {int(gen['numba'][0])})",
                 1, gen["numpy_cpu"], gen["numba_cpu"]))
    long = {}
    for b in ("numpy", "numba"):
        t, long[b] = cpu(lambda b=b: run_episodes(task.env, best, max_steps=100_000, backend=b).steps[0, 0])
        long[b + "_cpu"] = t
    rows.append((f"100,000-step test of the solution ({long['numba']:,} steps balanced)", 1,
                 long["numpy_cpu"], long["numba_cpu"]))

    print("\n| workload, 1 thread | evaluations | NumPy CPU s | compiled CPU s | NumPy CPU ms / evaluation "
          "| compiled CPU ms / evaluation | ratio NumPy / compiled |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, a, b in rows:
        print(f"| {name} | {n:,} | {a:.2f} | {b:.3f} | {1e3 * a / n:.3f} | {1e3 * b / n:.4f} | {a / b:.1f} |")
    print(f"\nfitness equal on both backends: {n_eval - mismatched:,} of {n_eval:,} evaluations; "
          f"generalization scores {int(gen['numpy'][0])} / {int(gen['numba'][0])}, "
          f"100,000-step test {long['numpy']:,} / {long['numba']:,} steps (NumPy / compiled)")
    per_step = {b: 1e6 * cpu_s[b] / max(n_steps, 1) for b in cpu_s}
    print(f"per episode-step (fitness rows): NumPy {per_step['numpy']:.2f} us, compiled {per_step['numba']:.3f} us")
    if differ:
        low = min(min(a, b) for _, a, b in differ)
        print(f"where the steps differ ({mismatched}), every network balanced at least {low:,} steps on both backends")
    if differ and args.rounding_check:
        G = np.stack([g for g, _, _ in differ])
        lock = run_episodes(task.env, PolicyBatch(spec, G), max_steps=task.max_steps, backend="numpy",
                            scalar_after=None).steps[:, 0]
        same = int(np.sum(lock == [a for _, a, _ in differ]))
        print(f"rounding check: NumPy in lockstep to the end (scalar_after=None) agrees with the default NumPy "
              f"loop on {same} of these {mismatched} networks, with the compiled episodes on "
              f"{int(np.sum(lock == [b for _, _, b in differ]))}")

    if not args.no_compile:
        print("\n| compiled pole kernels | import s (wall) | first call, one thread s (wall) | then on 2 threads s (wall) "
              "| process wall s | process CPU s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, imp, serial, parallel, wall, c in compile_rows():
            print(f"| {kind} | {imp:.2f} | {serial:.2f} | {parallel:.2f} | {wall:.2f} | {c:.2f} |")


if __name__ == "__main__":
    main()
