"""Kernel benchmark: the population-batched LSTM forward against a naive per-network loop and PyTorch.

Run from the repository root::

    python benchmarks/kernel.py            # full run, about 3 minutes
    python benchmarks/kernel.py --quick    # smoke run (short sequences, one repeat)
    python benchmarks/kernel.py --baseline-rev eaeed6e   # plus the kernel of a git revision

What is measured (all in one run, BLAS pinned to one thread with threadpoolctl and
``torch.set_num_threads(1)``, because evaluators run one process per core):

* network-steps per second (``P * T / time``) of ``evolino.lstm.forward`` on ``P``
  genomes and one input sequence (``B = 1``) of width ``I = 1``, peepholes and forget
  gate on, for float64 and float32;
* the same kernel with population chunking switched off ("unchunked": the whole
  population in one chunk, so for large ``H * P`` the weights stream from memory
  every step);
* a naive per-network loop: one network at a time, one matrix-vector product per
  step with the stacked ``(4H, I+H+1)`` matrix times ``[x, h, 1]`` (how per-network
  toolkits evaluate), gates with ``scipy.special.expit`` and ``np.tanh``;
* PyTorch CPU (optional, skipped when torch is absent), the faster of: the same
  batched algorithm in torch (``baddbmm`` per step over the population, peepholes
  included) and a loop of ``torch.nn.LSTM`` over the networks (oneDNN kernel; it has
  no peepholes, so it does slightly less work); the table says which;
* GFLOP/s of the batched kernel, counting ``2 * 4H * (H + I)`` flops per
  network-step (the weight products; bias and elementwise work not counted),
  against this machine's single-thread matmul peak (1000x1000, same dtype);
* the batched least-squares readout ``evolino.readout.solve_least_squares`` against
  a per-candidate ``np.linalg.lstsq`` loop, with the largest coefficient difference;
* the compiled backend (``backend="numba"``, serial build, one thread; skipped when numba
  is absent) beside the NumPy kernel, and its "% of limit": with one sequence per network
  every weight is read once per step, so a network-step cannot be faster than reading
  that network's weights (``(I + H + 1) * U * H`` floats) at the cache bandwidth this
  benchmark measures (a vectorized sum over an array of that size, repeated; meaningful from
  H ~ 32, where the weights leave L1);
* the closed loop (``evolino.sequences.closed_loop``, one output fed back) on both
  backends, per network-step and relative to a teacher-forced step of the same backend.

Times are the best of several repeats of the thread's CPU time (the machine is
shared; ``--clock wall`` for wall-clock time). Per-network loops
(naive, nn.LSTM) run on the first ``--loop-networks`` networks only: their cost per
network does not depend on ``P``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_info, threadpool_limits

from evolino import _backend, lstm
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare
from evolino.readout import solve_least_squares
from evolino.sequences import closed_loop

try:
    import torch
except ImportError:  # PyTorch is optional: its column is skipped
    torch = None

SHAPES = [(10, 40, 1000), (32, 64, 1000), (64, 256, 500), (150, 40, 2000)]  # (H, P, T)
NUMBA = _backend.numba_available()
DTYPES = [np.float64, np.float32]
N_INPUTS = 1
TARGET_VS_NAIVE = {10: 10.0, 32: 5.0, 64: 4.0}  # float64 targets of issue 3
TARGET_PEAK_FRACTION = 0.25  # at H=64, float32


# --- timing -----------------------------------------------------------------
# CPU time of the calling thread by default: every timed computation runs on it
# (BLAS and torch are limited to one thread), and on a shared machine it leaves
# out the time the scheduler gives to other processes; ``--clock wall`` switches.
CLOCK = time.thread_time


def best_time(fn, repeat: int) -> float:
    """Smallest time of ``repeat`` calls of ``fn`` (after one warm-up call), by ``CLOCK``."""
    fn()
    best = np.inf
    for _ in range(repeat):
        t = CLOCK()
        fn()
        best = min(best, CLOCK() - t)
    return best


def matmul_peak(dtype, n: int = 1000, repeat: int = 5) -> float:
    """Single-thread GFLOP/s of an ``n x n`` matrix product (BLAS limited by the caller)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    return 2 * n**3 / best_time(lambda: np.matmul(a, b, out=out), repeat) / 1e9


