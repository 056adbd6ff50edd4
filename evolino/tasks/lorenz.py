"""Lorenz-63 chaotic system and the valid-prediction-time (VPT) protocol.

``dx/dt = sigma (y - x)``, ``dy/dt = x (rho - z) - y``, ``dz/dt = x y - beta z`` with
``sigma = 10, rho = 28, beta = 8/3`` (Lorenz 1963). Integrated by classical
4th-order Runge-Kutta with a fixed step ``dt = 0.01`` from ``(1, 1, 1)``; the
first 100 time units are discarded as transient, then the state is sampled
every 0.02 time units (every second RK4 step). Sample ``k`` is the state at time
``transient + k * sample_every``; the variables are returned in their natural
units (not standardised).

Protocol of :class:`LorenzTask` (valid prediction time, as in Pathak et al.,
PRL 2018, and Vlachas et al., Neural Networks 2020, with threshold 0.4):

- training series: ``washout + train`` = 100 + 5,000 samples (teacher forcing);
- test: ``n_segments`` = 20 disjoint segments from the continuation of the same
  trajectory, each ``warm`` = 300 teacher-forced samples then ``horizon`` = 1,000
  free-running (closed-loop) samples;
- per free-run step ``t`` the error is
  ``e_t = sqrt(mean_i ((y_hat_ti - y_ti) / s_i)^2)``, the RMS over the 3 variables
  of the error divided by ``s_i``, the standard deviation of variable ``i`` over
  the training series;
- the valid steps ``n`` of a segment are the free-run steps before the first one
  with ``e_t > 0.4`` (a non-finite error counts as exceeding), i.e. the 0-based
  index of the first exceeding step, or ``horizon`` if none does (then the VPT is
  censored at ``horizon * 0.02 * 0.906 = 18.1``);
- ``VPT = n * 0.02 * lambda`` Lyapunov times with the largest Lyapunov exponent
  ``lambda = 0.906``; the score is the **median** VPT over the 20 segments
  (higher is better).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import EvolinoError, check_array, check_number, check_positive_int

LYAPUNOV = 0.906


def lorenz63(
    n_steps: int, *, dt: float = 0.01, sample_every: float = 0.02, transient: float = 100.0,
    x0=(1.0, 1.0, 1.0), sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0,
) -> np.ndarray:
    """A Lorenz-63 trajectory of ``n_steps`` samples, shape ``(n_steps, 3)``.

    Parameters
    ----------
    n_steps : int
        Samples returned.
    dt : float, default=0.01
        Fixed RK4 step.
    sample_every : float, default=0.02
        Time between samples; must be a whole number of steps ``dt``.
    transient : float, default=100.0
        Time integrated and discarded before sample 0 (a whole number of steps).
    x0 : sequence of 3 floats, default=(1, 1, 1)
        Initial state at time 0.
    sigma, rho, beta : float
        Parameters of the system.

    Returns
    -------
    ndarray of shape (n_steps, 3)
        Columns ``x, y, z``; row ``k`` is the state at time ``transient + k * sample_every``.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    dt = check_number(dt, "dt", low=0.0, low_open=True)
    sample_every = check_number(sample_every, "sample_every", low=dt)
    transient = check_number(transient, "transient", low=0.0)
    stride = round(sample_every / dt)
    skip = round(transient / dt)
    # a sampling interval that is not a whole number of steps would silently change the time axis
    if not np.isclose(stride * dt, sample_every, rtol=1e-9, atol=0):
        raise EvolinoError(f"sample_every must be a multiple of dt, got {sample_every} and {dt}")
    if not np.isclose(skip * dt, transient, rtol=1e-9, atol=1e-12):
        raise EvolinoError(f"transient must be a multiple of dt, got {transient} and {dt}")
    x0 = check_array(x0, "x0", ndims=(1,), dtype=np.float64, finite=True)
    if x0.shape != (3,):
        raise EvolinoError(f"x0 must hold 3 values, got shape {x0.shape}")
    s, r, b = (check_number(v, name) for v, name in ((sigma, "sigma"), (rho, "rho"), (beta, "beta")))

    # plain floats: for a 3-D state a Python loop is ~10x faster than numpy per step
    def f(x, y, z):
        return s * (y - x), x * (r - z) - y, x * y - b * z

    x, y, z = (float(v) for v in x0)
    h, h2, h6 = dt, 0.5 * dt, dt / 6.0
    out = np.empty((n_steps, 3))
    total = skip + (n_steps - 1) * stride
    k = 0
    for i in range(total + 1):
        if i >= skip and (i - skip) % stride == 0:
            out[k] = x, y, z
            k += 1
            if k == n_steps:
                break
        a1, b1, c1 = f(x, y, z)
        a2, b2, c2 = f(x + h2 * a1, y + h2 * b1, z + h2 * c1)
        a3, b3, c3 = f(x + h2 * a2, y + h2 * b2, z + h2 * c2)
        a4, b4, c4 = f(x + h * a3, y + h * b3, z + h * c3)
        x += h6 * (a1 + 2 * a2 + 2 * a3 + a4)
        y += h6 * (b1 + 2 * b2 + 2 * b3 + b4)
        z += h6 * (c1 + 2 * c2 + 2 * c3 + c4)
    return out


