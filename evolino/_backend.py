"""Choice of the kernel backend: ``"numpy"`` (the reference, always there) or ``"numba"`` (compiled, optional).

``backend="auto"`` (the default everywhere) means numba when it can be imported
(``pip install evolino[fast]``), NumPy otherwise. Both compute the same networks;
results differ by float rounding only (tested to 1e-12 in float64).

The compiled kernels have a serial and a parallel (one thread per network)
build, bit-for-bit equal. The parallel one is used only from the main thread of
the main process, and never in evaluator workers (they call :func:`single_threaded`,
as they pin BLAS to one thread): workers already share the cores, and numba's
threading layers must not be entered by two threads at once.
"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np

from ._validate import EvolinoError

__all__ = ["BACKENDS", "check_backend", "resolve_backend"]

BACKENDS = ("auto", "numpy", "numba")
_NUMBA = None  # None: not tried yet; False: not importable; else the kernel module
_SERIAL = False  # set in evaluator workers: the serial build only


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
    """Whether ``P`` networks should use the parallel build (see the module docstring)."""
    if _SERIAL or P < 2 or threading.current_thread() is not threading.main_thread():
        return False
    if multiprocessing.parent_process() is not None:
        return False
    import numba

    return numba.get_num_threads() > 1


def _flat_weights(w):
    """The compiled kernels' view of :class:`~evolino.lstm.LSTMWeights`: C-contiguous arrays
    ``W (P, I, U*H)``, ``R (P, H, U*H)``, ``b (P, U*H)``, ``p_in (P, U-2, H)``, ``p_out (P, H)``."""
    c = np.ascontiguousarray
    return c(w.W), c(w.R), c(w.b[:, 0]), c(w.p_in[:, 0]), c(w.p_out[:, 0])


def numba_forward(spec, w, X, h0, c0, out, c_last) -> None:
    """Fill ``out`` ``(P, B, T, H)`` and ``c_last`` ``(P, B, H)`` (see :func:`evolino.lstm.forward`)."""
    k = _kernels()
    run = k.forward_parallel if _parallel(w.W.shape[0]) else k.forward_serial
    dt = spec.dtype
    run(*_flat_weights(w), np.ascontiguousarray(X, dt), np.ascontiguousarray(h0, dt), np.ascontiguousarray(c0, dt),
        out, c_last, spec.peepholes, spec.forget_gate)


def numba_step(spec, w, h, c, x):
    """New ``(h, c)`` ``(P, B, H)`` after one step on ``x`` ``(P, B, I)`` (see :func:`evolino.lstm.step`)."""
    dt = spec.dtype
    h_out, c_out = np.empty(h.shape, dt), np.empty(c.shape, dt)
    _kernels().step_serial(*_flat_weights(w), np.ascontiguousarray(x, dt), np.ascontiguousarray(h, dt),
                           np.ascontiguousarray(c, dt), h_out, c_out, spec.peepholes, spec.forget_gate)
    return h_out, c_out


def numba_closed_loop(spec, w, coef, h0, c0, y0, X, out_range, out, hist=None) -> None:
    """Fill ``out`` ``(P, B, n, O)`` (see :func:`evolino.sequences.closed_loop`); ``X`` ``(B, n, I_ext)``;
    ``hist`` ``(B, lags, I)``: the lag inputs before the first step, newest first (None: no lags)."""
    k = _kernels()
    run = k.closed_loop_parallel if _parallel(w.W.shape[0]) else k.closed_loop_serial
    dt, O = spec.dtype, coef.shape[-1]
    clip = out_range is not None
    lo, hi = (np.broadcast_to(np.asarray(v, dt), (O,)).copy() for v in (out_range if clip else (0, 0)))
    c = np.ascontiguousarray
    if hist is None:
        hist = np.zeros((X.shape[0], 0, spec.n_inputs), dt)
    run(*_flat_weights(w), c(coef, dt), c(h0, dt), c(c0, dt), c(y0, dt), c(X, dt), c(hist, dt), lo, hi, clip, out,
        spec.peepholes, spec.forget_gate)
