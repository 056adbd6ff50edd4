"""Readouts: output weights computed (not evolved) from collected LSTM states.

``Linear`` solves the least-squares problem of Evolino (Schmidhuber et al. 2007)
for all ``P`` candidates at once. For states ``S_p`` ``(N, H)`` augmented with a
bias column, ``A_p = [S_p, 1]`` ``(N, K)`` with ``K = H + 1``::

    W_p = argmin_W ||A_p W - Y||^2 + ridge * ||W[:H]||^2          (bias not penalised)

With ``ridge = 0`` this is the pseudo-inverse solution ``W_p = pinv(A_p) Y``: the
minimum-norm least-squares solution, also when ``A_p`` is rank-deficient (a
saturated cell gives a constant column, collinear with the bias).

How: the normal equations ``G_p = A_p^T A_p`` ``(P, K, K)`` are formed by one
batched product. Candidates whose Jacobi-scaled ``G_p`` has a Cholesky pivot
above ``rcond`` are solved by one batched ``np.linalg.solve`` (their solution is
unique, so it *is* the pseudo-inverse solution); the others get the
pseudo-inverse of ``G_p`` from a batched eigendecomposition with eigenvalues
below ``rcond * max eigenvalue`` dropped. This is 5-10x faster than a
per-candidate ``np.linalg.lstsq`` loop (see ``benchmarks/kernel.py``).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_number

__all__ = ["Linear", "solve_least_squares"]

_PIVOT_TOL = 1e-10  # Cholesky pivots of the unit-diagonal Gram matrix below this -> eigh path


def _gram(S: np.ndarray, Y: np.ndarray):
    """Normal equations of ``A = [S, 1]``: ``G`` ``(P, K, K)`` and ``A^T Y`` ``(P, K, O)``."""
    P, N, H = S.shape
    G = np.empty((P, H + 1, H + 1), S.dtype)
    St = S.transpose(0, 2, 1)
    np.matmul(St, S, out=G[:, :H, :H])
    col = S.sum(axis=1)  # (P, H)
    G[:, :H, H] = col
    G[:, H, :H] = col
    G[:, H, H] = N
    AtY = np.empty((P, H + 1, Y.shape[-1]), S.dtype)
    np.matmul(St, Y, out=AtY[:, :H])
    AtY[:, H] = Y.sum(axis=-2)
    return G, AtY


def _pinv_solve(G: np.ndarray, b: np.ndarray, rcond: float) -> np.ndarray:
    """``pinv(G) @ b`` for symmetric PSD ``G`` ``(n, K, K)``, ``b`` ``(n, K, O)``."""
    lam, V = np.linalg.eigh(G)
    keep = lam > rcond * lam[:, -1:]
    inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
    return V @ (inv[:, :, None] * (V.transpose(0, 2, 1) @ b))


def solve_least_squares(S, Y, ridge: float = 0.0, rcond: float = 1e-12) -> np.ndarray:
    """Least-squares readout weights for a population of state matrices.

    Parameters
    ----------
    S : array of shape (P, N, H)
        States of ``P`` candidates (``N`` time steps, ``H`` cells).
    Y : array of shape (N, O) or (P, N, O)
        Targets, shared by all candidates or one set each.
    ridge : float, default=0.0
        L2 penalty on the non-bias weights; 0 gives the pseudo-inverse solution.
    rcond : float, default=1e-12
        Relative eigenvalue cut-off of the normal equations for rank-deficient
        candidates (``pinv`` semantics).

    Returns
    -------
    W : ndarray of shape (P, H + 1, O)
        Weights; row ``H`` is the bias.
    """
    G, AtY = _gram(S, Y)
    K = G.shape[-1]
    if ridge > 0:
        idx = np.arange(K - 1)
        G[:, idx, idx] += ridge
        return np.linalg.solve(G, AtY)
    d = np.sqrt(np.diagonal(G, axis1=1, axis2=2))  # (P, K); d[:, H] = sqrt(N) > 0
    d = np.where(d > 0, d, 1.0)
    Gs = G / (d[:, :, None] * d[:, None, :])
    W = np.empty_like(AtY)
    try:
        L = np.linalg.cholesky(Gs)
        good = np.diagonal(L, axis1=1, axis2=2).min(axis=1) ** 2 > _PIVOT_TOL
    except np.linalg.LinAlgError:  # some candidate is singular: numpy fails the whole batch
        good = np.zeros(G.shape[0], bool)
    if good.any():
        W[good] = np.linalg.solve(Gs[good], AtY[good] / d[good][:, :, None]) / d[good][:, :, None]
    if not good.all():
        bad = ~good
        W[bad] = _pinv_solve(G[bad], AtY[bad], rcond)
    return W


class Linear:
    """Linear readout fitted by (ridge) least squares for a whole population.

    Parameters
    ----------
    ridge : float, default=0.0
        L2 penalty on the output weights (not the bias); ``0`` gives Evolino's
        pseudo-inverse solution.

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