# --- competitors --------------------------------------------------------------
def naive_forward(spec: LSTMSpec, genomes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cell outputs ``(P, T, H)``: one network at a time, one mat-vec product per step.

    Written as a per-network toolkit would: the stacked ``(U*H, I+H+1)`` matrix of a
    network times ``[x_t, h_{t-1}, 1]``, then the gates. Peepholes and forget gate on.
    """
    H, I = spec.n_cells, spec.n_inputs
    T = x.shape[0]
    out = np.empty((genomes.shape[0], T, H), spec.dtype)
    for p, genome in enumerate(genomes):
        w = spec.unpack(genome)
        M = np.concatenate(
            [np.concatenate([w[f"W_{u}"], w[f"R_{u}"], w[f"b_{u}"][:, None]], axis=1) for u in spec.units]
        )  # (4H, I+H+1), rows z, i, f, o
        p_i, p_f, p_o = w["p_i"], w["p_f"], w["p_o"]
        v = np.zeros(I + H + 1, spec.dtype)  # [x, h, 1]
        v[-1] = 1.0
        c = np.zeros(H, spec.dtype)
        out_p = out[p]
        for t in range(T):
            v[:I] = x[t]
            a = M @ v
            z = np.tanh(a[:H])
            i = expit(a[H : 2 * H] + p_i * c)
            f = expit(a[2 * H : 3 * H] + p_f * c)
            c = f * c + i * z
            o = expit(a[3 * H :] + p_o * c)
            h = o * np.tanh(c)
            v[I : I + H] = h
            out_p[t] = h
    return out


def _torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def torch_batched_forward(spec: LSTMSpec, genomes: np.ndarray, x: np.ndarray):
    """The batched algorithm in torch: all ``P`` networks per step with ``baddbmm``, peepholes on."""
    w = spec.unpack(genomes)
    td = _torch_dtype(spec.dtype)
    H = spec.n_cells
    P, T = genomes.shape[0], x.shape[0]
    with torch.inference_mode():
        W = torch.from_numpy(np.concatenate([w[f"W_{u}"] for u in spec.units], axis=1)).to(td)  # (P, 4H, I)
        R = torch.from_numpy(np.concatenate([w[f"R_{u}"] for u in spec.units], axis=1)).to(td)  # (P, 4H, H)
        b = torch.from_numpy(np.concatenate([w[f"b_{u}"] for u in spec.units], axis=1)).to(td)  # (P, 4H)
        W, R = W.transpose(1, 2), R.transpose(1, 2).contiguous()  # (P, I, 4H), (P, H, 4H)
        p_i, p_f, p_o = (torch.from_numpy(w[k]).to(td)[:, None] for k in ("p_i", "p_f", "p_o"))  # (P, 1, H)
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(td)  # (T, I)
        xp = torch.matmul(xt, W) + b[:, None]  # (P, T, 4H): input projections of all steps
        h = torch.zeros(P, 1, H, dtype=td)
        c = torch.zeros(P, 1, H, dtype=td)
        out = torch.empty(P, T, H, dtype=td)
        for t in range(T):
            a = torch.baddbmm(xp[:, t : t + 1], h, R)  # (P, 1, 4H)
            z = torch.tanh(a[..., :H])
            i = torch.sigmoid(torch.addcmul(a[..., H : 2 * H], p_i, c))
            f = torch.sigmoid(torch.addcmul(a[..., 2 * H : 3 * H], p_f, c))
            c = torch.addcmul(f * c, i, z)
            o = torch.sigmoid(torch.addcmul(a[..., 3 * H :], p_o, c))
            h = o * torch.tanh(c)
            out[:, t] = h[:, 0]
    return out.numpy()


def torch_lstm_loop(spec: LSTMSpec, genomes: np.ndarray, x: np.ndarray):
    """A loop of ``torch.nn.LSTM`` over the networks (no peepholes in nn.LSTM: they are ignored)."""
    w = spec.unpack(genomes)
    td = _torch_dtype(spec.dtype)
    H, I = spec.n_cells, spec.n_inputs
    P, T = genomes.shape[0], x.shape[0]
    order = ("i", "f", "z", "o")  # torch's row order: input, forget, cell ("g"), output
    W_ih = torch.from_numpy(np.concatenate([w[f"W_{u}"] for u in order], axis=1)).to(td)  # (P, 4H, I)
    W_hh = torch.from_numpy(np.concatenate([w[f"R_{u}"] for u in order], axis=1)).to(td)  # (P, 4H, H)
    b_ih = torch.from_numpy(np.concatenate([w[f"b_{u}"] for u in order], axis=1)).to(td)  # (P, 4H)
    net = torch.nn.LSTM(I, H).to(td)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(td)[:, None]  # (T, 1, I)
    out = torch.empty(P, T, H, dtype=td)
    with torch.inference_mode():
        net.bias_hh_l0.zero_()
        for p in range(P):
            net.weight_ih_l0.copy_(W_ih[p])
            net.weight_hh_l0.copy_(W_hh[p])
            net.bias_ih_l0.copy_(b_ih[p])
            out[p] = net(xt)[0][:, 0]
    return out.numpy()


def load_kernel_at(rev: str):
    """``evolino/lstm.py`` as of git revision ``rev``, imported as a separate module."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = subprocess.run(["git", "show", f"{rev}:evolino/lstm.py"], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "lstm_baseline.py")
    with open(path, "w") as fh:
        fh.write(src.replace("from ._validate", "from evolino._validate"))
    spec = importlib.util.spec_from_file_location("lstm_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# --- benchmark ------------------------------------------------------------------
def blas_description() -> str:
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        return "BLAS: not found by threadpoolctl"
    parts = []
    for i in infos:
        parts.append(
            f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture', '?')} "
            f"threads={i.get('num_threads')} ({os.path.basename(i.get('filepath', ''))})"
        )
    return "; ".join(parts)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def stream_bandwidth(nbytes: int, dtype, repeat: int) -> float:
    """Bytes/s of reading an array of ``nbytes`` again and again with vector loads: the bound of a
    network-step whose weights are that size and stay in cache (numba, fast-math sum: only a probe)."""
    import numba

    @numba.njit(fastmath=True)
    def read(a, n):
        s = 0.0
        for _ in range(n):
            for i in range(a.size):
                s += a[i]
        return s

    a = np.random.default_rng(0).standard_normal(max(1, nbytes // np.dtype(dtype).itemsize)).astype(dtype)
    n = max(1, int(2e8 // max(nbytes, 1)))  # about 200 MB read per timing
    return n * a.nbytes / best_time(lambda: read(a, n), repeat)


def closed_loop_rows(args):
    """Closed loop vs teacher-forced forward, per network-step, on each backend (float64)."""
    rows = []
    for H, P, T in SHAPES:
        T = min(args.steps or T, 500)
        spec = LSTMSpec(1, H)
        rng = np.random.default_rng(2)
        w = prepare(spec, spec.init(rng, P))
        x = rng.standard_normal((T, 1))
        coef = rng.normal(0, 0.1, (P, H + 1, 1))
        st = LSTMState(np.zeros((P, 1, H)), np.zeros((P, 1, H)))
        row = {"H": H, "P": P, "T": T}
        for be in ("numpy", "numba") if NUMBA else ("numpy",):
            row[f"fwd_{be}"] = best_time(lambda: forward(spec, w, x, backend=be), args.repeat) / (P * T)
            row[f"cl_{be}"] = best_time(lambda: closed_loop(spec, w, coef, st, np.zeros((1, 1)), T, backend=be),
                                        args.repeat) / (P * T)
        rows.append(row)
        print(f"  measured closed loop H={H}", file=sys.stderr, flush=True)
    return rows


def kernel_rows(args, peaks):
    rows = []
    for dtype in DTYPES:
        for H, P, T in SHAPES:
            T = args.steps or T
            spec = LSTMSpec(N_INPUTS, H, dtype=dtype)
            rng = np.random.default_rng(0)
            genomes = spec.init(rng, P)
            x = rng.standard_normal((T, N_INPUTS)).astype(dtype)
            n_loop = min(P, args.loop_networks)
            row = {"dtype": np.dtype(dtype).name, "H": H, "P": P, "T": T}

            ours = forward(spec, genomes, x, backend="numpy")
            row["batched"] = P * T / best_time(lambda: forward(spec, genomes, x, backend="numpy"), args.repeat)
            if NUMBA:
                w = prepare(spec, genomes)
                row["numba_err"] = float(np.abs(forward(spec, w, x, backend="numba") - ours).max())
                row["numba"] = P * T / best_time(lambda: forward(spec, w, x, backend="numba"), args.repeat)
                wbytes = (N_INPUTS + H + 1) * spec.n_units * H * np.dtype(dtype).itemsize
                row["limit"] = stream_bandwidth(wbytes, dtype, args.repeat) / wbytes  # network-steps/s
            saved = lstm._CHUNK_BYTES
            lstm._CHUNK_BYTES = 1 << 62  # the whole population in one chunk
            try:
                row["unchunked"] = P * T / best_time(lambda: forward(spec, genomes, x, backend="numpy"),
                                                     args.repeat)
            finally:
                lstm._CHUNK_BYTES = saved

            if args.baseline is not None:
                b_spec = args.baseline.LSTMSpec(N_INPUTS, H, dtype=dtype)
                row["baseline"] = P * T / best_time(lambda: args.baseline.forward(b_spec, genomes, x), args.repeat)

            naive = naive_forward(spec, genomes[:n_loop], x)
            row["naive_err"] = float(np.abs(naive - ours[:n_loop]).max())
            row["naive"] = n_loop * T / best_time(lambda: naive_forward(spec, genomes[:n_loop], x), args.loop_repeat)

            if torch is not None:
                tb = torch_batched_forward(spec, genomes, x)
                row["torch_err"] = float(np.abs(tb - ours).max())
                t_bmm = P * T / best_time(lambda: torch_batched_forward(spec, genomes, x), args.repeat)
                t_loop = n_loop * T / best_time(lambda: torch_lstm_loop(spec, genomes[:n_loop], x), args.loop_repeat)
                row["torch"], row["torch_kind"] = max((t_bmm, "bmm"), (t_loop, "nn.LSTM"))
                row["torch_bmm"], row["torch_lstm"] = t_bmm, t_loop
            flops = 2 * spec.n_units * H * (H + N_INPUTS)
            row["gflops"] = row["batched"] * flops / 1e9
            row["peak_frac"] = row["gflops"] / peaks[row["dtype"]]
            rows.append(row)
            print(f"  measured {row['dtype']} H={H} P={P} T={T}", file=sys.stderr, flush=True)
    return rows


def readout_rows(args):
    rows = []
    for H, P, _ in SHAPES:
        N = args.steps or 1000
        rng = np.random.default_rng(1)
        S = np.tanh(rng.standard_normal((P, N, H)))  # states, like LSTM cell outputs
        Y = rng.standard_normal((N, 1))
        A = np.concatenate([S, np.ones((P, N, 1))], axis=2)  # [S, 1]: bias column

        def loop():
            return np.stack([np.linalg.lstsq(A[p], Y, rcond=None)[0] for p in range(P)])

        W = solve_least_squares(S, Y)
        diff = float(np.abs(W - loop()).max())
        t_ours = best_time(lambda: solve_least_squares(S, Y), args.repeat)
        t_loop = best_time(loop, args.repeat)
        rows.append({"H": H, "P": P, "N": N, "ours": t_ours, "loop": t_loop, "diff": diff})
    return rows


def fmt_rate(v) -> str:
    return f"{v / 1e6:.3f}" if v is not None else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: T=50, one repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats of the batched timings (best is kept)")
    parser.add_argument("--loop-repeat", type=int, default=3, help="repeats of the per-network loops")
    parser.add_argument("--loop-networks", type=int, default=64, help="networks run by the per-network loops")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: thread CPU time (default, robust on a shared machine); wall: perf_counter")
    parser.add_argument("--baseline-rev", default=None,
                        help="also time evolino/lstm.py as of this git revision (column 'baseline')")
    args = parser.parse_args(argv)
    args.baseline = load_kernel_at(args.baseline_rev) if args.baseline_rev else None
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    args.steps = 50 if args.quick else None
    if args.quick:
        args.repeat = args.loop_repeat = 1

    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        print("# evolino kernel benchmark")
        print(f"python {platform.python_version()}, numpy {np.__version__}, CPU: {cpu_model()} ({os.cpu_count()} cores)")
        print(f"BLAS (threadpoolctl, pinned to 1 thread for all timings): {blas_description()}")
        core = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        print("environment: " + ", ".join(f"{k}={v}" for k, v in core.items()))
        if torch is not None:
            print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, oneDNN={torch.backends.mkldnn.is_available()}")
        else:
            print("torch: not installed, its column is skipped")
        print(f"load average at start: {load_average()} (shared machine: times are the best of repeats)")
        clock = "thread CPU time (time.thread_time)" if args.clock == "cpu" else "wall clock (time.perf_counter)"
        print(f"timer: {clock}; batched runs: best of {args.repeat}, per-network loops: best of {args.loop_repeat}")
        peaks = {np.dtype(d).name: matmul_peak(d) for d in DTYPES}
        print("single-thread matmul peak (1000x1000): " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()))
        print(f"chunk size: evolino.lstm._CHUNK_BYTES = {lstm._CHUNK_BYTES} bytes of recurrent weights per chunk")
        if NUMBA:
            import numba

            numba.set_num_threads(1)  # the serial build, as in one evaluator process
            print(f"numba {numba.__version__}: backend='numba' timed on 1 thread")
        else:
            print("numba: not installed, its columns are skipped")
        rows = kernel_rows(args, peaks)
        crows = closed_loop_rows(args)
        rrows = readout_rows(args)
        print(f"load average at end: {load_average()}")

    print()
    print(f"## LSTM forward, network-steps/s (millions), B=1 sequence of width I={N_INPUTS}, peepholes + forget gate")
    print()
    base = args.baseline is not None
    print(
        "| dtype | H | P | T | batched | unchunked | naive loop | torch | torch kind | x naive | x torch "
        "| chunked / unchunked | GFLOP/s | % of peak |" + (f" baseline {args.baseline_rev} | x baseline |" if base else "")
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if base else ""))
    for r in rows:
        t = r.get("torch")
        print(
            f"| {r['dtype']} | {r['H']} | {r['P']} | {r['T']} | {fmt_rate(r['batched'])} | {fmt_rate(r['unchunked'])} "
            f"| {fmt_rate(r['naive'])} | {fmt_rate(t)} | {r.get('torch_kind', '-')} | {r['batched'] / r['naive']:.1f} "
            f"| {r['batched'] / t if t else float('nan'):.2f} | {r['batched'] / r['unchunked']:.2f} "
            f"| {r['gflops']:.1f} | {100 * r['peak_frac']:.1f} |"
            + (f" {fmt_rate(r['baseline'])} | {r['batched'] / r['baseline']:.2f} |" if base else "")
        )
    print()
    if torch is not None:
        print("torch detail (M network-steps/s): " + "; ".join(
            f"{r['dtype']} H={r['H']}: bmm {fmt_rate(r['torch_bmm'])}, nn.LSTM loop {fmt_rate(r['torch_lstm'])}"
            for r in rows))
    print("max |naive - batched| = " + ", ".join(f"{r['naive_err']:.1e}" for r in rows)
          + ("; max |torch bmm - batched| = " + ", ".join(f"{r['torch_err']:.1e}" for r in rows) if torch else ""))
    print()
    print("targets (issue 3):")
    for r in rows:
        if r["dtype"] == "float64" and r["H"] in TARGET_VS_NAIVE:
            goal = TARGET_VS_NAIVE[r["H"]]
            ok = r["batched"] / r["naive"] >= goal
            print(f"  float64 H={r['H']}: x naive {r['batched'] / r['naive']:.1f} >= {goal:g}: {'met' if ok else 'NOT met'}")
        if r.get("torch"):
            ok = r["batched"] > r["torch"]
            print(f"  {r['dtype']} H={r['H']}: faster than torch ({r['batched'] / r['torch']:.2f}x): {'met' if ok else 'NOT met'}")
    for r in rows:
        if r["dtype"] == "float32" and r["H"] == 64:
            ok = r["peak_frac"] >= TARGET_PEAK_FRACTION
            print(f"  float32 H=64: {100 * r['peak_frac']:.1f}% of peak >= 25%: {'met' if ok else 'NOT met'}")
    if NUMBA:
        print()
        print("## Compiled backend (numba, serial build, 1 thread) beside the NumPy kernel, M network-steps/s")
        print()
        print("| dtype | H | P | T | numpy | numba | numba / numpy | limit | numba % of limit | numpy % of limit "
              "| max abs diff |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['dtype']} | {r['H']} | {r['P']} | {r['T']} | {fmt_rate(r['batched'])} | {fmt_rate(r['numba'])} "
                  f"| {r['numba'] / r['batched']:.2f} | {fmt_rate(r['limit'])} | {100 * r['numba'] / r['limit']:.0f} "
                  f"| {100 * r['batched'] / r['limit']:.0f} | {r['numba_err']:.1e} |")
        print()
        print("targets (issue 18): numba >= 2x numpy in float64, >= 2.5x in float32; >= 70% of the limit at H >= 32")
        for r in rows:
            goal = 2.0 if r["dtype"] == "float64" else 2.5
            x = r["numba"] / r["batched"]
            print(f"  {r['dtype']} H={r['H']}: {x:.2f}x >= {goal}: {'met' if x >= goal else 'NOT met'}"
                  + (f"; {100 * r['numba'] / r['limit']:.0f}% of limit >= 70%: "
                     f"{'met' if r['numba'] >= 0.7 * r['limit'] else 'NOT met'}" if r["H"] >= 32 else ""))
    print()
    print("## Closed loop (one output fed back, float64, B=1) vs a teacher-forced step, us per network-step")
    print()
    bes = ("numpy", "numba") if NUMBA else ("numpy",)
    print("| H | P | T | " + " | ".join(f"{b} forward | {b} closed loop | {b} ratio" for b in bes) + " |")
    print("|---:|---:|---:|" + "---:|---:|---:|" * len(bes))
    for r in crows:
        print(f"| {r['H']} | {r['P']} | {r['T']} | " + " | ".join(
            f"{1e6 * r[f'fwd_{b}']:.2f} | {1e6 * r[f'cl_{b}']:.2f} | {r[f'cl_{b}'] / r[f'fwd_{b}']:.2f}" for b in bes)
            + " |")
    if NUMBA:
        r = next(r for r in crows if r["H"] == 150)
        x = r["cl_numba"] / r["fwd_numba"]
        print(f"target (issue 18): closed loop <= 1.2x a teacher-forced step at H=150 (numba): {x:.2f}x, "
              f"{'met' if x <= 1.2 else 'NOT met'}")
    print()
    print("## Readout: batched least squares vs per-candidate np.linalg.lstsq (float64, 1 output, BLAS 1 thread)")
    print()
    print("| H | P | T | solve_least_squares ms | lstsq loop ms | speed-up | max abs coef diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rrows:
        print(
            f"| {r['H']} | {r['P']} | {r['N']} | {1e3 * r['ours']:.2f} | {1e3 * r['loop']:.2f} "
            f"| {r['loop'] / r['ours']:.1f} | {r['diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
