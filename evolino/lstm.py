"""LSTM specification, genome layout and the population-batched forward kernel.

Equations (Gers, Schmidhuber & Cummins 2000, forget gate; Gers, Schraudolph &
Schmidhuber 2002, peepholes), for every memory cell ``j`` at time ``t``::

    z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)                     cell input
    i_t = sigma(W_i x_t + R_i h_{t-1} + p_i * c_{t-1} + b_i)    input gate
    f_t = sigma(W_f x_t + R_f h_{t-1} + p_f * c_{t-1} + b_f)    forget gate (1 if absent)
    c_t = f_t * c_{t-1} + i_t * z_t                             constant error carousel
    o_t = sigma(W_o x_t + R_o h_{t-1} + p_o * c_t + b_o)        output gate
    h_t = o_t * tanh(c_t)                                       cell output

Genome layout (one flat vector of ``spec.n_params`` floats), **cell by cell** so
that ESP's unit of evolution is a contiguous slice (``spec.cell_slices``).
Cell ``j``'s block is, for each unit ``u`` in ``spec.units`` (``z, i, f, o``;
``z, i, o`` without forget gate), ``[W_u[j, :] (I), R_u[j, :] (H), b_u[j]]``,
followed by the peepholes ``[p_i[j], (p_f[j],) p_o[j]]`` when enabled.

The kernel never loops over networks in Python: all ``P`` networks and ``B``
sequences advance together with one batched matrix product per time step. The
population is processed in chunks whose recurrent weights fit in the L2 cache,
so that the weights stay cached across time steps instead of streaming from
memory every step; the input projections of a chunk are computed for a block of
time steps at once by one matrix product, and the elementwise work runs on
gate-major buffers (see ``_forward_chunk``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._backend import numba_forward, numba_step, resolve_backend
from ._chunked import _chunk_weights, _forward_chunk
from ._validate import as_rng, check_array, check_float_dtype, check_number, check_positive_int

__all__ = ["LSTMSpec", "LSTMState", "LSTMWeights", "forward", "prepare", "step", "initial_state"]

# Bytes of recurrent weights per population chunk: about half a 2 MiB L2 cache,
# leaving room for the state, gate and input buffers (0.5-2 MiB measured:
# 1 MiB is best or within noise of best on every shape of benchmarks/kernel.py).
_CHUNK_BYTES = 1 << 20
# Bytes of input projections computed at once (a block of time steps of a chunk):
# small enough to stay in L2 between being written and read.
_XP_BYTES = 1 << 18


GATE_REGIMES = ("lstm", "reservoir")  # initial gate biases, see LSTMSpec.init
_RESERVOIR_GATE = float(np.log(0.99 / 0.01))  # logit(0.99): input gate ~ 0.99, forget gate ~ 0.01
_RESERVOIR_OUT = 4.0  # output gate ~ sigma(4) = 0.98


@dataclass(frozen=True)
class LSTMSpec:
    """Shape and options of an LSTM layer of memory cells.

    Parameters
    ----------
    n_inputs : int
        Width ``I`` of an input vector.
    n_cells : int
        Number ``H`` of memory cells (one cell per block).
    peepholes : bool, default=True
        Connect the cell state to the gates (Gers et al. 2002).
    forget_gate : bool, default=True
        Use a forget gate (Gers et al. 2000); without it the cell never forgets
        (Hochreiter & Schmidhuber 1997).
    dtype : numpy dtype, default=np.float64
        Floating point type of genomes and activations (float32 or float64).
    recurrent_dtype : numpy dtype, optional
        ``np.float32`` with ``dtype`` float64: the recurrent weights are rounded to float32 numbers
        (:func:`prepare`), every sum and activation stays in float64. The network is then exactly the
        float64 network of the rounded weights, and the compiled kernels read those weights as
        float32, half the bytes per step (2.7x faster at 300 cells, where float64 weights outgrow a
        2 MiB L2; benchmarks/RESULTS.md). None (the default) or ``dtype``: no rounding.
    """

    n_inputs: int
    n_cells: int
    peepholes: bool = True
    forget_gate: bool = True
    dtype: type = np.float64
    recurrent_dtype: type | None = None

    def __post_init__(self):
        check_positive_int(self.n_inputs, "n_inputs")
        check_positive_int(self.n_cells, "n_cells")
        for name in ("peepholes", "forget_gate"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        dt = check_float_dtype(self.dtype, "dtype")
        object.__setattr__(self, "dtype", dt.type)
        if self.recurrent_dtype is not None:
            rd = check_float_dtype(self.recurrent_dtype, "recurrent_dtype", none_ok=True)
            object.__setattr__(self, "recurrent_dtype", None if rd.itemsize >= dt.itemsize else rd.type)

    @property
    def rounds_recurrent(self) -> bool:
        """Whether :func:`prepare` rounds the recurrent weights to ``recurrent_dtype``."""
        return self.recurrent_dtype is not None

    # --- layout -------------------------------------------------------------
    @property
    def units(self) -> tuple[str, ...]:
        """Names of the weighted units of a cell: cell input then gates."""
        return ("z", "i", "f", "o") if self.forget_gate else ("z", "i", "o")

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_peepholes(self) -> int:
        """Peephole weights per cell (one per gate, 0 without peepholes)."""
        return self.n_units - 1 if self.peepholes else 0

    @property
    def params_per_cell(self) -> int:
        return self.n_units * (self.n_inputs + self.n_cells + 1) + self.n_peepholes

    @property
    def n_params(self) -> int:
        """Length of a genome."""
        return self.n_cells * self.params_per_cell

    @property
    def cell_slices(self) -> list[slice]:
        """Genome slice of each memory cell, the unit ESP evolves; ``H`` slices."""
        k = self.params_per_cell
        return [slice(j * k, (j + 1) * k) for j in range(self.n_cells)]

    # --- genomes ------------------------------------------------------------
    def init(self, rng=None, size: int = 1, scale: float = 1.0, gates: str = "lstm") -> np.ndarray:
        """Random genomes, shape ``(size, n_params)``.

        Every weight is uniform in ``[-a, a]`` with ``a = scale / sqrt(I + H + 1)``
        (the fan-in of a unit), so pre-activations start of order ``scale``. The gate
        biases set the regime:

        - ``gates="lstm"``: forget-gate biases shifted by ``+1`` so that cells start
          remembering (Gers et al. 2000): ``f ~ 0.73``, ``i ~ o ~ 0.5``. Every cell is then
          nearly the same first-order low-pass filter, which suits signals made by a
          linear recurrence (superimposed sines) but spans only a few state directions.
        - ``gates="reservoir"``: ``b_i = +4.6``, ``b_f = -4.6``, ``b_o = +4`` (``i ~ 0.99``,
          ``f ~ 0.01``, ``o ~ 0.98``): the recurrent weights dominate the dynamics, an echo
          state network of tanh units read through ``h = o tanh(c)``; measured on NARMA-10
          (test NRMSE 0.50 -> 0.19, 100 cells) and the Santa Fe laser (0.145 -> 0.080).
          Without a forget gate only ``b_i`` and ``b_o`` are set.

        Parameters
        ----------
        rng : int, numpy.random.Generator or None
        size : int
            Number of genomes.
        scale : float, default=1.0
        gates : {"lstm", "reservoir"}, default="lstm"
        """
        rng = as_rng(rng)
        size = check_positive_int(size, "size")
        if gates not in GATE_REGIMES:
            raise ValueError(f"gates must be one of {list(GATE_REGIMES)}, got {gates!r}")
        a = float(scale) / np.sqrt(self.n_inputs + self.n_cells + 1)
        g = rng.uniform(-a, a, size=(size, self.n_params))
        k, width = self.params_per_cell, self.n_inputs + self.n_cells + 1
        cells = np.arange(self.n_cells) * k

        def bias(unit):
            return cells + self.units.index(unit) * width + width - 1

        if gates == "lstm" and self.forget_gate:
            g[:, bias("f")] += 1.0
        elif gates == "reservoir":
            g[:, bias("i")] = _RESERVOIR_GATE
            g[:, bias("o")] = _RESERVOIR_OUT
            if self.forget_gate:
                g[:, bias("f")] = -_RESERVOIR_GATE
        return g.astype(self.dtype)

    def unpack(self, genome) -> dict[str, np.ndarray]:
        """Named weight arrays of one genome ``(n_params,)`` or a batch ``(P, n_params)``.

        Returns a dict with, for each unit ``u`` in ``units`` (``z, i, f, o``):
        ``W_u`` ``(..., H, I)`` input weights, ``R_u`` ``(..., H, H)`` recurrent
        weights from the cell outputs ``h_{t-1}``, ``b_u`` ``(..., H)`` biases; and
        ``p_i``, ``p_f``, ``p_o`` ``(..., H)`` peephole weights when enabled.
        ``...`` is empty for one genome and ``(P,)`` for a batch.
        """
        g = self._check_genomes(genome, "genome")
        lead = g.shape[:-1]
        I, H, U = self.n_inputs, self.n_cells, self.n_units
        cells = g.reshape(*lead, H, self.params_per_cell)
        blocks = cells[..., : U * (I + H + 1)].reshape(*lead, H, U, I + H + 1)
        out = {}
        for u, name in enumerate(self.units):
            out[f"W_{name}"] = blocks[..., u, :I].copy()
            out[f"R_{name}"] = blocks[..., u, I : I + H].copy()
            out[f"b_{name}"] = blocks[..., u, I + H].copy()
        if self.peepholes:
            peep = cells[..., U * (I + H + 1) :]
            for k, name in enumerate(self.units[1:]):
                out[f"p_{name}"] = peep[..., k].copy()
        return out

    def pack(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`unpack`: genome(s) ``(..., n_params)`` from named arrays."""
        I, H, U = self.n_inputs, self.n_cells, self.n_units
        lead = np.shape(weights["b_z"])[:-1]
        cells = np.empty((*lead, H, self.params_per_cell), dtype=self.dtype)
        blocks = cells[..., : U * (I + H + 1)].reshape(*lead, H, U, I + H + 1)
        for u, name in enumerate(self.units):
            blocks[..., u, :I] = weights[f"W_{name}"]
            blocks[..., u, I : I + H] = weights[f"R_{name}"]
            blocks[..., u, I + H] = weights[f"b_{name}"]
        cells[..., : U * (I + H + 1)] = blocks.reshape(*lead, H, -1)
        if self.peepholes:
            for k, name in enumerate(self.units[1:]):
                cells[..., U * (I + H + 1) + k] = weights[f"p_{name}"]
        return cells.reshape(*lead, self.n_params)

    def _check_genomes(self, genomes, name="genomes") -> np.ndarray:
        g = check_array(genomes, name, ndims=(1, 2), dtype=self.dtype)
        if g.shape[-1] != self.n_params:
            raise ValueError(
                f"{name} must have shape (P, {self.n_params}) or ({self.n_params},) for this "
                f"spec (n_params={self.n_params}), got {g.shape}"
            )
        return g


