"""Sequence plumbing on top of the kernel: teacher forcing, the closed loop, padded batches.

Input convention for networks with output feedback (generation tasks): the
network's input at step ``t`` is ``[X[t], Y[t-1]]`` (external inputs, if any,
then the previous target, 0 at ``t = 0``) and its output is the prediction of
``Y[t]``. Teacher forcing feeds the true ``Y[t-1]``; the closed loop feeds the
network's own previous output. All inputs here are raw: the input scaling lives
in the prepared weights (:func:`evolino.lstm.prepare`).
"""

from __future__ import annotations

import numpy as np

from ._backend import numba_closed_loop, resolve_backend
from .lstm import _CHUNK_BYTES, LSTMState, _as_weights, step

# Recurrent weights per population chunk of the NumPy closed loop: larger than the forward kernel's
# chunks because every step here pays about 20 NumPy calls per chunk (measured at H=150, P=40: 84,
# 41 and 67 us per network-step with 1, 4-5 and all 40 networks per chunk).
_LOOP_CHUNK_BYTES = 4 * _CHUNK_BYTES

__all__ = ["teacher_inputs", "lag_features", "input_history", "with_lags", "closed_loop", "SequenceBatch"]


def teacher_inputs(Y: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
    """Network inputs for teacher forcing: ``[X[t], Y[t-1]]`` with ``Y[-1] = 0``.

    ``Y`` ``(B, T, O)``, ``X`` ``(B, T, I_ext)`` or None -> ``(B, T, I_ext + O)``.
    """
    prev = np.zeros_like(Y)
    prev[:, 1:] = Y[:, :-1]
    return prev if X is None else np.concatenate([X.astype(Y.dtype, copy=False), prev], axis=-1)


def lag_features(inputs: np.ndarray, lags: int, fill=0.0) -> np.ndarray:
    """The readout's view of the inputs: at step ``t``, the network inputs of steps ``t, t-1, ..., t-lags+1``.

    ``inputs`` ``(B, T, I)`` -> ``(B, T, lags * I)``, the current step's input first; steps before
    the start are ``fill`` (scalar or ``(I,)``; 0 in standardized units). With feedback the input at
    ``t`` holds ``Y[t-1]``, so a readout on these alone is a linear autoregression of order ``lags``.
    """
    B, T, I = inputs.shape
    F = np.empty((B, T, lags * I), inputs.dtype)
    F[:] = np.tile(np.broadcast_to(np.asarray(fill, inputs.dtype), (I,)), lags)
    for k in range(min(lags, T)):  # lags longer than the sequence stay ``fill`` throughout
        F[:, k:, k * I : (k + 1) * I] = inputs[:, : T - k]
    return F


def input_history(inputs: np.ndarray, starts, k: int, fill=0.0) -> np.ndarray:
    """The inputs of the ``k`` steps before each of ``starts``, oldest first: what a closed loop's lag
    features need before its first step (:func:`closed_loop`'s ``history``).

    ``inputs`` ``(B, T, I)``, ``starts`` ``(K,)`` -> ``(B, K, k, I)``; steps before the start of the
    sequence are ``fill`` (as in :func:`lag_features`).
    """
    idx = np.asarray(starts)[:, None] - k + np.arange(k)  # (K, k)
    fill = np.broadcast_to(np.asarray(fill, inputs.dtype), (inputs.shape[-1],))
    return np.where((idx >= 0)[None, :, :, None], inputs[:, np.maximum(idx, 0)], fill)


def with_lags(S: np.ndarray, F: np.ndarray | None, gain=None) -> np.ndarray:
    """Readout features: cell outputs ``S`` ``(P, N, H)`` followed by lag features ``F`` ``(N, L)``
    shared by the population, times ``gain`` ``(P,)`` if given (None: ``S`` itself) -> ``(P, N, H + L)``."""
    if F is None or F.shape[-1] == 0:
        return S
    F = np.broadcast_to(F.astype(S.dtype, copy=False), (S.shape[0],) + F.shape)
    if gain is not None:
        F = F * np.asarray(gain, S.dtype)[:, None, None]
    return np.concatenate([S, F], axis=-1)


def closed_loop(spec, weights, coef, state, y_prev, n_steps, X=None, out_map=None, *, out_range=None,
                lags=0, history=None, backend="auto"):
    """Generate ``n_steps`` outputs of ``P`` networks feeding back their own output.

    Parameters
    ----------
    spec : LSTMSpec
    weights : LSTMWeights of P networks (input scaling folded in by :func:`~evolino.lstm.prepare`)
    coef : (P, H + lags * I + 1, O) readout weights (cell outputs, lag features, bias)
    state : LSTMState, ``(P, B, H)`` after the teacher-forced prefix
    y_prev : (B, O) or (P, B, O)
        The last true target, the input of the first generated step.
    X : (B, n_steps, I_ext) external inputs, or None
    out_map : callable, optional
        ``out_map(y (P, B, O)) -> (P, B, O)`` applied to every output before it is
        fed back and stored (NumPy backend only: a Python callable cannot run compiled).
    out_range : (lo, hi), floats or arrays of shape (O,), optional
        Outputs are NaN -> 0 then clipped to ``[lo, hi]`` before they are fed back and
        stored (a diverging network stays finite); runs on every backend.
    lags : int, default=0
        The readout also reads the network inputs of the last ``lags`` steps (:func:`lag_features`).
    history : (B, lags - 1, I), optional
        With ``lags > 1``: the network inputs of the ``lags - 1`` steps before the first generated
        one, oldest first (required then).
    backend : {"auto", "numpy", "numba"}, default="auto"
        See :func:`evolino.lstm.forward`; ``out_map`` forces NumPy.

    Returns
    -------
    (P, B, n_steps, O)
    """
    weights = _as_weights(spec, weights)
    P, B = state.h.shape[:2]
    O = coef.shape[-1]
    out = np.empty((P, B, n_steps, O), spec.dtype)
    y0 = np.broadcast_to(y_prev, (P, B, O)).astype(spec.dtype)
    hist = None
    if lags:  # the inputs of the last lags steps, newest first; every step shifts them and puts its own first
        hist = np.zeros((B, lags, spec.n_inputs), spec.dtype)
        if lags > 1:
            hist[:, : lags - 1] = np.asarray(history)[:, ::-1][:, : lags - 1]
    if out_map is None and resolve_backend(backend) == "numba":
        X_ = np.zeros((B, n_steps, 0), spec.dtype) if X is None else X
        numba_closed_loop(spec, weights, coef, state.h, state.c, y0, X_, out_range, out, hist)
        return out
    buf = None if hist is None else np.broadcast_to(hist, (P,) + hist.shape).copy()  # one buffer per network
    if out_range is not None:
        lo, hi = out_range
        out_map = lambda y: np.clip(np.nan_to_num(y, nan=0.0), lo, hi)  # noqa: E731
    # population chunks whose weights stay in cache over all steps (as in the forward kernel)
    UH = weights.W.shape[2]
    chunk = max(1, min(P, _LOOP_CHUNK_BYTES // (spec.n_cells * UH * np.dtype(spec.dtype).itemsize * max(1, B // 4))))
    for s0 in range(0, P, chunk):
        sl = slice(s0, min(P, s0 + chunk))
        w = weights._replace(W=weights.W[sl], R=weights.R[sl], b=weights.b[sl], p_in=weights.p_in[sl],
                             p_out=weights.p_out[sl])
        _closed_loop_chunk(spec, w, coef[sl], LSTMState(state.h[sl], state.c[sl]), y0[sl], X, out_map, out[sl],
                           None if buf is None else buf[sl])
    return out


def _closed_loop_chunk(spec, weights, coef, state, y, X, out_map, out, buf=None):
    """:func:`closed_loop` of one population chunk (NumPy), writing ``out`` ``(n, B, n_steps, O)``;
    ``buf`` ``(n, B, lags, I)``: the lag features' inputs, newest first."""
    n, B = state.h.shape[:2]
    H = state.h.shape[-1]
    Wout, bout = coef[:, None, :H, :], coef[:, None, -1:, :]  # (n,1,H,O), (n,1,1,O)
    Wlag = None if buf is None else coef[:, None, H:-1, :]  # (n,1,lags*I,O)
    for t in range(out.shape[2]):
        x = y
        if X is not None:
            x = np.concatenate([np.broadcast_to(X[:, t], (n, B, X.shape[-1])), y], axis=-1)
        state = step(spec, weights, state, x, backend="numpy")
        y = (state.h[:, :, None, :] @ Wout + bout)[:, :, 0, :]
        if buf is not None:
            buf[:, :, 1:] = buf[:, :, :-1].copy()
            buf[:, :, 0] = x
            y = y + (buf.reshape(n, B, 1, -1) @ Wlag)[:, :, 0, :]
        if out_map is not None:
            y = out_map(y)
        out[:, :, t] = y


class SequenceBatch:
    """Sequences ``(T_i, F)`` padded at the end into one array ``X`` ``(B, T_max, F)``.

    Padding follows each sequence's real steps, so the causal LSTM never sees it
    before a real step. Steps are addressed by flat indices into ``B * T_max``.

    Parameters
    ----------
    seqs : list of arrays of shape (T_i, F)
    dtype : numpy dtype, default=float64
    """

    def __init__(self, seqs, dtype=np.float64):
        self.lengths = np.array([len(s) for s in seqs])
        self.T = int(self.lengths.max())
        self.X = np.zeros((len(seqs), self.T, np.shape(seqs[0])[1]), dtype)
        for b, s in enumerate(seqs):
            self.X[b, : len(s)] = s

    @property
    def equal_lengths(self) -> bool:
        return bool(np.all(self.lengths == self.T))

    def steps(self, b, start, stop) -> np.ndarray:
        """Flat indices of steps ``[start, stop)`` of sequence ``b``."""
        return b * self.T + np.arange(start, stop)

    def last(self) -> np.ndarray:
        """Flat index of every sequence's last step, ``(B,)``."""
        return np.arange(len(self.lengths)) * self.T + self.lengths - 1

    def unpad(self, A):
        """``(B, T_max, ...)`` -> list of ``(T_i, ...)``."""
        return [A[b, :n] for b, n in enumerate(self.lengths)]
