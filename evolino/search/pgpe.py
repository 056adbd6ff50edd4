"""PGPE: policy gradients with parameter-based exploration (Sehnke, Osendorfer, Rueckstiess,
Graves, Peters & Schmidhuber, Neural Networks 23, 2010), with symmetric sampling.

The search distribution is ``N(mu, diag(sigma^2))``. A generation draws ``popsize / 2``
perturbations ``eps ~ N(0, diag(sigma^2))`` and evaluates the symmetric pairs
``mu + eps`` and ``mu - eps``. With rewards ``r = -fitness`` (PGPE maximizes), ``r+``,
``r-`` of a pair, ``m`` the best reward seen so far and ``b`` a moving-average baseline,
the normalized updates of the paper (Sec. 2.3-2.4, as PyBrain implements them) are::

    mu    += alpha_mu    * mean_pairs( eps * (r+ - r-) / (2 m - r+ - r-) )
    sigma += alpha_sigma * mean_pairs( max(0, (r+ + r-)/2 - b) / (m - b) * (eps^2 - sigma^2) / sigma )
    b      = 0.9 b + 0.1 mean(r)

Dividing by the distance to the best reward makes the step invariant to the reward's
scale (steps balanced, returns of any size). As in PyBrain, ``sigma`` follows only
pairs better than the baseline (``max(0, .)``: a worse-than-average pair says little
about the right width), and the first generation only sets the baseline. The factor
of the ``sigma`` step is at most ``alpha_sigma < 1`` of ``sigma^2 / sigma`` downwards,
so ``sigma`` stays positive.

Defaults: ``alpha_mu = 0.2``, ``alpha_sigma = 0.1`` (PyBrain's ``learningRate`` and
``sigmaLearningRate``); ``popsize``: the even number at or above ``4 + floor(3 ln n)``.
Broken fitness values (NaN, inf) count as the worst finite reward of the generation.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_number, check_positive_int
from .base import SearchStrategy, array, check_mean, check_sigmas, scalar
from .nes import nes_popsize

__all__ = ["PGPE"]


class PGPE(SearchStrategy):
    """Policy gradients with parameter-based exploration, symmetric sampling.

    Parameters
    ----------
    x0 : array of shape (n,)
        Initial mean.
    sigma0 : float or array of shape (n,), default=1.0
        Initial exploration standard deviations.
    popsize : int, optional
        Even; ``popsize / 2`` symmetric pairs per generation. Default: the even number at
        or above ``4 + floor(3 ln n)``.
    alpha_mu : float, default=0.2
    alpha_sigma : float, default=0.1
    tolx : float, default=1e-12
        ``stop()`` reports ``tolx`` once every ``sigma`` is below this.
    seed : None, int or numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> es = PGPE(np.ones(5), 0.5, seed=1)
    >>> for _ in range(500):
    ...     X = es.ask()
    ...     es.tell(np.sum(X**2, axis=1))
    >>> bool(es.best[1] < 1e-6)
    True
    """

    kind = "pgpe"

    def __init__(self, x0, sigma0=1.0, *, popsize=None, alpha_mu=0.2, alpha_sigma=0.1, tolx=1e-12, seed=None):
        x0 = check_mean(x0)
        super().__init__(x0.size, seed)
        if popsize is None:
            popsize = nes_popsize(self.n_params)
            popsize += popsize % 2
        popsize = check_positive_int(popsize, "popsize", minimum=2)
        if popsize % 2:
            raise ValueError(f"popsize must be even for PGPE's symmetric pairs, got {popsize}; "
                             f"try popsize={popsize + 1}")
        self._popsize = popsize
        s = check_sigmas(sigma0, self.n_params)
        self.alpha_mu = check_number(alpha_mu, "alpha_mu", low=0.0, low_open=True)
        self.alpha_sigma = check_number(alpha_sigma, "alpha_sigma", low=0.0, high=1.0, low_open=True)
        self.tolx = check_number(tolx, "tolx", low=0.0)
        self.mu = x0.copy()
        self.sigma = s
        self.baseline = float("nan")  # set by the first generation
        self.best_reward = -float("inf")
        self._eps = None  # (P/2, n) perturbations of the pending pairs

    @property
    def popsize(self) -> int:
        """Candidates per generation."""
        return self._popsize

    def _sample(self):
        self._eps = self.sigma * self.rng.standard_normal((self._popsize // 2, self.n_params))
        # rows 2i and 2i+1 are the pair mu + eps_i, mu - eps_i
        return np.stack([self.mu + self._eps, self.mu - self._eps], axis=1).reshape(self._popsize, self.n_params)

    def _update(self, genomes, f, improved):
        finite = np.isfinite(f)
        worst = f[finite].max() if finite.any() else 0.0
        r = -np.where(finite, f, worst)
        rp, rm = r[0::2], r[1::2]
        self.best_reward = max(self.best_reward, float(r.max()))
        m, eps = self.best_reward, self._eps
        mean_r = float(r.mean())
        if np.isnan(self.baseline):
            self.baseline = mean_r
        else:
            denom = 2 * m - rp - rm
            fakt = np.divide(rp - rm, denom, out=np.zeros_like(rp), where=denom > 0)
            self.mu = self.mu + self.alpha_mu * (fakt @ eps) / len(rp)
            norm = m - self.baseline
            if norm > 0:
                fakt2 = np.maximum(0.0, 0.5 * (rp + rm) - self.baseline) / norm
                grad = fakt2 @ ((eps**2 - self.sigma**2) / self.sigma) / len(rp)
                self.sigma = self.sigma + self.alpha_sigma * grad
            self.baseline = 0.9 * self.baseline + 0.1 * mean_r
        self._eps = None

    def stop(self) -> dict:
        return {"tolx": float(self.sigma.max())} if self.sigma.max() < self.tolx else {}

    def state_dict(self) -> dict:
        """Mean, widths, baseline, best reward and the pending perturbations."""
        d = self._base_state()
        d.update(kind=self.kind, popsize=int(self._popsize), mu=self.mu.copy(), sigma=self.sigma.copy(),
                 baseline=float(self.baseline), best_reward=float(self.best_reward),
                 eps=np.zeros((0, self.n_params)) if self._eps is None else self._eps.copy())
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` output (a strategy with the same length and popsize)."""
        if scalar(d, "kind", str) != self.kind:
            raise ValueError(f"state_dict is for {scalar(d, 'kind', str)!r}, not {self.kind!r}")
        if scalar(d, "popsize", int) != self._popsize:
            raise ValueError(f"state_dict has popsize {scalar(d, 'popsize', int)}, this strategy {self._popsize}")
        mu, sigma = array(d, "mu"), array(d, "sigma")
        if mu.shape != (self.n_params,) or sigma.shape != (self.n_params,):
            raise ValueError("state_dict was saved by a strategy with a different number of parameters")
        self._load_base_state(d)
        self.mu, self.sigma = mu, sigma
        self.baseline = scalar(d, "baseline", float)
        self.best_reward = scalar(d, "best_reward", float)
        eps = array(d, "eps").reshape(-1, self.n_params)
        self._eps = eps if len(eps) else None
