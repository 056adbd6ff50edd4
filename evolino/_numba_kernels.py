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
weight rows (eight rows at a time, applied to a group of sequences before the next
eight, so that the rows come from memory once per step for the group: the free
runs of a fitness are many sequences per network), every loop of the cell update vectorizes, and
float32 networks are computed in float32 throughout (twice the numbers per vector
instruction; the non-linearity has its own single-precision version).

Every network is computed by the same code whatever range of networks a call
covers, so spreading the networks over threads (:func:`evolino._backend.spread`) gives bit-for-bit the
results of one thread. All functions live at module level with ``cache=True``:
numba's disk cache works only for those (not closures).
"""

from __future__ import annotations


import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = []

# error_model="numpy": float division by zero gives inf instead of raising, which lets the compiler
# vectorize divisions; "contract" lets it fuse multiply-adds (a deterministic choice of the code, the
# same whatever thread runs it); no other fast-math: no reassociation, NaN and inf kept.
_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


# The non-linearities: exp by range reduction ``y = k ln2 + r``, ``|r| <= ln2 / 2``, a degree-12 Taylor
# polynomial (relative error below 3e-16) and ``2**k`` built from its bits, a branch-free sequence of
# multiply-adds that the compiler vectorizes; ``math.tanh`` and ``math.exp`` are scalar library calls
# (measured 15 and 6 ns each, against 1 ns vectorized and 3.8 ns scalar; five per cell and step).
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


@intrinsic
def _bits32(typingctx, v):
    """The int64 holding the bits of a float32 (as an unsigned 32-bit number)."""
    def codegen(context, builder, signature, args):
        i32 = builder.bitcast(args[0], context.get_value_type(types.int32))
        return builder.zext(i32, context.get_value_type(types.int64))
    return types.int64(types.float32), codegen


@intrinsic
def _from_bits32(typingctx, v):
    """The float32 with the low 32 bits of an int64."""
    def codegen(context, builder, signature, args):
        i32 = builder.trunc(args[0], context.get_value_type(types.int32))
        return builder.bitcast(i32, context.get_value_type(types.float32))
    return types.float32(types.int64), codegen


@njit(**_JIT, inline="always")
def _logistic2_f64(x):
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


# float32: the same steps in single precision, twice the numbers per vector instruction. The constants
# are float32 (a float64 constant would promote the whole expression); degree 7 suffices (the Taylor
# remainder at |r| = ln2 / 2 is 5e-9, below float32's half ulp of 6e-8).
_F = np.float32
_M32, _I32 = _F(12582912.0), _F(_INV_LN2)  # 1.5 * 2**23
_H32, _L32 = _F(0.693359375), _F(-2.12194440e-4)  # ln 2 = hi + lo (Cephes' expf), k * hi exact
_C32 = _F(_CLAMP)
_P32 = tuple(_F(1.0 / f) for f in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0))
_ONE32, _MTWO32 = _F(1.0), _F(-2.0)


@njit(**_JIT, inline="always")
def _logistic2_f32(x):
    """:func:`_logistic2_f64` in float32."""
    y = _MTWO32 * x
    y = y if y < _C32 else _C32
    y = y if y > -_C32 else -_C32
    t = y * _I32 + _M32
    k = t - _M32
    r = (y - k * _H32) - k * _L32
    p = _P32[0]
    p = p * r + _P32[1]
    p = p * r + _P32[2]
    p = p * r + _P32[3]
    p = p * r + _P32[4]
    p = p * r + _P32[5]
    p = p * r + _P32[6]
    p = p * r + _P32[7]
    s = _ONE32 / (_ONE32 + p * _from_bits32((_bits32(t) + 127) << 23))
    return s if x == x else x


def _logistic2(x):
    """``sigma(2 x)`` in the precision of ``x`` (compiled: see the overload below)."""
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_logistic2)
def _logistic2_typed(x):
    if x == types.float32:
        return lambda x: _logistic2_f32(x)
    return lambda x: _logistic2_f64(x)


@njit(**_JIT)
def _copy(dst, src, start=0):
    """``dst[start : start + len(src)] = src`` for 1-d arrays, as a loop: an array slice assignment compiles
    numba's shape-mismatch error path (about 2 s of compile time per assignment, measured)."""
    for k in range(src.shape[0]):
        dst[start + k] = src[k]