def normalized_error(y_pred, y_true, scale) -> np.ndarray:
    """Per-step error ``sqrt(mean_i ((y_pred - y_true)_i / scale_i)^2)``.

    Parameters
    ----------
    y_pred, y_true : array of shape (..., H, O)
    scale : array of shape (O,)
        Positive per-variable scales (the training standard deviations).

    Returns
    -------
    ndarray of shape (..., H)
    """
    y_pred = check_array(y_pred, "y_pred", dtype=np.float64)
    y_true = check_array(y_true, "y_true", dtype=np.float64)
    if y_pred.shape != y_true.shape or y_pred.ndim < 2:
        raise EvolinoError(f"y_pred and y_true must have the same shape (..., H, O), got {y_pred.shape} "
                         f"and {y_true.shape}")
    scale = check_array(scale, "scale", ndims=(1,), dtype=np.float64, finite=True)
    if scale.shape != (y_true.shape[-1],) or np.any(scale <= 0):
        raise EvolinoError(f"scale must hold {y_true.shape[-1]} positive values, got {scale}")
    with np.errstate(all="ignore"):  # diverged generations give inf/NaN, which count as exceeding
        return np.sqrt(np.mean(((y_pred - y_true) / scale) ** 2, axis=-1))


def valid_steps(error, threshold: float = 0.4) -> np.ndarray:
    """Steps before the first ``error > threshold`` (or non-finite error) along the last axis.

    Parameters
    ----------
    error : array of shape (..., H)
    threshold : float, default=0.4

    Returns
    -------
    ndarray of int, shape (...)
        The 0-based index of the first exceeding step, ``H`` if none exceeds.
    """
    error = check_array(error, "error", dtype=np.float64)
    if error.ndim < 1 or error.shape[-1] == 0:
        raise EvolinoError(f"error must have at least one step in its last axis, got shape {error.shape}")
    threshold = check_number(threshold, "threshold", low=0.0, low_open=True)
    bad = ~(error <= threshold)  # NaN compares False, so it is bad
    return np.where(bad.any(axis=-1), bad.argmax(axis=-1), error.shape[-1])


def valid_prediction_time(y_pred, y_true, scale, *, threshold: float = 0.4, sample_every: float = 0.02,
                          lyapunov: float = LYAPUNOV) -> np.ndarray:
    """Valid prediction time in Lyapunov times: ``valid_steps * sample_every * lyapunov``.

    Parameters
    ----------
    y_pred, y_true : array of shape (..., H, O)
        Free-running prediction and truth, step 0 = first generated sample.
    scale : array of shape (O,)
        Per-variable normalisation (training standard deviations).
    threshold, sample_every, lyapunov : float
        0.4, 0.02 and 0.906 for :class:`LorenzTask`.

    Returns
    -------
    ndarray of shape (...)
    """
    sample_every = check_number(sample_every, "sample_every", low=0.0, low_open=True)
    lyapunov = check_number(lyapunov, "lyapunov", low=0.0, low_open=True)
    steps = valid_steps(normalized_error(y_pred, y_true, scale), threshold)
    return steps * sample_every * lyapunov


@dataclass
class LorenzTask:
    """Training series and VPT test segments of Lorenz-63 (protocol in the module docstring).

    Attributes
    ----------
    series : ndarray (washout + train + n_segments * (warm + horizon), 3)
    scale : ndarray (3,)
        Standard deviation of each variable over ``train_series`` (VPT normalisation).
    """

    washout: int = 100
    train: int = 5000
    n_segments: int = 20
    warm: int = 300
    horizon: int = 1000
    threshold: float = 0.4
    sample_every: float = 0.02
    lyapunov: float = LYAPUNOV
    series: np.ndarray = field(init=False, repr=False)
    scale: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        check_positive_int(self.washout, "washout", minimum=0)
        for name in ("train", "n_segments", "warm", "horizon"):
            check_positive_int(getattr(self, name), name)
        check_number(self.threshold, "threshold", low=0.0, low_open=True)
        check_number(self.lyapunov, "lyapunov", low=0.0, low_open=True)
        n = self.washout + self.train + self.n_segments * (self.warm + self.horizon)
        self.series = lorenz63(n, sample_every=self.sample_every)
        self.scale = self.train_series.std(axis=0)

    @property
    def train_series(self) -> np.ndarray:
        """``(washout + train, 3)``."""
        return self.series[: self.washout + self.train]

    def segments(self) -> np.ndarray:
        """Test segments, shape ``(n_segments, warm + horizon, 3)``, disjoint from training."""
        n_train = self.washout + self.train
        L = self.warm + self.horizon
        return self.series[n_train : n_train + self.n_segments * L].reshape(self.n_segments, L, 3)

    def vpt(self, generated, truth) -> np.ndarray:
        """VPT in Lyapunov times of free runs ``(..., H, 3)`` against the truth; shape ``(...)``."""
        return valid_prediction_time(generated, truth, self.scale, threshold=self.threshold,
                                     sample_every=self.sample_every, lyapunov=self.lyapunov)

    def score(self, network) -> tuple[float, np.ndarray]:
        """Median VPT of ``network.generate``; returns ``(median VPT, VPT per segment (n_segments,))``."""
        seg = self.segments()
        gen = np.asarray(network.generate(self.horizon, Y_prefix=seg[:, : self.warm]))
        if gen.shape != (self.n_segments, self.horizon, 3):
            raise EvolinoError(f"network.generate returned shape {gen.shape}, expected "
                             f"{(self.n_segments, self.horizon, 3)}")
        v = self.vpt(gen, seg[:, self.warm :])
        return float(np.median(v)), v
