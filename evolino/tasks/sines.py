"""Superimposed sine waves / multiple superimposed oscillators (MSO).

``y(n) = sum_{k < K} sin(a_k n)`` for ``n = 0, 1, ...`` with
``a = 0.2, 0.311, 0.42, 0.51, 0.63, 0.74, 0.85, 0.97`` (first ``K`` terms), the task
on which Evolino (Schmidhuber et al., Neural Computation 2007) learned 2 to 5
superimposed sines.

Protocol of the papers comparing against Evolino (see benchmarks/REFERENCES.md):
700 steps; washout 100 steps, train on steps 101-400 (teacher forcing), then
generate steps 401-700 in closed loop; test NRMSE = RMSE / std of the target over
those 300 generated steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import EvolinoError, check_array, check_positive_int
from .metrics import nrmse

FREQUENCIES = (0.2, 0.311, 0.42, 0.51, 0.63, 0.74, 0.85, 0.97)


def superimposed_sines(n_steps: int, terms: int | None = 2, freqs=None) -> np.ndarray:
    """The series ``y(n) = sum_k sin(a_k n)``, ``n = 0..n_steps-1``, shape ``(n_steps, 1)``.

    Parameters
    ----------
    n_steps : int
    terms : int, default=2
        Use the first ``terms`` frequencies of ``FREQUENCIES`` (1 to 8).
    freqs : sequence of float, optional
        Any frequencies instead (then ``terms`` is ignored).
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    if freqs is None:
        terms = check_positive_int(terms, "terms")
        if terms > len(FREQUENCIES):
            raise EvolinoError(f"terms must be <= {len(FREQUENCIES)}, got {terms}")
        freqs = FREQUENCIES[:terms]
    freqs = check_array(freqs, "freqs", ndims=(1,), dtype=np.float64, finite=True)
    if freqs.size == 0:
        raise EvolinoError("freqs must hold at least one frequency")
    if np.any(freqs <= 0):  # sin(0 t) = 0: a constant series, nothing to learn (and an NRMSE of 0/0)
        raise EvolinoError(f"freqs must be > 0 (radians per step), got {freqs.tolist()}")
    n = np.arange(n_steps, dtype=np.float64)
    return np.sin(np.outer(n, freqs)).sum(axis=1, keepdims=True)


@dataclass
class SinesTask:
    """The MSO protocol: washout, teacher-forced training window, closed-loop test window.

    Attributes
    ----------
    series : ndarray (washout + train + test, 1)
    washout, train, test : int
        100, 300, 300 by default: train on steps 101-400, test on 401-700.
    """

    terms: int | None = 2
    freqs: tuple | None = None
    washout: int = 100
    train: int = 300
    test: int = 300
    series: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        for name in ("washout", "train", "test"):
            check_positive_int(getattr(self, name), name, minimum=0 if name == "washout" else 1)
        n = self.washout + self.train + self.test
        self.series = superimposed_sines(n, self.terms, self.freqs)

    @property
    def train_series(self) -> np.ndarray:
        """Steps the trainer sees (washout + training window), shape ``(washout + train, 1)``."""
        return self.series[: self.washout + self.train]

    @property
    def test_target(self) -> np.ndarray:
        """The closed-loop test window, shape ``(test, 1)``."""
        return self.series[self.washout + self.train :]

    def score(self, network) -> tuple[float, np.ndarray]:
        """Test NRMSE of ``network`` generating the test window after the training steps.

        Returns ``(nrmse, generated (test, 1))``.
        """
        gen = network.generate(self.test, Y_prefix=self.train_series)
        return nrmse(gen, self.test_target), gen
