"""Mackey-Glass chaotic time series and Jaeger's NRMSE84 protocol.

``dx/dt = a x(t - tau) / (1 + x(t - tau)^n) - b x(t)``, ``a = 0.2, b = 0.1,
n = 10, tau = 17`` (Mackey & Glass 1977). Integrated by classical 4th-order
Runge-Kutta with a fixed step ``dt = 0.1`` (so the delay is exactly 170 steps;
the delayed value at half steps is the mean of its two neighbours), starting from
the constant history ``x = 1.2``, with the first 1,000 time units discarded as
transient, and sampled every 1 time unit. The series is squashed by
``tanh(x - 1)`` as in Jaeger & Haas (Science 2004, supplementary material).

NRMSE84 (Jaeger 2001, GMD Report 148; Jaeger & Haas 2004): for each of ``n_runs``
independent test segments, the trained network is teacher-forced for ``warm``
steps, then runs freely for 84 steps; with ``e_j`` the error at free-run step
84 of run ``j``, ``NRMSE84 = sqrt(mean_j e_j^2 / var(signal))`` (normalised by the
**variance** of the signal inside the root, as Jaeger defines it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import check_number, check_positive_int


def mackey_glass(
    n_steps: int, *, tau: float = 17.0, a: float = 0.2, b: float = 0.1, n: float = 10.0,
    dt: float = 0.1, sample_every: float = 1.0, transient: float = 1000.0, x0: float = 1.2,
    squash: bool = True,
) -> np.ndarray:
    """A Mackey-Glass series of ``n_steps`` samples, shape ``(n_steps, 1)``.

    ``squash=True`` returns ``tanh(x - 1)`` (Jaeger & Haas 2004), else ``x``.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    dt = check_number(dt, "dt", low=0.0, low_open=True)
    delay = int(round(check_number(tau, "tau", low=0.0, low_open=True) / dt))
    stride = int(round(check_number(sample_every, "sample_every", low=dt) / dt))
    skip = int(round(check_number(transient, "transient", low=0.0) / dt))
    total = skip + n_steps * stride
    x = np.empty(delay + total + 1)
    x[: delay + 1] = x0

    def f(xt, xd):
        return a * xd / (1.0 + xd**n) - b * xt

    for i in range(delay, delay + total):
        xd0, xd1 = x[i - delay], x[i - delay + 1]
        xdh = 0.5 * (xd0 + xd1)
        xi = x[i]
        k1 = f(xi, xd0)
        k2 = f(xi + 0.5 * dt * k1, xdh)
        k3 = f(xi + 0.5 * dt * k2, xdh)
        k4 = f(xi + dt * k3, xd1)
        x[i + 1] = xi + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    series = x[delay + skip + stride :: stride][:n_steps]
    if squash:
        series = np.tanh(series - 1.0)
    return series[:, None]


@dataclass
class MackeyGlassTask:
    """Training series and NRMSE84 test segments (Jaeger's protocol, see module docstring).

    The series is ``washout + train`` training steps followed by ``n_runs`` test
    segments of ``warm + horizon`` steps each, taken from the continuation of the
    same trajectory (so they are disjoint from the training data).
    """

    washout: int = 100
    train: int = 2000
    n_runs: int = 50
    warm: int = 1000
    horizon: int = 84
    series: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        check_positive_int(self.washout, "washout", minimum=0)
        for name in ("train", "n_runs", "warm", "horizon"):
            check_positive_int(getattr(self, name), name)
        n_train = self.washout + self.train
        self.series = mackey_glass(n_train + self.n_runs * (self.warm + self.horizon))

    @property
    def train_series(self) -> np.ndarray:
        """``(washout + train, 1)``."""
        return self.series[: self.washout + self.train]

    def segments(self):
        """Test segments, shape ``(n_runs, warm + horizon, 1)``."""
        n_train = self.washout + self.train
        L = self.warm + self.horizon
        return self.series[n_train : n_train + self.n_runs * L].reshape(self.n_runs, L, 1)

    def score(self, network) -> tuple[float, np.ndarray]:
        """NRMSE84 of ``network``; returns ``(nrmse84, errors at step 84 (n_runs,))``."""
        seg = self.segments()
        gen = network.generate(self.horizon, Y_prefix=seg[:, : self.warm])  # (n_runs, horizon, 1)
        unsquash = lambda y: np.arctanh(np.clip(y, -1 + 1e-12, 1 - 1e-12)) + 1.0  # noqa: E731
        err = unsquash(gen[:, -1, 0]) - unsquash(seg[:, -1, 0])
        return float(np.sqrt(np.mean(err**2) / np.var(unsquash(self.series)))), err
