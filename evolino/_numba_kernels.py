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

Every network is computed by the same code whatever range of networks a call
covers, so spreading the networks over threads (:func:`evolino._backend.spread`) gives bit-for-bit the
results of one thread. All functions live at module level with ``cache=True``:
numba's disk cache works only for those (not closures).
"""

from __future__ import annotations


import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = []

# error_model="numpy": float division by zero gives inf instead of raising, which lets the compiler
# vectorize divisions; "contract" lets it fuse multiply-adds (a deterministic choice of the code, the
# same whatever thread runs it); no other fast-math: no reassociation, NaN and inf kept.
_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


# The non-linearities: exp by range reduction ``y = k ln2 + r``, ``|r| <= ln2 / 2``, a degree-12 Taylor
# polynomial (relative error below 3e-16) and ``2**k`` built from its bits, a branch-free sequence of
# multiply-adds that the compiler vectorizes; ``math.tanh`` and ``math.exp`` are scalar library calls
# (measured 15 and 6 ns each here, against 2.6 ns; five per cell and step).
_MAGIC = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer, kept in the low mantissa bits
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 in two parts (fdlibm)
_INV_LN2 = 1.4426950408889634
_CLAMP = 40.0  # sigma(-40) = 4e-18: beyond, the clamped value differs from the exact one by less than that


@intrinsic
def _bits(typingctx, v):
    """The int64 with the bits of a float64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, v):
    """The float64 with the bits of an int64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


@njit(**_JIT, inline="always")
def _logistic2(x):
    """``1 / (1 + exp(-2 x))``, i.e. ``sigma(2 x) = (1 + tanh(x)) / 2``; NaN stays NaN."""
    y = -2.0 * x
    y = y if y < _CLAMP else _CLAMP
    y = y if y > -_CLAMP else -_CLAMP
    t = y * _INV_LN2 + _MAGIC
    k = t - _MAGIC  # round(y / ln 2)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    s = 1.0 / (1.0 + p * _from_bits((_bits(t) + 1023) << 52))  # exp(r) * 2**k
    return s if x == x else x


@njit(**_JIT)
def _copy(dst, src, start=0):
    """``dst[start : start + len(src)] = src`` for 1-d arrays, as a loop: an array slice assignment compiles
    numba's shape-mismatch error path (about 2 s of compile time per assignment, measured)."""
    for k in range(src.shape[0]):
        dst[start + k] = src[k]


@njit(**_JIT)
def _net_step(W, R, b, p_in, p_out, x, h, c, a, e, h_new, peep, forget):
    """One step of one network on one sequence: ``h_new`` and ``c`` (in place) from ``x``, ``h``, ``c``.

    ``W`` ``(I, U*H)``, ``R`` ``(H, U*H)``, ``b`` ``(U*H,)``, ``p_in`` ``(U-2, H)`` (``p_i``, ``p_f``),
    ``p_out`` ``(H,)``; ``a`` ``(U*H,)`` and ``e`` ``(U*H + H,)`` are scratch. ``h_new`` must not alias ``h``.
    The cell update runs in three loops over the cells, each free of calls so that it vectorizes:
    ``tanh(v) = 2 sigma(2 v) - 1`` and the gates' halved pre-activations make every
    non-linearity one :func:`_logistic2`.
    """
    I, UH = W.shape
    H = R.shape[0]
    for k in range(UH):
        a[k] = b[k]
    for i in range(I):  # row by row: every weight row is read once, contiguously
        xi = x[i]
        for k in range(UH):
            a[k] += xi * W[i, k]
    j = 0
    while j + 4 <= H:  # four rows at once: a quarter of the loads and stores of ``a``
        h0, h1, h2, h3 = h[j], h[j + 1], h[j + 2], h[j + 3]
        for k in range(UH):
            a[k] += (h0 * R[j, k] + h1 * R[j + 1, k]) + (h2 * R[j + 2, k] + h3 * R[j + 3, k])
        j += 4
    while j < H:
        hj = h[j]
        for k in range(UH):
            a[k] += hj * R[j, k]
        j += 1
    U1 = (3 if forget else 2) * H  # z, i, (f): the units computed from c_{t-1}
    for j in range(H):
        e[j] = a[j]
    if peep:
        for j in range(H):
            e[H + j] = a[H + j] + p_in[0, j] * c[j]
        if forget:
            for j in range(H):
                e[2 * H + j] = a[2 * H + j] + p_in[1, j] * c[j]
    else:
        for k in range(H, U1):
            e[k] = a[k]
    for k in range(U1):
        e[k] = _logistic2(e[k])  # sigma(2 a_z), i, (f)
    for j in range(H):
        cn = (e[2 * H + j] * c[j] if forget else c[j]) + (2.0 * e[j] - 1.0) * e[H + j]
        c[j] = cn
        ao = a[U1 + j]
        if peep:
            ao += p_out[j] * cn
        e[U1 + j] = ao
        e[U1 + H + j] = cn
    for k in range(U1, U1 + 2 * H):
        e[k] = _logistic2(e[k])  # o, sigma(2 c)
    for j in range(H):
        h_new[j] = e[U1 + j] * (2.0 * e[U1 + H + j] - 1.0)


