import numpy as np
import pytest
from scipy.integrate import solve_ivp

from evolino.tasks import MackeyGlassTask, SinesTask, mackey_glass, nrmse, superimposed_sines


def test_sines_formula_and_protocol():
    y = superimposed_sines(700, terms=3)
    n = np.arange(700)
    np.testing.assert_allclose(y[:, 0], np.sin(0.2 * n) + np.sin(0.311 * n) + np.sin(0.42 * n), atol=1e-12)
    t = SinesTask(terms=2)
    assert t.train_series.shape == (400, 1) and t.test_target.shape == (300, 1)
    np.testing.assert_array_equal(np.r_[t.train_series, t.test_target], t.series)
    np.testing.assert_allclose(superimposed_sines(5, freqs=[0.5])[:, 0], np.sin(0.5 * np.arange(5)))


class _Oracle:
    """A 'network' that generates the true continuation: scores must be 0."""

    def __init__(self, series):
        self.series = series[:, 0]

    def generate(self, n, *, Y_prefix):
        Y = np.asarray(Y_prefix)
        if Y.ndim == 2:
            Y = Y[None]
        out = []
        for seq in Y:
            L = len(seq)
            idx = next(i for i in range(len(self.series) - L + 1) if np.array_equal(self.series[i : i + L], seq[:, 0]))
            out.append(self.series[idx + L : idx + L + n, None])
        return np.array(out) if np.ndim(Y_prefix) == 3 else out[0]


def test_scores_are_zero_for_the_truth_and_one_for_the_mean():
    t = SinesTask(terms=2)
    assert t.score(_Oracle(t.series))[0] == 0.0
    assert nrmse(np.full((300, 1), t.test_target.mean()), t.test_target) == pytest.approx(1.0)
    mg = MackeyGlassTask(train=200, n_runs=4, warm=300)
    assert mg.score(_Oracle(mg.series))[0] == 0.0


def test_mackey_glass_matches_an_independent_integrator():
    # Independent reference: scipy's adaptive RK45 with the delay term from a dense
    # history, stepping 1 time unit at a time from the same constant history.
    tau, n_steps = 17.0, 120
    ours = mackey_glass(n_steps, transient=0.0, squash=False)[:, 0]
    hist_t, hist_x = [-tau, 0.0], [1.2, 1.2]

    def delayed(t):
        return np.interp(t - tau, hist_t, hist_x)

    x, ref = 1.2, []
    for k in range(n_steps):
        sol = solve_ivp(lambda t, y: 0.2 * delayed(t) / (1 + delayed(t) ** 10) - 0.1 * y,
                        (k, k + 1), [x], rtol=1e-10, atol=1e-12, dense_output=True, max_step=0.1)
        ts = np.linspace(k, k + 1, 21)[1:]
        hist_t.extend(ts)
        hist_x.extend(sol.sol(ts)[0])
        x = sol.y[0, -1]
        ref.append(x)
    # chaotic: compare the first 120 time units, where both integrators still agree
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert 0.2 < np.min(ours[50:]) and np.max(ours[50:]) < 1.5


def test_task_bad_input():
    with pytest.raises(ValueError, match="terms"):
        superimposed_sines(10, terms=9)
    with pytest.raises(ValueError, match="n_steps"):
        superimposed_sines(0)
    with pytest.raises(ValueError, match="freqs"):
        superimposed_sines(10, freqs=[np.nan])
    with pytest.raises(ValueError, match="tau"):
        mackey_glass(10, tau=-1)
    with pytest.raises(ValueError, match="train"):
        MackeyGlassTask(train=0)
