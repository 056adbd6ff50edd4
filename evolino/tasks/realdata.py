"""A real measured series: the Santa Fe laser (data set A of the Santa Fe competition).

Intensity of a far-infrared NH3 laser in a chaotic regime, recorded for the Santa
Fe Time Series Prediction competition (Weigend & Gershenfeld, eds., *Time Series
Prediction: Forecasting the Future and Understanding the Past*, Addison-Wesley
1994, reprinted by Routledge 2018, the reference ReservoirPy gives). The copy used here
is the one ReservoirPy ships inside its wheel
(``reservoirpy/datasets/santafe_laser.npy``, loaded offline by
``reservoirpy.datasets.santafe_laser()``): 10,093 integer samples in 0..255 (the
1,000-point competition training set followed by its continuation, from James
McNames' data-set page). Needs ``pip install reservoirpy`` (``evolino[bench]``).

Protocol of :class:`LaserTask` (values in the original units):

- training series: the first ``washout + train`` = 100 + 5,000 samples;
- held-out tail: the remaining 4,993 samples (steps 5,100..10,092), never used
  for fitting or model selection;
- ``score`` (one-step-ahead): the network is teacher-forced over the whole series
  (its prediction at ``t`` sees the true samples before ``t`` only) and the score
  is the NRMSE ``sqrt(mean((y_hat - y)^2)) / std(y)`` over the tail;
- ``score_closed_loop`` (horizon): ``n_segments`` = 20 consecutive disjoint
  segments at the start of the tail, each ``warm`` = 100 teacher-forced samples
  then ``horizon`` = 50 free-running samples; per segment the RMSE of the 50
  generated samples divided by the standard deviation of the training series;
  the score is the **median** over the segments. The median (as for the Lorenz
  VPT) because a few free runs that leave the data's range (the laser's
  intensity collapses are not predictable from the past) would otherwise decide
  a pooled mean: measured with a 500-unit ESN, 4 of 20 free runs erred by more
  than 255 (the data's whole range) while 12 stayed within 25 units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import EvolinoError, check_positive_int
from .metrics import nrmse


def santafe_laser() -> np.ndarray:
    """The Santa Fe laser series as floats, shape ``(10093, 1)`` (ReservoirPy's packaged copy)."""
    try:
        from reservoirpy.datasets import santafe_laser as _load
    except ImportError as exc:  # the data lives in ReservoirPy's wheel; nothing is downloaded
        raise ImportError("santafe_laser needs ReservoirPy, which ships the data: pip install reservoirpy "
                          "(or pip install 'evolino[bench]')") from exc
    return np.asarray(_load(), dtype=np.float64).reshape(-1, 1)


@dataclass
class LaserTask:
    """Santa Fe laser: training part, held-out tail, one-step and closed-loop scores.

    Attributes
    ----------
    series : ndarray (10093, 1)
    """

    washout: int = 100
    train: int = 5000
    n_segments: int = 20
    warm: int = 100
    horizon: int = 50
    series: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        check_positive_int(self.washout, "washout", minimum=0)
        for name in ("train", "n_segments", "warm", "horizon"):
            check_positive_int(getattr(self, name), name)
        self.series = santafe_laser()
        tail = len(self.series) - self.n_train
        if tail < self.n_segments * (self.warm + self.horizon):
            raise EvolinoError(f"washout + train = {self.n_train} leaves {tail} test samples, fewer than "
                             f"n_segments * (warm + horizon) = {self.n_segments * (self.warm + self.horizon)}")

    @property
    def n_train(self) -> int:
        return self.washout + self.train

    @property
    def train_series(self) -> np.ndarray:
        """``(washout + train, 1)``."""
        return self.series[: self.n_train]

    @property
    def test_series(self) -> np.ndarray:
        """The held-out tail, ``(10093 - washout - train, 1)``."""
        return self.series[self.n_train :]

    def segments(self) -> np.ndarray:
        """Closed-loop test segments, ``(n_segments, warm + horizon, 1)``, from the start of the tail."""
        L = self.warm + self.horizon
        return self.test_series[: self.n_segments * L].reshape(self.n_segments, L, 1)

    def score(self, network) -> tuple[float, np.ndarray]:
        """One-step-ahead NRMSE over the tail; returns ``(nrmse, predictions (tail, 1))``."""
        pred = np.asarray(network.predict(Y=self.series))
        if pred.shape != self.series.shape:
            raise EvolinoError(f"network.predict returned shape {pred.shape}, expected {self.series.shape}")
        pred = pred[self.n_train :]
        return nrmse(pred, self.test_series), pred

    def score_closed_loop(self, network) -> tuple[float, np.ndarray]:
        """Median over segments of the free runs' RMSE / std(train_series).

        Returns ``(median, per-segment values (n_segments,))``; a non-finite free run counts as inf.
        """
        seg = self.segments()
        gen = np.asarray(network.generate(self.horizon, Y_prefix=seg[:, : self.warm]))
        if gen.shape != (self.n_segments, self.horizon, 1):
            raise EvolinoError(f"network.generate returned shape {gen.shape}, expected "
                             f"{(self.n_segments, self.horizon, 1)}")
        with np.errstate(all="ignore"):
            per = np.sqrt(np.mean((gen - seg[:, self.warm :]) ** 2, axis=(1, 2))) / np.std(self.train_series)
        per = np.where(np.isfinite(per), per, np.inf)
        return float(np.median(per)), per
