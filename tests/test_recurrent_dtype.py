"""Recurrent weights rounded to float32 in a float64 network (``LSTMSpec(recurrent_dtype=np.float32)``).

The network must be exactly the float64 network of the rounded weights: checked against the plain
loop of ``reference.py`` on a genome whose recurrent weights were rounded by hand, on both
backends, for the forward pass and the closed loop; the compiled kernel (which reads the float32
copy) must equal bit for bit the same kernel reading the rounded weights as float64.
"""

import numpy as np
import pytest

from evolino import Evolino, EvolinoNetwork, _backend
from evolino._validate import EvolinoTypeError
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare
from evolino.sequences import closed_loop
from reference import lstm_reference, rounded_recurrent

needs_numba = pytest.mark.skipif(not _backend.numba_available(),
                                 reason="numba is not installed (pip install evolino[fast])")
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def _rounded_by_hand(spec, g):
    """The genome with every recurrent weight rounded to float32 (through the named weights)."""
    return spec.pack(rounded_recurrent(spec.unpack(g), np.float32))


def _pair(peepholes=True, forget_gate=True, I=2, H=9, P=3, seed=0):
    plain = LSTMSpec(I, H, peepholes=peepholes, forget_gate=forget_gate)
    spec = LSTMSpec(I, H, peepholes=peepholes, forget_gate=forget_gate, recurrent_dtype=np.float32)
    g = np.random.default_rng(seed).normal(0, 1.0, (P, plain.n_params))
    return plain, spec, g


def test_prepare_rounds_only_the_recurrent_weights():
    plain, spec, g = _pair()
    w0, w = prepare(plain, g, input_scale=0.3), prepare(spec, g, input_scale=0.3)
    assert not np.array_equal(w0.R, w.R)  # random float64 weights are not float32 numbers
    np.testing.assert_array_equal(w.R, w0.R.astype(np.float32).astype(np.float64))
    for name in ("W", "b", "p_in", "p_out"):
        np.testing.assert_array_equal(getattr(w, name), getattr(w0, name))
    assert w.R.dtype == np.float64
    np.testing.assert_array_equal(prepare(plain, _rounded_by_hand(plain, g), input_scale=0.3).R, w.R)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("peepholes,forget_gate", [(True, True), (False, False)])
def test_forward_is_the_float64_network_of_the_rounded_weights(backend, peepholes, forget_gate):
    plain, spec, g = _pair(peepholes, forget_gate)
    X = np.random.default_rng(1).normal(size=(2, 30, 2))
    got = forward(spec, g, X, backend=backend)
    assert got.dtype == np.float64
    g_r = _rounded_by_hand(plain, g)
    for p in range(len(g)):
        for b in range(2):
            np.testing.assert_allclose(got[p, b], lstm_reference(plain, g_r[p], X[b])[0], atol=1e-13, rtol=0)
    assert np.abs(got - forward(plain, g, X, backend=backend)).max() > 0  # the rounding is real


@needs_numba
def test_the_copy_the_kernels_read_is_measured_once_per_shape(monkeypatch):
    monkeypatch.setattr(_backend, "_R32_CHOICE", {})
    calls = []
    real = _backend._measure_narrow

    def measure(spec):
        calls.append(spec.n_cells)
        return real(spec, steps=2, repeat=1)

    monkeypatch.setattr(_backend, "_measure_narrow", measure)
    small, wide = LSTMSpec(1, 20, recurrent_dtype=np.float32), LSTMSpec(1, 130, recurrent_dtype=np.float32)
    assert _backend.reads_narrow(small) is False and calls == []  # in cache anyway: not measured
    assert not _backend.reads_narrow(LSTMSpec(1, 130))  # nothing rounded: nothing to choose
    first = _backend.reads_narrow(wide)
    assert isinstance(first, bool) and calls == [130]
    assert _backend.reads_narrow(wide) is first and calls == [130]  # kept for the process
    assert _backend.recurrent_reads() == {"I=1 H=130 U=4 peepholes=True forget_gate=True float64":
                                          "float32" if first else "float64"}
    R = _backend._flat_weights(prepare(wide, wide.init(np.random.default_rng(0))))[1]
    assert R.dtype == (np.float32 if first else np.float64)


@needs_numba
def test_compiled_kernels_reading_float32_equal_reading_float64_bit_for_bit(monkeypatch):
    monkeypatch.setattr(_backend, "_R32_FORCE", True)  # the float32 copy at any width
    R = _backend._flat_weights(prepare(LSTMSpec(1, 3, recurrent_dtype=np.float32), np.zeros(LSTMSpec(1, 3).n_params)))[1]
    assert R.dtype == np.float32
    plain, spec, g = _pair(H=40, P=2)
    X = np.random.default_rng(3).normal(size=(2, 50, 2))
    w = prepare(spec, g)
    w64 = w._replace(spec=plain)  # the same rounded values, handed to the kernel as float64
    np.testing.assert_array_equal(forward(spec, w, X, backend="numba"), forward(plain, w64, X, backend="numba"))
    coef = np.random.default_rng(4).normal(0, 0.2, (2, 41, 1))
    spec1, plain1 = LSTMSpec(1, 40, recurrent_dtype=np.float32), LSTMSpec(1, 40)
    g1 = np.random.default_rng(5).normal(0, 1.0, (2, spec1.n_params))
    w1 = prepare(spec1, g1)
    h0 = LSTMState(np.zeros((2, 3, 40)), np.zeros((2, 3, 40)))
    y0 = np.random.default_rng(6).normal(size=(2, 3, 1))
    a = closed_loop(spec1, w1, coef, h0, y0, 25, backend="numba")
    b = closed_loop(plain1, w1._replace(spec=plain1), coef, h0, y0, 25, backend="numba")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, closed_loop(spec1, w1, coef, h0, y0, 25, backend="numpy"), atol=1e-12, rtol=0)


def test_spec_values():
    assert LSTMSpec(1, 2, recurrent_dtype=np.float64).recurrent_dtype is None  # as wide as dtype: no rounding
    assert LSTMSpec(1, 2, dtype=np.float32, recurrent_dtype=np.float32).recurrent_dtype is None
    assert LSTMSpec(1, 2, recurrent_dtype="float32").recurrent_dtype is np.float32
    for bad in (np.int32, "float16x"):
        with pytest.raises(TypeError, match="recurrent_dtype"):
            LSTMSpec(1, 2, recurrent_dtype=bad)
    with pytest.raises(EvolinoTypeError, match="recurrent_dtype"):
        Evolino(4, washout=10, max_generations=1, popsize=4, recurrent_dtype=np.int8, seed=0).fit(np.sin(np.arange(80.0) / 4))


def test_trainer_default_rounds_and_the_saved_model_keeps_it(tmp_path):
    y = np.sin(np.arange(160) * 0.3)
    kw = dict(n_cells=6, max_generations=1, popsize=6, washout=10, seed=0, input_scale=0.3, init_scale=1.0,
              gates="lstm", lags=0, noise=0.0)
    net = Evolino(**kw).fit(y)
    assert net.spec.recurrent_dtype is np.float32
    R = prepare(net.spec, net.genome).R
    np.testing.assert_array_equal(R, R.astype(np.float32).astype(np.float64))
    net.save(tmp_path / "m.npz")
    back = EvolinoNetwork.load(tmp_path / "m.npz")
    assert back.spec == net.spec
    np.testing.assert_array_equal(back.forecast(y[:100], 30), net.forecast(y[:100], 30))
    assert Evolino(**kw, recurrent_dtype=None).fit(y).spec.recurrent_dtype is None
