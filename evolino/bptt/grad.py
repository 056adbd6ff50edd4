"""Backpropagation through time (gradients) for the LSTM of :mod:`evolino.lstm`: the gradient baseline.

The network is exactly the one Evolino evolves (same :class:`~evolino.lstm.LSTMSpec`,
same genome layout, forget gate and peepholes optional, see the equations in
:mod:`evolino.lstm`) followed by a linear output layer ``coef`` ``(H + 1, O)``
whose row ``H`` is the bias (the convention of ``evolino.readout.Linear.coef_[p]``)::

    y_t = h_t @ coef[:H] + coef[H]

The loss is the mean squared error after a washout of ``w`` steps, averaged over
sequences, steps ``t >= w`` and outputs::

    L = sum_{b, t >= w, k} (y_btk - d_btk)^2 / (B (T - w) O)

Backward pass (Hochreiter & Schmidhuber 1997; Gers et al. 2000, 2002), with
``dA_u`` the gradient of the pre-activation of unit ``u``, from ``t = T-1`` down to ``0``::

    dh_t  = dy_t @ coef[:H].T + dA_{t+1} @ R.T
    dA_o  = dh_t * tanh(c_t) * o_t (1 - o_t)
    dc_t  = dc_{t+1} f_{t+1} + dA_i,t+1 p_i + dA_f,t+1 p_f        (from step t+1)
            + dh_t o_t (1 - tanh(c_t)^2) + dA_o p_o
    dA_z  = dc_t i_t (1 - z_t^2),   dA_i = dc_t z_t i_t (1 - i_t),
    dA_f  = dc_t c_{t-1} f_t (1 - f_t)

Only the recurrence runs in a Python loop over time; every step works on the
whole batch ``(B, ...)`` at once. The local factors of every step, e.g.
``dc_{t-1} = dc_t F_t`` with ``F_t = f_t + p_i z_t i_t (1 - i_t) + p_f c_{t-1} f_t (1 - f_t)``
(through the carousel and the peepholes), are computed for all steps before
the loop, which only chains them; the weight
gradients are summed over all steps and sequences afterwards in one matrix
product each (``dW = X^T dA``, ``dR = h_{t-1}^T dA``).

Truncated BPTT with window ``k`` cuts the sequence into chunks of ``k`` steps;
each chunk starts from the state the previous chunk ended in, treated as a
constant (no gradient flows across a chunk boundary). :class:`BPTTTrainer`
takes one optimizer step per chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import check_array, check_positive_int
from ..lstm import LSTMSpec, LSTMState
from ..sequences import teacher_inputs

__all__ = ["forward", "loss_and_grad", "teacher_forcing"]


# --- weights ------------------------------------------------------------------------
class _Weights(NamedTuple):
    """One genome re-arranged for the batched step; columns grouped by unit ``[z | i | f | o]``.

    ``*_h`` arrays have their gate columns halved, so that one ``tanh`` gives
    ``sigma(a) = (1 + tanh(a / 2)) / 2``; the others are the plain weights the
    backward pass needs.
    """

    W_h: np.ndarray  # (I, U*H) input weights, gates halved
    R_h: np.ndarray  # (H, U*H) recurrent weights, gates halved
    b_h: np.ndarray  # (U, H) biases, gates halved
    RT: np.ndarray  # (U*H, H) plain recurrent weights, transposed
    p_in: np.ndarray | None  # (U-2, H) peepholes of input (and forget) gate
    p_o: np.ndarray | None  # (H,) peephole of output gate


def _half(spec: LSTMSpec) -> np.ndarray:
    """Column factors ``(U, H)``: 1 for the cell input, 1/2 for the gates."""
    f = np.full((spec.n_units, spec.n_cells), 0.5, spec.dtype)
    f[0] = 1.0
    return f


def _weights(spec: LSTMSpec, genome: np.ndarray) -> _Weights:
    I, H, U = spec.n_inputs, spec.n_cells, spec.n_units
    K = I + H + 1
    cells = genome.reshape(H, spec.params_per_cell)
    full = cells[:, : U * K].reshape(H, U, K).transpose(2, 1, 0)  # (K, U, H)
    half = _half(spec)
    scaled = full * half  # (K, U, H)
    p_in = p_o = None
    if spec.peepholes:
        peep = cells[:, U * K :].T  # (U-1, H): i, (f), o
        p_in, p_o = peep[:-1].copy(), peep[-1].copy()
    return _Weights(
        W_h=np.ascontiguousarray(scaled[:I].reshape(I, U * H)),
        R_h=np.ascontiguousarray(scaled[I : I + H].reshape(H, U * H)),
        b_h=np.ascontiguousarray(scaled[I + H]),
        RT=np.ascontiguousarray(full[I : I + H].reshape(H, U * H).T),
        p_in=p_in,
        p_o=p_o,
    )


def _pack_grad(spec: LSTMSpec, dW, dR, db, dp) -> np.ndarray:
    """Genome-layout gradient ``(n_params,)`` from ``dW (I, U, H)``, ``dR (H, U, H)``,
    ``db (U, H)`` and the peephole gradients ``dp (U-1, H)`` (or None)."""
    H = spec.n_cells
    full = np.concatenate([dW, dR, db[None]], axis=0)  # (K, U, H)
    blocks = full.transpose(2, 1, 0).reshape(H, -1)  # (H, U*K)
    if dp is not None:
        blocks = np.concatenate([blocks, dp.T], axis=1)  # (H, params_per_cell)
    return np.ascontiguousarray(blocks).reshape(spec.n_params)


# --- forward and backward -------------------------------------------------------------
class _Tape(NamedTuple):
    """What the backward pass needs of one forward run, time-major."""

    X: np.ndarray  # (T, B, I)
    act: np.ndarray  # (T, B, U, H): z, i, (f,) o after squashing
    c: np.ndarray  # (T+1, B, H): c[0] is the initial cell state
    tc: np.ndarray  # (T, B, H): tanh(c_t)
    h: np.ndarray  # (T+1, B, H): h[0] is the initial cell output
    y: np.ndarray  # (T, B, O)


def _run(spec: LSTMSpec, w: _Weights, coef: np.ndarray, Xt: np.ndarray, state) -> _Tape:
    """Forward pass over time-major inputs ``Xt`` ``(T, B, I)`` from ``state`` ``(h, c)`` ``(B, H)``."""
    T, B, _ = Xt.shape
    H, U, dt = spec.n_cells, spec.n_units, spec.dtype
    act = np.empty((T, B, U, H), dt)
    np.matmul(Xt, w.W_h, out=act.reshape(T, B, U * H))  # input projections of all steps at once
    act += w.b_h
    hs = np.empty((T + 1, B, H), dt)
    cs = np.empty((T + 1, B, H), dt)
    tcs = np.empty((T, B, H), dt)
    hs[0], cs[0] = state
    rec = np.empty((B, U, H), dt)
    rec2 = rec.reshape(B, U * H)
    p_in = None if w.p_in is None else 0.5 * w.p_in  # halved like the gate columns
    p_o = None if w.p_o is None else 0.5 * w.p_o
    last = U - 1
    for t in range(T):
        a, c_prev, c = act[t], cs[t], cs[t + 1]
        np.matmul(hs[t], w.R_h, out=rec2)
        a += rec
        if p_in is None:  # no peephole: all units squash at once
            np.tanh(a, out=a)
            g = a[:, 1:]
            g *= 0.5
            g += 0.5
        else:
            a[:, 1:last] += p_in * c_prev[:, None]
            zg = a[:, :last]
            np.tanh(zg, out=zg)
            g = a[:, 1:last]
            g *= 0.5
            g += 0.5
        np.multiply(a[:, 0], a[:, 1], out=c)
        if spec.forget_gate:
            c += a[:, 2] * c_prev
        else:
            c += c_prev
        o = a[:, last]
        if p_o is not None:
            o += p_o * c
            np.tanh(o, out=o)
            o *= 0.5
            o += 0.5
        np.tanh(c, out=tcs[t])
        np.multiply(o, tcs[t], out=hs[t + 1])
    y = hs[1:] @ coef[:H]
    y += coef[H]
    return _Tape(Xt, act, cs, tcs, hs, y)


def _backward(spec: LSTMSpec, w: _Weights, coef: np.ndarray, tape: _Tape, dy: np.ndarray):
    """Gradients ``(d_genome (n_params,), d_coef (H+1, O))`` given ``dL/dy`` ``dy`` ``(T, B, O)``.

    The initial state of the tape is a constant (no gradient flows into it).
    """
    X, act, cs, tcs, hs, _ = tape
    T, B, U, H = act.shape
    I, dt, last = X.shape[-1], spec.dtype, U - 1
    d_coef = np.empty_like(coef)
    d_coef[:H] = hs[1:].reshape(T * B, H).T @ dy.reshape(T * B, -1)
    d_coef[H] = dy.sum(axis=(0, 1))
    dh_all = dy @ coef[:H].T  # (T, B, H): error arriving at each h_t from the outputs

    # Local derivatives of every step at once, so the loop below only chains them.
    z, i, o = act[:, :, 0], act[:, :, 1], act[:, :, last]
    M = np.empty((T, B, last, H), dt)  # dc_t -> dA of z, i, (f)
    np.multiply(i, 1.0 - z * z, out=M[:, :, 0])
    np.multiply(z, i * (1.0 - i), out=M[:, :, 1])
    if spec.forget_gate:
        f = act[:, :, 2]
        np.multiply(cs[:-1], f * (1.0 - f), out=M[:, :, 2])
    Mo = tcs * o * (1.0 - o)  # dh_t -> dA_o
    N = o * (1.0 - tcs * tcs)  # dh_t -> dc_t, directly ...
    if w.p_o is not None:
        N += Mo * w.p_o  # ... and through the output gate's peephole
    # dc_{t-1} = dc_t * F_t: through the carousel (f_t) and the input/forget gates' peepholes
    F = act[:, :, 2].copy() if spec.forget_gate else None
    if w.p_in is not None:
        peep = np.einsum("tbuh,uh->tbh", M[:, :, 1:], w.p_in)
        F = 1.0 + peep if F is None else F + peep

    dA = np.empty((T, B, U, H), dt)
    dc = np.zeros((B, H), dt)
    dh_rec = np.zeros((B, H), dt)
    tmp = np.empty((B, H), dt)
    for t in range(T - 1, -1, -1):
        dh = dh_all[t]
        dh += dh_rec
        np.multiply(dh, Mo[t], out=dA[t, :, last])
        np.multiply(dh, N[t], out=tmp)
        dc += tmp
        np.multiply(dc[:, None], M[t], out=dA[t, :, :last])
        if F is not None:
            dc *= F[t]
        np.matmul(dA[t].reshape(B, U * H), w.RT, out=dh_rec)

    dA2 = dA.reshape(T * B, U * H)
    dW = (X.reshape(T * B, I).T @ dA2).reshape(I, U, H)
    dR = (hs[:-1].reshape(T * B, H).T @ dA2).reshape(H, U, H)
    db = dA.sum(axis=(0, 1))  # (U, H)
    dp = None
    if spec.peepholes:
        dp = np.empty((last, H), dt)
        dp[:-1] = np.einsum("tbuh,tbh->uh", dA[:, :, 1:last], cs[:-1])
        dp[-1] = np.einsum("tbh,tbh->h", dA[:, :, last], cs[1:])
    return _pack_grad(spec, dW, dR, db, dp), d_coef


def _sse_grad(y: np.ndarray, Y: np.ndarray, start: int, scale: float):
    """``scale * sum((y - Y)^2)`` over steps ``>= start`` and its gradient ``dy`` (both time-major)."""
    diff = y - Y
    diff[:start] = 0.0
    return scale * float(np.vdot(diff, diff)), (2.0 * scale) * diff


# --- checks ---------------------------------------------------------------------------
def _check_params(spec: LSTMSpec, genome, coef, n_outputs=None, names=("genome", "coef")):
    """``genome`` ``(n_params,)`` and ``coef`` ``(H+1, O)`` as finite arrays of ``spec.dtype``."""
    if not isinstance(spec, LSTMSpec):
        raise TypeError(f"spec must be an LSTMSpec, got {type(spec).__name__}")
    ng, nc = names
    g = check_array(genome, ng, ndims=(1,), dtype=spec.dtype, finite=True)
    if g.shape != (spec.n_params,):
        raise ValueError(f"{ng} must have shape ({spec.n_params},) for this spec, got {g.shape}")
    c = check_array(coef, nc, ndims=(2,), dtype=spec.dtype, finite=True)
    H = spec.n_cells
    if c.shape[0] != H + 1 or (n_outputs is not None and c.shape[1] != n_outputs) or c.shape[1] == 0:
        want = f"({H + 1}, {n_outputs if n_outputs is not None else 'O'})"
        raise ValueError(f"{nc} must have shape {want} (row H = bias), got {c.shape}")
    return g, c


def _check_sequences(spec: LSTMSpec, X, Y, n_outputs, washout, names=("X", "Y")):
    """``X`` ``(T, I)``/``(B, T, I)`` and ``Y`` ``(T, O)``/``(B, T, O)`` as 3-D arrays, checked."""
    nx, ny = names
    X = check_array(X, nx, ndims=(2, 3), dtype=spec.dtype, finite=True)
    Y = check_array(Y, ny, ndims=(2, 3), dtype=spec.dtype, finite=True)
    if X.ndim != Y.ndim:
        raise ValueError(f"{nx} {X.shape} and {ny} {Y.shape} must both be (T, .) or both be (B, T, .)")
    if X.ndim == 2:
        X, Y = X[None], Y[None]
    B, T, I = X.shape
    if B == 0 or T == 0:
        raise ValueError(f"{nx} must hold at least one sequence and one step, got shape {X.shape}")
    if I != spec.n_inputs:
        raise ValueError(f"{nx} must have {spec.n_inputs} features (spec.n_inputs) in its last axis, got {I}")
    if Y.shape[:2] != (B, T):
        raise ValueError(f"{ny} must have {B} sequences of {T} steps like {nx} {X.shape}, got {Y.shape}")
    if n_outputs is not None and Y.shape[2] != n_outputs:
        raise ValueError(f"{ny} must have {n_outputs} outputs (n_outputs) in its last axis, got {Y.shape[2]}")
    if washout >= T:
        raise ValueError(f"washout ({washout}) must be shorter than the sequences of {nx} ({T} steps)")
    return X, Y


def _check_state(state, B, spec, name="state"):
    """``state`` as a pair ``(h, c)`` of finite ``(B, H)`` arrays, or None."""
    if state is None:
        return None
    H = spec.n_cells
    if not isinstance(state, tuple) or len(state) != 2 or any(np.shape(s) != (B, H) for s in state):
        raise ValueError(f"{name} must be an LSTMState (h, c) of shape ({B}, {H}) each")
    return tuple(check_array(s, name, dtype=spec.dtype, finite=True) for s in state)


# --- public functions -----------------------------------------------------------------
def forward(spec: LSTMSpec, genome, coef, X, *, state: LSTMState | None = None, return_state: bool = False):
    """Cell outputs and network outputs of one network on a batch of sequences.

    Parameters
    ----------
    spec : LSTMSpec
    genome : array of shape (n_params,)
        Hidden weights in the layout of :class:`~evolino.lstm.LSTMSpec`.
    coef : array of shape (H + 1, O)
        Output weights; row ``H`` is the bias.
    X : array of shape (T, I) or (B, T, I)
    state : LSTMState, optional
        Initial ``h``, ``c``, each ``(B, H)``; zeros by default.
    return_state : bool, default=False
        Also return the final state (``h``, ``c`` of shape ``(B, H)``).

    Returns
    -------
    cells : ndarray of shape (T, H) or (B, T, H)
        Cell outputs ``h_t``; equal to ``evolino.lstm.forward(spec, genome, X)``.
    outputs : ndarray of shape (T, O) or (B, T, O)
    state : LSTMState, only if ``return_state``
    """
    g, c = _check_params(spec, genome, coef)
    X = check_array(X, "X", ndims=(2, 3), dtype=spec.dtype, finite=True)
    seq = X.ndim == 2
    X3 = X[None] if seq else X
    B, T, I = X3.shape
    if B == 0 or T == 0:
        raise ValueError(f"X must hold at least one sequence and one step, got shape {X.shape}")
    if I != spec.n_inputs:
        raise ValueError(f"X must have {spec.n_inputs} features (spec.n_inputs) in its last axis, got {I}")
    H = spec.n_cells
    state = _check_state(state, B, spec) or (np.zeros((B, H), spec.dtype),) * 2
    tape = _run(spec, _weights(spec, g), c, X3.transpose(1, 0, 2), state)
    cells = tape.h[1:].transpose(1, 0, 2)
    out = tape.y.transpose(1, 0, 2)
    if seq:
        cells, out = cells[0], out[0]
    result = (np.ascontiguousarray(cells), np.ascontiguousarray(out))
    if return_state:
        return result + (LSTMState(tape.h[-1].copy(), tape.c[-1].copy()),)
    return result


def _loss_and_grad(spec, w, coef, Xt, Yt, washout, truncate, state, scale, keep_state=False):
    """Core of :func:`loss_and_grad` on checked, time-major arrays; optional final state."""
    T = Xt.shape[0]
    k = T if truncate is None else min(truncate, T)
    loss = 0.0
    d_gen = np.zeros(spec.n_params, spec.dtype)
    d_coef = np.zeros_like(coef)
    for s in range(0, T, k):
        tape = _run(spec, w, coef, Xt[s : s + k], state)
        state = (tape.h[-1], tape.c[-1])
        if s + k <= washout:  # chunk wholly inside the washout: only its final state matters
            continue
        part, dy = _sse_grad(tape.y, Yt[s : s + k], max(0, washout - s), scale)
        dg, dc = _backward(spec, w, coef, tape, dy)
        loss += part
        d_gen += dg
        d_coef += dc
    return (loss, d_gen, d_coef, state) if keep_state else (loss, d_gen, d_coef)


def loss_and_grad(
    spec: LSTMSpec, genome, coef, X, Y, washout: int = 0, *, truncate: int | None = None,
    state: LSTMState | None = None,
):
    """Mean squared error after ``washout`` and its exact gradient by backpropagation through time.

    Parameters
    ----------
    spec : LSTMSpec
    genome : array of shape (n_params,)
    coef : array of shape (H + 1, O)
        Output weights; row ``H`` is the bias.
    X : array of shape (B, T, I) or (T, I)
    Y : array of shape (B, T, O) or (T, O)
        Targets; steps ``t < washout`` do not count.
    washout : int, default=0
    truncate : int, optional
        Truncation window ``k``: the sequences are cut into chunks of ``k`` steps and
        no gradient flows across chunk boundaries (the state is carried forward as
        a constant). The loss is unchanged; the gradient is that of the truncated
        objective. ``None`` (or ``k >= T``) is full BPTT.
    state : LSTMState, optional
        Initial ``h``, ``c``, each ``(B, H)``, a constant (zeros by default): to
        continue sequences cut into pieces by the caller.

    Returns
    -------
    loss : float
        ``sum over sequences, steps >= washout and outputs of (y - Y)^2`` divided by their count.
    d_genome : ndarray of shape (n_params,)
        Gradient in the genome layout of ``spec``.
    d_coef : ndarray of shape (H + 1, O)
    """
    g, c = _check_params(spec, genome, coef)
    washout = check_positive_int(washout, "washout", minimum=0)
    if truncate is not None:
        truncate = check_positive_int(truncate, "truncate")
    X, Y = _check_sequences(spec, X, Y, c.shape[1], washout)
    B, T, _ = X.shape
    state = _check_state(state, B, spec) or (np.zeros((B, spec.n_cells), spec.dtype),) * 2
    scale = 1.0 / (B * (T - washout) * c.shape[1])
    return _loss_and_grad(
        spec, _weights(spec, g), c, X.transpose(1, 0, 2), Y.transpose(1, 0, 2), washout, truncate, state, scale
    )


def teacher_forcing(Y, X=None):
    """Inputs and targets for a generation task trained with teacher forcing.

    The input at step ``t`` is ``[X[t], Y[t-1]]``: the external inputs (if any),
    then the target at ``t - 1`` (zeros at ``t = 0``); the target stays ``Y[t]``.
    This is the input convention of ``evolino.model.EvolinoNetwork(..., feedback=True)``,
    so ``X, T = teacher_forcing(Y); BPTTTrainer(...).fit(T, X=X).to_network(feedback=True)``
    generates in closed loop by feeding its own output back.

    Parameters
    ----------
    Y : array of shape (T, O) or (B, T, O)
        Target series.
    X : array of shape (T, I_ext) or (B, T, I_ext), optional
        External inputs.

    Returns
    -------
    inputs : ndarray of shape (T, I_ext + O) or (B, T, I_ext + O)
    targets : ndarray of shape (T, O) or (B, T, O)
        A copy of ``Y``.

    Examples
    --------
    >>> import numpy as np
    >>> inputs, targets = teacher_forcing(np.arange(1.0, 4.0)[:, None])
    >>> inputs.ravel().tolist(), targets.ravel().tolist()
    ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    """
    Y = check_array(Y, "Y", ndims=(2, 3), finite=True)
    if Y.shape[-2] == 0:
        raise ValueError(f"Y must hold at least one step (axis -2), got shape {Y.shape}")
    if X is not None:
        X = check_array(X, "X", ndims=(Y.ndim,), finite=True)
        if X.shape[:-1] != Y.shape[:-1]:
            raise ValueError(f"X must have the sequences and steps of Y {Y.shape[:-1]}, got {X.shape}")
    Yb, Xb = (Y, X) if Y.ndim == 3 else (Y[None], None if X is None else X[None])
    dtype = Y.dtype if X is None else np.result_type(X, Y)
    inputs = teacher_inputs(Yb.astype(dtype, copy=False), Xb)
    return (inputs if Y.ndim == 3 else inputs[0]), Y.copy()
