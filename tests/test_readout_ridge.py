"""ridge="auto": per-candidate generalized cross-validation over a grid of relative ridges.

Every reference here is computed independently of evolino.readout: the absolute
penalty a relative value means, GCV from an explicit hat matrix, the weights
from np.linalg.lstsq on the augmented, penalised system.
"""

import numpy as np
import pytest

from evolino.readout import RIDGE_GRID, Linear, solve_auto_ridge


def _absolute(S, rel):
    """Absolute penalty of relative ridge ``rel`` for states ``S`` (N, H): rel * ||S - mean||_F^2 / H."""
    return rel * ((S - S.mean(axis=0)) ** 2).sum() / S.shape[1]


def _augmented(S, lam):
    """``[S, 1]`` stacked on ``sqrt(lam) [I, 0]``: least squares on it is the penalised problem."""
    N, H = S.shape
    A = np.c_[S, np.ones(N)]
    return A, np.vstack([A, np.sqrt(lam) * np.eye(H + 1)[:H]])


def _ridge_lstsq(S, Y, lam):
    _, B = _augmented(S, lam)
    return np.linalg.lstsq(B, np.vstack([Y, np.zeros((S.shape[1], Y.shape[1]))]), rcond=None)[0]


def _gcv_explicit(S, Y, lam):
    """N * ||(I - Hat) Y||^2 / (N - trace Hat)^2 / N with Hat = A (A^T A + lam D)^-1 A^T, D = diag(1..1, 0).

    For lam > 0 the hat matrix is Q1 Q1^T, Q1 the first N rows of the Q factor of the
    augmented matrix (A = Q1 R, A^T A + lam D = R^T R): explicit, and exact even when A is
    rank-deficient; for lam = 0 it is A pinv(A).
    """
    N = len(S)
    A, B = _augmented(S, lam)
    if lam == 0:  # the pseudo-inverse fit: projection onto the range of A
        hat = A @ np.linalg.pinv(A)
    else:
        Q1 = np.linalg.qr(B)[0][:N]
        hat = Q1 @ Q1.T
    rss = (((np.eye(N) - hat) @ Y) ** 2).sum()
    return rss / N / (1 - np.trace(hat) / N) ** 2


def _loo_brute_force(S, Y, lam):
    """Summed squared leave-one-out error: refit without each row, predict that row."""
    N = len(S)
    A = np.c_[S, np.ones(N)]
    err = 0.0
    for i in range(N):
        keep = np.arange(N) != i
        W = _ridge_lstsq(S[keep], Y[keep], lam)
        err += ((A[i] @ W - Y[i]) ** 2).sum()
    return err


def _case(seed, P, N, H, O, noise=0.3, kind="random"):
    rng = np.random.default_rng(seed)
    S = np.tanh(rng.normal(size=(P, N, H)) * rng.uniform(0.3, 2, size=(P, 1, H)))
    if kind == "collinear":
        S[:, :, 0] = 0.5 * S[:, :, 1] - 0.25 * S[:, :, 2]  # exact linear dependence
        S[:, :, 3] = S[:, :, 4]  # two identical cells
    w = rng.normal(size=(H, O)) * rng.uniform(0, 1, size=(H, 1))
    Y = S[0] @ w + noise * rng.normal(size=(N, O))  # candidate 0 holds the "true" features
    return S, Y


CASES = [  # seed, P, N, H, O, kind, noise (small noise: small penalties, solved without the eigenbasis)
    (0, 3, 40, 5, 1, "random", 0.3),
    (1, 2, 25, 12, 2, "random", 0.3),
    (2, 4, 60, 8, 3, "random", 0.3),
    (3, 3, 30, 6, 1, "collinear", 0.3),
    (4, 2, 12, 15, 1, "random", 0.3),  # more cells than steps: interpolation is possible
    (5, 2, 50, 10, 2, "collinear", 0.3),
    (6, 3, 50, 6, 2, "collinear", 1e-5),
    (7, 3, 80, 8, 1, "random", 1e-4),
]


@pytest.mark.parametrize("seed,P,N,H,O,kind,noise", CASES)
def test_auto_is_gcv_of_explicit_hat_matrices(seed, P, N, H, O, kind, noise):
    S, Y = _case(seed, P, N, H, O, noise, kind)
    r = Linear(ridge="auto").fit(S, Y)
    assert r.ridge_.shape == (P,) and r.gcv_.shape == (P, len(RIDGE_GRID))
    # with more cells than steps, N - trace(Hat) ~ lam is lost to cancellation in an
    # explicit float64 hat matrix at small lam (see the mpmath test): compare from 1e-5
    check = RIDGE_GRID >= (1e-5 if H >= N else 0)
    for p in range(P):
        ref = np.array([_gcv_explicit(S[p], Y, _absolute(S[p], g)) for g in RIDGE_GRID[check]])
        np.testing.assert_allclose(r.gcv_[p, check], ref, rtol=1e-7)
        if H < N:
            assert r.ridge_[p] == RIDGE_GRID[np.argmin(ref)]


