"""The compiled (numba) backend against the NumPy reference kernel and against plain loops.

Every kernel test in test_lstm.py / test_lstm_perf_paths.py runs on both backends; here:
numba == numpy to 1e-12 (all options, B > 1, population chunks, initial states, closed
loops with and without external inputs and clipping), serial == parallel bit for bit,
and the same training run with either backend.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from evolino import Evolino, _backend, lstm
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare, step
from evolino.sequences import closed_loop
from evolino.tasks import SinesTask
from reference import lstm_reference

OPTIONS = [(p, f) for p in (True, False) for f in (True, False)]
needs_numba = pytest.mark.skipif(not _backend.numba_available(),
                                 reason="numba is not installed (pip install evolino[fast])")


def _closed_loop_reference(spec, g, coef, h, c, y, X, n, lo=None, hi=None):
    """One network, one sequence in closed loop from the equations: outputs ``(n, O)``."""
    outs = []
    for t in range(n):
        x = y if X is None else np.r_[X[t], y]
        o, h, c = lstm_reference(spec, g, x[None], h, c)
        y = np.r_[o[0], 1.0] @ coef
        if lo is not None:
            y = np.clip(np.nan_to_num(y, nan=0.0), lo, hi)
        outs.append(y)
    return np.array(outs)


@needs_numba
@pytest.mark.parametrize("dtype,tol", [(np.float64, 3e-16), (np.float32, 1.2e-7)])
def test_compiled_logistic_in_each_precision(dtype, tol):
    """The kernels' own exp: sigma(2 x) to about one ulp, computed in the array's own precision
    (float32 stays float32), the tails clamped at sigma(-40) = 4e-18, NaN kept."""
    from numba import njit

    from evolino._numba_kernels import _logistic2

    @njit
    def apply(v):
        out = np.empty_like(v)
        for k in range(v.size):
            out[k] = _logistic2(v[k])
        return out

    x = np.r_[np.linspace(-25, 25, 100_001), -1e-30, 0.0, 1e-30].astype(dtype)
    got = apply(x)
    assert got.dtype == dtype
    ref = 1 / (1 + np.exp(-2 * x.astype(np.float64)))
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    ends = apply(np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], dtype))
    assert np.isnan(ends[0]) and ends[1] == ends[3] == 1.0
    np.testing.assert_allclose(ends[[2, 4]], 1 / (1 + np.exp(40.0)), rtol=1e-6)


@needs_numba
@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_forward_equals_chunked_numpy(monkeypatch, peepholes, forget_gate, dtype):
    rng = np.random.default_rng(11)
    spec = LSTMSpec(3, 6, peepholes=peepholes, forget_gate=forget_gate, dtype=dtype)
    P, B, T = 7, 3, 40
    genomes = rng.normal(0, 1.0, (P, spec.n_params)).astype(dtype)
    X = rng.normal(size=(B, T, 3)).astype(dtype)
    h0 = LSTMState(rng.uniform(-1, 1, (P, B, 6)).astype(dtype), rng.normal(0, 2, (P, B, 6)).astype(dtype))
    w = prepare(spec, genomes, input_scale=np.array([0.5, 2.0, 1.0]), input_shift=np.array([0.1, 0.0, -1.0]))
    got, st = forward(spec, w, X, h0=h0, return_state=True, backend="numba")
    # NumPy: three networks per chunk (the last chunk smaller), blocks of 7 steps
    monkeypatch.setattr(lstm, "_CHUNK_BYTES", 3 * 6 * spec.n_units * 6 * np.dtype(dtype).itemsize)
    monkeypatch.setattr(lstm, "_XP_BYTES", 7 * spec.n_units * 3 * B * 6 * np.dtype(dtype).itemsize)
    ref, st_ref = forward(spec, w, X, h0=h0, return_state=True, backend="numpy")
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(st.h, st_ref.h, atol=tol, rtol=0)
    np.testing.assert_allclose(st.c, st_ref.c, atol=10 * tol, rtol=tol)
    assert got.dtype == dtype and st.c.dtype == dtype


@needs_numba
@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("external", [0, 2])
@pytest.mark.parametrize("clip", [False, True])
def test_closed_loop_backends_equal_a_plain_loop(monkeypatch, peepholes, forget_gate, external, clip):
    rng = np.random.default_rng(5)
    O, H, P, B, n = 2, 5, 5, 3, 12
    spec = LSTMSpec(external + O, H, peepholes=peepholes, forget_gate=forget_gate)
    genomes = rng.normal(0, 1.0, (P, spec.n_params))
    coef = rng.normal(0, 1.5 if clip else 0.3, (P, H + 1, O))  # clip: large enough to leave the range
    h0, c0 = rng.uniform(-1, 1, (P, B, H)), rng.normal(0, 1, (P, B, H))
    y0 = rng.normal(size=(P, B, O))
    X = rng.normal(size=(B, n, external)) if external else None
    rng_ = (np.array([-0.5, -1.0]), np.array([0.7, 1.0])) if clip else None
    w = prepare(spec, genomes)
    got = closed_loop(spec, w, coef, LSTMState(h0, c0), y0, n, X, out_range=rng_, backend="numba")
    import evolino.sequences as sq
    monkeypatch.setattr(sq, "_LOOP_CHUNK_BYTES", 2 * H * spec.n_units * H * 8)  # two networks per chunk
    ref = closed_loop(spec, w, coef, LSTMState(h0, c0), y0, n, X, out_range=rng_, backend="numpy")
    np.testing.assert_allclose(got, ref, atol=1e-12, rtol=0)
    if clip:
        assert (got == rng_[1]).any() or (got == rng_[0]).any()  # the clipping was exercised
    for p in (0, P - 1):
        for b in range(B):
            exp = _closed_loop_reference(spec, genomes[p], coef[p], h0[p, b], c0[p, b], y0[p, b],
                                         None if X is None else X[b], n, *(rng_ or (None, None)))
            np.testing.assert_allclose(got[p, b], exp, atol=1e-12, rtol=0)


@needs_numba
def test_closed_loop_shared_first_value_and_out_map():
    rng = np.random.default_rng(2)
    spec = LSTMSpec(1, 4)
    g = spec.init(rng, 3)
    coef = rng.normal(0, 0.3, (3, 5, 1))
    st = LSTMState(rng.uniform(-1, 1, (3, 2, 4)), rng.normal(size=(3, 2, 4)))
    y = rng.normal(size=(2, 1))  # (B, O): shared by all networks
    a = closed_loop(spec, prepare(spec, g), coef, st, y, 9, backend="numba")
    b = closed_loop(spec, prepare(spec, g), coef, st, y, 9, backend="numpy")
    np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    # with lag features (3 lags of the one input): the compiled ring buffer equals NumPy's
    coef3, hist = rng.normal(0, 0.3, (3, 8, 1)), rng.normal(size=(2, 2, 1))
    a = closed_loop(spec, prepare(spec, g), coef3, st, y, 9, lags=3, history=hist, backend="numba")
    b = closed_loop(spec, prepare(spec, g), coef3, st, y, 9, lags=3, history=hist, backend="numpy")
    np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    # a Python out_map cannot run compiled: it falls back to NumPy and is applied
    c = closed_loop(spec, g, coef, st, y, 9, out_map=lambda v: 0 * v, backend="numba")
    np.testing.assert_array_equal(c, 0.0)


@needs_numba
@pytest.mark.parametrize("kind", ["forward", "closed_loop"])
def test_kernel_threads_equal_one_thread_bit_for_bit(kind):
    rng = np.random.default_rng(3)
    spec = LSTMSpec(2, 7)
    P, B, T = 9, 2, 30
    w = prepare(spec, rng.normal(size=(P, spec.n_params)))
    h0, c0 = rng.uniform(-1, 1, (P, B, 7)), rng.normal(size=(P, B, 7))
    X = rng.normal(size=(B, T, 2)) * 0 + np.linspace(-1, 1, T)[None, :, None]
    coef = np.linspace(-0.5, 0.5, P * 12).reshape(P, 12, 1)  # 7 cells, 2 lags of 2 inputs, bias
    hist = np.linspace(-1, 1, B * 4).reshape(B, 2, 2)
    outs = []
    for parallel in (False, True):
        if kind == "forward":
            out, c = np.empty((P, B, T, 7)), np.empty((P, B, 7))
            _backend.numba_forward(spec, w, X, h0, c0, out, c, parallel=parallel)
            outs.append((out, c))
        else:
            out = np.empty((P, B, T, 1))
            _backend.numba_closed_loop(spec, w, coef, h0, c0, np.ones((P, B, 1)), np.full((B, T, 1), 0.3), None, out,
                                       hist=hist, parallel=parallel)
            outs.append((out,))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("peepholes,forget_gate", [(True, True), (False, False)])
def test_sequences_stepped_in_groups_equal_each_alone_bit_for_bit(monkeypatch, peepholes, forget_gate):
    # the kernels step a group of sequences together (_numba_kernels._net_steps); a small group budget
    # makes 7 sequences three groups of 3, 3 and 1, and each must equal the sequence run alone
    monkeypatch.setattr(_backend, "_GROUP_BYTES", 3 * 4 * 20 * 8)
    assert _backend._group(7, LSTMSpec(2, 20)) == 3
    rng = np.random.default_rng(11)
    spec = LSTMSpec(2, 20, peepholes=peepholes, forget_gate=forget_gate)
    P, B, T = 2, 7, 6
    w = prepare(spec, rng.normal(size=(P, spec.n_params)))
    h0, c0 = rng.uniform(-1, 1, (P, B, 20)), rng.normal(size=(P, B, 20))
    X = rng.normal(size=(B, T, 2))
    out, c = np.empty((P, B, T, 20)), np.empty((P, B, 20))
    _backend.numba_forward(spec, w, X, h0, c0, out, c, parallel=False)
    coef, y0 = rng.normal(0, 0.2, (P, 21, 1)), rng.normal(size=(P, B, 1))
    gen = np.empty((P, B, T, 1))
    spec1 = LSTMSpec(2, 20, peepholes=peepholes, forget_gate=forget_gate)
    _backend.numba_closed_loop(spec1, w, coef, h0, c0, y0, X[:, :, :1], None, gen, parallel=False)
    for s in range(B):
        o1, c1 = np.empty((P, 1, T, 20)), np.empty((P, 1, 20))
        _backend.numba_forward(spec, w, X[s:s + 1], h0[:, s:s + 1], c0[:, s:s + 1], o1, c1, parallel=False)
        np.testing.assert_array_equal(out[:, s], o1[:, 0])
        np.testing.assert_array_equal(c[:, s], c1[:, 0])
        g1 = np.empty((P, 1, T, 1))
        _backend.numba_closed_loop(spec1, w, coef, h0[:, s:s + 1], c0[:, s:s + 1], y0[:, s:s + 1], X[s:s + 1, :, :1],
                                   None, g1, parallel=False)
        np.testing.assert_array_equal(gen[:, s], g1[:, 0])
    ref = forward(spec, w, X, h0=LSTMState(h0, c0), backend="numpy")
    np.testing.assert_allclose(out, ref, atol=1e-12, rtol=0)


@needs_numba
def test_numba_step_equals_numpy_step_with_per_network_inputs():
    rng = np.random.default_rng(8)
    for peep, forget in OPTIONS:
        spec = LSTMSpec(2, 3, peepholes=peep, forget_gate=forget)
        w = prepare(spec, rng.normal(size=(4, spec.n_params)))
        st = LSTMState(rng.uniform(-1, 1, (4, 2, 3)), rng.normal(size=(4, 2, 3)))
        x = rng.normal(size=(4, 2, 2))
        a, b = step(spec, w, st, x, backend="numba"), step(spec, w, st, x, backend="numpy")
        np.testing.assert_allclose(a.h, b.h, atol=1e-14)
        np.testing.assert_allclose(a.c, b.c, atol=1e-14)
        assert a.h is not st.h and not np.shares_memory(a.c, st.c)


def test_backend_choice_and_bad_backend(monkeypatch):
    spec = LSTMSpec(1, 2)
    g = spec.init(0, 1)
    with pytest.raises(ValueError, match="backend must be one of"):
        forward(spec, g, np.zeros((3, 1)), backend="jax")
    with pytest.raises(ValueError, match="backend must be one of"):
        Evolino(3, backend="cuda").fit(np.sin(np.arange(300.0)))
    monkeypatch.setattr(_backend, "_NUMBA", False)  # as if numba were not installed
    assert _backend.resolve_backend("auto") == "numpy"
    with pytest.raises(ImportError, match=r"evolino\[fast\]"):
        forward(spec, g, np.zeros((3, 1)), backend="numba")
    forward(spec, g, np.zeros((3, 1)))  # "auto" falls back to NumPy


@needs_numba
def test_training_history_is_the_same_with_either_backend():
    Y = SinesTask(terms=2).train_series[:400]
    runs = {}
    for backend in ("numpy", "numba"):
        # a fixed, moderate input scale: the almost linear regime's ill-conditioned readout amplifies rounding;
        # no lags: with them two sines are an exact autoregression, every fitness is rounding (1e-14) and ranks by it
        tr = Evolino(5, washout=50, popsize=12, max_generations=3, seed=3, search="esp", search_options=dict(trials=4),
                     input_scale=0.1, lags=0, backend=backend)
        net = tr.fit(Y)
        runs[backend] = (tr.history_, net.generate(30, Y_prefix=Y[:200]), tr.result_.best_genome)
    (h_np, gen_np, g_np), (h_nb, gen_nb, g_nb) = runs["numpy"], runs["numba"]
    assert h_np.keys() == h_nb.keys()
    for key in h_np:
        a, b = np.asarray(h_np[key]), np.asarray(h_nb[key])
        if key in ("elapsed", "time", "seconds") or a.dtype.kind not in "fiub":
            continue
        # kernel rounding (1e-16) grows through the ill-conditioned readout solve to about 1e-9
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(g_np, g_nb)  # the same search path: the same genome
    np.testing.assert_allclose(gen_np, gen_nb, atol=1e-9)


@needs_numba
@pytest.mark.slow
def test_cold_start_without_the_cache(tmp_path):
    """The kernels compile from scratch (an empty cache directory) and agree with NumPy."""
    code = ("import numpy as np; from evolino.lstm import LSTMSpec, forward;"
            "s = LSTMSpec(1, 3); g = s.init(0, 2); X = np.ones((5, 1));"
            "assert np.allclose(forward(s, g, X, backend='numba'), forward(s, g, X, backend='numpy'), atol=1e-12)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600)
    assert any(tmp_path.rglob("*.nbi"))  # and it wrote its cache there


@needs_numba
def test_the_parallel_build_is_used_from_the_main_thread_only():
    import threading

    seen = []
    t = threading.Thread(target=lambda: seen.append(_backend._parallel(8)))
    t.start()
    t.join()
    assert seen == [False] and not _backend._parallel(1)
    import numba

    assert _backend._parallel(8) == (numba.get_num_threads() > 1)


@needs_numba
@pytest.mark.parametrize("pieces", [None, 3, 50])
def test_spread_covers_every_network_once_and_raises_what_a_range_raised(pieces):
    seen = []
    _backend.spread(lambda lo, hi: seen.append((lo, hi)), 10, pieces=pieces, parallel=True)
    covered = sorted(i for lo, hi in seen for i in range(lo, hi))
    assert covered == list(range(10)) and all(hi > lo for lo, hi in seen)
    assert len(seen) == (min(10, pieces) if pieces else len(seen))
    _backend.spread(lambda lo, hi: seen.append((lo, hi)), 1, parallel=True)
    assert seen[-1] == (0, 1)  # one network: one call, here

    def fail(lo, hi):
        if lo == 0:
            raise ZeroDivisionError("range 0")

    with pytest.raises(ZeroDivisionError, match="range 0"):
        _backend.spread(fail, 10, pieces=pieces, parallel=True)


@needs_numba
@pytest.mark.parametrize("case", ["feedback", "driven", "onestep"])
def test_fitness_on_kernel_threads_equals_one_thread_bit_for_bit(monkeypatch, case):
    """Whole evaluations (kernels, readout solves with the automatic ridge, lags, scoring) in threads."""
    import threading

    from evolino import fitness as fitness_module

    t = np.arange(500.0)
    Y = np.sin(0.2 * t) + 0.5 * np.sin(0.311 * t)
    kw = dict(n_cells=6, washout=50, popsize=8, max_generations=2, seed=4)
    if case == "driven":
        kw.update(X=np.cos(0.13 * t)[:, None], feedback=False)
    elif case == "onestep":
        kw.update(horizon=1)
    X = kw.pop("X", None)
    threads = []
    evaluate = fitness_module.EvolinoFitness._evaluate

    def recording(self, genomes):
        if len(genomes) > 1:  # a single candidate is evaluated where it is
            threads.append(threading.current_thread() is threading.main_thread())
        return evaluate(self, genomes)

    monkeypatch.setattr(fitness_module.EvolinoFitness, "_evaluate", recording)
    runs = []
    for serial in (True, False):
        monkeypatch.setattr(_backend, "_SERIAL", serial)
        if not serial:  # threads even where numba has one (kernels called from the threads stay serial)
            monkeypatch.setattr(_backend, "_parallel", lambda P: P > 1 and threading.current_thread() is threading.main_thread())
        threads.clear()
        tr = Evolino(**kw)
        net = tr.fit(Y, X=X)
        runs.append((tr.history_, tr.result_.best_genome, net.coef, threads and all(threads), any(threads)))
    (h1, g1, c1, all_main1, _), (h2, g2, c2, _, any_main2) = runs
    assert all_main1 and not any_main2  # one thread, then never on the main thread
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(c1, c2)
    for key in ("best", "gen_best", "gen_median", "evaluations"):
        np.testing.assert_array_equal(h1[key], h2[key], err_msg=key)
