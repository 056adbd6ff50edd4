"""The chunked forward kernel behind :func:`evolino.lstm.forward` (NumPy reference backend).

A population chunk's weights stay in cache across all time steps; activations live
gate-major in one buffer so that every NumPy call works on contiguous blocks (see
:func:`_forward_chunk`). ``evolino.lstm`` decides the chunk sizes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = []


class _ChunkWeights(NamedTuple):
    """Weights of a population chunk of ``n`` networks in :func:`_forward_chunk`'s layout.

    Units are ordered ``[z, (f), i, o]`` so that the gates that see ``c_{t-1}``
    (``f, i``) line up with ``[c, z]`` in the gate-major activation buffer of
    :func:`_forward_chunk`. Gate pre-activations are halved as in :class:`LSTMWeights`.
    """

    R: np.ndarray  # (n, H, U*H) recurrent weights, times 1/2 because the kernel feeds back 2 h
    W: np.ndarray  # (I + 1, U*n*H) input weights and biases, columns gate-major (U, n, H)
    p_g: np.ndarray  # (U-2, n, B, H) peepholes of (f,) i, halved
    p_o: np.ndarray  # (n, B, H) peephole of o, halved


def _chunk_weights(spec, w, sl: slice, B: int) -> _ChunkWeights:
    """Re-lay the networks ``sl`` of ``w`` for :func:`_forward_chunk` on ``B`` sequences."""
    H, U = spec.n_cells, spec.n_units
    order = [0, 2, 1, 3] if spec.forget_gate else [0, 1, 2]  # [z, i, (f), o] -> [z, (f), i, o]
    R = w.R[sl]
    n = R.shape[0]
    R = np.multiply(R.reshape(n, H, U, H)[:, :, order], 0.5).reshape(n, H, U * H)
    Wb = np.concatenate([w.W[sl], w.b[sl]], axis=1)  # (n, I + 1, U*H)
    Wb = Wb.reshape(n, -1, U, H)[:, :, order].transpose(1, 2, 0, 3).reshape(-1, U * n * H)
    p_g = w.p_in[sl][:, 0, ::-1].transpose(1, 0, 2)[:, :, None]  # (U-2, n, 1, H): [(f,) i]
    p_g = np.ascontiguousarray(np.broadcast_to(p_g, (U - 2, n, B, H)))
    p_o = np.ascontiguousarray(np.broadcast_to(w.p_out[sl], (n, B, H)))
    return _ChunkWeights(R, Wb, p_g, p_o)


def _forward_chunk(spec, cw: _ChunkWeights, X1, h0, c0, out, xp_bytes):
    """Run ``n`` networks over all time steps; their weights stay in cache throughout.

    ``X1`` ``(B, T, I + 1)`` is the input with a column of ones; ``h0``, ``c0``
    ``(n, B, H)``. Writes ``h_t`` into ``out`` ``(n, B, T, H)`` and returns the
    last cell state ``(n, B, H)``.

    Per step: one batched matrix product (the recurrent part; the input part is
    precomputed for a block of steps by one product), then about ten NumPy calls
    on small arrays, whose fixed cost per call dominates for small ``H`` and
    doubles when an operand is not contiguous. So the activations live
    gate-major in one buffer ``G`` ``(blocks, n, B, H)``, ordered so that every
    call after the (transposing) bias-and-input add works on contiguous runs of
    blocks::

        with forget gate: [o, c, c, c, z, f, i, o']     without: [o, c, z, i, o']

    ``[f, i] += [p_f, p_i] * [c, c]`` and ``[f, i] * [c, z]`` are one call each, the
    new cell state ``(2 f c + 2 i z) / 2`` goes to all three copies in one small
    matrix product, the output-gate peephole moves ``o'`` to block 0 so that
    ``tanh([o, c])`` is one call, and storing ``2 h = (1 + tanh(a_o/2)) tanh(c)``
    saves halving the output gate (``R`` is halved instead; gate pre-activations
    are halved so that ``sigma(a) = (1 + tanh(a/2)) / 2``).
    """
    H, U, dt = spec.n_cells, spec.n_units, spec.dtype
    peep, forget = spec.peepholes, spec.forget_gate
    n = cw.R.shape[0]
    B, T, I1 = X1.shape
    nc = 3 if forget else 1  # copies of c, blocks 1..nc
    z = nc + 1  # block of the cell input; gates follow, o' last
    G = np.empty((1 + nc + U, n, B, H), dt)
    G[1 : 1 + nc] = c0
    acts = np.empty((n, B, U * H), dt)
    acts_t = acts.reshape(n, B, U, H).transpose(2, 0, 1, 3)  # (U, n, B, H) view
    acts_in = G[z : z + U]  # z, (f), i, o'
    zg, g, g_o = G[z : z + U - 1], G[z + 1 : z + U - 1], G[z + 1 : z + U]  # (z,) (f,) i (, o')
    c, o_new, o_c, c_peep = G[1], G[z + U - 1], G[0:2], G[1 : U - 1]
    o, z_, g_i, c_z = G[0], G[z], G[z + U - 2], G[nc : nc + 2]
    t_g = np.empty((U - 2, n, B, H), dt)
    t_oc = np.empty((2, n, B, H), dt)
    t_o, t_c = t_oc
    t_1 = np.empty((n, B, H), dt)
    mix, c_all = np.full((3, 2), 0.5, dt), G[1:4].reshape(3, -1)  # c = (2 f c + 2 i z) / 2, thrice
    t_g2 = t_g.reshape(U - 2, -1)
    one, half = dt(1), dt(0.5)
    R, p_g, p_o = cw.R, cw.p_g, cw.p_o
    tanh, mul, add, matmul = np.tanh, np.multiply, np.add, np.matmul
    block = max(1, xp_bytes // (U * n * B * H * np.dtype(dt).itemsize))
    # 2 h of a block of steps, contiguous (writing straight into ``out`` would
    # scatter each step over n rows T*H apart, which evicts the weights)
    hs = np.empty((min(block, T) + 1, n, B, H), dt)
    np.multiply(h0, 2, out=hs[0])
    for t0 in range(0, T, block):
        t1 = min(T, t0 + block)
        xp = np.matmul(X1[:, t0:t1].reshape(-1, I1), cw.W)  # (B * steps, U*n*H)
        xp = xp.reshape(B, t1 - t0, U, n, H).transpose(1, 2, 3, 0, 4)  # (steps, U, n, B, H)
        # outputs passed positionally: the keyword costs about 5% at small H
        for x_t, h_prev, h_next in zip(xp, hs, hs[1:]):
            matmul(h_prev, R, acts)
            add(acts_t, x_t, acts_in)
            if peep:
                mul(p_g, c_peep, t_g)
                add(g, t_g, g)
                tanh(zg, zg)
                add(g, one, g)  # 2 * gate
            else:
                tanh(acts_in, acts_in)
                add(g_o, one, g_o)
            if forget:
                mul(g, c_z, t_g)  # 2 f c, 2 i z
                matmul(mix, t_g2, c_all)
            else:
                mul(g_i, z_, t_1)  # 2 i z
                mul(t_1, half, t_1)
                add(c, t_1, c)
            if peep:
                mul(p_o, c, t_1)
                add(o_new, t_1, o)
                tanh(o_c, t_oc)
                add(t_o, one, t_o)
                mul(t_o, t_c, h_next)
            else:
                tanh(c, t_1)
                mul(o_new, t_1, h_next)
        k = t1 - t0
        np.multiply(hs[1 : k + 1].transpose(1, 2, 0, 3), 0.5, out=out[:, :, t0:t1])
        hs[0] = hs[k]
    return c