def test_auto_gcv_with_more_cells_than_steps_in_high_precision():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    S, Y = _case(4, 2, 12, 15, 1)
    r = Linear(ridge="auto").fit(S, Y)
    for p in range(2):
        A = mp.matrix(np.c_[S[p], np.ones(12)].tolist())
        D = mp.diag([1] * 15 + [0])
        y = mp.matrix(Y.tolist())
        ref = []
        for g in RIDGE_GRID:
            if g == 0:  # more cells than steps: the pseudo-inverse interpolates, no residual dof
                ref.append(np.inf)
                continue
            hat = A * mp.inverse(A.T * A + mp.mpf(float(_absolute(S[p], g))) * D) * A.T
            res = y - hat * y
            rss = sum(res[i] ** 2 for i in range(12))
            ref.append(float(rss / 12 / (1 - sum(hat[i, i] for i in range(12)) / 12) ** 2))
        # interpolating at the smallest penalties, the residual is ~1e-12 of the targets and
        # its float64 rounding limits GCV to ~1e-5 relative; the curve is flat there, so the
        # choice is still optimal to far better than that
        np.testing.assert_allclose(r.gcv_[p], ref, rtol=1e-4)
        np.testing.assert_allclose(r.gcv_[p, RIDGE_GRID >= 1e-7], np.array(ref)[RIDGE_GRID >= 1e-7], rtol=1e-9)
        assert ref[int(np.flatnonzero(RIDGE_GRID == r.ridge_[p])[0])] <= min(ref) * (1 + 1e-9)


@pytest.mark.parametrize("seed,P,N,H,O,kind,noise", CASES)
def test_auto_weights_are_the_penalised_lstsq_of_the_chosen_value(seed, P, N, H, O, kind, noise):
    S, Y = _case(seed, P, N, H, O, noise, kind)
    r = Linear(ridge="auto").fit(S, Y)
    for p in range(P):
        W = _ridge_lstsq(S[p], Y, _absolute(S[p], r.ridge_[p]))
        np.testing.assert_allclose(r.coef_[p], W, atol=1e-8 * max(1.0, np.abs(W).max()))


def test_gcv_at_zero_counts_every_direction_the_pseudo_inverse_fits():
    # 4 strong directions and 4 at 1e-9 of them: invisible in the Gram matrix (eigenvalues
    # 1e-18 of the largest), but the pseudo-inverse fits them, so df(0) = 1 + 8, not 1 + 4
    rng = np.random.default_rng(5)
    N, H = 200, 8
    t = np.arange(N)
    base = np.stack([np.sin(0.2 * t), np.cos(0.2 * t), np.sin(0.311 * t), np.cos(0.311 * t)], 1)
    S = base @ rng.normal(size=(4, H)) + 1e-9 * rng.normal(size=(N, H)) + 0.3
    Y = base[:, :1] + np.tanh(S[:, :2]).sum(1, keepdims=True)
    assert np.linalg.matrix_rank(np.c_[S, np.ones(N)]) == H + 1
    r = Linear(ridge="auto").fit(S[None], Y)
    np.testing.assert_allclose(r.gcv_[0, 0], _gcv_explicit(S, Y, 0.0), rtol=1e-6)


def test_gcv_picks_near_the_brute_force_loo_value():
    # GCV approximates leave-one-out by replacing every leverage h_ii by the mean;
    # with N >> H (small, similar leverages) the two choices are close
    for seed in range(4):
        S, Y = _case(10 + seed, 1, 60, 6, 1, noise=0.5)
        grid = RIDGE_GRID[::2]
        loo = [_loo_brute_force(S[0], Y, _absolute(S[0], g)) for g in grid]
        r = Linear(ridge="auto", grid=grid).fit(S, Y)
        chosen = int(np.flatnonzero(grid == r.ridge_[0])[0])
        assert abs(chosen - int(np.argmin(loo))) <= 1
        assert loo[chosen] <= 1.05 * min(loo)


