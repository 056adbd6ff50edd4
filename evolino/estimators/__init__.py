"""scikit-learn estimators: :class:`EvolinoRegressor` and :class:`EvolinoClassifier`.

Thin adapters over the one training core, :class:`evolino.Evolino`: they map
scikit-learn parameters to the trainer, check data the scikit-learn way, and
read predictions off the trained :class:`~evolino.model.EvolinoNetwork`.

The data are sequences. ``X`` is one sequence ``(T, n_features)`` whose rows are
time steps in order (regressor), a 3-D array ``(n_sequences, T, n_features)``, or
a list of ``(T_i, n_features)`` arrays (lengths may differ, widths may not).
Targets come per step (``y`` ``(T,)`` / ``(T, n_outputs)``, or a list with one such
array per sequence) or per sequence (``y`` ``(n_sequences,)`` / ``(n_sequences,
n_outputs)``: read out at each sequence's last step, e.g. sequence
classification). Every sequence starts from the zero state.

Because a row's prediction depends on the rows before it, the checks of
``sklearn.utils.estimator_checks`` that shuffle or subset rows fail by design:
they are listed with the reason in :data:`EXPECTED_FAILED_CHECKS`.
"""

from ._base import EXPECTED_FAILED_CHECKS
from .classifier import EvolinoClassifier
from .regressor import EvolinoRegressor

__all__ = ["EvolinoRegressor", "EvolinoClassifier", "EXPECTED_FAILED_CHECKS"]