class LSTMState(NamedTuple):
    """Recurrent state of ``P`` networks on ``B`` sequences: ``h``, ``c`` of shape ``(P, B, H)``."""

    h: np.ndarray
    c: np.ndarray


class LSTMWeights(NamedTuple):
    """Kernel-ready weights of ``P`` networks (see :func:`prepare`).

    Columns are grouped by unit: ``[z | i | f | o]``, ``U*H`` wide. Gate columns
    are pre-multiplied by 1/2 so that one ``tanh`` serves cell input and gates,
    using ``sigma(a) = (1 + tanh(a / 2)) / 2``.
    """

    W: np.ndarray  # (P, I, U*H) input weights
    R: np.ndarray  # (P, H, U*H) recurrent weights
    b: np.ndarray  # (P, 1, U*H) biases
    p_in: np.ndarray  # (P, 1, U-2, H) peepholes of input (and forget) gate, halved
    p_out: np.ndarray  # (P, 1, H) peephole of output gate, halved
    spec: LSTMSpec


def prepare(spec: LSTMSpec, genomes, input_scale=1.0, input_shift=None) -> LSTMWeights:
    """Rearrange genomes ``(P, n_params)`` or ``(n_params,)`` into kernel-ready weights.

    The network sees ``input_scale * (x - input_shift)``: the affine input map
    (a float or ``(I,)`` scale, an optional ``(I,)`` shift, e.g. standardization) is
    folded into the input weights and biases once here, so that every consumer
    of the weights (:func:`forward`, :func:`step`, the closed loop) takes raw
    inputs: a network with ``input_scale=s`` on ``x`` is exactly the network whose
    input weights are multiplied by ``s``.
    """
    g = spec._check_genomes(genomes)
    if g.ndim == 1:
        g = g[None]
    if not np.all(np.isfinite(g)):
        raise ValueError("genomes contain NaN or inf")
    P, I, H, U = g.shape[0], spec.n_inputs, spec.n_cells, spec.n_units
    cells = g.reshape(P, H, spec.params_per_cell)
    blocks = cells[:, :, : U * (I + H + 1)].reshape(P, H, U, I + H + 1)
    # (P, H_out, U, K) -> (P, K, U, H_out): column index u*H + j
    full = blocks.transpose(0, 3, 2, 1).reshape(P, I + H + 1, U * H).copy()
    full[:, :, H:] *= 0.5
    scale = _input_map(input_scale, "input_scale", I, positive=True)
    if np.any(scale != 1.0):
        full[:, :I] *= scale[None, :, None]
    if input_shift is not None:
        shift = _input_map(input_shift, "input_shift", I)
        full[:, I + H] -= np.einsum("i,pik->pk", shift, full[:, :I])
    W, R, b = full[:, :I], full[:, I : I + H], full[:, I + H :]
    dt = spec.dtype
    if spec.rounds_recurrent:  # after the halving (exact), so the kernels' float32 copy is exact too
        R = R.astype(spec.recurrent_dtype).astype(dt)
    if spec.peepholes:
        peep = 0.5 * cells[:, :, U * (I + H + 1) :]  # (P, H, U-1)
        p_in = peep[:, :, :-1].transpose(0, 2, 1).reshape(P, 1, U - 2, H)
        p_out = peep[:, :, -1].reshape(P, 1, H)
    else:
        p_in = np.zeros((P, 1, U - 2, H), dt)
        p_out = np.zeros((P, 1, H), dt)
    return LSTMWeights(
        np.ascontiguousarray(W), np.ascontiguousarray(R), np.ascontiguousarray(b),
        np.ascontiguousarray(p_in), np.ascontiguousarray(p_out), spec,
    )