def test_auto_results_do_not_depend_on_batch_mates():
    rng = np.random.default_rng(7)
    S, _ = _case(7, 10, 80, 7, 2, kind="collinear")
    # per-candidate targets, noise from none to large: choices of 0, small penalties
    # (Jacobi-scaled solver), large ones (eigenbasis) all share the batch
    noise = np.r_[0.0, np.logspace(-8, 1, 9)][:, None, None]
    Y = S @ rng.normal(size=(10, 7, 2)) + noise * rng.normal(size=(10, 80, 2))
    S[2] = 0.0  # all cells dead
    S[4, :, 1] = 0.7  # a saturated cell
    S[5] *= 1e-5  # small states: relative penalties must not care
    together = Linear(ridge="auto").fit(S, Y)
    for p in range(len(S)):
        alone = Linear(ridge="auto").fit(S[p : p + 1], Y[p : p + 1])
        np.testing.assert_array_equal(alone.coef_[0], together.coef_[p])
        np.testing.assert_array_equal(alone.ridge_[0], together.ridge_[p])
        np.testing.assert_array_equal(alone.gcv_[0], together.gcv_[p])
    assert len(set(together.ridge_)) >= 5, together.ridge_
    order = rng.permutation(len(S))
    shuffled = Linear(ridge="auto").fit(S[order], Y[order])
    np.testing.assert_array_equal(shuffled.coef_, together.coef_[order])
    np.testing.assert_array_equal(shuffled.ridge_, together.ridge_[order])


def test_chosen_ridge_grows_with_noise():
    rng = np.random.default_rng(8)
    P, N, H = 20, 100, 10
    S = np.tanh(rng.normal(size=(P, N, H)))
    w = rng.normal(size=(P, H, 1))
    eps = rng.normal(size=(P, N, 1))
    medians = []
    for noise in (1e-4, 1e-2, 1.0, 10.0):
        Y = S @ w + noise * eps
        medians.append(np.median(Linear(ridge="auto").fit(S, Y).ridge_))
    assert all(a < b for a, b in zip(medians, medians[1:])), medians
    assert medians[2] >= 1e6 * medians[0], medians  # GCV's optimum grows like noise^2 (1e8 here)


def test_auto_keeps_the_pseudo_inverse_on_a_linear_recurrence():
    # noiseless superimposed sines through slightly driven LSTMs (the sines task's regime):
    # any penalty wrecks closed-loop generation there (RESULTS.md), and GCV sees that
    # the unpenalised one-step fit is far better; its weights are then ridge=0's, bit for bit
    from evolino.lstm import LSTMSpec, forward

    y = np.sin(np.outer(np.arange(400), [0.2, 0.311, 0.42, 0.51, 0.63])).sum(1, keepdims=True)
    spec = LSTMSpec(1, 40)
    S = forward(spec, spec.init(0, size=4), np.r_[[[0.0]], y[:-1]] * 1e-5)[:, 100:]
    r = Linear(ridge="auto").fit(S, y[100:])
    np.testing.assert_array_equal(r.ridge_, 0.0)
    np.testing.assert_array_equal(r.coef_, Linear(ridge=0.0).fit(S, y[100:]).coef_)


def test_auto_scale_free_and_per_candidate_targets():
    S, _ = _case(9, 3, 50, 6, 1)
    Y = np.random.default_rng(9).normal(size=(3, 50, 2))
    a = Linear(ridge="auto").fit(S, Y)
    b = Linear(ridge="auto").fit(S * 1e-3, Y)
    np.testing.assert_array_equal(a.ridge_, b.ridge_)
    np.testing.assert_allclose(a.predict(S), b.predict(S * 1e-3), atol=1e-9)
    for p in range(3):
        ref = np.array([_gcv_explicit(S[p], Y[p], _absolute(S[p], g)) for g in RIDGE_GRID])
        assert a.ridge_[p] == RIDGE_GRID[np.argmin(ref)]


def test_auto_constant_cells_get_zero_weight():
    S, Y = _case(11, 3, 40, 5, 1)
    S[1, :, 2] = 0.999  # saturated: collinear with the bias
    S[2] = -0.3  # every cell dead
    r = Linear(ridge="auto").fit(S, Y)
    assert r.coef_[1, 2, 0] == 0.0
    np.testing.assert_array_equal(r.coef_[2, :5], 0.0)
    np.testing.assert_allclose(r.coef_[2, 5], Y.mean(0))
    assert r.ridge_[2] == RIDGE_GRID[0]  # nothing to choose: ties go to the smallest
    assert np.all(np.isfinite(r.gcv_))


