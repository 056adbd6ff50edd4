"""Readouts: output weights computed (not evolved) from collected LSTM states.

``Linear`` solves the least-squares problem of Evolino (Schmidhuber et al. 2007)
for all ``P`` candidates at once. For states ``S_p`` ``(N, H)`` augmented with a
bias column, ``A_p = [S_p, 1]`` ``(N, K)`` with ``K = H + 1``::

    W_p = argmin_W ||A_p W - Y||^2 + lambda_p * ||W[:H]||^2       (bias not penalised)

With ``lambda = 0`` this is the limit ``lambda -> 0+``: the least-squares solution
whose non-bias weights have minimum norm, i.e. ``W_p[:H] = pinv(S_p - mean) (Y - mean)``
and the bias fitting the means. It is unique (and equals ``pinv(A_p) Y``) when
the states have full rank, and stays well defined when they do not (a saturated
cell gives a constant column, collinear with the bias; two cells may coincide).

**Relative ridge.** ``Linear(ridge=r)`` with a float ``r > 0`` uses the absolute
penalty ``lambda_p = r * trace(Sc_p^T Sc_p) / H``, ``Sc_p`` the centred states:
``r`` times the mean centred column energy of that candidate. The same ``r``
then means the same whatever the input scale, the number of steps or cells
(an absolute penalty that is tiny for one network swamps another whose cells
barely move). :func:`solve_least_squares` takes either (``relative=``).

**Automatic ridge.** ``Linear(ridge="auto")`` picks, per candidate, the relative
penalty of :data:`RIDGE_GRID` (0, then 1e-12 to 1 in 25 steps of half a decade)
that minimises generalized cross-validation (Golub, Heath & Wahba 1979)::

    GCV(lambda) = N * RSS(lambda) / (N - df(lambda))^2,   df = 1 + sum_k s_k / (s_k + lambda)

``s_k`` the eigenvalues of the centred Gram matrix ``Sc^T Sc``: with the bias
unpenalised, the hat matrix is ``11^T / N`` plus that of the centred problem,
exactly, hence the 1. One ``np.linalg.eigh`` of the ``(P, H, H)`` Gram matrices gives
GCV at every grid value in ``O(H)`` each. ``RSS`` is anchored on the explicit
residual at the smallest grid value and grows from there by a sum of positive
terms (the textbook ``||Y||^2 - ...`` form cancels when the fit is nearly exact, as
on superimposed sines). Eigenvalues below ``H * eps * max`` (what the Gram matrix
resolves) count as exact nulls; at ``lambda = 0``, ``df = 1 +`` the rank the
pseudo-inverse solver actually uses (which resolves far smaller directions).

*Why the grid starts at 0*: closed-loop generation of a linear recurrence needs
state directions far below any useful penalty; every relative ridge from 1e-12 up
made 5 sines 100x worse (``benchmarks/readout_ridge.py``), and there GCV picks 0,
whose weights are then ``ridge=0``'s bit for bit. *Why GCV and not the exact
leave-one-out (PRESS, ``e_i / (1 - h_ii)``)*: PRESS needs every leverage ``h_ii`` at
every grid value, i.e. the states rotated into the eigenbasis (an ``N H^2`` product,
twice the Gram product, which BLAS forms as a symmetric rank update) plus ``N H``
work per grid value; by the parts' timings auto would cost 2.5-5x a ``ridge=0``
fit instead of the measured 1.1-2x. GCV is PRESS with every leverage replaced by
the mean ``df / N``; states have ``N >> H``, so leverages are small and the picks
nearly coincide (36 of 40 identical against brute-force LOO refits in the
benchmark, the others one grid step away, at most 1% more LOO error). Several
outputs share one penalty; their residuals add up in ``RSS``. The chosen
penalty's weights come from the eigenbasis when ``cond(G + lambda) <= 1e6`` and
otherwise from the solver below.

*Limitation*: LOO and GCV treat steps as independent. On a smooth series
neighbouring steps nearly repeat, so both underrate overfitting: on noiseless
Mackey-Glass with 150 cells and 300 steps both keep 0 (median held-out one-step
NRMSE 0.085) where the grid without 0 gives 0.0024 (benchmark, table 3); with 5%
noise the pseudo-inverse blows up (1.15) and auto gives 0.13.

How: states and targets are centred (the bias direction otherwise dominates the
spectrum), the normal equations ``G_p = S_p^T S_p`` ``(P, H, H)`` are formed by
one batched product and Jacobi-scaled to unit diagonal. Candidates whose
Cholesky pivots stay above a tolerance are solved by one batched
``np.linalg.solve`` followed by iterative refinement against the true residual
(which restores the accuracy lost by squaring the condition number); the others
(near-singular, cond(S) above about 1e7) are solved exactly by
``np.linalg.lstsq`` (on ``[S; sqrt(lambda) I]`` when penalised), one at a time.
This is several times faster than a per-candidate ``np.linalg.lstsq`` loop (see
``benchmarks/kernel.py``). Every step works on one candidate's matrices alone, so
a candidate's weights do not depend on which others share the batch.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ._validate import EvolinoError, EvolinoTypeError, check_array, check_number

__all__ = ["select_ridge_holdout", "Linear", "RIDGE_GRID", "solve_least_squares", "solve_auto_ridge"]

_PIVOT_TOL = 1e-14  # unit-diagonal Cholesky pivot below this (cond(S) >~ 1e7) -> lstsq
_REFINE_BELOW = 1e-6  # ... below this (cond(S) >~ 1e3): iterative refinement
_EIG_COND = 1e6  # cond(G + lam) up to this (rel. error <~ 1e-10): solve "auto" in the eigenbasis
MIN_STEPS_AUTO = 3  # ridge="auto" needs residual degrees of freedom beyond the mean

#: Relative penalties ``ridge="auto"`` chooses from: 0 (pseudo-inverse), then 1e-12 to 1, half a decade apart.
RIDGE_GRID = np.r_[0.0, np.logspace(-12.0, 0.0, 25)]


class _Centred(NamedTuple):
    Sc: np.ndarray  # (P, N, H) centred states
    Yc: np.ndarray  # (P, N, O) centred targets (a broadcast view when shared)
    s_mean: np.ndarray  # (P, 1, H)
    y_mean: np.ndarray  # (1|P, 1, O)
    G: np.ndarray  # (P, H, H) centred Gram matrix
    b: np.ndarray  # (P, H, O)
    d2: np.ndarray  # (P, H) centred column energies (diagonal of G)
    live: np.ndarray  # (P, H) False for constant (dead or saturated) cells


def _centre(S, Y) -> _Centred:
    P, N, H = S.shape
    O = Y.shape[-1]
    s_mean = np.full((1, 1, N), 1.0 / N, S.dtype) @ S  # (P, 1, H), one pass as a matrix product
    y_mean = Y.mean(axis=-2, keepdims=True)
    Sc = S - s_mean  # centring removes the bias direction, which dominates the spectrum
    Yc = np.broadcast_to(Y - y_mean, (P, N, O))
    Sct = Sc.transpose(0, 2, 1)
    G = Sct @ Sc
    b = Sct @ Yc
    idx = np.arange(H)
    d2 = G[:, idx, idx].copy()
    # constant cells (saturated or dead): after centring only rounding is left; their
    # minimum-norm weight is exactly 0, so drop them instead of scaling noise up
    live = d2 > (1e-10) ** 2 * (d2 + N * s_mean[:, 0] ** 2)
    return _Centred(Sc, Yc, s_mean, y_mean, G, b, d2, live)


def _min_pivots(Gs: np.ndarray) -> np.ndarray:
    """Smallest squared Cholesky pivot of each unit-diagonal ``Gs`` ``(n, H, H)`` (0 if not PD).

    Each verdict depends on its own matrix alone, never on its batch-mates, so a
    candidate's readout is the same however the population is chunked.
    """
    try:
        L = np.linalg.cholesky(Gs)
    except np.linalg.LinAlgError:  # numpy fails the whole batch if one matrix is singular
        if len(Gs) == 1:
            return np.zeros(1)
        return np.concatenate([_min_pivots(g[None]) for g in Gs])
    return np.diagonal(L, axis1=1, axis2=2).min(axis=1) ** 2


def _solve(c: _Centred, lam_abs: np.ndarray, refine: int, sel=None, ranks=None) -> np.ndarray:
    """State weights ``(n, H, O)`` of the centred problem with absolute penalties ``lam_abs`` ``(n,)``.

    ``sel``: indices of the ``n`` candidates to solve (default all), without copying their states.
    ``ranks``: an int array ``(n,)`` to receive the number of state directions each fit uses.
    """
    pick = (lambda a: a) if sel is None else (lambda a: a[sel])
    G, b, d2, live = pick(c.G), pick(c.b), pick(c.d2), pick(c.live)
    rows = np.arange(len(G)) if sel is None else np.asarray(sel)
    H = G.shape[1]
    idx = np.arange(H)
    d = np.sqrt(np.where(live, d2, 1.0))
    mask = live[:, :, None] & live[:, None, :]
    Gs = np.where(mask, G / (d[:, :, None] * d[:, None, :]), 0.0)  # unit diagonal (Jacobi scaling)
    lam = lam_abs[:, None] / d**2  # the penalty in scaled coordinates
    Gs[:, idx, idx] = 1.0 + lam
    bs = np.where(live[:, :, None], b / d[:, :, None], 0.0)
    # a tiny relative penalty leaves the scaled system as ill-conditioned as none
    piv = _min_pivots(Gs)
    good = piv > _PIVOT_TOL
    Ws = np.zeros_like(bs)
    try:
        Ws[good] = np.linalg.solve(Gs[good], bs[good])
    except np.linalg.LinAlgError:  # a matrix the pivots passed is singular to LU: decide one by one
        for i in np.flatnonzero(good):
            try:
                Ws[i] = np.linalg.solve(Gs[i], bs[i])
            except np.linalg.LinAlgError:
                good[i] = False  # to the SVD below
    ill = np.flatnonzero(good & (piv < _REFINE_BELOW))
    if len(ill) and refine:
        every = sel is None and len(ill) == len(G)  # common with LSTM states: spare a copy
        Si, Yi = (c.Sc, c.Yc) if every else (c.Sc[rows[ill]], c.Yc[rows[ill]])
        Gi, di, wi = Gs[ill], d[ill][:, :, None], Ws[ill]
        li, lami = live[ill][:, :, None], lam[ill][:, :, None]
        for _ in range(refine):
            r = Yi - Si @ (wi / di)  # (n, N, O) true residual
            rhs = np.where(li, (Si.transpose(0, 2, 1) @ r) / di, 0.0) - lami * wi
            wi = wi + np.linalg.solve(Gi, rhs)
        Ws[ill] = wi
    for i in np.flatnonzero(~good):
        # near-singular (cond(S) >~ 1e7): LAPACK's SVD-based lstsq, one candidate at a
        # time (rare in practice); exact pseudo-inverse semantics when unpenalised
        A, Yp = c.Sc[rows[i]] * live[i], c.Yc[rows[i]]
        if lam_abs[i] > 0:
            A = np.vstack([A, np.sqrt(lam_abs[i]) * np.diag(live[i]).astype(A.dtype)])
            Yp = np.vstack([Yp, np.zeros((H, Yp.shape[1]), Yp.dtype)])
        Ws[i], _, rank, _ = np.linalg.lstsq(A, Yp, rcond=None)
        Ws[i] *= d[i][:, None]
        if ranks is not None:
            ranks[i] = rank
    if ranks is not None:
        ranks[good] = live[good].sum(axis=1)
    return Ws / d[:, :, None]


def _with_bias(c: _Centred, Wh: np.ndarray) -> np.ndarray:
    P, H, O = Wh.shape
    W = np.empty((P, H + 1, O), Wh.dtype)
    W[:, :H] = Wh
    W[:, H] = (c.y_mean - c.s_mean @ Wh)[:, 0]
    return W


def _energy(c: _Centred) -> np.ndarray:
    """Mean centred column energy ``trace(Sc^T Sc) / H`` ``(P,)``: the unit of a relative ridge."""
    return c.d2.sum(axis=1) / c.d2.shape[1]


def solve_least_squares(S, Y, ridge=0.0, refine: int = 3, *, relative: bool = False) -> np.ndarray:
    """Least-squares readout weights for a population of state matrices.

    Parameters
    ----------
    S : array of shape (P, N, H)
        States of ``P`` candidates (``N`` time steps, ``H`` cells).
    Y : array of shape (N, O) or (P, N, O)
        Targets, shared by all candidates or one set each.
    ridge : float or array of shape (P,), default=0.0
        L2 penalty on the non-bias weights (one per candidate if an array);
        0 gives the pseudo-inverse solution.
    refine : int, default=3
        Steps of iterative refinement for ill-conditioned candidates (smallest
        Cholesky pivot of the scaled normal equations below ``_REFINE_BELOW``);
        they recover the accuracy that forming normal equations loses.
    relative : bool, default=False
        ``ridge`` is absolute (``False``) or in units of each candidate's mean
        centred column energy ``trace(Sc^T Sc) / H`` (``True``, as in :class:`Linear`).

    Returns
    -------
    W : ndarray of shape (P, H + 1, O)
        Weights; row ``H`` is the bias.
    """
    c = _centre(S, Y)
    lam = np.broadcast_to(np.asarray(ridge, dtype=S.dtype), (S.shape[0],))
    if relative:
        lam = lam * _energy(c)
    return _with_bias(c, _solve(c, lam, refine))


def solve_auto_ridge(S, Y, grid=RIDGE_GRID, refine: int = 3):
    """Readout weights with each candidate's relative ridge chosen by GCV over ``grid``.

    One eigendecomposition of each centred Gram matrix (batched) gives GCV at
    every grid value (module docstring). Computed in float64 whatever the dtype of
    ``S``: the smallest penalties are far below float32's resolution.

    Parameters
    ----------
    S : array of shape (P, N, H), with N >= 3
    Y : array of shape (N, O) or (P, N, O)
    grid : array of shape (L,), default=RIDGE_GRID
        Relative penalties, >= 0 (0: the pseudo-inverse); sorted, duplicates dropped.
    refine : int, default=3
        As in :func:`solve_least_squares`.

    Returns
    -------
    W : ndarray of shape (P, H + 1, O), dtype of ``S``
    ridge : ndarray of shape (P,)
        The chosen relative penalty of each candidate (the smallest on ties).
    gcv : ndarray of shape (P, L)
        ``RSS / N / (1 - df / N)^2`` at each grid value: an estimate of the mean
        squared prediction error of a step, summed over outputs.
    """
    dtype = S.dtype
    S, Y = S.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
    grid = np.unique(np.asarray(grid, dtype=np.float64))  # ascending: ties go to the smallest
    P, N, H = S.shape
    c = _centre(S, Y)
    unit = _energy(c)
    unit = np.where(unit > 0, unit, 1.0)  # all cells dead: nothing to penalise, any unit will do
    mask = c.live[:, :, None] & c.live[:, None, :]
    s, V = np.linalg.eigh(np.where(mask, c.G, 0.0) / unit[:, None, None])  # grid values apply as they are
    z = V.transpose(0, 2, 1) @ np.where(c.live[:, :, None], c.b, 0.0)
    zz = (z * z).sum(axis=2) / unit[:, None]  # (P, H), outputs pooled: they share one penalty
    # eigenvalues below the rounding of forming G are unknowable: count them as exact
    # nulls, as are all but the largest N - 1 (the rank of centred states is < N)
    null = (s <= H * np.finfo(np.float64).eps * s[:, -1:]) | (np.arange(H) < H - (N - 1))
    s = np.where(null, 0.0, s)
    lam, lam1 = grid[None, :, None], grid[0]
    u, u1 = s[:, None, :] + lam, s[:, None, :] + lam1  # (P, L, H)
    nul = null[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 at lam = 0 in null directions
        t, t1 = np.where(nul, 1.0, lam / u), np.where(nul, 1.0, lam1 / u1)  # nulls are never fitted
        inc = np.where(nul, 0.0, zz[:, None, :] * (lam - lam1) * (t + t1) / (u * u1))
    # anchor RSS at the smallest penalty on an explicit residual (the closed form
    # ||Yc||^2 - sum z^2 (s + 2 lam) / (s + lam)^2 cancels catastrophically when the
    # fit is nearly exact); the increase from there is a sum of positive terms
    rank0 = np.zeros(P, int)
    W1 = _solve(c, lam1 * unit, refine, ranks=rank0)
    r1 = c.Yc - c.Sc @ W1
    rss1 = (r1 * r1).sum(axis=(1, 2))
    rss = rss1[:, None] + inc.sum(axis=2)
    dof = (N - 1 - H) + t.sum(axis=2)  # N - df, written so that no large terms cancel
    if lam1 == 0:
        # the pseudo-inverse fits every direction its solver resolves, far below what the
        # Gram matrix shows: count those, or GCV would credit it with fewer parameters
        dof[:, 0] = N - 1 - rank0
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = np.where(dof > 0, rss / N / (dof / N) ** 2, np.inf)  # dof 0: interpolation, nothing held out
    best = np.argmin(gcv, axis=1)
    lam_b = grid[best]
    # a well-conditioned penalised system is solved accurately in the eigenbasis at hand;
    # small penalties lose digits there, like any normal-equation solve: the Jacobi-scaled
    # solver with refinement takes those (each candidate alone, as always)
    direct = (best > 0) & (s[:, -1] + lam_b <= _EIG_COND * lam_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(null | ~direct[:, None], 0.0, 1.0 / (s + lam_b[:, None]))
    eig = np.where(c.live[:, :, None], V @ (z * inv[:, :, None]) / unit[:, None, None], 0.0)
    Wh = np.where(direct[:, None, None], eig, W1)
    redo = np.flatnonzero((best > 0) & ~direct)
    if len(redo):
        Wh[redo] = _solve(c, lam_b[redo] * unit[redo], refine, redo)
    return _with_bias(c, Wh).astype(dtype, copy=False), lam_b, gcv


def select_ridge_holdout(S, Y, S_val, Y_val, grid=RIDGE_GRID, refine: int = 3):
    """Readout weights with each candidate's relative ridge chosen on held-out steps.

    For time series the held-out steps are the final part of each sequence, so
    the choice sees what leave-one-out and GCV cannot: neighbouring steps are not
    independent, and a readout that interpolates the fit part can fail on the next
    stretch of the series. One eigendecomposition of each centred Gram matrix gives
    the weights at every grid value; the held-out squared error picks one (the
    smallest on ties), whose weights are then solved accurately.

    Parameters
    ----------
    S : array of shape (P, N, H)
        Fit states; ``Y`` ``(N, O)`` or ``(P, N, O)`` their targets.
    S_val : array of shape (P, M, H)
        Held-out states; ``Y_val`` ``(M, O)`` their targets.
    grid : array of shape (L,), default=RIDGE_GRID

    Returns
    -------
    W : ndarray of shape (P, H + 1, O)
    ridge : ndarray of shape (P,)
        The chosen relative penalties.
    sse : ndarray of shape (P, L)
        Held-out sum of squared errors at each grid value.
    """
    dtype = S.dtype
    S, Y = S.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
    S_val, Y_val = S_val.astype(np.float64, copy=False), Y_val.astype(np.float64, copy=False)
    grid = np.unique(np.asarray(grid, dtype=np.float64))
    c = _centre(S, Y)
    unit = _energy(c)
    unit = np.where(unit > 0, unit, 1.0)
    mask = c.live[:, :, None] & c.live[:, None, :]
    s, V = np.linalg.eigh(np.where(mask, c.G, 0.0) / unit[:, None, None])
    z = V.transpose(0, 2, 1) @ np.where(c.live[:, :, None], c.b, 0.0)  # (P, H, O)
    H = S.shape[2]
    null = s <= H * np.finfo(np.float64).eps * s[:, -1:]
    Sv = S_val - c.s_mean  # held-out states, centred like the fit states
    Q = Sv @ V  # (P, M, H): held-out states in the eigenbasis
    sse = np.empty((S.shape[0], len(grid)))
    W0 = _with_bias(c, _solve(c, np.zeros(S.shape[0]), refine)) if grid[0] == 0 else None
    for k, lam in enumerate(grid):
        if lam == 0:
            out = S_val @ W0[:, :-1] + W0[:, -1:]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                inv = np.where(null, 0.0, 1.0 / (s + lam))  # (P, H)
            out = (Q @ (z * inv[:, :, None])) / unit[:, None, None] + c.y_mean
        err = out - Y_val
        sse[:, k] = np.where(np.isfinite(err).all(axis=(1, 2)), (err * err).sum(axis=(1, 2)), np.inf)
    best = np.argmin(sse, axis=1)
    lam_b = grid[best]
    W = np.empty((S.shape[0], H + 1, Y.shape[-1]))
    zero = lam_b == 0
    if zero.any():
        W[zero] = W0[zero]
    if (~zero).any():
        sel = np.flatnonzero(~zero)
        W[sel] = _with_bias(c._replace(s_mean=c.s_mean[sel], y_mean=c.y_mean if c.y_mean.shape[0] == 1
                                       else c.y_mean[sel]), _solve(c, lam_b[sel] * unit[sel], refine, sel))
    return W.astype(dtype, copy=False), lam_b, sse


def _check_ridge(ridge):
    if isinstance(ridge, str):
        if ridge == "auto":
            return ridge
        raise EvolinoTypeError(f"ridge must be a number >= 0 (relative penalty) or 'auto', got {ridge!r}")
    if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real):
        raise EvolinoTypeError(f"ridge must be a number >= 0 (relative penalty) or 'auto', got {ridge!r}")
    return check_number(ridge, "ridge", low=0.0)


def _check_grid(grid) -> np.ndarray:
    if grid is None:
        return RIDGE_GRID
    g = check_array(grid, "grid", ndims=(1,), dtype=np.float64, finite=True)
    if g.size == 0 or np.any(g < 0):
        raise EvolinoError(f"grid must hold at least one relative ridge, all >= 0, got {grid!r}")
    return g


class Linear:
    """Linear readout fitted by (ridge) least squares for a whole population.

    Parameters
    ----------
    ridge : float or "auto", default=0.0
        L2 penalty on the output weights (not the bias), **relative**: the absolute
        penalty of a candidate is ``ridge * trace(Sc^T Sc) / H`` (``Sc`` its centred
        states), i.e. ``ridge`` times the mean centred energy of a cell, so a value
        means the same at any input scale, number of steps or cells. ``0`` gives
        Evolino's pseudo-inverse solution. ``"auto"``: each candidate takes the value
        of ``grid`` with the lowest generalized cross-validation error (module
        docstring); it needs at least 3 steps. Fixed penalties can wreck closed-loop
        generation: on 5 sines (40 cells, ``input_scale`` 1e-5, 300 steps) a relative
        1e-12 raised the median test NRMSE of random networks from 2.3e-3 to 0.29,
        where "auto" keeps 0 (``benchmarks/readout_ridge.py``).
    grid : array of shape (L,), optional
        Relative penalties (>= 0) that ``"auto"`` chooses from; default
        :data:`RIDGE_GRID`: 0, then 1e-12 to 1 in 25 steps. Only with ``ridge="auto"``.

    Attributes
    ----------
    coef_ : ndarray of shape (P, H + 1, O)
        Output weights of each candidate after :meth:`fit`; row ``H`` is the bias.
    ridge_ : ndarray of shape (P,)
        Relative penalty each candidate was fitted with (the chosen one for "auto").
    gcv_ : ndarray of shape (P, L)
        ``"auto"`` only: GCV estimate of the mean squared one-step prediction error
        (summed over outputs) at each grid value.

    Examples
    --------
    >>> import numpy as np
    >>> S = np.random.default_rng(0).normal(size=(3, 50, 4))   # 3 candidates
    >>> Y = S[0] @ np.ones((4, 1))
    >>> Linear().fit(S, Y).predict(S).shape
    (3, 50, 1)
    >>> Linear(ridge="auto").fit(S, Y).ridge_.shape
    (3,)
    """

    def __init__(self, ridge=0.0, grid=None):
        self.ridge = ridge
        self.grid = grid

    def fit(self, S, Y) -> "Linear":
        """Fit weights from states ``S`` ``(P, N, H)`` to targets ``Y`` ``(N, O)`` or ``(P, N, O)``."""
        ridge = _check_ridge(self.ridge)
        if ridge != "auto" and self.grid is not None:
            raise EvolinoError(f"grid is only used with ridge='auto', got ridge={ridge!r}")
        S = check_array(S, "S", ndims=(3,), finite=True)
        if not np.issubdtype(S.dtype, np.floating):
            S = S.astype(np.float64)
        Y = check_array(Y, "Y", ndims=(1, 2, 3), dtype=S.dtype, finite=True)
        if Y.ndim == 1:
            Y = Y[:, None]
        if S.shape[1] == 0:
            raise EvolinoError("S must hold at least one time step (axis 1), got 0")
        if Y.shape[-2] != S.shape[1] or (Y.ndim == 3 and Y.shape[0] != S.shape[0]):
            raise EvolinoError(
                f"Y must have shape ({S.shape[1]}, O) or ({S.shape[0]}, {S.shape[1]}, O) "
                f"to match S {S.shape}, got {Y.shape}"
            )
        if ridge == "auto":
            if S.shape[1] < MIN_STEPS_AUTO:
                raise EvolinoError(f"ridge='auto' needs at least {MIN_STEPS_AUTO} time steps to cross-validate, "
                                 f"got {S.shape[1]}: pass more steps or a fixed ridge (e.g. ridge=0)")
            self.coef_, self.ridge_, self.gcv_ = solve_auto_ridge(S, Y, _check_grid(self.grid))
        else:
            self.coef_ = solve_least_squares(S, Y, ridge, relative=True)
            self.ridge_ = np.full(S.shape[0], ridge)
            self.__dict__.pop("gcv_", None)  # from an earlier "auto" fit
        return self

    def fit_holdout(self, S, Y, S_val, Y_val) -> "Linear":
        """Fit on ``S`` ``(P, N, H)`` -> ``Y``; with ``ridge="auto"`` each candidate's ridge is the one
        with the least error on the held-out ``S_val`` ``(P, M, H)`` -> ``Y_val`` ``(M, O)``
        (:func:`select_ridge_holdout`; sets ``ridge_`` and ``holdout_sse_``); a fixed ridge just fits."""
        if _check_ridge(self.ridge) != "auto":
            return self.fit(S, Y)
        S = check_array(S, "S", ndims=(3,), finite=True)
        Y = check_array(Y, "Y", ndims=(2, 3), dtype=S.dtype, finite=True)
        if S.shape[1] < MIN_STEPS_AUTO:
            raise EvolinoError(f"ridge='auto' needs at least {MIN_STEPS_AUTO} time steps, got {S.shape[1]}")
        self.coef_, self.ridge_, self.holdout_sse_ = select_ridge_holdout(S, Y, S_val, Y_val, _check_grid(self.grid))
        return self

    def predict(self, S) -> np.ndarray:
        """Outputs ``(P, N, O)`` for states ``S`` ``(P, N, H)`` (or ``(P, B, N, H)`` -> ``(P, B, N, O)``)."""
        if not hasattr(self, "coef_"):
            raise EvolinoError("this Linear readout is not fitted yet: call fit(S, Y) first")
        S = check_array(S, "S", ndims=(3, 4))
        P, K, _ = self.coef_.shape
        if S.shape[0] != P or S.shape[-1] != K - 1:
            raise EvolinoError(f"S must have shape ({P}, ..., {K - 1}) for this readout, got {S.shape}")
        W = self.coef_ if S.ndim == 3 else self.coef_[:, None]
        return S @ W[..., :-1, :] + W[..., -1:, :]
