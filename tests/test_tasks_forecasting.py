"""Forecasting data sets: Lorenz-63 + VPT, NARMA-10, Santa Fe laser (evolino.tasks)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from evolino.tasks import (LaserTask, LorenzTask, Narma10Task, lorenz63, narma10, narma10_response,
                           normalized_error, nrmse, valid_prediction_time, valid_steps)


class _Oracle:
    """A 'network' that continues each prefix with the true series (found by matching it)."""

    def __init__(self, series):
        self.series = np.asarray(series)

    def _find(self, seq):
        L = len(seq)
        return next(i for i in range(len(self.series) - L + 1) if np.array_equal(self.series[i : i + L], seq))

    def generate(self, n, *, Y_prefix):
        Y = np.asarray(Y_prefix)
        batch = Y if Y.ndim == 3 else Y[None]
        out = np.array([self.series[self._find(s) + len(s) : self._find(s) + len(s) + n] for s in batch])
        return out if Y.ndim == 3 else out[0]

    def predict(self, X=None, *, Y=None):
        return self.series.copy()


class _Persistence:
    """Repeats the last prefix value: a valid but poor forecaster."""

    def generate(self, n, *, Y_prefix):
        Y = np.asarray(Y_prefix)
        return np.repeat(Y[..., -1:, :], n, axis=-2)


# --- Lorenz-63 --------------------------------------------------------------------------
def _lorenz_rhs(t, u):
    x, y, z = u
    return [10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z]


def test_lorenz_matches_an_independent_integrator():
    # Reference: scipy's DOP853 at tight tolerances over 2 time units (about 1.8 Lyapunov
    # times, short enough that chaos does not amplify the integration error much).
    x0 = lorenz63(1)[0]  # a point on the attractor
    t_eval = np.arange(101) * 0.02
    ref = solve_ivp(_lorenz_rhs, (0.0, 2.0), x0, t_eval=t_eval, method="DOP853", rtol=1e-12, atol=1e-12).y.T
    ours = lorenz63(101, transient=0.0, x0=x0)
    assert ours.shape == (101, 3)
    np.testing.assert_array_equal(ours[0], x0)
    err = np.abs(ours - ref).max()
    assert err < 2e-3, err
    # 4th order: a 4x smaller step must shrink the error by about 4^4 = 256
    err_fine = np.abs(lorenz63(101, transient=0.0, x0=x0, dt=0.0025) - ref).max()
    assert 100 < err / err_fine < 600, err / err_fine


def test_lorenz_time_axis_transient_and_parameters():
    long = lorenz63(600, transient=0.0, x0=(1.0, 1.0, 1.0))
    # sample k is the state at time transient + k * sample_every
    np.testing.assert_allclose(lorenz63(100, transient=2.0)[:, :], long[100:200], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lorenz63(50, transient=0.0, sample_every=0.04), long[:100:2], rtol=0, atol=1e-12)
    on = lorenz63(3000)
    assert on[:, 2].min() > 0 and 20 < on[:, 2].mean() < 27 and abs(on[:, 0].mean()) < 2  # the butterfly
    # rho below 1: the origin is globally attracting
    assert np.abs(lorenz63(10, rho=0.5, transient=50.0)).max() < 1e-3


# --- valid prediction time --------------------------------------------------------------
def test_vpt_on_a_hand_made_error_sequence():
    scale = np.array([2.0, 1.0, 4.0])
    e = np.array([0.1, 0.2, 0.39, 0.4, 0.41, 0.1])  # 0.4 itself is still valid; step 4 is the first > 0.4
    truth = np.zeros((6, 3))
    pred = e[:, None] * scale  # error e_t in every variable -> normalised RMS error exactly e_t
    np.testing.assert_allclose(normalized_error(pred, truth, scale), e, rtol=1e-12)
    assert valid_steps(e) == 4
    assert valid_prediction_time(pred, truth, scale) == pytest.approx(4 * 0.02 * 0.906)
    # RMS over the variables: an error a in one variable only counts as a / sqrt(3)
    one = np.zeros((3, 3))
    one[:, 1] = [0.4 * np.sqrt(3) * 0.99, 0.4 * np.sqrt(3) * 1.01, 0.0]
    assert valid_steps(normalized_error(one, np.zeros((3, 3)), np.ones(3))) == 1
    # never exceeding: censored at the horizon; a NaN counts as exceeding; first step bad -> 0
    assert valid_steps(np.full(7, 0.1)) == 7
    assert valid_steps(np.array([0.1, 0.1, np.nan, 0.1])) == 2
    assert valid_steps(np.array([np.inf, 0.1])) == 0
    # batched: one value per leading index, other thresholds and exponents
    batch = np.stack([e, np.full(6, 0.5), np.zeros(6)])
    np.testing.assert_array_equal(valid_steps(batch), [4, 0, 6])
    np.testing.assert_array_equal(valid_steps(batch, threshold=0.45), [6, 0, 6])
    assert valid_prediction_time(pred, truth, scale, sample_every=0.01, lyapunov=1.0) == pytest.approx(0.04)


def test_lorenz_task_splits_and_scores():
    t = LorenzTask(washout=10, train=400, n_segments=3, warm=50, horizon=200)
    assert t.train_series.shape == (410, 3) and t.series.shape == (410 + 3 * 250, 3)
    seg = t.segments()
    assert seg.shape == (3, 250, 3)
    np.testing.assert_array_equal(seg.reshape(-1, 3), t.series[410:])  # disjoint from training, in order
    np.testing.assert_allclose(t.scale, t.train_series.std(axis=0))
    best, per = t.score(_Oracle(t.series))
    assert per.shape == (3,) and best == pytest.approx(200 * 0.02 * 0.906)  # censored at the horizon
    poor, per = t.score(_Persistence())
    assert 0 <= poor < 1.0 and np.all(per < best)


# --- NARMA-10 ---------------------------------------------------------------------------
def _narma_loop(u):
    """The textbook recursion, y(t+1) from y(t-9..t), u(t-9), u(t); zero history."""
    T = len(u)
    y = np.zeros(T + 1)
    for t in range(T):
        past = sum(y[t - i] for i in range(10) if t - i >= 0)
        u9 = u[t - 9] if t >= 9 else 0.0
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * past + 1.5 * u9 * u[t] + 0.1
    return y[1:]


def test_narma10_matches_a_plain_loop():
    u = np.random.default_rng(5).uniform(0, 0.5, 700)
    np.testing.assert_allclose(narma10_response(u)[:, 0], _narma_loop(u), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(narma10_response(u[:, None]), narma10_response(u))
    # narma10: inputs from the Generator of `seed`, the transient cut from inputs and targets alike
    X, Y, redraws = narma10(500, seed=3, transient=200)
    u = np.random.default_rng(3).uniform(0, 0.5, 700)
    assert redraws == 0 and X.shape == Y.shape == (500, 1)
    np.testing.assert_array_equal(X[:, 0], u[200:])
    np.testing.assert_allclose(Y[:, 0], _narma_loop(u)[200:], rtol=1e-12)
    assert 0.1 < Y.min() and Y.max() < 1.5


def test_narma10_redraws_a_diverging_input():
    # the first draw of seed 75 (4,400 steps) diverges: the result is the second draw
    rng = np.random.default_rng(75)
    first, second = rng.uniform(0, 0.5, 4400), rng.uniform(0, 0.5, 4400)
    with np.errstate(all="ignore"):
        assert not np.all(np.isfinite(_narma_loop(first)))
    X, Y, redraws = narma10(4200, seed=75)
    assert redraws == 1
    np.testing.assert_array_equal(X[:, 0], second[200:])
    assert np.all(np.isfinite(Y)) and Y.max() < 10
    with pytest.raises(RuntimeError, match="bound"):
        narma10(100, seed=0, bound=0.05, max_tries=3)


def test_narma_task_splits_and_scores():
    t = Narma10Task(washout=20, train=300, test=200, seed=1)
    assert t.inputs.shape == t.targets.shape == (520, 1)
    assert t.train_inputs.shape == t.train_targets.shape == (320, 1) and t.test_targets.shape == (200, 1)
    np.testing.assert_array_equal(t.test_targets, t.targets[320:])
    assert t.score(_Oracle(t.targets))[0] == 0.0
    mean = type("Mean", (), {"predict": lambda self, X: np.full((520, 1), t.test_targets.mean())})()
    assert t.score(mean)[0] == pytest.approx(1.0)
    assert Narma10Task(washout=20, train=300, test=200, seed=1).inputs.tolist() == t.inputs.tolist()


# --- Santa Fe laser ---------------------------------------------------------------------
def test_laser_task_data_and_protocol():
    pytest.importorskip("reservoirpy")
    t = LaserTask()
    s = t.series[:, 0]
    assert t.series.shape == (10093, 1) and s.min() == 0 and s.max() == 255
    np.testing.assert_array_equal(s[:10], [86, 141, 95, 41, 22, 21, 32, 72, 138, 111])  # competition set A
    assert t.train_series.shape == (5100, 1) and t.test_series.shape == (4993, 1)
    seg = t.segments()
    assert seg.shape == (20, 150, 1)
    np.testing.assert_array_equal(seg.reshape(-1, 1), t.test_series[:3000])
    oracle = _Oracle(t.series)
    assert t.score(oracle)[0] == 0.0 and t.score_closed_loop(oracle)[0] == 0.0
    # one step of persistence: y_hat(t) = y(t-1)
    lag = type("Lag", (), {"predict": lambda self, Y: np.r_[Y[:1], Y[:-1]]})()
    score, pred = t.score(lag)
    assert score == pytest.approx(nrmse(t.series[5099:-1], t.test_series)) and pred.shape == (4993, 1)
    # closed loop: per-segment RMSE / std(train), median over segments; a blown-up run counts as inf
    flat = type("Flat", (), {"generate": lambda self, n, Y_prefix: np.repeat(Y_prefix[:, -1:], n, axis=1)})()
    med, per = t.score_closed_loop(flat)
    expect = np.sqrt(np.mean((seg[:, 99:100] - seg[:, 100:]) ** 2, axis=(1, 2))) / t.train_series.std()
    np.testing.assert_allclose(per, expect)
    assert med == pytest.approx(np.median(expect))
    bad = type("Bad", (), {"generate": lambda self, n, Y_prefix: np.where(np.arange(20)[:, None, None] < 11,
                                                                         np.nan, 0.0) * np.ones((20, n, 1))})()
    assert t.score_closed_loop(bad)[0] == np.inf and np.isfinite(t.score_closed_loop(bad)[1][11:]).all()


# --- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("call, exc, name", [
    (lambda: lorenz63(0), ValueError, "n_steps"),
    (lambda: lorenz63(1.5), TypeError, "n_steps"),
    (lambda: lorenz63(10, dt=0.0), ValueError, "dt"),
    (lambda: lorenz63(10, sample_every=0.015), ValueError, "sample_every"),
    (lambda: lorenz63(10, transient=0.005), ValueError, "transient"),
    (lambda: lorenz63(10, x0=(1.0, 2.0)), ValueError, "x0"),
    (lambda: lorenz63(10, x0=(1.0, np.nan, 2.0)), ValueError, "x0"),
    (lambda: lorenz63(10, rho="28"), TypeError, "rho"),
    (lambda: LorenzTask(train=0), ValueError, "train"),
    (lambda: LorenzTask(washout=-1), ValueError, "washout"),
    (lambda: LorenzTask(threshold=0.0, train=10, n_segments=1, warm=1, horizon=1), ValueError, "threshold"),
    (lambda: valid_steps(np.ones(3), threshold=-1), ValueError, "threshold"),
    (lambda: valid_steps(np.ones(0)), ValueError, "error"),
    (lambda: valid_steps("abc"), TypeError, "error"),
    (lambda: normalized_error(np.ones((4, 3)), np.ones((4, 2)), np.ones(3)), ValueError, "y_pred"),
    (lambda: normalized_error(np.ones((4, 3)), np.ones((4, 3)), [1.0, 0.0, 1.0]), ValueError, "scale"),
    (lambda: normalized_error(np.ones((4, 3)), np.ones((4, 3)), np.ones(2)), ValueError, "scale"),
    (lambda: valid_prediction_time(np.ones((4, 3)), np.ones((4, 3)), np.ones(3), lyapunov=0), ValueError,
     "lyapunov"),
    (lambda: narma10(0), ValueError, "n_steps"),
    (lambda: narma10(10, low=0.5, high=0.1), ValueError, "high"),
    (lambda: narma10(10, bound=0), ValueError, "bound"),
    (lambda: narma10(10, seed="x"), TypeError, "seed"),
    (lambda: narma10_response(np.ones((5, 2))), ValueError, "u"),
    (lambda: narma10_response([0.1, np.inf]), ValueError, "u"),
    (lambda: Narma10Task(test=0), ValueError, "test"),
])
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_wrong_network_output_shapes_are_reported():
    t = LorenzTask(washout=0, train=50, n_segments=2, warm=10, horizon=20)
    short = type("Short", (), {"generate": lambda self, n, Y_prefix: np.zeros((2, n - 1, 3))})()
    with pytest.raises(ValueError, match="generate returned shape"):
        t.score(short)
    nt = Narma10Task(washout=0, train=30, test=20)
    with pytest.raises(ValueError, match="predict returned shape"):
        nt.score(type("P", (), {"predict": lambda self, X: X[:-1]})())


def test_laser_bad_split():
    pytest.importorskip("reservoirpy")
    with pytest.raises(ValueError, match="n_segments"):
        LaserTask(train=9000)
    with pytest.raises(ValueError, match="horizon"):
        LaserTask(horizon=0)