# The loops over networks and sequences live in the exported kernels themselves: every compiled
# function costs about 1.3 s of cold compile on its own (measured), a helper per network would double that.
@njit(**_JIT)
def forward_serial(W, R, b, p_in, p_out, X, h0, c0, out, c_last, peep, forget):
    """All ``P`` networks over sequences ``X`` ``(B, T, I)``, one network after the other.

    Weights ``W`` ``(P, I, U*H)``, ``R`` ``(P, H, U*H)``, ``b`` ``(P, U*H)``, ``p_in`` ``(P, U-2, H)``,
    ``p_out`` ``(P, H)``; from ``h0``, ``c0`` ``(P, B, H)``; writes ``h_t`` into ``out`` ``(P, B, T, H)``
    and the last cell state into ``c_last`` ``(P, B, H)``.
    """
    B, T = X.shape[0], X.shape[1]
    H = R.shape[1]
    a = np.empty(R.shape[2], R.dtype)
    e = np.empty(R.shape[2] + H, np.float64)
    h = np.empty(H, R.dtype)
    c = np.empty(H, R.dtype)
    for p in range(W.shape[0]):
        Wp, Rp, bp, pip, pop = W[p], R[p], b[p], p_in[p], p_out[p]
        for s in range(B):
            _copy(h, h0[p, s])
            _copy(c, c0[p, s])
            for t in range(T):
                _net_step(Wp, Rp, bp, pip, pop, X[s, t], h, c, a, e, out[p, s, t], peep, forget)
                _copy(h, out[p, s, t])
            _copy(c_last[p, s], c)


@njit(**_JIT)
def closed_loop_serial(W, R, b, p_in, p_out, coef, h0, c0, y0, X, hist, lo, hi, clip, out, peep, forget):
    """All ``P`` networks in closed loop, one after the other: input ``x_t = [X[s, t], y_{t-1}]``, output
    ``y_t = h_t coef[:H] + [x_t, ..., x_{t-L+1}] coef[H:-1] + coef[-1]``.

    Weights as :func:`forward_serial`; ``coef`` ``(P, H + L * I + 1, O)``; ``h0``, ``c0`` ``(P, B, H)``;
    ``y0`` ``(P, B, O)`` the first fed-back value; shared ``X`` ``(B, n, I_ext)`` (``I_ext`` may be 0) and
    ``hist`` ``(B, L, I)``: the inputs before the first step, newest first (its last row unused; ``L = 0``:
    no lags); ``clip``: outputs are NaN -> 0 then clipped to ``[lo, hi]`` ``(O,)`` before being fed back
    and stored. Writes ``out`` ``(P, B, n, O)``.
    """
    B, n, E = X.shape
    H, O = R.shape[1], coef.shape[2]
    L, I = hist.shape[1], hist.shape[2]
    a = np.empty(R.shape[2], R.dtype)
    e = np.empty(R.shape[2] + H, np.float64)
    h = np.empty(H, R.dtype)
    h_new = np.empty(H, R.dtype)
    c = np.empty(H, R.dtype)
    x = np.empty(E + O, R.dtype)
    buf = np.empty((L, I), R.dtype)
    for p in range(W.shape[0]):
        Wp, Rp, bp, pip, pop, cf = W[p], R[p], b[p], p_in[p], p_out[p], coef[p]
        for s in range(B):
            _copy(h, h0[p, s])
            _copy(c, c0[p, s])
            _copy(x, y0[p, s], E)
            for k in range(L):
                _copy(buf[k], hist[s, k])
            for t in range(n):
                _copy(x, X[s, t])
                _net_step(Wp, Rp, bp, pip, pop, x, h, c, a, e, h_new, peep, forget)
                _copy(h, h_new)
                for k in range(L - 1, 0, -1):
                    _copy(buf[k], buf[k - 1])
                if L:
                    _copy(buf[0], x)
                for o in range(O):
                    y = cf[H + L * I, o]
                    for j in range(H):
                        y += h[j] * cf[j, o]
                    for k in range(L):
                        for i in range(I):
                            y += buf[k, i] * cf[H + k * I + i, o]
                    if clip:
                        if y != y:
                            y = 0.0
                        y = min(max(y, lo[o]), hi[o])
                    x[E + o] = y
                    out[p, s, t, o] = y


@njit(**_JIT)
def step_serial(W, R, b, p_in, p_out, x, h, c, h_out, c_out, peep, forget):
    """One step of ``P`` networks on ``B`` sequences: ``x`` ``(P, B, I)``, ``h``, ``c``, ``h_out``, ``c_out``
    ``(P, B, H)``."""
    a = np.empty(R.shape[2], R.dtype)
    e = np.empty(R.shape[2] + R.shape[1], np.float64)
    for p in range(W.shape[0]):
        for s in range(h.shape[1]):
            _copy(c_out[p, s], c[p, s])
            _net_step(W[p], R[p], b[p], p_in[p], p_out[p], x[p, s], h[p, s], c_out[p, s], a, e, h_out[p, s], peep,
                      forget)