def test_auto_float32_and_custom_grid():
    S, Y = _case(12, 2, 60, 5, 1)
    r64 = Linear(ridge="auto").fit(S, Y)
    r32 = Linear(ridge="auto").fit(S.astype(np.float32), Y.astype(np.float32))
    assert r32.coef_.dtype == np.float32
    np.testing.assert_allclose(r32.predict(S.astype(np.float32)), r64.predict(S), atol=1e-4)
    grid = [1e-1, 1e-3]  # any order: sorted, duplicates dropped
    r = Linear(ridge="auto", grid=grid + [1e-3]).fit(S, Y)
    assert r.gcv_.shape == (2, 2) and set(r.ridge_) <= set(grid)
    W, ridge, gcv = solve_auto_ridge(S, Y)
    np.testing.assert_array_equal(W, r64.coef_)
    np.testing.assert_array_equal(ridge, r64.ridge_)


def test_fixed_ridge_after_auto_drops_gcv():
    S, Y = _case(13, 2, 30, 4, 1)
    r = Linear(ridge="auto").fit(S, Y)
    r.ridge = 1e-3
    r.fit(S, Y)
    assert not hasattr(r, "gcv_")
    np.testing.assert_array_equal(r.ridge_, [1e-3, 1e-3])


def test_ridge_bad_input():
    S, Y = np.random.default_rng(0).normal(size=(2, 10, 3)), np.zeros((10, 1))
    with pytest.raises(ValueError, match=r"ridge='auto' needs at least 3 time steps.*fixed ridge"):
        Linear(ridge="auto").fit(S[:, :2], Y[:2])
    for bad, exc in [("Auto", TypeError), ("0.1", TypeError), (None, TypeError), (True, TypeError),
                     ([1e-3], TypeError), (-1e-3, ValueError), (np.nan, ValueError), (np.inf, ValueError)]:
        with pytest.raises(exc, match="ridge"):
            Linear(ridge=bad).fit(S, Y)
    with pytest.raises(ValueError, match="grid is only used with ridge='auto'"):
        Linear(ridge=1e-3, grid=[1e-3]).fit(S, Y)
    for grid in ([], [1e-3, -1e-6], [-1e-3], [[1e-3]], [np.nan]):
        with pytest.raises(ValueError, match="grid"):
            Linear(ridge="auto", grid=grid).fit(S, Y)
    assert Linear(ridge="auto").fit(S[:, :3], Y[:3]).coef_.shape == (2, 4, 1)  # 3 steps are enough


@pytest.mark.parametrize("seed,P,N,H,O,kind,noise", CASES[:4] + CASES[5:])
def test_holdout_choice_equals_a_brute_force_holdout_selection(seed, P, N, H, O, kind, noise):
    from evolino.readout import select_ridge_holdout

    S, Y = _case(seed, P, N, H, O, noise, kind)
    cut = (3 * N) // 4
    W, chosen, sse = select_ridge_holdout(S[:, :cut], Y[:cut], S[:, cut:], Y[cut:])
    grid = np.unique(RIDGE_GRID)
    for p in range(P):
        Sf = S[p, :cut]
        errs = []
        for rel in grid:  # refit on the fit part by lstsq, score the held-out part
            Wp = _ridge_lstsq(Sf, Y[:cut], _absolute(Sf, rel))
            errs.append(((np.c_[S[p, cut:], np.ones(N - cut)] @ Wp - Y[cut:]) ** 2).sum())
        errs = np.array(errs)
        k = int(np.argmin(errs))
        # the choice is the brute-force one, or one whose error is within rounding of it
        assert errs[np.searchsorted(grid, chosen[p])] <= errs[k] * (1 + 1e-6) + 1e-12
        Wref = _ridge_lstsq(Sf, Y[:cut], _absolute(Sf, chosen[p]))
        np.testing.assert_allclose(W[p], Wref, rtol=1e-5, atol=1e-7 * np.abs(Wref).max())
        np.testing.assert_allclose(sse[p, np.searchsorted(grid, chosen[p])], errs[np.searchsorted(grid, chosen[p])],
                                   rtol=1e-4)


def test_holdout_choice_does_not_depend_on_batch_mates():
    from evolino.readout import select_ridge_holdout

    S, Y = _case(9, 4, 60, 6, 1)
    together = select_ridge_holdout(S[:, :45], Y[:45], S[:, 45:], Y[45:])
    for p in range(4):
        alone = select_ridge_holdout(S[p : p + 1, :45], Y[:45], S[p : p + 1, 45:], Y[45:])
        assert alone[1][0] == together[1][p]
        np.testing.assert_array_equal(alone[0][0], together[0][p])
