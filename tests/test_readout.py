import numpy as np
import pytest

from evolino.readout import Linear, solve_least_squares


def _lstsq(S, Y, ridge=0.0):
    """Reference weights (H+1, O). ridge=0: minimum-norm state weights, free bias
    (the ridge -> 0 limit), from np.linalg.lstsq on centred data."""
    if not ridge:
        sm, ym = S.mean(0), Y.mean(0)
        W = np.linalg.lstsq(S - sm, Y - ym, rcond=None)[0]
        return np.vstack([W, ym - sm @ W])
    A = np.c_[S, np.ones(len(S))]
    if ridge:
        K = A.shape[1]
        A = np.vstack([A, np.sqrt(ridge) * np.eye(K)[:-1]])
        Y = np.vstack([Y, np.zeros((K - 1, Y.shape[1]))])
    return np.linalg.lstsq(A, Y, rcond=None)[0]


def _states(rng, P=6, N=120, H=5):
    S = np.tanh(rng.normal(size=(P, N, H)) * 2)
    S[1, :, 2] = 0.999  # saturated cell: collinear with the bias
    S[2, :, 3] = S[2, :, 1]  # two identical cells
    S[3] = 0.0  # all cells dead
    S[4, :, 0] = 0.5 * S[4, :, 1] - 0.25 * S[4, :, 4]  # exact linear dependence
    return S


def _absolute(S, ridge):
    """The absolute penalty a relative ``ridge`` means for states ``S`` (N, H):
    ridge times the mean squared norm of a centred state column."""
    return ridge * ((S - S.mean(axis=0)) ** 2).sum() / S.shape[1]


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 1.0])
@pytest.mark.parametrize("O", [1, 3])
def test_linear_equals_lstsq_per_candidate(ridge, O):
    rng = np.random.default_rng(0)
    S = _states(rng)
    Y = rng.normal(size=(S.shape[1], O))
    r = Linear(ridge=ridge).fit(S, Y)
    assert r.coef_.shape == (6, 6, O)
    np.testing.assert_array_equal(r.ridge_, np.full(6, ridge))
    pred = r.predict(S)
    for p in range(S.shape[0]):
        W = _lstsq(S[p], Y, _absolute(S[p], ridge))
        np.testing.assert_allclose(r.coef_[p], W, atol=1e-8)
        A = np.c_[S[p], np.ones(len(S[p]))]
        np.testing.assert_allclose(pred[p], A @ W, atol=1e-8)
        if ridge == 0:  # fitted values of any least-squares solution are unique: pinv(A) Y
            np.testing.assert_allclose(pred[p], A @ np.linalg.lstsq(A, Y, rcond=None)[0], atol=1e-8)


@pytest.mark.parametrize("O", [1, 2])
def test_absolute_ridge_per_candidate_equals_lstsq(O):
    rng = np.random.default_rng(4)
    S = _states(rng) * 1e-3  # an absolute penalty must not care about the relative unit
    Y = rng.normal(size=(S.shape[1], O))
    lam = np.array([1e-9, 1e-6, 1e-3, 0.0, 1.0, 1e-12])
    W = solve_least_squares(S, Y, lam)
    for p in range(S.shape[0]):
        np.testing.assert_allclose(W[p], _lstsq(S[p], Y, lam[p]), atol=1e-8, rtol=1e-7)
    # relative=True is the absolute penalty scaled by each candidate's centred energy
    W_rel = solve_least_squares(S, Y, 1e-3, relative=True)
    for p in range(S.shape[0]):
        np.testing.assert_allclose(W_rel[p], _lstsq(S[p], Y, _absolute(S[p], 1e-3)), atol=1e-8, rtol=1e-7)


def test_relative_ridge_is_scale_free():
    # the same relative ridge gives the same fitted values at any state scale
    rng = np.random.default_rng(6)
    S = np.tanh(rng.normal(size=(2, 80, 6)))
    Y = rng.normal(size=(80, 1))
    a = Linear(ridge=1e-2).fit(S, Y).predict(S)
    b = Linear(ridge=1e-2).fit(S * 1e-4, Y).predict(S * 1e-4)
    np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("noise,atol", [(1e-4, 1e-10), (1e-6, 1e-9), (1e-8, 2e-7)])
def test_linear_is_accurate_on_ill_conditioned_states(noise, atol):
    # LSTM-like states: nearly collinear columns (condition numbers ~3e4, 3e6, 3e8):
    # forming normal equations alone loses up to ~cond^2 * eps; refinement or the
    # exact fallback must recover lstsq's fitted values (to lstsq's own ~cond * eps).
    rng = np.random.default_rng(5)
    N, H = 400, 8
    t = np.arange(N)
    base = np.stack([np.sin(0.2 * t), np.cos(0.2 * t), np.sin(0.311 * t), np.cos(0.311 * t)], 1)
    S = base @ rng.normal(size=(4, H)) + noise * rng.normal(size=(N, H)) + 0.3
    Y = base[:, :1] + base[:, 2:3] + np.tanh(S[:, :2]).sum(1, keepdims=True)
    A = np.c_[S, np.ones(N)]
    ref = A @ np.linalg.lstsq(A, Y, rcond=None)[0]
    pred = Linear().fit(S[None], Y).predict(S[None])[0]
    np.testing.assert_allclose(pred, ref, atol=atol)


def test_linear_per_candidate_targets_and_float32():
    rng = np.random.default_rng(1)
    S = rng.normal(size=(3, 50, 4))
    Y = rng.normal(size=(3, 50, 2))
    W = solve_least_squares(S, Y)
    for p in range(3):
        np.testing.assert_allclose(W[p], _lstsq(S[p], Y[p]), atol=1e-10)
    W32 = Linear().fit(S.astype(np.float32), Y[0]).coef_
    assert W32.dtype == np.float32
    np.testing.assert_allclose(W32[0], _lstsq(S[0], Y[0]), atol=1e-3)


def test_linear_recovers_exact_weights():
    rng = np.random.default_rng(2)
    S = rng.normal(size=(2, 80, 7))
    true = rng.normal(size=(8, 2))
    Y = np.c_[S[0], np.ones(80)] @ true
    np.testing.assert_allclose(Linear().fit(S, Y).coef_[0], true, atol=1e-10)


def test_predict_with_batch_axis():
    rng = np.random.default_rng(3)
    S = rng.normal(size=(2, 30, 3))
    r = Linear().fit(S, rng.normal(size=(30, 1)))
    S4 = rng.normal(size=(2, 4, 10, 3))
    out = r.predict(S4)
    assert out.shape == (2, 4, 10, 1)
    np.testing.assert_allclose(out[1, 2], r.predict(S4[:, 2])[1])


def test_linear_bad_input():
    S = np.zeros((2, 10, 3))
    with pytest.raises(ValueError, match="Y must have shape"):
        Linear().fit(S, np.zeros((9, 1)))
    with pytest.raises(ValueError, match="S must be 3-D"):
        Linear().fit(np.zeros((10, 3)), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="ridge"):
        Linear(ridge=-1).fit(S, np.zeros((10, 1)))
    with pytest.raises(ValueError, match="NaN"):
        Linear().fit(np.full((2, 10, 3), np.nan), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="not fitted"):
        Linear().predict(S)
    with pytest.raises(ValueError, match="at least one time step"):
        Linear().fit(np.zeros((2, 0, 3)), np.zeros((0, 1)))
