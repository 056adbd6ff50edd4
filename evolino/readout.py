"""Readouts: output weights computed (not evolved) from collected LSTM states.

``Linear`` solves the least-squares problem of Evolino (Schmidhuber et al. 2007)
for all ``P`` candidates at once. For states ``S_p`` ``(N, H)`` augmented with a
bias column, ``A_p = [S_p, 1]`` ``(N, K)`` with ``K = H + 1``::

    W_p = argmin_W ||A_p W - Y||^2 + ridge * ||W[:H]||^2          (bias not penalised)

With ``ridge = 0`` this is the limit ``ridge -> 0+``: the least-squares solution
whose non-bias weights have minimum norm, i.e. ``W_p[:H] = pinv(S_p - mean) (Y - mean)``
and the bias fitting the means. It is unique (and equals ``pinv(A_p) Y``) when
the states have full rank, and stays well defined when they do not (a saturated
cell gives a constant column, collinear with the bias; two cells may coincide).

How: states and targets are centred (the bias direction otherwise dominates the
spectrum), the normal equations ``G_p = S_p^T S_p`` ``(P, H, H)`` are formed by
one batched product and Jacobi-scaled to unit diagonal. Candidates whose
Cholesky pivots stay above a tolerance are solved by one batched
``np.linalg.solve`` followed by iterative refinement against the true residual
(which restores the accuracy lost by squaring the condition number); the others
(near-singular, cond(S) above about 1e7) are solved exactly by
``np.linalg.lstsq``, one at a time. This is
several times faster than a per-candidate ``np.linalg.lstsq`` loop (see
``benchmarks/kernel.py``).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_number

__all__ = ["Linear", "solve_least_squares"]

_PIVOT_TOL = 1e-14  # unit-diagonal Cholesky pivot below this (cond(S) >~ 1e7) -> lstsq
_REFINE_BELOW = 1e-6  # ... below this (cond(S) >~ 1e3): iterative refinement


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


def solve_least_squares(S, Y, ridge: float = 0.0, refine: int = 3) -> np.ndarray:
    """Least-squares readout weights for a population of state matrices.

    Parameters
    ----------
    S : array of shape (P, N, H)
        States of ``P`` candidates (``N`` time steps, ``H`` cells).
    Y : array of shape (N, O) or (P, N, O)
        Targets, shared by all candidates or one set each.
    ridge : float, default=0.0
        L2 penalty on the non-bias weights; 0 gives the pseudo-inverse solution.
    refine : int, default=3
        Steps of iterative refinement for ill-conditioned candidates (smallest
        Cholesky pivot of the scaled normal equations below ``_REFINE_BELOW``);
        they recover the accuracy that forming normal equations loses.

    Returns
    -------
    W : ndarray of shape (P, H + 1, O)
        Weights; row ``H`` is the bias.
    """
    P, N, H = S.shape
    O = Y.shape[-1]
    s_mean = np.full((1, 1, N), 1.0 / N, S.dtype) @ S  # (P, 1, H), one pass as a matrix product
    y_mean = Y.mean(axis=-2, keepdims=True)  # (1|P, 1, O)
    Sc = S - s_mean  # centring removes the bias direction, which dominates the spectrum
    Yc = np.broadcast_to(Y - y_mean, (P, N, O))
    Sct = Sc.transpose(0, 2, 1)
    G = Sct @ Sc  # (P, H, H)
    b = Sct @ Yc  # (P, H, O)
    idx = np.arange(H)
    d2 = G[:, idx, idx].copy()  # (P, H) centred column energies
    # constant cells (saturated or dead): after centring only rounding is left; their
    # minimum-norm weight is exactly 0, so drop them instead of scaling noise up
    live = d2 > (1e-10) ** 2 * (d2 + N * s_mean[:, 0] ** 2)  # (P, H)
    d = np.sqrt(np.where(live, d2, 1.0))
    mask = live[:, :, None] & live[:, None, :]
    Gs = np.where(mask, G / (d[:, :, None] * d[:, None, :]), 0.0)  # unit diagonal (Jacobi scaling)
    lam = ridge / d**2  # the ridge penalty in scaled coordinates
    Gs[:, idx, idx] = 1.0 + lam
    bs = np.where(live[:, :, None], b / d[:, :, None], 0.0)
    piv = _min_pivots(Gs) if ridge == 0 else np.ones(P)  # ridge > 0 is always PD
    good = piv > _PIVOT_TOL
    Ws = np.zeros_like(bs)
    Ws[good] = np.linalg.solve(Gs[good], bs[good])
    ill = np.flatnonzero(good & (piv < _REFINE_BELOW))
    if len(ill) and refine:
        Gi, Si, di, wi = Gs[ill], Sc[ill], d[ill][:, :, None], Ws[ill]
        Yi, li, lami = Yc[ill], live[ill][:, :, None], lam[ill][:, :, None]
        for _ in range(refine):
            r = Yi - Si @ (wi / di)  # (n, N, O) true residual
            rhs = np.where(li, (Si.transpose(0, 2, 1) @ r) / di, 0.0) - lami * wi
            wi = wi + np.linalg.solve(Gi, rhs)
        Ws[ill] = wi
    for p in np.flatnonzero(~good):
        # near-singular (cond(S) >~ 1e7): exact pseudo-inverse semantics by LAPACK's
        # SVD-based lstsq, one candidate at a time (rare in practice)
        Ws[p] = np.linalg.lstsq(Sc[p] * live[p], Yc[p], rcond=None)[0] * d[p][:, None]
    W = np.empty((P, H + 1, O), S.dtype)
    W[:, :H] = Ws / d[:, :, None]
    W[:, H] = (y_mean - s_mean @ W[:, :H])[:, 0]
    return W


class Linear:
    """Linear readout fitted by (ridge) least squares for a whole population.

    Parameters
    ----------
    ridge : float, default=0.0
        L2 penalty on the output weights (not the bias); ``0`` gives Evolino's
        pseudo-inverse solution. It is absolute, so it must be judged against the
        energy of the centred states, which shrinks with the trainer's
        ``input_scale``: on 5 sines a ridge of only 1e-10 times the mean squared
        centred state raised the test NRMSE from 2.5e-3 to 0.77 (RESULTS.md).

    Attributes
    ----------
    coef_ : ndarray of shape (P, H + 1, O)
        Output weights of each candidate after :meth:`fit`; row ``H`` is the bias.

    Examples
    --------
    >>> import numpy as np
    >>> S = np.random.default_rng(0).normal(size=(3, 50, 4))   # 3 candidates
    >>> Y = S[0] @ np.ones((4, 1))
    >>> Linear().fit(S, Y).predict(S).shape
    (3, 50, 1)
    """

    kind = "linear"

    def __init__(self, ridge: float = 0.0):
        self.ridge = ridge

    def fit(self, S, Y) -> "Linear":
        """Fit weights from states ``S`` ``(P, N, H)`` to targets ``Y`` ``(N, O)`` or ``(P, N, O)``."""
        ridge = check_number(self.ridge, "ridge", low=0.0)
        S = check_array(S, "S", ndims=(3,), finite=True)
        if not np.issubdtype(S.dtype, np.floating):
            S = S.astype(np.float64)
        Y = check_array(Y, "Y", ndims=(1, 2, 3), dtype=S.dtype, finite=True)
        if Y.ndim == 1:
            Y = Y[:, None]
        if S.shape[1] == 0:
            raise ValueError("S must hold at least one time step (axis 1), got 0")
        if Y.shape[-2] != S.shape[1] or (Y.ndim == 3 and Y.shape[0] != S.shape[0]):
            raise ValueError(
                f"Y must have shape ({S.shape[1]}, O) or ({S.shape[0]}, {S.shape[1]}, O) "
                f"to match S {S.shape}, got {Y.shape}"
            )
        self.coef_ = solve_least_squares(S, Y, ridge)
        return self

    def predict(self, S) -> np.ndarray:
        """Outputs ``(P, N, O)`` for states ``S`` ``(P, N, H)`` (or ``(P, B, N, H)`` -> ``(P, B, N, O)``)."""
        if not hasattr(self, "coef_"):
            raise ValueError("this Linear readout is not fitted yet: call fit(S, Y) first")
        S = check_array(S, "S", ndims=(3, 4))
        P, K, _ = self.coef_.shape
        if S.shape[0] != P or S.shape[-1] != K - 1:
            raise ValueError(f"S must have shape ({P}, ..., {K - 1}) for this readout, got {S.shape}")
        W = self.coef_ if S.ndim == 3 else self.coef_[:, None]
        return S @ W[..., :-1, :] + W[..., -1:, :]
