"""Error measures and fitness losses, each with its definition spelled out.

One home for NRMSE: :func:`nrmse` for arrays a user holds, :func:`regression_loss`
for a population's outputs during evolution (same definition, one value per
candidate), :func:`free_run_loss` for a population's free runs (capped per run),
:func:`free_run_vpt` for how long they stay valid, :func:`classification_loss` for 0/1 targets.
"""

from __future__ import annotations

import numpy as np

from ._validate import EvolinoError

__all__ = ["nrmse", "regression_loss", "free_run_loss", "free_run_vpt", "classification_loss", "BEYOND_CAP"]


def nrmse(y_pred, y_true, axis=None):
    """Normalised root-mean-square error: ``sqrt(mean((y_pred - y_true)^2)) / std(y_true)``.

    The definition of the echo-state-network papers that tabulate Evolino on
    superimposed sines (normalised by the **standard deviation** of the target
    over the evaluated steps; a constant target counts as std 1).

    Parameters
    ----------
    y_pred, y_true : array-like of the same shape
    axis : None, int or tuple of ints
        Axes to reduce (all by default).

    Returns
    -------
    float (``axis=None``) or ndarray of the remaining axes
    """
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_pred.shape != y_true.shape:
        raise EvolinoError(f"y_pred and y_true must have the same shape, got {y_pred.shape} and {y_true.shape}")
    with np.errstate(all="ignore"):
        scale = np.std(y_true, axis=axis)
        scale = np.where(scale > 0, scale, 1.0)
        out = np.sqrt(np.mean((y_pred - y_true) ** 2, axis=axis)) / scale
    return float(out) if np.ndim(out) == 0 else out


def regression_loss(out, Y) -> np.ndarray:
    """NRMSE of each candidate: ``sqrt(mean((out - Y)^2)) / std(Y)`` (std 0 counts as 1).

    ``out`` ``(P, N, O)``, ``Y`` ``(N, O)`` or ``(P, N, O)`` -> ``(P,)``; non-finite -> inf.
    """
    out = np.asarray(out)
    err = (out - Y).reshape(out.shape[0], -1)
    scale = float(np.std(Y)) or 1.0
    with np.errstate(all="ignore"):
        loss = np.sqrt(np.mean(err**2, axis=1)) / scale
    return np.where(np.isfinite(loss), loss, np.inf)


#: Weight of the logarithm of a run's NRMSE beyond the cap (:func:`free_run_loss`): small enough that a
#: diverged run counts about as a run that gave up, large enough to rank candidates whose runs all diverged.
BEYOND_CAP = 0.01


def free_run_loss(out, Y, horizon: int, cap: float = 1.0) -> np.ndarray:
    """Mean over free runs of each run's NRMSE, capped at ``cap``, per candidate.

    A run's NRMSE ``e`` is its RMS error over its ``horizon`` steps and the outputs divided by
    ``std(Y)`` over all runs (std 0 counts as 1); it counts ``min(e, cap)`` plus, beyond the cap,
    :data:`BEYOND_CAP` ``* log(e / cap)``. The cap (1: the error of forecasting the mean) makes a run
    that left the series count about as much as one that gave up, not more: on a chaotic series a
    network whose forecasts are good but diverge from a few starts is then preferred to one whose
    forecasts all decay to the mean, which a pooled NRMSE, dominated by the diverging runs, gets the
    other way round. The logarithmic remainder keeps candidates whose runs all diverge ranked (a
    strategy needs an order to move), e.g. a run 100x off counts 1.05.

    Parameters
    ----------
    out : array of shape (P, R * horizon, O)
        Outputs of ``R`` runs, one after the other.
    Y : array of shape (R * horizon, O)
    horizon : int
    cap : float, default=1.0

    Returns
    -------
    loss : ndarray of shape (P,)
        Equal to the mean per-run NRMSE where no run exceeds ``cap``; inf where a candidate's
        outputs are not finite.
    """
    out = np.asarray(out)
    P = out.shape[0]
    scale = float(np.std(Y)) or 1.0
    with np.errstate(all="ignore"):
        err = np.sqrt(np.mean(((out - Y) ** 2).reshape(P, -1, horizon * out.shape[-1]), axis=-1)) / scale
        loss = (np.minimum(err, cap) + BEYOND_CAP * np.log(np.maximum(err, cap) / cap)).mean(axis=1)
    finite = np.isfinite(err).all(axis=1)
    return np.where(finite, loss, np.inf)


def free_run_vpt(out, Y, horizon: int, scale, threshold: float = 0.4) -> np.ndarray:
    """Minus the mean valid prediction time of free runs, as a fraction of the horizon, per candidate.

    A run's valid time is the number of its steps before the first whose RMS over outputs of
    ``(out - Y) / scale`` exceeds ``threshold`` (``horizon`` if none does).

    Parameters
    ----------
    out : array of shape (P, R * horizon, O)
        Outputs of ``R`` runs, one after the other.
    Y : array of shape (R * horizon, O)
    horizon : int
    scale : array of shape (O,)
        Per-output normalization (e.g. the std of each output over the runs), > 0.
    threshold : float, default=0.4

    Returns
    -------
    loss : ndarray of shape (P,)
        In ``[-1, 0]``: -1 when every run stays valid to its end.
    """
    P = out.shape[0]
    err = ((out - Y) / scale).reshape(P, -1, horizon, out.shape[-1])
    bad = np.sqrt(np.mean(err**2, axis=-1)) > threshold  # (P, R, horizon)
    valid = np.where(bad.any(axis=-1), bad.argmax(axis=-1), horizon)
    return -valid.mean(axis=-1) / horizon


def classification_loss(out, Y, *, multilabel: bool = True) -> np.ndarray:
    """Misclassification rate plus a margin tie-breaker, per candidate.

    Outputs are on the 0/1 target scale: an output column is "on" above 0.5
    (``multilabel`` or one column), else the class is the arg-max column. The
    tie-breaker ``tanh(mean hinge loss) / (n_decisions + 1)``, hinge on the
    margin ``(2 out - 1)(2 Y - 1)``, is smaller than one misclassification, so
    it only orders candidates that make the same number of errors (toward
    larger margins).

    Parameters
    ----------
    out : array of shape (P, N, O)
    Y : array of shape (N, O) or (P, N, O)
        0/1 targets (one-hot rows when not ``multilabel``).
    multilabel : bool, default=True

    Returns
    -------
    ndarray of shape (P,)
    """
    out = np.asarray(out)
    P, O = out.shape[0], out.shape[-1]
    Yb = np.broadcast_to(Y, out.shape)
    if multilabel or O == 1:
        wrong = ((out > 0.5) != (Yb > 0.5)).reshape(P, -1)
    else:
        wrong = (np.argmax(out, axis=-1) != np.argmax(Yb, axis=-1)).reshape(P, -1)
    with np.errstate(all="ignore"):
        margin = (2 * out - 1) * (2 * Yb - 1)
        hinge = np.maximum(0.0, 1.0 - margin).reshape(P, -1).mean(axis=1)
        loss = wrong.mean(axis=1) + np.tanh(hinge) / (wrong.shape[1] + 1)
    return np.where(np.isfinite(loss), loss, np.inf)
