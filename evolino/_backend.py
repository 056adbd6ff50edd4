"""Choice of the kernel backend: ``"numpy"`` (the reference, always there) or ``"numba"`` (compiled, optional).

``backend="auto"`` (the default everywhere) means numba when it can be imported
(``pip install evolino[fast]``), NumPy otherwise. Both compute the same networks;
results differ by float rounding only (tested to 1e-12 in float64).

The compiled kernels are serial, one network after the other, and release the
GIL; with more than one core (``numba.get_num_threads()``, i.e. ``NUMBA_NUM_THREADS``)
:func:`spread` runs them on a pool of threads, each over its own networks, so the
results are bit-for-bit those of one thread. A thread pool instead of numba's
``parallel=True`` builds: those cost more compile time than all the serial kernels
together (measured: 23 s cold instead of 11 s CPU for the forward pass and the closed
loop) and their OpenMP threads spin after every call. The threads are used only from
the main thread of the main process, never in evaluator workers (they call
:func:`single_threaded`, as they pin BLAS to one thread): workers already share the cores.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from ._validate import EvolinoError

__all__ = ["BACKENDS", "check_backend", "resolve_backend"]

BACKENDS = ("auto", "numpy", "numba")
_NUMBA = None  # None: not tried yet; False: not importable; else the kernel module
_SERIAL = False  # set in evaluator workers: one thread only
_POOL = None  # (threads, executor): the kernel threads, made on first use


def single_threaded() -> None:
    """Use only the serial compiled kernels in this process (evaluator workers share the cores)."""
    global _SERIAL
    _SERIAL = True


def check_backend(backend) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else one clear EvolinoError (a ValueError)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise EvolinoError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    return backend


def _kernels():
    """The compiled kernel module, or False when numba is not installed (imported once, lazily)."""
    global _NUMBA
    if _NUMBA is None:
        try:
            from . import _numba_kernels
        except ImportError:
            _NUMBA = False
        else:
            _NUMBA = _numba_kernels
    return _NUMBA


def numba_available() -> bool:
    """Whether ``backend="numba"`` can run here."""
    return bool(_kernels())


def resolve_backend(backend) -> str:
    """``"numpy"`` or ``"numba"`` for a requested ``backend`` (``"auto"``: numba if installed)."""
    backend = check_backend(backend)
    if backend == "numpy":
        return "numpy"
    if _kernels():
        return "numba"
    if backend == "numba":
        raise ImportError("backend='numba' needs numba: pip install 'evolino[fast]' (or use backend='numpy')")
    return "numpy"


def _parallel(P: int) -> bool:
    """Whether ``P`` networks should be spread over the kernel threads (see the module docstring)."""
    if _SERIAL or P < 2 or threading.current_thread() is not threading.main_thread():
        return False
    if multiprocessing.parent_process() is not None:
        return False
    import numba

    return numba.get_num_threads() > 1


def spread(call, P: int, pieces: int | None = None, parallel: bool | None = None) -> None:
    """``call(lo, hi)`` over contiguous ranges of networks covering ``[0, P)``.

    On the kernel threads when ``parallel`` (default :func:`_parallel`), else in this
    thread, as one call. ``pieces``: ranges to cut (default one per thread; ``P`` for work
    of very unequal size, which the threads then take one at a time). Exceptions re-raise here.
    """
    global _POOL
    if not (_parallel(P) if parallel is None else parallel) or P < 2:
        call(0, P)
        return
    import numba

    threads = numba.get_num_threads()
    if _POOL is None or _POOL[0] != threads:
        _POOL = (threads, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="evolino-kernel"))
    bounds = np.linspace(0, P, min(P, pieces or threads) + 1).round().astype(int)
    futures = [_POOL[1].submit(call, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    wait(futures)  # every range finished (or failed) before anything is raised or returned
    for f in futures:
        f.result()


def as_arg(a, dtype=None) -> np.ndarray:
    """``a`` as a C-contiguous, writeable array for a compiled kernel (a copy only if needed).

    numba compiles a separate version of a kernel for read-only arrays (a broadcast or a
    frozen array), which would cost a second cold compile and a second cache entry.
    """
    return np.require(a, dtype, ("C", "W"))


# Which copy of rounded recurrent weights (``spec.recurrent_dtype``) the kernels read is a question of speed
# only, never of results (the copy is exact). Narrow weights halve the bytes a step reads, but every one is
# converted on the way: measured 2.4-2.8x faster at 300-400 cells on a core with a 2 MiB L2 and AVX-512,
# 0.85x on one with a 0.5 MiB L2 and AVX2, where the conversions, not the reads, bound the step
# (benchmarks/recurrent32.py). So each process measures it once per network shape (:func:`reads_narrow`).
_R32_MIN = 1 << 18  # float64 recurrent weights below 256 KiB stay in cache anyway: read them as they are
_R32_FORCE = None  # None: measure; True / False: always / never read the narrow copy (tests, benchmarks)
_R32_CHOICE: dict = {}  # (I, H, U, peepholes, forget_gate, dtype) -> bool
_R32_LOCK = threading.Lock()


def reads_narrow(spec) -> bool:
    """Whether the compiled kernels read ``spec``'s recurrent weights as their rounded ``recurrent_dtype`` copy.

    Measured on first use for each network shape in the process (a few ms: one random network of that
    shape run over 16 steps from each copy, best of 3) and kept: the narrow copy wins where a step is bound by
    reading the weights, loses where converting them costs more. The results are the same either way.
    """
    if not spec.rounds_recurrent or _R32_FORCE is not None:
        return bool(spec.rounds_recurrent and _R32_FORCE)
    key = (spec.n_inputs, spec.n_cells, spec.n_units, spec.peepholes, spec.forget_gate, np.dtype(spec.dtype).name)
    if spec.n_cells * spec.n_units * spec.n_cells * np.dtype(spec.dtype).itemsize < _R32_MIN:
        return False
    with _R32_LOCK:  # one measurement at a time: the kernel threads would otherwise time each other
        if key not in _R32_CHOICE:
            _R32_CHOICE[key] = _measure_narrow(spec)
        return _R32_CHOICE[key]


def recurrent_reads() -> dict:
    """The choices :func:`reads_narrow` made in this process: ``{"I=1 H=300 ...": "float32" | "float64"}``."""
    return {f"I={k[0]} H={k[1]} U={k[2]} peepholes={k[3]} forget_gate={k[4]} {k[5]}": "float32" if v else k[5]
            for k, v in _R32_CHOICE.items()}


def _measure_narrow(spec, steps=16, repeat=3) -> bool:
    """:func:`reads_narrow`'s measurement: the thread CPU time of the forward kernel from either copy."""
    import time

    from .lstm import prepare

    w = prepare(spec, spec.init(np.random.default_rng(0), 1), 1.0)
    W, R, b, p_in, p_out = _flat_weights(w, narrow=False)
    R32 = as_arg(w.R, spec.recurrent_dtype)
    dt, H = spec.dtype, spec.n_cells
    X = np.zeros((1, steps, spec.n_inputs), dt)
    h0, c0 = np.zeros((1, 1, H), dt), np.zeros((1, 1, H), dt)
    out, c_last = np.empty((1, 1, steps, H), dt), np.empty((1, 1, H), dt)
    run = _kernels().forward_serial
    times = {"wide": [], "narrow": []}
    for k in range(repeat + 1):  # the first round warms the caches (and loads or compiles the kernels)
        for name, r in (("wide", R), ("narrow", R32)):
            c = time.thread_time()
            run(W, r, b, p_in, p_out, X, h0, c0, out, c_last, 1, spec.peepholes, spec.forget_gate)
            if k:
                times[name].append(time.thread_time() - c)
    return min(times["narrow"]) < 0.95 * min(times["wide"])  # a clear gain only: a tie reads the weights as they are


