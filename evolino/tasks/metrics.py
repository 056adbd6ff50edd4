"""Error measures, each with its definition spelled out."""

import numpy as np


def nrmse(y_pred, y_true, axis=None) -> float:
    """Normalised root-mean-square error: ``sqrt(mean((y_pred - y_true)^2)) / std(y_true)``.

    This is the definition of the echo-state-network papers that tabulate
    Evolino on superimposed sines (normalised by the **standard deviation** of
    the target over the evaluated steps). ``y_pred`` and ``y_true`` have the same shape.
    """
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_pred.shape != y_true.shape:
        raise ValueError(f"y_pred and y_true must have the same shape, got {y_pred.shape} and {y_true.shape}")
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2, axis=axis)) / np.std(y_true, axis=axis))
