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


# bytes of one network's float64 recurrent weights above which the kernels read the float32 copy of rounded
# ones: below, they stay in L2 anyway and the conversion costs a little (benchmarks/recurrent32.py: 0.93-0.96x
# at 0.72 MB, 1.07-1.13x at 1.28 MB, 2.4-2.8x at 2.9 and 5.1 MB on a 2 MiB L2); the results are the same
_R32_ABOVE = 1 << 20


def _flat_weights(w, narrow=True):
    """The compiled kernels' view of :class:`~evolino.lstm.LSTMWeights`: C-contiguous arrays
    ``W (P, I, U*H)``, ``R (P, H, U*H)``, ``b (P, U*H)``, ``p_in (P, U-2, H)``, ``p_out (P, H)``.

    Recurrent weights rounded to ``spec.recurrent_dtype`` are passed in it (an exact copy) when a network's
    exceed :data:`_R32_ABOVE` bytes and ``narrow``: the kernels then read half the bytes and compute in the
    biases' dtype, with the same results. A single step reads the weights once, less than the copy costs.
    """
    c = as_arg
    r32 = narrow and w.spec.rounds_recurrent and w.R[0].nbytes > _R32_ABOVE
    R = c(w.R, w.spec.recurrent_dtype) if r32 else c(w.R)
    return c(w.W), R, c(w.b[:, 0]), c(w.p_in[:, 0]), c(w.p_out[:, 0])


def numba_forward(spec, w, X, h0, c0, out, c_last, parallel=None) -> None:
    """Fill ``out`` ``(P, B, T, H)`` and ``c_last`` ``(P, B, H)`` (see :func:`evolino.lstm.forward`);
    ``parallel``: see :func:`spread`."""
    run = _kernels().forward_serial
    dt = spec.dtype
    W, R, b, p_in, p_out = _flat_weights(w)
    X, h0, c0 = as_arg(X, dt), as_arg(h0, dt), as_arg(c0, dt)

    def call(lo, hi):
        run(W[lo:hi], R[lo:hi], b[lo:hi], p_in[lo:hi], p_out[lo:hi], X, h0[lo:hi], c0[lo:hi], out[lo:hi],
            c_last[lo:hi], spec.peepholes, spec.forget_gate)

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

    def call(i, j):
        run(W[i:j], R[i:j], b[i:j], p_in[i:j], p_out[i:j], coef[i:j], h0[i:j], c0[i:j], y0[i:j], X, hist, lo, hi,
            clip, out[i:j], spec.peepholes, spec.forget_gate)

    spread(call, W.shape[0], parallel=parallel)
