"""Observation normalization: running mean and standard deviation of a policy's inputs.

Raw observations can be far from the unit range the LSTM gates work in (a gymnasium
velocity of 8 saturates a sigmoid gate whatever its weights). During a search the
policies see ``(x - mean) / std`` with statistics gathered so far; the statistics are
frozen into each saved :class:`~evolino.rl.policy.Policy` (the ones its fitness was
measured with) and applied again when it is loaded.

Statistics are merged with Chan, Golub & LeVeque's pairwise update (exact for any batch
split, so the result does not depend on how the observations arrived).
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_positive_int

__all__ = ["RunningMeanStd", "MIN_STD"]

#: Floor of the standard deviation: a constant input (e.g. a masked or unused entry) stays finite.
MIN_STD = 1e-2


class RunningMeanStd:
    """Running mean and variance of vectors of width ``n``.

    Parameters
    ----------
    n : int
        Width of the observations.

    Examples
    --------
    >>> import numpy as np
    >>> rms = RunningMeanStd(2)
    >>> rms.update(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> rms.mean.tolist(), rms.std.tolist()
    ([1.0, 1.0], [1.0, 0.01])
    """

    def __init__(self, n: int):
        self.n = check_positive_int(n, "n")
        self.count = 0
        self._mean = np.zeros(self.n)
        self._m2 = np.zeros(self.n)  # sum of squared deviations from the mean

    def update(self, x) -> None:
        """Add observations ``x`` ``(N, n)`` (non-finite rows are ignored)."""
        x = check_array(x, "x", ndims=(2,), dtype=np.float64)
        if x.shape[1] != self.n:
            raise ValueError(f"x must have {self.n} columns, got shape {x.shape}")
        x = x[np.all(np.isfinite(x), axis=1)]
        if not len(x):
            return
        nb, mb = len(x), x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        na = self.count
        tot = na + nb
        delta = mb - self._mean
        self._mean = self._mean + delta * (nb / tot)
        self._m2 = self._m2 + m2b + delta**2 * (na * nb / tot)
        self.count = tot

    @property
    def mean(self) -> np.ndarray:
        """``(n,)``; zeros before any update."""
        return self._mean.copy()

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation ``(n,)``, at least :data:`MIN_STD`; ones before any update."""
        if self.count == 0:
            return np.ones(self.n)
        return np.maximum(np.sqrt(self._m2 / self.count), MIN_STD)

    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` now, as a policy stores them."""
        return self.mean, self.std

    def state_dict(self) -> dict:
        return {"count": int(self.count), "mean": self._mean.copy(), "m2": self._m2.copy()}

    def load_state_dict(self, d: dict) -> None:
        mean, m2 = np.array(d["mean"], dtype=np.float64), np.array(d["m2"], dtype=np.float64)
        if mean.shape != (self.n,) or m2.shape != (self.n,):
            raise ValueError(f"normalizer state must hold arrays of shape ({self.n},)")
        self.count = int(np.asarray(d["count"]).item())
        self._mean, self._m2 = mean, m2
