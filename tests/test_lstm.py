import numpy as np
import pytest

from evolino import lstm
from evolino.lstm import LSTMSpec, LSTMState, forward, initial_state, prepare, step
from reference import BACKENDS, lstm_reference

OPTIONS = [(p, f) for p in (True, False) for f in (True, False)]


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_matches_per_network_loop(peepholes, forget_gate, dtype, B, backend):
    rng = np.random.default_rng(1)
    spec = LSTMSpec(3, 5, peepholes=peepholes, forget_gate=forget_gate, dtype=dtype)
    P, T = 7, 25
    # large weights so that gates saturate and peepholes matter
    genomes = rng.normal(0, 1.0, (P, spec.n_params))
    X = rng.normal(size=(B, T, 3))
    out, state = forward(spec, genomes, X, return_state=True, backend=backend)
    assert out.shape == (P, B, T, 5) and out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for p in range(P):
        for b in range(B):
            ref, h, c = lstm_reference(spec, genomes[p].astype(dtype), X[b].astype(dtype))
            np.testing.assert_allclose(out[p, b], ref, atol=tol, rtol=0)
            np.testing.assert_allclose(state.h[p, b], h, atol=tol, rtol=0)
            np.testing.assert_allclose(state.c[p, b], c, atol=tol * 10, rtol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_shapes_single_genome_and_sequence(backend):
    spec = LSTMSpec(2, 4)
    g = spec.init(0, 3)
    X = np.random.default_rng(0).normal(size=(10, 2))
    assert forward(spec, g, X, backend=backend).shape == (3, 10, 4)
    assert forward(spec, g[0], X, backend=backend).shape == (10, 4)
    assert forward(spec, g, X[None].repeat(2, 0), backend=backend).shape == (3, 2, 10, 4)
    np.testing.assert_array_equal(forward(spec, g[0], X, backend=backend), forward(spec, g, X, backend=backend)[0])


def test_forward_population_chunking_is_invisible(monkeypatch):
    spec = LSTMSpec(2, 6)
    g = spec.init(3, 11)
    X = np.random.default_rng(0).normal(size=(2, 15, 2))
    full = forward(spec, g, X, backend="numpy")
    monkeypatch.setattr(lstm, "_CHUNK_BYTES", 1)  # one network per chunk
    np.testing.assert_allclose(forward(spec, g, X, backend="numpy"), full, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_from_initial_state_continues_a_run(backend):
    spec = LSTMSpec(1, 3)
    g = spec.init(5, 4)
    X = np.random.default_rng(2).normal(size=(30, 1))
    whole = forward(spec, g, X, backend=backend)
    first, state = forward(spec, g, X[:12], return_state=True, backend=backend)
    rest = forward(spec, g, X[12:], h0=state, backend=backend)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-14)


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_step_equals_forward(peepholes, forget_gate, backend):
    spec = LSTMSpec(2, 4, peepholes=peepholes, forget_gate=forget_gate)
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, spec.n_params))
    X = rng.normal(size=(2, 9, 2))
    out = forward(spec, g, X, backend="numpy")  # the other backend's step agrees with the reference forward
    w = prepare(spec, g)
    s = initial_state(spec, 5, 2)
    for t in range(9):
        s = step(spec, w, s, X[:, t], backend=backend)
        np.testing.assert_allclose(s.h, out[:, :, t], atol=1e-14)
    # per-network inputs (P, B, I): network p sees its own input
    Xp = rng.normal(size=(5, 2, 2))
    s1 = step(spec, w, initial_state(spec, 5, 2), Xp, backend=backend)
    for p in range(5):
        ref, _, _ = lstm_reference(spec, g[p], Xp[p, 1][None])
        np.testing.assert_allclose(s1.h[p, 1], ref[0], atol=1e-14)


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
def test_unpack_pack_round_trip_and_layout(peepholes, forget_gate):
    spec = LSTMSpec(3, 4, peepholes=peepholes, forget_gate=forget_gate)
    g = np.arange(spec.n_params, dtype=float)
    w = spec.unpack(g)
    np.testing.assert_array_equal(spec.pack(w), g)
    U = 4 if forget_gate else 3
    assert spec.n_params == 4 * (U * (3 + 4 + 1) + (U - 1) * peepholes)
    assert w["W_z"].shape == (4, 3) and w["R_o"].shape == (4, 4) and w["b_i"].shape == (4,)
    assert ("p_o" in w) == peepholes and ("W_f" in w) == forget_gate
    # cell by cell: every weight of cell j lies inside cell_slices[j]
    for j, sl in enumerate(spec.cell_slices):
        block = set(g[sl])
        for name, arr in w.items():
            assert set(np.atleast_1d(arr[j]).ravel()) <= block, name
    # batch unpack
    gb = np.stack([g, g + 1])
    assert spec.unpack(gb)["R_f" if forget_gate else "R_i"].shape == (2, 4, 4)


