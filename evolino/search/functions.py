"""Standard test functions for search strategies, batched like the strategies' populations.

Each maps genomes ``X`` of shape ``(P, n)`` to values ``(P,)`` with minimum 0
(pycma keeps the same set in ``cma.ff``).
"""

import numpy as np

__all__ = ["sphere", "ellipsoid", "rosenbrock"]


def sphere(X):
    """``sum x_i^2``; minimum 0 at the origin."""
    return np.sum(X**2, axis=1)


def ellipsoid(X):
    """``sum 1e6^((i)/(n-1)) x_i^2`` (condition number 1e6); minimum 0 at the origin."""
    n = X.shape[1]
    return X**2 @ (1e6 ** (np.arange(n) / (n - 1)))


def rosenbrock(X):
    """``sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``; minimum 0 at ``(1, ..., 1)``."""
    return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1)
