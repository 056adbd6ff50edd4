"""EvolinoClassifier: sequence classification (Evolino / Evoke) with calibrated probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .._validate import EvolinoError
from ..presets import SUPERVISED
from ._base import _ATTRS_DOC, _PARAMS_DOC, _EvolinoBase

__all__ = ["EvolinoClassifier"]


class EvolinoClassifier(ClassifierMixin, _EvolinoBase):
    __doc__ = f"""LSTM sequence classifier trained by Evolino / Evoke.

    ``X`` is a 3-D array ``(n_sequences, T, n_features)`` or a list of ``(T_i, n_features)``
    arrays; a 2-D array is refused, because it could be one sequence (rows = steps) or
    many univariate series (rows = series). Labels come per sequence (``y``
    ``(n_sequences,)``: each sequence is classified at its last step) or per step (``y`` a
    list of ``(T_i,)`` arrays: every step is classified from the steps up to it). The
    readout fits 0/1 targets (one column for two classes, one-hot for more) by least
    squares (``"linear"``) or by maximum-margin SVMs, one per class (``"svc"``, Evoke).
    The fitness is the validation misclassification rate plus a margin term that only
    breaks ties (:func:`evolino.metrics.classification_loss`).

    ``predict_proba`` maps the readout's outputs to probabilities by a multinomial
    logistic regression fitted on the readout outputs of the training data (Platt
    scaling); ``predict`` uses the readout's outputs directly, so the two agree on
    all but borderline cases.

    Parameters
    ----------{_PARAMS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,){_ATTRS_DOC}    calibrator_ : sklearn.linear_model.LogisticRegression
        The map of readout outputs to class probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 20, 1)) + rng.choice([-1.0, 1.0], size=(40, 1, 1))
    >>> y = np.where(X.mean(axis=(1, 2)) > 0, "up", "down")
    >>> clf = EvolinoClassifier(random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _readouts = ("linear", "svc")
    _multi_output = False

    def __init__(self, n_cells=SUPERVISED.n_cells, *, readout="linear", ridge="auto", C=1.0, kernel="linear",
                 max_samples=None, search=SUPERVISED.search, popsize=SUPERVISED.popsize, max_generations=SUPERVISED.max_generations,
                 search_options=None, washout=0, validation=0.25, input_scale=SUPERVISED.input_scale,
                 init_scale=SUPERVISED.init_scale, gates=SUPERVISED.gates, lags=SUPERVISED.lags, peepholes=True,
                 forget_gate=True,
                 n_jobs=None, callbacks=None, verbose=0, standardize=True, random_state=None):
        self._store_params(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # refused as ambiguous (see the class docstring)
        tags.input_tags.three_d_array = True
        return tags

    def _refuse_two_d(self, X):
        raise EvolinoError(f"X has shape {np.shape(X)}: EvolinoClassifier needs sequences, a 3-D array "
                         "(n_sequences, n_steps, n_features) or a list of (n_steps, n_features) arrays; "
                         "for univariate series of shape (n_series, n_steps) pass X[:, :, None]")

    def _check_y(self, y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise EvolinoError(f"y must hold one label per step or per sequence (1-D), got shape {y.shape}")
        check_classification_targets(y)
        return y

    def _encode(self, y):
        classes = np.unique(y)
        if len(classes) < 2:
            raise EvolinoError(f"y must contain at least 2 classes to train a classifier, got 1 class: {classes[0]!r}")
        self.classes_ = classes
        codes = np.searchsorted(classes, y)
        if len(classes) == 2:
            return codes[:, None].astype(np.float64)
        return np.eye(len(classes))[codes]

    def _loss_kind(self):
        return "multilabel" if len(self.classes_) == 2 else "multiclass"

    def fit(self, X, y):
        """Evolve the network.

        Parameters
        ----------
        X : array of shape (n_sequences, T, n_features) or list of arrays (T_i, n_features)
        y : labels, array of shape (n_sequences,) (one label per sequence), or a list of
            (T_i,) arrays (one label per step)

        Returns
        -------
        self
        """
        from sklearn.linear_model import LogisticRegression

        self._fit(X, y)
        out = self._outputs(X)
        out = np.concatenate(out) if isinstance(out, list) else out
        labels = self._check_y(np.concatenate([np.asarray(v) for v in y]) if not self.per_sequence_ else y)
        self.calibrator_ = LogisticRegression(C=100.0, max_iter=1000).fit(out, labels)
        return self

    def decision_function(self, X):
        """Decision values ``2 * output - 1``: ``(T,)`` for two classes (> 0: ``classes_[1]``), else
        ``(T, n_classes)``; a list for a list of sequences, ``(n_sequences, ...)`` if per sequence."""
        out = self._outputs(X)

        def d(o):
            return 2 * o[..., 0] - 1 if o.shape[-1] == 1 else 2 * o - 1

        return [d(o) for o in out] if isinstance(out, list) else d(out)

    def predict(self, X):
        """Labels: ``(n_sequences,)`` if per sequence, else a list of ``(T_i,)`` arrays."""
        out = self._outputs(X)

        def labels(o):
            k = (o[..., 0] > 0.5).astype(np.intp) if o.shape[-1] == 1 else np.argmax(o, axis=-1)
            return self.classes_[k]

        return [labels(o) for o in out] if isinstance(out, list) else labels(out)

    def predict_proba(self, X):
        """Class probabilities ``(n_sequences, n_classes)`` (per sequence) or a list of
        ``(T_i, n_classes)`` arrays (per step), columns in the order of ``classes_``."""
        out = self._outputs(X)
        if isinstance(out, list):
            return [self.calibrator_.predict_proba(o) for o in out]
        return self.calibrator_.predict_proba(out)

    def score(self, X, y, sample_weight=None):
        """Accuracy over all steps (of all sequences) or all sequences."""
        y_true, pred = self._flat(X, y, self.predict(X))
        return accuracy_score(y_true, pred, sample_weight=sample_weight)
