"""NARMA-10: the 10th-order nonlinear autoregressive moving-average system (input-driven).

The standard definition (Atiya & Parlos, IEEE TNN 2000; Jaeger, NIPS 2003)::

    y(t+1) = 0.3 y(t) + 0.05 y(t) sum_{i=0}^{9} y(t-i) + 1.5 u(t-9) u(t) + 0.1

with i.i.d. inputs ``u(t) ~ U[0, 0.5]`` and zero history (``y(t) = u(t) = 0`` for
``t < 0``, ``y(0) = 0``). Arrays are aligned the way evolino's input-driven
networks read them: ``X[t] = u(t)`` and the target ``Y[t] = y(t+1)``, which
depends on the inputs ``X[0..t]`` only. The first ``transient`` = 200 steps (the
start-up from zero history) are discarded.

Divergence guard: with ``u ~ U[0, 0.5]`` the recursion occasionally blows up
(the ``y(t) sum y`` term; measured here: 8 of 300 input draws of 4,400 steps
reached 1e158 or more, while non-divergent runs stay below about 1.3). Some
papers squash the right-hand side with ``tanh`` (done for higher orders), others
discard the draw; :func:`narma10` discards it: whenever ``|y|`` exceeds ``bound``
(10) or is not finite, it draws a fresh input sequence from the same Generator
and counts the redraw, so the result stays a deterministic function of ``seed``
and the system is exactly the standard one.

Protocol of :class:`Narma10Task`: after the discarded transient, ``washout`` = 200
steps that the model runs through but does not fit on, ``train`` = 2,000
training steps, then ``test`` = 2,000 test steps; the network runs over the whole
input sequence (its state carried from training into test, as in a single
continuous run) and the score is the test NRMSE
``sqrt(mean((y_hat - y)^2)) / std(y)`` over the test steps (:func:`~evolino.tasks.metrics.nrmse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import EvolinoError, as_rng, check_array, check_number, check_positive_int
from .metrics import nrmse

ORDER = 10


def narma10_response(u) -> np.ndarray:
    """NARMA-10 targets of given inputs: ``Y[t] = y(t+1)`` from ``u(0..t)``, zero history.

    Parameters
    ----------
    u : array of shape (T,) or (T, 1)

    Returns
    -------
    ndarray of shape (T, 1)
        May contain inf/NaN when the recursion diverges (see the module docstring).
    """
    u = check_array(u, "u", ndims=(1, 2), dtype=np.float64, finite=True)
    if u.ndim == 2:
        if u.shape[1] != 1:
            raise EvolinoError(f"u must have shape (T,) or (T, 1), got {u.shape}")
        u = u[:, 0]
    T = len(u)
    uu = u.tolist()  # plain floats: the recursion is scalar and sequential
    yy = [0.0] * (T + 1)  # yy[k] = y(k); y(0) = 0
    window = 0.0  # running sum of y(t-9..t)
    for t in range(T):
        yt = yy[t]
        window += yt - (yy[t - ORDER] if t >= ORDER else 0.0)
        ud = uu[t - ORDER + 1] if t >= ORDER - 1 else 0.0
        yy[t + 1] = 0.3 * yt + 0.05 * yt * window + 1.5 * ud * uu[t] + 0.1
    return np.array(yy[1:])[:, None]


def narma10(n_steps: int, *, seed=None, transient: int = 200, low: float = 0.0, high: float = 0.5,
            bound: float = 10.0, max_tries: int = 100):
    """A NARMA-10 input/target pair (definition and divergence guard in the module docstring).

    Parameters
    ----------
    n_steps : int
        Steps returned (after the discarded ``transient``).
    seed : int, Generator or None
        Source of the inputs (and of redraws).
    transient : int, default=200
        Initial steps discarded (start-up from zero history).
    low, high : float, default=0, 0.5
        Range of the uniform inputs.
    bound : float, default=10.0
        A draw with ``|y| > bound`` (or non-finite) anywhere is redrawn.
    max_tries : int, default=100

    Returns
    -------
    X : ndarray of shape (n_steps, 1)
        Inputs ``u(t)``.
    Y : ndarray of shape (n_steps, 1)
        Targets ``y(t+1)``.
    redraws : int
        Input draws discarded because they diverged.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    transient = check_positive_int(transient, "transient", minimum=0)
    low = check_number(low, "low")
    high = check_number(high, "high")
    if not high > low:
        raise EvolinoError(f"high must be > low, got low={low}, high={high}")
    bound = check_number(bound, "bound", low=0.0, low_open=True)
    max_tries = check_positive_int(max_tries, "max_tries")
    rng = as_rng(seed)
    for tries in range(max_tries):
        u = rng.uniform(low, high, size=n_steps + transient)
        y = narma10_response(u)
        if np.all(np.abs(y) <= bound):  # also False for NaN
            return u[transient:, None], y[transient:], tries
    raise RuntimeError(f"NARMA-10 diverged in all {max_tries} input draws (bound={bound}); "
                       f"lower high (got {high}) or raise max_tries")


@dataclass
class Narma10Task:
    """NARMA-10 inputs and targets split into washout, training and test parts.

    Attributes
    ----------
    inputs, targets : ndarray (washout + train + test, 1)
    redraws : int
        Diverged input draws that were discarded (see :func:`narma10`).
    """

    washout: int = 200
    train: int = 2000
    test: int = 2000
    seed: int = 0
    transient: int = 200
    inputs: np.ndarray = field(init=False, repr=False)
    targets: np.ndarray = field(init=False, repr=False)
    redraws: int = field(init=False)

    def __post_init__(self):
        check_positive_int(self.washout, "washout", minimum=0)
        check_positive_int(self.train, "train")
        check_positive_int(self.test, "test")
        n = self.washout + self.train + self.test
        self.inputs, self.targets, self.redraws = narma10(n, seed=self.seed, transient=self.transient)

    @property
    def n_train(self) -> int:
        return self.washout + self.train

    @property
    def train_inputs(self) -> np.ndarray:
        """``(washout + train, 1)``."""
        return self.inputs[: self.n_train]

    @property
    def train_targets(self) -> np.ndarray:
        """``(washout + train, 1)``."""
        return self.targets[: self.n_train]

    @property
    def test_targets(self) -> np.ndarray:
        """``(test, 1)``."""
        return self.targets[self.n_train :]

    def score(self, network) -> tuple[float, np.ndarray]:
        """Test NRMSE of ``network.predict`` run over all inputs; returns ``(nrmse, predictions (test, 1))``."""
        pred = np.asarray(network.predict(self.inputs))
        if pred.shape != self.targets.shape:
            raise EvolinoError(f"network.predict returned shape {pred.shape}, expected {self.targets.shape}")
        pred = pred[self.n_train :]
        return nrmse(pred, self.test_targets), pred
