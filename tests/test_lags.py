"""Lag features in the readout: the last inputs beside the cells, in the fitness, the closed loop and the model."""

import numpy as np
import pytest

from evolino import Evolino, EvolinoError, EvolinoNetwork, LSTMSpec
from evolino._data import Scaler
from evolino.fitness import EvolinoFitness
from evolino.readout import Linear
from evolino.sequences import lag_features
from evolino.tasks import MackeyGlassTask
from reference import BACKENDS, lstm_reference

SERIES = MackeyGlassTask(train=400).train_series  # (500, 1)
WASHOUT, N_VAL = 50, 150


def _lags(inputs, t, lags):
    """The inputs of steps t, t-1, ..., t-lags+1 of one sequence (T, I), 0 before its start."""
    return np.concatenate([inputs[t - k] if t - k >= 0 else np.zeros(inputs.shape[1]) for k in range(lags)])


def test_lag_features_hold_the_last_inputs_newest_first():
    x = np.random.default_rng(0).normal(size=(2, 7, 3))
    for lags in (4, 7, 9):  # also more lags than steps (short sequences with per-sequence targets)
        F = lag_features(x, lags)
        assert F.shape == (2, 7, 3 * lags)
        for b in range(2):
            for t in range(7):
                np.testing.assert_array_equal(F[b, t], _lags(x[b], t, lags))
    assert lag_features(x, 0).shape == (2, 7, 0)


@pytest.mark.parametrize("lags", [1, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_loop_fitness_with_lags_equals_a_plain_loop(lags, backend):
    spec = LSTMSpec(1, 4)
    genomes = spec.init(np.random.default_rng(1), 2)
    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True, readout=Linear(),
                                   horizon=20, lags=lags, run_cap=None, input_scale=0.5, backend=backend)
    got = fit(genomes)
    Y, T, split = SERIES, len(SERIES), len(SERIES) - N_VAL
    prev = np.r_[[[0.0]], Y[:-1]]  # the teacher-forced inputs
    for p, g in enumerate(genomes):
        h, _, _ = lstm_reference(spec, g, prev[:split] * 0.5)
        A = np.c_[h[WASHOUT:split], [_lags(prev, t, lags) for t in range(WASHOUT, split)], np.ones(split - WASHOUT)]
        W = np.linalg.lstsq(A, Y[WASHOUT:split], rcond=None)[0]
        lo, hi = Y[WASHOUT:split].min(), Y[WASHOUT:split].max()
        lo, hi = lo - (hi - lo), hi + (hi - lo)
        outs, targets = [], []
        for s in range(split, T - 20 + 1, 10):
            _, hh, cc = lstm_reference(spec, g, prev[s - WASHOUT : s] * 0.5)
            inputs, y = list(prev[:s]), Y[s - 1]
            for t in range(20):
                inputs.append(np.asarray(y))
                o, hh, cc = lstm_reference(spec, g, (np.asarray(y) * 0.5)[None], hh, cc)
                y = np.clip(np.r_[o[0], _lags(np.array(inputs), s + t, lags), 1.0] @ W, lo, hi)
                outs.append(y)
                targets.append(Y[s + t])
        outs, targets = np.array(outs), np.array(targets)
        assert got[p] == pytest.approx(np.sqrt(np.mean((outs - targets) ** 2)) / np.std(targets), rel=1e-6)


def test_input_driven_fitness_with_lags_is_least_squares_on_cells_and_lags():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 0.5, size=(300, 2))
    Y = (X[:, :1] * np.roll(X[:, 1:], 3)).cumsum(0) % 1.0
    spec = LSTMSpec(2, 3)
    g = spec.init(rng, 1)[0]
    fit = EvolinoFitness.from_data(spec, Y, X, washout=20, validation=80, feedback=False, readout=Linear(), lags=5)
    h, _, _ = lstm_reference(spec, g, X)
    A = np.c_[h, [_lags(X, t, 5) for t in range(300)], np.ones(300)]
    fit_rows, val_rows = np.arange(20, 220), np.arange(220, 300)
    W = np.linalg.lstsq(A[fit_rows], Y[fit_rows], rcond=None)[0]
    err = A[val_rows] @ W - Y[val_rows]
    assert fit(g[None])[0] == pytest.approx(np.sqrt(np.mean(err**2)) / np.std(Y[val_rows]), rel=1e-6)