def _input_map(v, name, I, positive=False) -> np.ndarray:
    """A float or ``(I,)`` array of finite values (positive ones if ``positive``) as ``(I,)``."""
    if np.ndim(v) == 0:
        v = check_number(v, name, low=0.0, low_open=True) if positive else check_number(v, name)
        return np.full(I, v)
    a = check_array(v, name, ndims=(1,), dtype=np.float64, finite=True)
    if a.shape != (I,) or (positive and np.any(a <= 0)):
        raise ValueError(f"{name} must be {'a positive number or ' if positive else 'a number or '}an array of "
                         f"shape ({I},){' of positive values' if positive else ''}, got {v!r}")
    return a


def initial_state(spec: LSTMSpec, n_networks: int, n_sequences: int = 1) -> LSTMState:
    """Zero state for ``n_networks`` networks on ``n_sequences`` sequences: ``(P, B, H)`` each."""
    shape = (check_positive_int(n_networks, "n_networks"), check_positive_int(n_sequences, "n_sequences"), spec.n_cells)
    return LSTMState(np.zeros(shape, spec.dtype), np.zeros(shape, spec.dtype))


def _as_weights(spec, weights_or_genomes) -> LSTMWeights:
    if isinstance(weights_or_genomes, LSTMWeights):
        if weights_or_genomes.spec != spec:
            raise ValueError("weights were prepared for a different LSTMSpec")
        return weights_or_genomes
    return prepare(spec, weights_or_genomes)