def test_cell_slices_cover_genome_exactly():
    spec = LSTMSpec(2, 5)
    idx = np.concatenate([np.arange(spec.n_params)[s] for s in spec.cell_slices])
    np.testing.assert_array_equal(idx, np.arange(spec.n_params))


def test_init_is_seeded_and_sets_forget_bias():
    spec = LSTMSpec(2, 3)
    a, b = spec.init(7, 4), spec.init(7, 4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, spec.n_params)
    bf = spec.unpack(a)["b_f"]
    assert np.all(bf > 0.4)  # +1 shift minus at most 1/sqrt(6)
    assert spec.init(np.random.default_rng(1), 2, scale=0.0)[:, spec.cell_slices[0]].max() <= 1.0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(n_inputs=0, n_cells=3), ValueError, "n_inputs"),
        (dict(n_inputs=2, n_cells=-1), ValueError, "n_cells"),
        (dict(n_inputs=2.5, n_cells=3), TypeError, "n_inputs"),
        (dict(n_inputs=2, n_cells=3, dtype=np.int32), TypeError, "dtype"),
        (dict(n_inputs=2, n_cells=3, dtype="nonsense"), TypeError, "dtype"),
        (dict(n_inputs=2, n_cells=3, peepholes="yes"), TypeError, "peepholes"),
    ],
)
def test_spec_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LSTMSpec(**kwargs)


def test_forward_bad_input():
    spec = LSTMSpec(2, 3)
    g = spec.init(0, 2)
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="genomes.*n_params"):
        forward(spec, g[:, :-1], X)
    with pytest.raises(ValueError, match="X must have 2 features"):
        forward(spec, g, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="X must be"):
        forward(spec, g, np.zeros(5))
    with pytest.raises(ValueError, match="at least one time step"):
        forward(spec, g, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        forward(spec, g, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        forward(spec, np.full_like(g, np.inf), X)
    with pytest.raises(TypeError, match="X"):
        forward(spec, g, "abc")
    with pytest.raises(ValueError, match="h0"):
        forward(spec, g, X, h0=initial_state(spec, 3, 1))
    with pytest.raises(ValueError, match="x must have shape"):
        step(spec, g, initial_state(spec, 2, 1), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="state"):
        step(spec, g, LSTMState(np.zeros((2, 1, 4)), np.zeros((2, 1, 4))), np.zeros((1, 2)))


def test_reservoir_gate_regime_sets_the_gate_biases_only():
    from evolino import LSTMSpec

    spec = LSTMSpec(2, 5)
    lstm, res = spec.init(0, 3, 1.5), spec.init(0, 3, 1.5, gates="reservoir")
    a, b = spec.unpack(lstm), spec.unpack(res)
    np.testing.assert_allclose(b["b_i"], np.log(99.0))
    np.testing.assert_allclose(b["b_f"], -np.log(99.0))
    np.testing.assert_allclose(b["b_o"], 4.0)
    for k in a:  # every other weight is the same draw
        if k not in ("b_i", "b_f", "b_o"):
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_allclose(a["b_f"] - 1.0, spec.unpack(spec.init(0, 3, 1.5))["b_f"] - 1.0)
    assert np.all(np.abs(a["b_f"] - 1.0) <= 1.5 / np.sqrt(8))  # lstm: forget bias shifted by +1
    with pytest.raises(ValueError, match="gates"):
        spec.init(0, 1, gates="esn")