@njit(**_JIT, inline="always")
def _preact(W, R, b, x, h, A, n):
    """Pre-activations ``A[:n]`` ``(n, U*H)`` of ``n`` sequences of one network: ``b + x W + h R``.

    ``x`` ``(>= n, I)``, ``h`` ``(>= n, H)``. Each group of eight (then four, then one) recurrent rows is
    applied to all ``n`` sequences before the next: the rows are read from memory once per step for the
    whole group and then from cache, where one sequence at a time would stream all of ``R`` for each
    (from L3 on a 0.5 MiB L2 at 150 cells and more). Every sum is made in the same order for any ``n``, so a
    sequence's result does not depend on its group. Rows are used through views indexed from 0: with an
    offset numba keeps its wrap-around test and the loop stays scalar (3.8 against 0.97 ns per logistic).
    """
    I, UH = W.shape
    H = R.shape[0]
    for s in range(n):
        As, xs = A[s], x[s]
        for k in range(UH):
            As[k] = b[k]
        for i in range(I):  # row by row: every weight row is read once, contiguously
            xi, Wi = xs[i], W[i]
            for k in range(UH):
                As[k] += xi * Wi[k]
    j = 0
    while j + 8 <= H:  # eight rows at once: an eighth of the loads and stores of ``A`` (1.1-1.2x four rows)
        R0, R1, R2, R3, R4, R5, R6, R7 = R[j], R[j + 1], R[j + 2], R[j + 3], R[j + 4], R[j + 5], R[j + 6], R[j + 7]
        for s in range(n):
            hs, As = h[s], A[s]
            h0, h1, h2, h3, h4, h5, h6, h7 = hs[j], hs[j + 1], hs[j + 2], hs[j + 3], hs[j + 4], hs[j + 5], hs[j + 6], \
                hs[j + 7]
            for k in range(UH):
                As[k] += (((h0 * R0[k] + h1 * R1[k]) + (h2 * R2[k] + h3 * R3[k]))
                          + ((h4 * R4[k] + h5 * R5[k]) + (h6 * R6[k] + h7 * R7[k])))
        j += 8
    while j + 4 <= H:
        R0, R1, R2, R3 = R[j], R[j + 1], R[j + 2], R[j + 3]
        for s in range(n):
            hs, As = h[s], A[s]
            h0, h1, h2, h3 = hs[j], hs[j + 1], hs[j + 2], hs[j + 3]
            for k in range(UH):
                As[k] += (h0 * R0[k] + h1 * R1[k]) + (h2 * R2[k] + h3 * R3[k])
        j += 4
    while j < H:
        Rj = R[j]
        for s in range(n):
            hj, As = h[s, j], A[s]
            for k in range(UH):
                As[k] += hj * Rj[k]
        j += 1


@njit(**_JIT, inline="always")
def _cell(a, c, e, h_new, p_in, p_out, peep, forget):
    """The cell update of one sequence from its pre-activations ``a`` ``(U*H,)``: ``h_new`` and ``c`` (in place).

    Scratch ``e`` ``(U + 1, H)``. Every loop is free of calls so that it vectorizes: ``tanh(v) = 2 sigma(2 v) - 1``
    and the gates' halved pre-activations make every non-linearity one :func:`_logistic2`.
    """
    H = c.shape[0]
    nu = 3 if forget else 2  # z, i, (f): the units computed from c_{t-1}
    for u in range(nu):
        eu, au = e[u], a[u * H:]
        if peep and u > 0:
            pu = p_in[u - 1]
            for j in range(H):
                eu[j] = _logistic2(au[j] + pu[j] * c[j])  # sigma(2 a_z), i, (f)
        else:
            for j in range(H):
                eu[j] = _logistic2(au[j])
    ez, ei, eo, ec, ao = e[0], e[1], e[nu], e[nu + 1], a[nu * H:]
    one = _one(e)
    two = one + one
    if forget:
        ef = e[2]
        for j in range(H):
            c[j] = ef[j] * c[j] + (two * ez[j] - one) * ei[j]
    else:
        for j in range(H):
            c[j] = c[j] + (two * ez[j] - one) * ei[j]
    if peep:
        for j in range(H):
            eo[j] = _logistic2(ao[j] + p_out[j] * c[j])
    else:
        for j in range(H):
            eo[j] = _logistic2(ao[j])
    for j in range(H):
        ec[j] = _logistic2(c[j])  # sigma(2 c)
    for j in range(H):
        h_new[j] = eo[j] * (two * ec[j] - one)