def _cell_update(spec, a, c, p_in, p_out):
    """One LSTM update from pre-activations ``a`` ``(n, B, U*H)`` (units ``[z|i|f|o]``, gates halved).

    ``c`` ``(n, B, H)`` is the previous cell state; returns new arrays ``(h, c_new)``.
    The activations are first moved gate-major, ``(U, n, B, H)``: every later
    call then works on contiguous blocks (NumPy's fixed cost per call roughly
    doubles when an operand is strided, and that cost dominates for small ``H``).
    """
    H, U = spec.n_cells, spec.n_units
    n, B = a.shape[:2]
    G = np.empty((U, n, B, H), a.dtype)
    np.copyto(G, a.reshape(n, B, U, H).transpose(2, 0, 1, 3))
    g = G[1 : U - 1]  # i, (f)
    if spec.peepholes:
        g += p_in.transpose(2, 0, 1, 3) * c  # (U-2, n, 1, H) * (n, B, H)
    np.tanh(G[: U - 1], out=G[: U - 1])
    g += 1.0  # 2 sigma(a) = 1 + tanh(a / 2)
    c_new = g[0] * G[0]  # 2 i z
    if spec.forget_gate:
        np.multiply(g[1], c, out=g[1])
        c_new += g[1]
        c_new *= 0.5
    else:
        c_new *= 0.5
        c_new += c
    o = G[U - 1]
    if spec.peepholes:
        np.multiply(p_out, c_new, out=g[0])
        o += g[0]
    np.tanh(o, out=o)
    o += 1.0
    h = np.tanh(c_new)
    h *= o
    h *= 0.5
    return h, c_new


