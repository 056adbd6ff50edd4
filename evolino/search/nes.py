"""Natural evolution strategies: SNES and xNES (Wierstra, Schaul, Glasmachers, Sun, Peters &
Schmidhuber, "Natural Evolution Strategies", JMLR 15, 2014), as in PyBrain.

Both keep a Gaussian search distribution and follow its natural gradient, estimated from
``lambda = 4 + floor(3 ln d)`` samples ranked by fitness with the utilities

    u_k = max(0, ln(lambda/2 + 1) - ln k) / sum_j max(0, ln(lambda/2 + 1) - ln j) - 1/lambda

(``k = 1`` the best; :func:`utilities`). With standard normal samples ``s_k`` (rank order):

- **SNES** (separable): ``z = mu + sigma * s``;
  ``mu += eta_mu * sigma * sum_k u_k s_k``,
  ``sigma *= exp(eta_sigma / 2 * sum_k u_k (s_k^2 - 1))``;
  ``eta_mu = 1``, ``eta_sigma = (3 + ln d) / (5 sqrt d)``.
- **xNES** (full covariance ``A A^T``, ``A = sigma B``, ``det B = 1``): ``z = mu + sigma B s``;
  ``G_M = sum_k u_k (s_k s_k^T - I)``, ``G_sigma = tr(G_M) / d``, ``G_B = G_M - G_sigma I``;
  ``mu += eta_mu sigma B sum_k u_k s_k``, ``sigma *= exp(eta_sigma / 2 G_sigma)``,
  ``B = B expm(eta_B / 2 G_B)``; ``eta_mu = 1``, ``eta_sigma = eta_B = (9 + 3 ln d) / (5 d sqrt d)``.
  The matrix exponential of the symmetric ``G_B`` is computed exactly from its
  eigendecomposition (:func:`expm_sym`), so ``B`` stays of determinant one.

``mirrored=True`` draws half the population's samples and uses each with both signs, ``s`` and
``-s`` (mirrored sampling; Brockhoff, Auger, Hansen, Arnold & Hohm, PPSN 2010): a pair whose two
samples rank alike cancels in the mean's step instead of moving it at random.

Ties in fitness are ranked in sample order (stable sort), so a run is deterministic.
Broken values (NaN, inf) rank last.
"""

from __future__ import annotations

import numpy as np

from .._validate import EvolinoError, check_number, check_positive_int
from .base import SearchStrategy, array, check_mean, check_sigmas, scalar

__all__ = ["SNES", "XNES", "utilities", "expm_sym", "nes_popsize"]


def nes_popsize(n: int) -> int:
    """The NES (and CMA-ES) default population ``4 + floor(3 ln n)``."""
    return 4 + int(np.floor(3 * np.log(n)))


def utilities(popsize: int) -> np.ndarray:
    """Fitness-shaping utilities ``(popsize,)`` of ranks 1..popsize (best first); they sum to 0."""
    lam = check_positive_int(popsize, "popsize")
    raw = np.maximum(0.0, np.log(lam / 2 + 1) - np.log(np.arange(1, lam + 1)))
    return raw / raw.sum() - 1.0 / lam


def expm_sym(M) -> np.ndarray:
    """Matrix exponential of a symmetric matrix ``(d, d)``: ``V diag(exp(w)) V^T`` from ``eigh``."""
    M = np.asarray(M, dtype=np.float64)
    w, V = np.linalg.eigh(0.5 * (M + M.T))  # symmetrize against rounding
    return (V * np.exp(w)) @ V.T