@njit(**_JIT, inline="always")
def _net_step(W, R, b, p_in, p_out, x, h, c, a, e, h_new, peep, forget):
    """One step of one network on one sequence: ``h_new`` and ``c`` (in place) from ``x``, ``h``, ``c``.

    ``W`` ``(I, U*H)``, ``R`` ``(H, U*H)``, ``b`` ``(U*H,)``, ``p_in`` ``(U-2, H)`` (``p_i``, ``p_f``),
    ``p_out`` ``(H,)``; scratch ``a`` ``(U*H,)`` and ``e`` ``(U + 1, H)``, all of the weights' dtype.
    ``h_new`` must not alias ``h``. The same arithmetic as a sequence of :func:`_net_steps`.
    """
    _preact(W, R, b, x.reshape((1, x.shape[0])), h.reshape((1, h.shape[0])), a.reshape((1, a.shape[0])), 1)
    _cell(a, c, e, h_new, p_in, p_out, peep, forget)


@njit(**_JIT, inline="always")
def _net_steps(W, R, b, p_in, p_out, x, h, c, A, e, h_new, n, peep, forget):
    """One step of one network on ``n`` sequences: rows ``[:n]`` of ``x`` ``(G, I)``, ``h``, ``c``, ``h_new``
    ``(G, H)``; scratch ``A`` ``(G, U*H)`` and ``e``. Each sequence's numbers are those of :func:`_net_step`."""
    _preact(W, R, b, x, h, A, n)
    for s in range(n):
        _cell(A[s], c[s], e, h_new[s], p_in, p_out, peep, forget)


def _one(a):
    """1 in the dtype of array ``a`` (a float64 literal would promote float32 arithmetic to float64)."""
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_one)
def _one_typed(a):
    if a.dtype == types.float32:
        return lambda a: _ONE32
    return lambda a: 1.0