def step(spec: LSTMSpec, weights, state: LSTMState, x, *, backend: str = "auto") -> LSTMState:
    """Advance ``P`` networks one time step.

    Parameters
    ----------
    spec : LSTMSpec
    weights : LSTMWeights or array of shape (P, n_params)
        Prefer :func:`prepare`-d weights in a loop: genomes are re-arranged on every call.
    state : LSTMState
        ``h``, ``c`` of shape ``(P, B, H)`` (see :func:`initial_state`).
    x : array of shape (B, I), shared by all networks, or (P, B, I)
        The input at this step (e.g. each network's own fed-back output).
    backend : {"auto", "numpy", "numba"}, default="auto"
        Kernel backend (see :func:`evolino.lstm.forward`; "auto": numba when installed).

    Returns
    -------
    LSTMState
        New ``h``, ``c`` of shape ``(P, B, H)``; ``h`` is the cell output.
    """
    w = _as_weights(spec, weights)
    P, H = w.W.shape[0], spec.n_cells
    h, c = state
    if np.shape(h) != np.shape(c) or np.ndim(h) != 3 or h.shape[0] != P or h.shape[2] != H:
        raise ValueError(f"state must hold h and c of shape ({P}, B, {H}), got {np.shape(h)} and {np.shape(c)}")
    x = check_array(x, "x", ndims=(2, 3), dtype=spec.dtype)
    B = h.shape[1]
    expected = ((B, spec.n_inputs), (P, B, spec.n_inputs))
    if x.shape not in expected:
        raise ValueError(f"x must have shape {expected[0]} or {expected[1]}, got {x.shape}")
    if resolve_backend(backend) == "numba":
        return LSTMState(*numba_step(spec, w, h, c, np.broadcast_to(x, (P, B, spec.n_inputs))))
    a = np.matmul(h, w.R)  # (P, B, U*H)
    a += np.matmul(x, w.W) if x.ndim == 3 else np.matmul(x[None], w.W)
    a += w.b
    h_new, c_new = _cell_update(spec, a, c, w.p_in, w.p_out)
    return LSTMState(h_new, c_new)