def _flat_weights(w, narrow=True):
    """The compiled kernels' view of :class:`~evolino.lstm.LSTMWeights`: C-contiguous arrays
    ``W (P, I, U*H)``, ``R (P, H, U*H)``, ``b (P, U*H)``, ``p_in (P, U-2, H)``, ``p_out (P, H)``.

    Recurrent weights rounded to ``spec.recurrent_dtype`` are passed in it (an exact copy) when ``narrow``
    and :func:`reads_narrow` says so: the kernels then read half the bytes and compute in the biases' dtype,
    with the same results. A single step reads the weights once, less than the copy costs.
    """
    c = as_arg
    r32 = narrow and reads_narrow(w.spec)
    R = c(w.R, w.spec.recurrent_dtype) if r32 else c(w.R)
    return c(w.W), R, c(w.b[:, 0]), c(w.p_in[:, 0]), c(w.p_out[:, 0])


# sequences the kernels step together (``_numba_kernels._net_steps``): as many as keep their pre-activations
# within this many bytes, so that they stay in L2 beside the group of eight recurrent rows applied to each
# (1.1-1.4x per sequence-step at 100-300 cells with 10-22 sequences on a 0.5 MiB L2; the results are the same)
_GROUP_BYTES = 1 << 17


def _group(B, spec) -> int:
    """Sequences per group for ``B`` sequences of ``spec``'s networks."""
    per = spec.n_units * spec.n_cells * np.dtype(spec.dtype).itemsize
    return max(1, min(B, _GROUP_BYTES // per))


def numba_forward(spec, w, X, h0, c0, out, c_last, parallel=None) -> None:
    """Fill ``out`` ``(P, B, T, H)`` and ``c_last`` ``(P, B, H)`` (see :func:`evolino.lstm.forward`);
    ``parallel``: see :func:`spread`."""
    run = _kernels().forward_serial
    dt = spec.dtype
    W, R, b, p_in, p_out = _flat_weights(w)
    X, h0, c0 = as_arg(X, dt), as_arg(h0, dt), as_arg(c0, dt)
    G = _group(X.shape[0], spec)

    def call(lo, hi):
        run(W[lo:hi], R[lo:hi], b[lo:hi], p_in[lo:hi], p_out[lo:hi], X, h0[lo:hi], c0[lo:hi], out[lo:hi],
            c_last[lo:hi], G, spec.peepholes, spec.forget_gate)

    spread(call, W.shape[0], parallel=parallel)


def numba_step(spec, w, h, c, x):
    """New ``(h, c)`` ``(P, B, H)`` after one step on ``x`` ``(P, B, I)`` (see :func:`evolino.lstm.step`)."""
    dt = spec.dtype
    h_out, c_out = np.empty(h.shape, dt), np.empty(c.shape, dt)
    _kernels().step_serial(*_flat_weights(w, narrow=False), as_arg(x, dt), as_arg(h, dt), as_arg(c, dt), h_out, c_out,
                           spec.peepholes, spec.forget_gate)
    return h_out, c_out


def numba_closed_loop(spec, w, coef, h0, c0, y0, X, out_range, out, hist=None, parallel=None) -> None:
    """Fill ``out`` ``(P, B, n, O)`` (see :func:`evolino.sequences.closed_loop`); ``X`` ``(B, n, I_ext)``;
    ``hist`` ``(B, lags, I)``: the lag inputs before the first step, newest first (None: no lags);
    ``parallel``: see :func:`spread`."""
    run = _kernels().closed_loop_serial
    dt, O = spec.dtype, coef.shape[-1]
    clip = out_range is not None
    lo, hi = (np.broadcast_to(np.asarray(v, dt), (O,)).copy() for v in (out_range if clip else (0, 0)))
    c = as_arg
    if hist is None:
        hist = np.zeros((X.shape[0], 0, spec.n_inputs), dt)
    W, R, b, p_in, p_out = _flat_weights(w)
    coef, h0, c0, y0, X, hist = c(coef, dt), c(h0, dt), c(c0, dt), c(y0, dt), c(X, dt), c(hist, dt)
    G = _group(X.shape[0], spec)

    def call(i, j):
        run(W[i:j], R[i:j], b[i:j], p_in[i:j], p_out[i:j], coef[i:j], h0[i:j], c0[i:j], y0[i:j], X, hist, lo, hi,
            clip, out[i:j], G, spec.peepholes, spec.forget_gate)

    spread(call, W.shape[0], parallel=parallel)