class _NES(SearchStrategy):
    kind = ""

    def __init__(self, x0, sigma0=1.0, *, popsize=None, eta_mu=1.0, eta_sigma=None, tolx=1e-12, patience=None,
                 mirrored=False, seed=None):
        x0 = check_mean(x0)
        super().__init__(x0.size, seed)
        d = self.n_params
        self._popsize = nes_popsize(d) if popsize is None else check_positive_int(popsize, "popsize", minimum=2)
        self.eta_mu = check_number(eta_mu, "eta_mu", low=0.0, low_open=True)
        self.eta_sigma = (self._default_eta_sigma(d) if eta_sigma is None
                          else check_number(eta_sigma, "eta_sigma", low=0.0, low_open=True))
        self.tolx = check_number(tolx, "tolx", low=0.0)
        self.sigma0 = check_number(sigma0, "sigma0", low=0.0, low_open=True)
        self.mu, self.x0 = x0.copy(), x0.copy()
        self.patience = None if patience is None else check_positive_int(patience, "patience")
        if not isinstance(mirrored, (bool, np.bool_)):
            raise EvolinoError(f"mirrored must be True or False, got {mirrored!r}")
        self.mirrored = bool(mirrored)
        self.restarts, self._run_best, self._stale = 0, float("inf"), 0
        self.utilities = utilities(self._popsize)
        self._noise = None  # (P, n) standard normal samples of the pending population

    def _update(self, genomes, f, improved):
        self._learn(f)
        self._noise = None
        if self.patience is None:
            return
        if f.min() < self._run_best:
            self._run_best, self._stale = float(f.min()), 0
        else:
            self._stale += 1
        if self._stale >= self.patience:  # stalled: start again from x0 with fresh samples (the rng goes on)
            self.mu = self.x0.copy()
            self._reset_shape()
            self.restarts, self._run_best, self._stale = self.restarts + 1, float("inf"), 0

    @property
    def popsize(self) -> int:
        """Candidates per generation (``4 + floor(3 ln d)`` by default)."""
        return self._popsize

    def _sample(self):
        if self.mirrored:  # s_1..s_m, then -s_1..-s_m (an odd population drops the last mirror)
            half = self.rng.standard_normal(((self._popsize + 1) // 2, self.n_params))
            self._noise = np.concatenate([half, -half])[: self._popsize]
        else:
            self._noise = self.rng.standard_normal((self._popsize, self.n_params))
        return self.mu + self._transform(self._noise)

    def _ranked_noise(self, f):
        order = np.argsort(f, kind="stable")  # best (lowest) first; inf last
        return self._noise[order]

    def stop(self) -> dict:
        step = self.step_size
        return {"tolx": step} if step < self.tolx else {}

    def state_dict(self) -> dict:
        """Mean, step sizes (and shape matrix), the pending samples' noise: plain arrays and scalars."""
        d = self._base_state()
        d.update(kind=self.kind, mu=self.mu.copy(), popsize=int(self._popsize), restarts=int(self.restarts),
                 run_best=float(self._run_best), stale=int(self._stale),
                 noise=np.zeros((0, self.n_params)) if self._noise is None else self._noise.copy(),
                 **self._own_state())
        return d

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` output (a strategy with the same length and popsize)."""
        if scalar(d, "kind", str) != self.kind:
            raise ValueError(f"state_dict is for {scalar(d, 'kind', str)!r}, not {self.kind!r}")
        if scalar(d, "popsize", int) != self._popsize:
            raise ValueError(f"state_dict has popsize {scalar(d, 'popsize', int)}, this strategy {self._popsize}")
        mu = array(d, "mu")
        if mu.shape != (self.n_params,):
            raise ValueError("state_dict was saved by a strategy with a different number of parameters")
        self._load_base_state(d)
        self.mu = mu
        if "restarts" in d:  # saved before restarts existed: none
            self.restarts, self._stale = scalar(d, "restarts", int), scalar(d, "stale", int)
            self._run_best = scalar(d, "run_best", float)
        noise = array(d, "noise").reshape(-1, self.n_params)
        self._noise = noise if len(noise) else None
        self._load_own_state(d)


class SNES(_NES):
    """Separable natural evolution strategy: a diagonal Gaussian ``N(mu, diag(sigma^2))``.

    Parameters
    ----------
    x0 : array of shape (n,)
        Initial mean.
    sigma0 : float or array of shape (n,), default=1.0
        Initial standard deviations.
    popsize : int, optional
        Default ``4 + floor(3 ln n)``.
    eta_mu : float, default=1.0
    eta_sigma : float, optional
        Default ``(3 + ln n) / (5 sqrt n)`` (the paper's and PyBrain's).
    tolx : float, default=1e-12
        ``stop()`` reports ``tolx`` once every ``sigma`` is below this.
    patience : int, optional
        Restart (mean ``x0``, step sizes ``sigma0``; the random stream goes on) after this many
        generations without a better sample than the current run's best (``restarts`` counts them).
    mirrored : bool, default=False
        Mirrored sampling: each sample also with the opposite sign.
    seed : None, int or numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> es = SNES(np.ones(5), 0.5, seed=1)
    >>> for _ in range(300):
    ...     X = es.ask()
    ...     es.tell(np.sum(X**2, axis=1))
    >>> bool(es.best[1] < 1e-10)
    True
    """

    kind = "snes"

    def __init__(self, x0, sigma0=1.0, **kwargs):
        super().__init__(x0, float(np.max(sigma0)) if np.ndim(sigma0) else sigma0, **kwargs)
        self._sigma_init = sigma0
        self.sigma = check_sigmas(sigma0, self.n_params)

    @staticmethod
    def _default_eta_sigma(d):
        return (3 + np.log(d)) / (5 * np.sqrt(d))

    @property
    def step_size(self) -> float:
        """The largest per-coordinate standard deviation of the search distribution."""
        return float(self.sigma.max())

    def _transform(self, s):
        return self.sigma * s

    def _reset_shape(self):
        self.sigma = check_sigmas(self._sigma_init, self.n_params)

    def _learn(self, f):
        s = self._ranked_noise(f)
        u = self.utilities
        self.mu = self.mu + self.eta_mu * self.sigma * (u @ s)
        self.sigma = self.sigma * np.exp(0.5 * self.eta_sigma * (u @ (s**2 - 1.0)))

    def _own_state(self):
        return {"sigma": self.sigma.copy()}

    def _load_own_state(self, d):
        sigma = array(d, "sigma")
        if sigma.shape != (self.n_params,):
            raise ValueError(f"state_dict['sigma'] must have shape ({self.n_params},), got {sigma.shape}")
        self.sigma = sigma


class XNES(_NES):
    """Exponential natural evolution strategy: a full Gaussian ``N(mu, sigma^2 B B^T)``, ``det B = 1``.

    Parameters
    ----------
    x0 : array of shape (n,)
        Initial mean.
    sigma0 : float, default=1.0
        Initial step size (``B = I``).
    popsize : int, optional
        Default ``4 + floor(3 ln n)``.
    eta_mu : float, default=1.0
    eta_sigma, eta_B : float, optional
        Default ``(9 + 3 ln n) / (5 n sqrt n)`` each (the paper's and PyBrain's).
    tolx : float, default=1e-12
        ``stop()`` reports ``tolx`` once ``sigma * max |B|`` is below this.
    patience : int, optional
        Restart (mean ``x0``, ``sigma0``, ``B = I``; the random stream goes on) after this many
        generations without a better sample than the current run's best.
    mirrored : bool, default=False
        Mirrored sampling: each sample also with the opposite sign.
    seed : None, int or numpy.random.Generator

    Notes
    -----
    O(n^2) memory and O(n^3) time per generation (one eigendecomposition): meant for
    genomes up to a few hundred weights.

    Examples
    --------
    >>> import numpy as np
    >>> es = XNES(np.ones(5), 0.5, seed=1)
    >>> for _ in range(300):
    ...     X = es.ask()
    ...     es.tell(np.sum(X**2, axis=1))
    >>> bool(es.best[1] < 1e-10)
    True
    """

    kind = "xnes"

    def __init__(self, x0, sigma0=1.0, *, eta_B=None, **kwargs):
        super().__init__(x0, sigma0, **kwargs)
        d = self.n_params
        self.eta_B = (self._default_eta_sigma(d) if eta_B is None
                      else check_number(eta_B, "eta_B", low=0.0, low_open=True))
        self.sigma = float(self.sigma0)
        self.B = np.eye(d)

    @staticmethod
    def _default_eta_sigma(d):
        return (9 + 3 * np.log(d)) / (5 * d * np.sqrt(d))

    @property
    def step_size(self) -> float:
        """An upper bound of the search distribution's per-coordinate spread: ``sigma * max |B|``."""
        return float(self.sigma * np.abs(self.B).max())

    @property
    def A(self) -> np.ndarray:
        """The sampling matrix ``sigma B`` ``(n, n)`` (covariance ``A A^T``)."""
        return self.sigma * self.B

    def _transform(self, s):
        return self.sigma * (s @ self.B.T)

    def _reset_shape(self):
        self.sigma, self.B = float(self.sigma0), np.eye(self.n_params)

    def _learn(self, f):
        s = self._ranked_noise(f)
        u = self.utilities
        d = self.n_params
        g_delta = u @ s
        g_M = (s.T * u) @ s - u.sum() * np.eye(d)  # sum_k u_k (s_k s_k^T - I)
        g_sigma = np.trace(g_M) / d
        g_B = g_M - g_sigma * np.eye(d)
        self.mu = self.mu + self.eta_mu * self.sigma * (self.B @ g_delta)
        self.sigma = self.sigma * float(np.exp(0.5 * self.eta_sigma * g_sigma))
        self.B = self.B @ expm_sym(0.5 * self.eta_B * g_B)

    def _own_state(self):
        return {"sigma": float(self.sigma), "B": self.B.copy()}

    def _load_own_state(self, d):
        B = array(d, "B")
        if B.shape != (self.n_params, self.n_params):
            raise ValueError(f"state_dict['B'] must have shape ({self.n_params}, {self.n_params}), got {B.shape}")
        self.B = B
        self.sigma = scalar(d, "sigma", float)