def forward(spec: LSTMSpec, genomes, X, h0: LSTMState | None = None, *, return_state: bool = False,
            backend: str = "auto"):
    """Cell outputs of ``P`` networks on ``B`` input sequences.

    Parameters
    ----------
    spec : LSTMSpec
    genomes : array of shape (P, n_params) or (n_params,), or LSTMWeights
    X : array of shape (T, I) or (B, T, I)
        Input sequences, shared by all networks.
    h0 : LSTMState, optional
        Initial state, ``h`` and ``c`` of shape ``(P, B, H)``; zeros by default.
    return_state : bool, default=False
        Also return the final :class:`LSTMState` (to continue with :func:`step`).
    backend : {"auto", "numpy", "numba"}, default="auto"
        ``"numpy"``: the chunked NumPy kernel (the reference); ``"numba"``: the compiled one
        (``pip install evolino[fast]``); ``"auto"``: numba when installed. Same results up to
        float rounding.

    Returns
    -------
    outputs : ndarray of shape (P, T, H) or (P, B, T, H)
        ``h_t`` for every step; the leading ``P`` axis is dropped when
        ``genomes`` was one vector ``(n_params,)``.
    state : LSTMState, only if ``return_state``
    """
    single = not isinstance(genomes, LSTMWeights) and np.ndim(genomes) == 1
    w = _as_weights(spec, genomes)
    X = check_array(X, "X", ndims=(2, 3), dtype=spec.dtype)
    seq = X.ndim == 2
    if seq:
        X = X[None]
    B, T, I = X.shape
    if T == 0 or B == 0:
        raise ValueError(f"X must hold at least one time step, got shape {X.shape}")
    if I != spec.n_inputs:
        raise ValueError(f"X must have {spec.n_inputs} features (spec.n_inputs) in its last axis, got {I}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    P, H, UH = w.W.shape[0], spec.n_cells, w.W.shape[2]
    if h0 is None:
        h0 = initial_state(spec, P, B)
    elif not isinstance(h0, tuple) or len(h0) != 2 or np.shape(h0[0]) != (P, B, H) or np.shape(h0[1]) != (P, B, H):
        raise ValueError(f"h0 must be an LSTMState with h and c of shape ({P}, {B}, {H})")

    out = np.empty((P, B, T, H), spec.dtype)
    c_last = np.empty((P, B, H), spec.dtype)
    if resolve_backend(backend) == "numba":
        numba_forward(spec, w, X, h0[0], h0[1], out, c_last)
        return _forward_result(out, c_last, seq, single, return_state)
    itemsize = np.dtype(spec.dtype).itemsize
    chunk = max(1, min(P, _CHUNK_BYTES // (H * UH * itemsize * max(1, B // 4))))
    # a column of ones folds the biases into the input projection
    X1 = np.concatenate([X, np.ones((B, T, 1), spec.dtype)], axis=2)  # (B, T, I + 1)
    for s in range(0, P, chunk):
        sl = slice(s, min(P, s + chunk))
        c_last[sl] = _forward_chunk(spec, _chunk_weights(spec, w, sl, B), X1, h0[0][sl], h0[1][sl], out[sl],
                                    _XP_BYTES)
    return _forward_result(out, c_last, seq, single, return_state)


def _forward_result(out, c_last, seq, single, return_state):
    """:func:`forward`'s return value from ``out`` ``(P, B, T, H)`` and the last cell state."""
    h_last = out[:, :, -1].copy()  # not a view: the state must not change with the outputs
    if seq:
        out = out[:, 0]
    if single:
        out = out[0]
    if return_state:
        return out, LSTMState(h_last, c_last)
    return out
