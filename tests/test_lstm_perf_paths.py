"""The forward kernel's performance paths (population chunks, blocks of time steps,
the gate-major buffer layouts of each option) against the plain per-network loop."""

import numpy as np
import pytest

from evolino import lstm
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare
from reference import BACKENDS, lstm_reference

OPTIONS = [(p, f) for p in (True, False) for f in (True, False)]


def _check_against_reference(spec, genomes, X, out, state=None, h0=None, c0=None):
    tol = 1e-12 if spec.dtype == np.float64 else 3e-5
    P, B = genomes.shape[0], X.shape[0]
    for p in range(P):
        for b in range(B):
            h_init = None if h0 is None else h0[p, b]
            c_init = None if c0 is None else c0[p, b]
            ref, h, c = lstm_reference(spec, genomes[p], X[b], h_init, c_init)
            np.testing.assert_allclose(out[p, b], ref, atol=tol, rtol=0)
            if state is not None:
                np.testing.assert_allclose(state.h[p, b], h, atol=tol, rtol=0)
                np.testing.assert_allclose(state.c[p, b], c, atol=10 * tol, rtol=tol)


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("xp_bytes", [1, 700])  # one step per block; blocks that do not divide T
def test_chunks_and_time_blocks_match_reference(monkeypatch, peepholes, forget_gate, dtype, B, xp_bytes):
    rng = np.random.default_rng(7)
    spec = LSTMSpec(2, 3, peepholes=peepholes, forget_gate=forget_gate, dtype=dtype)
    P, T = 5, 11
    genomes = rng.normal(0, 1.5, (P, spec.n_params)).astype(dtype)  # large: gates saturate
    X = rng.normal(size=(B, T, 2)).astype(dtype)
    # two networks per chunk, so the last chunk is smaller
    monkeypatch.setattr(lstm, "_CHUNK_BYTES", 2 * 3 * spec.n_units * 3 * np.dtype(dtype).itemsize)
    monkeypatch.setattr(lstm, "_XP_BYTES", xp_bytes)
    out, state = forward(spec, genomes, X, return_state=True, backend="numpy")  # the chunked NumPy kernel
    _check_against_reference(spec, genomes, X, out, state)


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_nonzero_initial_state_across_blocks(monkeypatch, peepholes, forget_gate, backend):
    rng = np.random.default_rng(3)
    spec = LSTMSpec(1, 4, peepholes=peepholes, forget_gate=forget_gate)
    P, B, T = 3, 2, 9
    genomes = rng.normal(size=(P, spec.n_params))
    X = rng.normal(size=(B, T, 1))
    h0, c0 = rng.uniform(-1, 1, (P, B, 4)), rng.normal(0, 2, (P, B, 4))
    monkeypatch.setattr(lstm, "_XP_BYTES", 500)
    out, state = forward(spec, genomes, X, h0=LSTMState(h0, c0), return_state=True, backend=backend)
    _check_against_reference(spec, genomes, X, out, state, h0, c0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_input_and_one_cell(backend):
    rng = np.random.default_rng(4)
    spec = LSTMSpec(9, 1)  # input wider than the layer
    genomes = rng.normal(size=(4, spec.n_params))
    X = rng.normal(size=(1, 13, 9))
    _check_against_reference(spec, genomes, X, forward(spec, genomes, X, backend=backend))


def test_chunk_size_does_not_change_results(monkeypatch):
    spec = LSTMSpec(1, 8)
    genomes = spec.init(0, 9)
    X = np.random.default_rng(1).normal(size=(40, 1))
    w = prepare(spec, genomes)
    whole = forward(spec, w, X, backend="numpy")
    for chunk_bytes in (1, 8 * 32 * 8 * 4):  # one network per chunk; four per chunk
        monkeypatch.setattr(lstm, "_CHUNK_BYTES", chunk_bytes)
        np.testing.assert_allclose(forward(spec, w, X, backend="numpy"), whole, atol=1e-14, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_returned_state_is_not_a_view_of_the_outputs(backend):
    spec = LSTMSpec(1, 2)
    genomes = spec.init(0, 2)
    out, state = forward(spec, genomes, np.ones((5, 1)), return_state=True, backend=backend)
    h = state.h.copy()
    out[...] = 7.0
    np.testing.assert_array_equal(state.h, h)