def _network(lags, scale=3.0, shift=2.0):
    spec = LSTMSpec(1, 3)
    rng = np.random.default_rng(3)
    coef = rng.normal(size=(3 + lags + 1, 1)) * 0.3
    scaler = Scaler(x_mean=None, x_std=None, y_mean=np.array([shift]), y_std=np.array([scale]),
                    y_min=np.array([-10.0]), y_max=np.array([10.0]))
    return EvolinoNetwork(spec, spec.init(rng, 1)[0], coef, feedback=True, input_scale=0.7, scaler=scaler,
                          lags=lags), coef


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_with_lags_predicts_and_generates_as_a_loop_in_standardized_units(backend):
    net, coef = _network(4)
    net.backend = backend
    y = SERIES[:60] * 3.0 + 2.0  # raw units
    z = (y - 2.0) / 3.0
    prev = np.r_[[[0.0]], z[:-1]]
    prev[0] = (0.0 - 2.0) / 3.0  # the raw 0 before the start, standardized
    h, hh, cc = lstm_reference(net.spec, net.genome, prev * 0.7)
    one = np.array([np.r_[h[t], _lags(prev, t, 4), 1.0] @ coef for t in range(60)]) * 3.0 + 2.0
    np.testing.assert_allclose(net.predict(Y=y), one, rtol=1e-9, atol=1e-9)
    inputs, yz, outs = list(prev), z[-1], []
    for t in range(15):
        inputs.append(np.asarray(yz))
        o, hh, cc = lstm_reference(net.spec, net.genome, (np.asarray(yz) * 0.7)[None], hh, cc)
        yz = np.r_[o[0], _lags(np.array(inputs), 60 + t, 4), 1.0] @ coef
        outs.append(yz * 3.0 + 2.0)
    np.testing.assert_allclose(net.generate(15, Y_prefix=y), np.array(outs), rtol=1e-9, atol=1e-9)


def test_network_with_lags_round_trips_through_a_file(tmp_path):
    net, _ = _network(3)
    net.save(tmp_path / "m.npz")
    back = EvolinoNetwork.load(tmp_path / "m.npz")
    assert back.lags == 3
    y = SERIES[:40]
    np.testing.assert_array_equal(back.generate(10, Y_prefix=y), net.generate(10, Y_prefix=y))


def test_bad_lags_get_one_clear_error():
    spec = LSTMSpec(1, 3)
    g = spec.init(0, 1)[0]
    with pytest.raises(EvolinoError, match=r"coef must have shape \(7, O\) for 3 cells and 3 lags"):
        EvolinoNetwork(spec, g, np.zeros((4, 1)), feedback=True, lags=3)
    with pytest.raises(EvolinoError, match="lags"):
        Evolino(3, lags=-1, max_generations=1).fit(SERIES[:200])


def test_trainer_with_lags_learns_superimposed_sines_a_linear_recurrence_solves():
    # three sines obey a linear recurrence of order 6: lags beside a few cells forecast them closely
    t = np.arange(400)
    y = sum(np.sin(w * t) for w in (0.2, 0.311, 0.42))
    tr = Evolino(4, lags=8, washout=20, popsize=8, max_generations=2, search="esp", seed=0)
    net = tr.fit(y[:300])
    pred = net.forecast(y[:300], 100)
    assert np.sqrt(np.mean((pred[:, 0] - y[300:]) ** 2)) / np.std(y) < 1e-4
    assert net.lags == 8 and net.coef.shape == (4 + 8 + 1, 1)


def test_automatic_lags_pick_the_order_a_linear_recurrence_needs():
    from evolino.autoscale import LAG_GRID, choose_lags
    from evolino.evaluate import make_evaluator

    t = np.arange(500)
    y = (np.sin(0.2 * t) + np.sin(0.311 * t) + np.sin(0.42 * t))[:, None]  # a recurrence of order 6
    spec = LSTMSpec(1, 5)
    fit = EvolinoFitness.from_data(spec, y, washout=50, validation=100, feedback=True, readout=Linear(ridge="auto"),
                                   horizon=25, input_scale=1e-3)
    lags, table, n = choose_lags(fit, spec, make_evaluator("serial"), dict(init_scale=1.0, gates="lstm"), seed=0)
    zero = [r for r in table if r["network"] == "zero"]
    assert [r["lags"] for r in zero] == list(LAG_GRID[: len(zero)]) and n == len(zero) + 8
    # the zero network's score is the fitness of an autoregression alone, built independently
    for r in zero[:3]:
        alone = EvolinoFitness.from_data(spec, y, washout=50, validation=100, feedback=True, lags=r["lags"],
                                         readout=Linear(ridge="auto"), horizon=25)(np.zeros((1, spec.n_params)))
        assert r["score"] == pytest.approx(alone[0], rel=1e-9)
    best = min(zero, key=lambda r: r["score"])
    assert best["lags"] >= 8 and best["score"] < 1e-6  # order 6 is exact: 8 is the first order of the grid past it
    assert lags == best["lags"]  # and the cells at these scales do not forecast the sines better alone


def test_automatic_lags_are_chosen_in_float64_when_evolution_runs_in_float32():
    # float32's rounding floor would blur the halving test of choose_lags; the choice is made in the
    # network's precision, so the table is the float64 run's to the last digit
    t = np.arange(500)
    y = np.sin(0.2 * t) + np.sin(0.311 * t) + np.sin(0.42 * t)
    opts = dict(lags="auto", washout=50, popsize=8, max_generations=1, search="esp", seed=0, horizon=25)
    f64, f32 = Evolino(5, **opts), Evolino(5, evolution_dtype=np.float32, **opts)
    f64.fit(y[:400])
    f32.fit(y[:400])
    assert f32.lag_table_ and f32.lag_table_ == f64.lag_table_
    assert f32.chosen_["lags"] == f64.chosen_["lags"] >= 8