def _scratch(R, b):
    """Scratch ``a`` ``(U*H,)`` and ``e`` ``(U + 1, H)`` of :func:`_net_step` for weights ``R`` ``(..., H, U*H)``,
    in the dtype of the biases ``b`` (the states' precision)."""
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_scratch)
def _scratch_typed(R, b):
    def impl(R, b):
        H, UH = R.shape[-2], R.shape[-1]
        return np.empty(UH, b.dtype), np.empty((UH // H + 1, H), b.dtype)
    return impl


@njit(**_JIT, inline="always")
def _group_state(h, c, h0, c0, p, s0, n):
    """Rows ``[:n]`` of ``h``, ``c`` ``(G, H)``: the states of sequences ``s0 .. s0 + n - 1`` of network ``p`` in
    ``h0``, ``c0`` ``(P, B, H)``."""
    for s in range(n):
        for j in range(h.shape[1]):
            h[s, j] = h0[p, s0 + s, j]
            c[s, j] = c0[p, s0 + s, j]


# The loops over networks and sequences live in the exported kernels themselves: every compiled
# function costs about 1.3 s of cold compile on its own (measured), a helper per network would double that.
# No array view is made inside a loop over time steps beyond the rows of the scratch arrays.
@njit(**_JIT)
def forward_serial(W, R, b, p_in, p_out, X, h0, c0, out, c_last, G, peep, forget):
    """All ``P`` networks over sequences ``X`` ``(B, T, I)``, one network after the other, ``G`` sequences at
    a time (:func:`_net_steps`).

    Weights ``W`` ``(P, I, U*H)``, ``R`` ``(P, H, U*H)``, ``b`` ``(P, U*H)``, ``p_in`` ``(P, U-2, H)``,
    ``p_out`` ``(P, H)``; from ``h0``, ``c0`` ``(P, B, H)``; writes ``h_t`` into ``out`` ``(P, B, T, H)``
    and the last cell state into ``c_last`` ``(P, B, H)``.
    """
    B, T, I = X.shape
    H, UH = R.shape[1], R.shape[2]
    A, e = np.empty((G, UH), b.dtype), np.empty((UH // H + 1, H), b.dtype)
    h, h_new, c, x = np.empty((G, H), b.dtype), np.empty((G, H), b.dtype), np.empty((G, H), b.dtype), \
        np.empty((G, I), b.dtype)
    for p in range(W.shape[0]):
        Wp, Rp, bp, pip, pop = W[p], R[p], b[p], p_in[p], p_out[p]
        for s0 in range(0, B, G):
            n = min(G, B - s0)
            _group_state(h, c, h0, c0, p, s0, n)
            for t in range(T):
                for s in range(n):
                    for i in range(I):
                        x[s, i] = X[s0 + s, t, i]
                _net_steps(Wp, Rp, bp, pip, pop, x, h, c, A, e, h_new, n, peep, forget)
                for s in range(n):
                    for j in range(H):
                        out[p, s0 + s, t, j] = h_new[s, j]
                h, h_new = h_new, h
            for s in range(n):
                for j in range(H):
                    c_last[p, s0 + s, j] = c[s, j]


@njit(**_JIT)
def closed_loop_serial(W, R, b, p_in, p_out, coef, h0, c0, y0, X, hist, lo, hi, clip, out, G, peep, forget):
    """All ``P`` networks in closed loop, one after the other, ``G`` sequences at a time: input
    ``x_t = [X[s, t], y_{t-1}]``, output ``y_t = h_t coef[:H] + [x_t, ..., x_{t-L+1}] coef[H:-1] + coef[-1]``.

    Weights as :func:`forward_serial`; ``coef`` ``(P, H + L * I + 1, O)``; ``h0``, ``c0`` ``(P, B, H)``;
    ``y0`` ``(P, B, O)`` the first fed-back value; shared ``X`` ``(B, n, I_ext)`` (``I_ext`` may be 0) and
    ``hist`` ``(B, L, I)``: the inputs before the first step, newest first (its last row unused; ``L = 0``:
    no lags); ``clip``: outputs are NaN -> 0 then clipped to ``[lo, hi]`` ``(O,)`` before being fed back
    and stored. Writes ``out`` ``(P, B, n, O)``.
    """
    B, n_steps, E = X.shape
    H, UH, O = R.shape[1], R.shape[2], coef.shape[2]
    L, I = hist.shape[1], hist.shape[2]
    A, e = np.empty((G, UH), b.dtype), np.empty((UH // H + 1, H), b.dtype)
    h, h_new, c = np.empty((G, H), b.dtype), np.empty((G, H), b.dtype), np.empty((G, H), b.dtype)
    x = np.empty((G, E + O), b.dtype)
    buf = np.empty((G, L, I), b.dtype)
    for p in range(W.shape[0]):
        Wp, Rp, bp, pip, pop, cf = W[p], R[p], b[p], p_in[p], p_out[p], coef[p]
        for s0 in range(0, B, G):
            n = min(G, B - s0)
            _group_state(h, c, h0, c0, p, s0, n)
            for s in range(n):
                for o in range(O):
                    x[s, E + o] = y0[p, s0 + s, o]
                for k in range(L):
                    for i in range(I):
                        buf[s, k, i] = hist[s0 + s, k, i]
            for t in range(n_steps):
                for s in range(n):
                    for i in range(E):
                        x[s, i] = X[s0 + s, t, i]
                _net_steps(Wp, Rp, bp, pip, pop, x, h, c, A, e, h_new, n, peep, forget)
                h, h_new = h_new, h
                for s in range(n):
                    for k in range(L - 1, 0, -1):
                        for i in range(I):
                            buf[s, k, i] = buf[s, k - 1, i]
                    if L:
                        for i in range(I):
                            buf[s, 0, i] = x[s, i]
                    for o in range(O):
                        y = cf[H + L * I, o]
                        for j in range(H):
                            y += h[s, j] * cf[j, o]
                        for k in range(L):
                            for i in range(I):
                                y += buf[s, k, i] * cf[H + k * I + i, o]
                        if clip:
                            if y != y:
                                y = 0.0
                            y = min(max(y, lo[o]), hi[o])
                        x[s, E + o] = y
                        out[p, s0 + s, t, o] = y


@njit(**_JIT)
def step_serial(W, R, b, p_in, p_out, x, h, c, h_out, c_out, peep, forget):
    """One step of ``P`` networks on ``B`` sequences: ``x`` ``(P, B, I)``, ``h``, ``c``, ``h_out``, ``c_out``
    ``(P, B, H)``."""
    a, e = _scratch(R, b)
    for p in range(W.shape[0]):
        for s in range(h.shape[1]):
            _copy(c_out[p, s], c[p, s])
            _net_step(W[p], R[p], b[p], p_in[p], p_out[p], x[p, s], h[p, s], c_out[p, s], a, e, h_out[p, s], peep,
                      forget)
