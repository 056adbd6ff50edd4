"""EvolinoRegressor: sequence regression and forecasting with the Evolino core."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_array as sk_check_array
from sklearn.utils.validation import check_is_fitted

from .._validate import EvolinoError, EvolinoTypeError
from ..presets import SUPERVISED
from ._base import _ATTRS_DOC, _PARAMS_DOC, _EvolinoBase

__all__ = ["EvolinoRegressor"]


class EvolinoRegressor(RegressorMixin, _EvolinoBase):
    __doc__ = f"""LSTM regressor trained by Evolino: evolved hidden weights, computed readout.

    Input-driven: the output at step ``t`` is a function of ``X[0..t]``. With
    ``feedback=True`` (forecasting) the previous target is also an input while training
    (teacher forcing; ``X`` may be None for a series alone) and ``predict(X)`` /
    ``forecast(steps)`` continue the series from the end of the training data in closed
    loop; this needs per-step targets and sequences of one length.

    Parameters
    ----------{_PARAMS_DOC}    epsilon : float, default=0.1
        SVR tube width in target units, >= 0.
    feedback : bool, default=False
    noise : float or "auto", default=SUPERVISED.noise
        ``feedback=True``: std of the Gaussian noise on the fed-back targets the readout is fitted
        on (standardized units), or chosen from the data (:class:`evolino.Evolino`'s ``noise``).
    horizon : int, "auto" or None, default="auto"
        ``feedback=True``: the length of the free runs the fitness scores (:class:`evolino.Evolino`'s
        ``horizon``); give the forecast length you will use (e.g. 84 for an 84-step forecast, 1 for
        one-step prediction).

    Attributes
    ----------{_ATTRS_DOC}
    References
    ----------
    Schmidhuber, Wierstra, Gagliolo, Gomez. Training recurrent networks by Evolino.
    Neural Computation 19(3), 2007. Schmidhuber, Gagliolo, Wierstra, Gomez. Evolino for
    recurrent support vector machines. ESANN 2006.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 1))
    >>> y = np.convolve(X[:, 0], [0.5, 0.3, 0.2])[:300]   # depends on the last 3 inputs
    >>> model = EvolinoRegressor(random_state=0).fit(X, y)
    >>> bool(model.score(X, y) > 0.9)
    True
    """

    _multi_output = True

    def __init__(self, n_cells=SUPERVISED.n_cells, *, readout="linear", ridge="auto", C=1.0, epsilon=0.1,
                 kernel="linear", max_samples=None, search=SUPERVISED.search, popsize=SUPERVISED.popsize, max_generations=SUPERVISED.max_generations,
                 search_options=None, washout=0, validation=0.25, input_scale=SUPERVISED.input_scale,
                 init_scale=SUPERVISED.init_scale, gates=SUPERVISED.gates, lags=SUPERVISED.lags, peepholes=True,
                 forget_gate=True,
                 feedback=False, noise=SUPERVISED.noise, horizon="auto", n_jobs=None, callbacks=None, verbose=0, standardize=True, random_state=None):
        self._store_params(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_y(self, y):
        y = sk_check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise EvolinoError(f"y must be 1-D or 2-D per sequence, got shape {y.shape}")
        self._y_1d = y.ndim == 1
        return y

    def _encode(self, Y):
        return Y.reshape(len(Y), -1)

    def _loss_kind(self):
        return "multilabel" if self.readout == "svc" else "nrmse"

    def fit(self, X, y):
        """Evolve the network.

        Parameters
        ----------
        X : array of shape (T, n_features) or (n_sequences, T, n_features), or a list of (T_i, n_features) arrays
        y : array of shape (T,) or (T, n_outputs); for several sequences: a list of such arrays
            (or an array (n_sequences, T[, n_outputs])), or an array (n_sequences,) /
            (n_sequences, n_outputs) of per-sequence targets

        Returns
        -------
        self
        """
        if not isinstance(self.feedback, (bool, np.bool_)):
            raise EvolinoTypeError(f"feedback must be a bool, got {self.feedback!r}")
        return self._fit(X, y, feedback=bool(self.feedback), noise=self.noise,
                         horizon=self.horizon if self.feedback else "auto")

    def predict(self, X):
        """Outputs: ``(T,)`` or ``(T, n_outputs)`` for one sequence, a list of those for several
        sequences, or ``(n_sequences, ...)`` when fitted on per-sequence targets."""
        check_is_fitted(self, "network_")
        out = self._predict_closed_loop(X) if self.network_.feedback else self._outputs(X)
        if self._y_1d:
            out = [o[..., 0] for o in out] if isinstance(out, list) else out[..., 0]
        return out

    def _predict_closed_loop(self, X):
        if self.n_features_in_ == 0:  # a series alone: only the number of steps asked for counts
            out = self._continue(len(X))
            return out
        seqs, single = self._sequences(X)
        outs = [self._continue(len(s), s) for s in seqs]
        return outs[0] if single else outs

    def _continue(self, steps, X=None, history=None):
        """Closed loop after warming up on ``history`` (default: the training series), ``(steps, O)``."""
        hist = self._last_y if history is None else np.asarray(history, dtype=np.float64).reshape(len(history), -1)
        Xall = None
        if self.n_features_in_:
            if X is None:
                raise EvolinoError(f"X is required: this model has {self.n_features_in_} external inputs "
                                 "(give them for the forecast steps)")
            past = self._last_X if history is None else None
            if past is None:
                raise EvolinoError("with external inputs and a history other than the training series, pass X for "
                                 "history and forecast steps to network_.forecast(history, steps, X=...)")
            Xall = np.concatenate([past, np.asarray(X, dtype=np.float64).reshape(steps, -1)])
        return self.network_.forecast(hist, steps, X=Xall)

    def forecast(self, steps, X=None, history=None):
        """Forecast ``steps`` steps in closed loop (``feedback=True`` models).

        Parameters
        ----------
        steps : int
        X : array of shape (steps, n_features), optional
            External inputs of the forecast steps (required when the model has any).
        history : array of shape (L,) or (L, n_outputs), optional
            The series to warm up on; default the (last) training series, so the forecast
            continues where training ended.

        Returns
        -------
        ndarray of shape (steps,) or (steps, n_outputs)
        """
        check_is_fitted(self, "network_")
        if not self.network_.feedback:
            raise EvolinoError("forecast needs feedback=True (a model that feeds its output back); use predict")
        out = self._continue(steps, X, history)
        return out[..., 0] if self._y_1d else out

    def score(self, X, y, sample_weight=None):
        """R^2 over all steps (of all sequences), see :func:`sklearn.metrics.r2_score`."""
        y_true, pred = self._flat(X, y, self.predict(X))
        return r2_score(y_true, pred, sample_weight=sample_weight)
