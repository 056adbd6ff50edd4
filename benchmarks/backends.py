"""End-to-end runs on each kernel backend, and the compiled kernels' cold and warm start.

Run from the repository root::

    python benchmarks/backends.py                   # evolino mackey-glass, numpy vs numba x 1, 2 threads
    python benchmarks/backends.py --command sines   # another command (its default arguments)
    python benchmarks/backends.py --compile-only    # only the cold / warm compile times

What is measured, each in a fresh process:

* ``evolino <command> --backend B --no-progress --no-plot`` with ``B`` = numpy, and numba with
  ``NUMBA_NUM_THREADS`` = 1 and 2: wall time and CPU time (user + system, from the child's
  rusage), and the result lines it prints, which must be the same on every backend;
* the compiled start: importing the kernels and running every kernel a float64 run needs
  (forward and closed loop, on one thread and on the kernel threads) with an empty numba cache
  directory (cold: compiling) and again with that directory filled (warm: loading).

On a shared machine the CPU time is the robust column; the wall time shows what threads
bring only when the cores are free.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMPILE = """
import time
t0 = time.perf_counter()
import numpy as np
from evolino import _backend
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare
from evolino.sequences import closed_loop
assert _backend.numba_available()
_backend._kernels()
t1 = time.perf_counter()
spec = LSTMSpec(1, 4)
X = np.zeros((1, 5, 1))
for P in (3, 1):  # P > 1: spread over the kernel threads (two); P = 1: one thread
    w = prepare(spec, spec.init(0, P))
    st = LSTMState(np.zeros((P, 1, 4)), np.zeros((P, 1, 4)))
    forward(spec, w, X, backend="numba")
    closed_loop(spec, w, np.zeros((P, 5, 1)), st, np.zeros((1, 1)), 4, out_range=(-1, 1), backend="numba")
print(f"{t1 - t0:.2f} {time.perf_counter() - t1:.2f}")
"""


def run(cmd, env):
    """(wall s, CPU s of the child, stdout) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def env_with(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def compile_rows():
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for kind in ("cold (empty cache)", "warm (cache filled)"):
            wall, cpu, out = run([sys.executable, "-c", COMPILE], env_with(NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS=2))
            imp, kern = (float(v) for v in out.split())
            rows.append((kind, imp, kern, wall, cpu))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="mackey-glass", help="evolino sub-command (default: mackey-glass)")
    parser.add_argument("--compile-only", action="store_true")
    args = parser.parse_args(argv)
    print(f"# backends benchmark, {os.cpu_count()} cores, load average at start "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    crows = compile_rows()
    print()
    print("| numba start | import s (wall) | compile or load of 4 kernels s (wall) | process wall s | process CPU s |")
    print("|---|---:|---:|---:|---:|")
    for kind, imp, kern, wall, cpu in crows:
        print(f"| {kind} | {imp:.2f} | {kern:.2f} | {wall:.2f} | {cpu:.2f} |")
    if args.compile_only:
        return
    base = [sys.executable, "-m", "evolino.cli", args.command, "--no-progress", "--no-plot"]
    runs = [("numpy", {}), ("numba, 1 thread", {"NUMBA_NUM_THREADS": 1}), ("numba, 2 threads", {"NUMBA_NUM_THREADS": 2})]
    rows = []
    for name, extra in runs:
        backend = name.split(",")[0]
        wall, cpu, out = run(base + ["--backend", backend], env_with(**extra))
        rows.append((name, wall, cpu, out.strip()))
        print(f"  ran {name}: {wall:.1f} s", file=sys.stderr, flush=True)
    print()
    print(f"## evolino {args.command} (default arguments), load average at end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    print("| backend | wall s | CPU s | x numpy (wall) | x numpy (CPU) | same output as numpy |")
    print("|---|---:|---:|---:|---:|---|")
    w0, c0, o0 = rows[0][1], rows[0][2], rows[0][3]
    strip = lambda o: re.sub(r"in [0-9.]+ s", "in _ s", o)  # noqa: E731 (only the timing may differ)
    for name, wall, cpu, out in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {w0 / wall:.2f} | {c0 / cpu:.2f} | "
              f"{'yes' if strip(out) == strip(o0) else 'NO'} |")
    print()
    for name, _, _, out in rows:
        print(f"{name}: " + " / ".join(out.splitlines()))


if __name__ == "__main__":
    main()
