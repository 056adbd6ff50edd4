"""Compiled (numba) kernels behind ``backend="numba"`` of :mod:`evolino.lstm` and :mod:`evolino.sequences`.

Imported only when that backend is used (numba is the optional ``fast`` extra).
The NumPy kernel (:mod:`evolino._chunked`) is the reference; these compute the
same equations (see :mod:`evolino.lstm`) on the same prepared weights
(:class:`~evolino.lstm.LSTMWeights`: columns ``[z | i | (f) | o]``, gate columns
and peepholes halved so that ``sigma(a) = (1 + tanh(a / 2)) / 2``).

Why it is fast: one network at a time inside the compiled loop, so its weights
(``(I + H + 1) * U * H`` floats) stay in L2 across all time steps and sequences,
where the NumPy kernel streams a population chunk's weights and pays a fixed cost
per NumPy call; the pre-activations of all units come from one pass over the
weight rows, and the cell update is one loop over the cells.

Every network is computed by the same function (:func:`_run_net`,
:func:`_closed_net`) whatever the loop around it, so the serial and the
parallel (``prange`` over networks) builds give bit-for-bit the same results.
All functions live at module level with ``cache=True``: numba's disk cache works
only for those (not closures), and the serial and parallel builds are distinct
functions because the cache is keyed by the function, not by its options.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = []


@njit(cache=True, nogil=True)
def _net_step(W, R, b, p_in, p_out, x, h, c, a, h_new, peep, forget):
    """One step of one network on one sequence: ``h_new`` and ``c`` (in place) from ``x``, ``h``, ``c``.

    ``W`` ``(I, U*H)``, ``R`` ``(H, U*H)``, ``b`` ``(U*H,)``, ``p_in`` ``(U-2, H)`` (``p_i``, ``p_f``),
    ``p_out`` ``(H,)``; ``a`` ``(U*H,)`` is scratch. ``h_new`` must not alias ``h``.
    """
    I, UH = W.shape
    H = R.shape[0]
    for k in range(UH):
        a[k] = b[k]
    for i in range(I):  # row by row: every weight row is read once, contiguously
        xi = x[i]
        for k in range(UH):
            a[k] += xi * W[i, k]
    for j in range(H):
        hj = h[j]
        for k in range(UH):
            a[k] += hj * R[j, k]
    o0 = (3 if forget else 2) * H
    for j in range(H):
        cj = c[j]
        z = math.tanh(a[j])
        ai = a[H + j]
        if peep:
            ai += p_in[0, j] * cj
        gi = 0.5 * (1.0 + math.tanh(ai))
        if forget:
            af = a[2 * H + j]
            if peep:
                af += p_in[1, j] * cj
            cn = 0.5 * (1.0 + math.tanh(af)) * cj + gi * z
        else:
            cn = cj + gi * z
        ao = a[o0 + j]
        if peep:
            ao += p_out[j] * cn
        c[j] = cn
        h_new[j] = 0.5 * (1.0 + math.tanh(ao)) * math.tanh(cn)


@njit(cache=True, nogil=True)
def _run_net(W, R, b, p_in, p_out, X, h0, c0, out, c_last, peep, forget):
    """Network ``W..p_out`` over sequences ``X`` ``(B, T, I)`` from ``h0``, ``c0`` ``(B, H)``.

    Writes ``h_t`` into ``out`` ``(B, T, H)`` and the last cell state into ``c_last`` ``(B, H)``.
    """
    B, T = X.shape[0], X.shape[1]
    H = R.shape[0]
    a = np.empty(R.shape[1], R.dtype)
    h = np.empty(H, R.dtype)
    c = np.empty(H, R.dtype)
    for s in range(B):
        h[:] = h0[s]
        c[:] = c0[s]
        for t in range(T):
            _net_step(W, R, b, p_in, p_out, X[s, t], h, c, a, out[s, t], peep, forget)
            h[:] = out[s, t]
        c_last[s] = c


@njit(cache=True, nogil=True)
def forward_serial(W, R, b, p_in, p_out, X, h0, c0, out, c_last, peep, forget):
    """All ``P`` networks, one after the other: ``W`` ``(P, I, U*H)``, ``b`` ``(P, U*H)``, ``p_in`` ``(P, U-2, H)``,
    ``p_out`` ``(P, H)``, ``X`` ``(B, T, I)``, ``h0``, ``c0``, ``c_last`` ``(P, B, H)``, ``out`` ``(P, B, T, H)``."""
    for p in range(W.shape[0]):
        _run_net(W[p], R[p], b[p], p_in[p], p_out[p], X, h0[p], c0[p], out[p], c_last[p], peep, forget)


@njit(cache=True, nogil=True, parallel=True)
def forward_parallel(W, R, b, p_in, p_out, X, h0, c0, out, c_last, peep, forget):
    """:func:`forward_serial` with the networks spread over threads."""
    for p in prange(W.shape[0]):
        _run_net(W[p], R[p], b[p], p_in[p], p_out[p], X, h0[p], c0[p], out[p], c_last[p], peep, forget)


@njit(cache=True, nogil=True)
def _closed_net(W, R, b, p_in, p_out, coef, h0, c0, y0, X, lo, hi, clip, out, peep, forget):
    """One network in closed loop: input ``[X[s, t], y_{t-1}]``, output ``y_t = h_t coef[:H] + coef[H]``.

    ``coef`` ``(H + 1, O)``; ``h0``, ``c0`` ``(B, H)``; ``y0`` ``(B, O)`` the first fed-back value;
    ``X`` ``(B, n, I_ext)`` (``I_ext`` may be 0); ``clip``: outputs are NaN -> 0 then clipped to
    ``[lo, hi]`` ``(O,)`` before being fed back and stored. Writes ``out`` ``(B, n, O)``.
    """
    B, n, E = X.shape
    H, O = R.shape[0], coef.shape[1]
    a = np.empty(R.shape[1], R.dtype)
    h = np.empty(H, R.dtype)
    h_new = np.empty(H, R.dtype)
    c = np.empty(H, R.dtype)
    x = np.empty(E + O, R.dtype)
    for s in range(B):
        h[:] = h0[s]
        c[:] = c0[s]
        x[E:] = y0[s]
        for t in range(n):
            x[:E] = X[s, t]
            _net_step(W, R, b, p_in, p_out, x, h, c, a, h_new, peep, forget)
            h[:] = h_new
            for o in range(O):
                y = coef[H, o]
                for j in range(H):
                    y += h[j] * coef[j, o]
                if clip:
                    if y != y:
                        y = 0.0
                    y = min(max(y, lo[o]), hi[o])
                x[E + o] = y
                out[s, t, o] = y


@njit(cache=True, nogil=True)
def closed_loop_serial(W, R, b, p_in, p_out, coef, h0, c0, y0, X, lo, hi, clip, out, peep, forget):
    """All ``P`` networks in closed loop: ``coef`` ``(P, H + 1, O)``, ``h0``, ``c0`` ``(P, B, H)``,
    ``y0`` ``(P, B, O)``, ``X`` ``(B, n, I_ext)`` shared, ``out`` ``(P, B, n, O)``."""
    for p in range(W.shape[0]):
        _closed_net(W[p], R[p], b[p], p_in[p], p_out[p], coef[p], h0[p], c0[p], y0[p], X, lo, hi, clip, out[p],
                    peep, forget)


@njit(cache=True, nogil=True, parallel=True)
def closed_loop_parallel(W, R, b, p_in, p_out, coef, h0, c0, y0, X, lo, hi, clip, out, peep, forget):
    """:func:`closed_loop_serial` with the networks spread over threads."""
    for p in prange(W.shape[0]):
        _closed_net(W[p], R[p], b[p], p_in[p], p_out[p], coef[p], h0[p], c0[p], y0[p], X, lo, hi, clip, out[p],
                    peep, forget)


@njit(cache=True, nogil=True)
def step_serial(W, R, b, p_in, p_out, x, h, c, h_out, c_out, peep, forget):
    """One step of ``P`` networks on ``B`` sequences: ``x`` ``(P, B, I)``, ``h``, ``c``, ``h_out``, ``c_out``
    ``(P, B, H)``."""
    a = np.empty(R.shape[2], R.dtype)
    for p in range(W.shape[0]):
        for s in range(h.shape[1]):
            c_out[p, s] = c[p, s]
            _net_step(W[p], R[p], b[p], p_in[p], p_out[p], x[p, s], h[p, s], c_out[p, s], a, h_out[p, s], peep,
                      forget)
