"""Shared parts of the estimators: scikit-learn data checks, the adapter base, docstring pieces."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_array as sk_check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from .._data import split_targets
from .._validate import EvolinoError, EvolinoTypeError, check_choice, seed_from_random_state
from ..readout import Linear
from ..readout_svm import SVC, SVR
from ..sequences import SequenceBatch
from ..trainer import Evolino

__all__ = ["EXPECTED_FAILED_CHECKS"]

_ORDER = ("the rows of X are time steps of one sequence, so a row's prediction depends on the rows before it: "
          "predicting on {} changes the predictions")
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": _ORDER.format("a subset of the rows (a shorter history)"),
    "check_methods_sample_order_invariance": _ORDER.format("reordered rows (another sequence)"),
}
"""Checks of ``sklearn.utils.estimator_checks`` that assume rows are independent samples (name -> reason)."""


# --- data ----------------------------------------------------------------------
def _is_sequence_list(X) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and np.ndim(X[0]) == 2


def _check_sequences(est, X, *, reset: bool) -> list:
    """A list of sequences ``(T_i, F)`` as float64 arrays, all of width ``n_features_in_``."""
    seqs = []
    for i, x in enumerate(X):
        if np.ndim(x) != 2:
            raise EvolinoError(f"X[{i}] must be a 2-D array (n_steps, n_features), got shape {np.shape(x)}")
        seqs.append(sk_check_array(x, dtype=np.float64, input_name=f"X[{i}]"))
    widths = sorted({s.shape[1] for s in seqs})
    if len(widths) > 1:
        raise EvolinoError(f"X: all sequences must have the same number of features, got widths {widths}")
    if reset:
        est.n_features_in_ = widths[0]
        est.__dict__.pop("feature_names_in_", None)
    elif widths[0] != est.n_features_in_:
        raise EvolinoError(f"X has {widths[0]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    return seqs


# --- the estimators ------------------------------------------------------------
class _EvolinoBase(BaseEstimator):
    def _store_params(self, params: dict):
        """``__init__`` stores its arguments verbatim (scikit-learn's rule), in one place."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    _readouts = ("linear", "svr", "svc")
    _two_d = True  # whether a 2-D X is one sequence (regressor) or refused as ambiguous (classifier)

    def _make_readout(self):
        name = check_choice(self.readout, "readout", self._readouts)
        if name == "linear":
            return Linear(ridge=self.ridge)
        kw = dict(kernel=self.kernel, C=self.C, max_samples=self.max_samples)
        readout = SVR(epsilon=self.epsilon, **kw) if name == "svr" else SVC(**kw)
        readout._check_options()  # out-of-range SVM options fail now, not after a generation
        return readout

    def _trainer(self, *, feedback, loss, seed, noise=0.0, horizon="auto") -> Evolino:
        """The training core with this estimator's parameters."""
        return Evolino(self.n_cells, search=self.search, readout=self._make_readout(), ridge=self.ridge,
                       washout=self.washout, validation=self.validation, feedback=feedback, loss=loss,
                       popsize=self.popsize, max_generations=self.max_generations, peepholes=self.peepholes,
                       forget_gate=self.forget_gate, init_scale=self.init_scale, input_scale=self.input_scale,
                       gates=self.gates, lags=self.lags, noise=noise, horizon=horizon,
                       search_options=self.search_options, n_jobs=self.n_jobs, callbacks=list(self.callbacks or ()),
                       verbose=self.verbose, standardize=self.standardize, seed=seed)

    def _validate_fit_data(self, X, y):
        """-> (list of sequences, targets (list of (T_i, ...) or array (B, ...)), per_sequence)."""
        if isinstance(X, np.ndarray) and X.ndim == 3:
            X = list(X)
        if _is_sequence_list(X):
            seqs = _check_sequences(self, X, reset=True)
            targets, per_sequence = split_targets(seqs, y)
            if per_sequence:
                targets = self._check_y(targets)
            else:
                flat = self._check_y(np.concatenate([np.asarray(t) for t in targets]))
                targets = np.split(flat, np.cumsum([len(t) for t in targets])[:-1])
            return seqs, targets, per_sequence
        self._refuse_two_d(X)
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=self._multi_output, y_numeric=False)
        return [X], [self._check_y(y)], False

    def _refuse_two_d(self, X):
        pass

    def _fit(self, X, y, *, feedback=False, noise=0.0, horizon="auto"):
        for name in ("peepholes", "forget_gate"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise EvolinoTypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        seed = seed_from_random_state(self.random_state)
        if X is None and feedback:  # a series alone: its own past is the input
            self.n_features_in_ = 0
            self.__dict__.pop("feature_names_in_", None)
            targets, seqs, per_sequence = [self._check_y(y)], None, False
        else:
            seqs, targets, per_sequence = self._validate_fit_data(X, y)
        if feedback and per_sequence:
            raise EvolinoError("feedback=True needs per-step targets y (one array per sequence)")
        Y = self._encode(np.asarray(targets) if per_sequence else np.concatenate(targets))  # (N_all, O)
        if self.readout == "svc" and not np.all((Y == 0) | (Y == 1)):
            raise EvolinoError("readout='svc' needs 0/1 targets (one column per label); use EvolinoClassifier for labels")
        if not per_sequence:
            Y = np.split(Y, np.cumsum([len(t) for t in targets])[:-1])
        trainer = self._trainer(feedback=feedback, loss=self._loss_kind(), seed=seed, noise=noise, horizon=horizon)
        net = trainer.fit(Y, X=seqs, per_sequence=per_sequence)
        self.per_sequence_, self.n_outputs_ = per_sequence, net.n_outputs
        self.network_, self.readout_, self.trainer_ = net, trainer.readout_, trainer
        self.spec_, self.genome_, self.seed_ = net.spec, net.genome, trainer.seed_
        self.history_, self.best_fitness_, self.input_scale_ = trainer.history_, trainer.best_fitness_, net.input_scale
        if feedback:  # the end of training is where predict and forecast continue
            self._last_y = np.asarray(Y[-1], dtype=np.float64).reshape(len(Y[-1]), -1)
            self._last_X = None if seqs is None else seqs[-1]
        return self

    # --- prediction --------------------------------------------------------------
    def _sequences(self, X):
        check_is_fitted(self, "network_")
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return _check_sequences(self, list(X), reset=False), False
        if _is_sequence_list(X):
            return _check_sequences(self, X, reset=False), False
        self._refuse_two_d(X)
        return [validate_data(self, X, dtype=np.float64, reset=False)], True

    def _outputs(self, X):
        """Readout outputs: ``(T, O)`` for one sequence, a list of them for a list (``(B, O)`` per sequence)."""
        seqs, single = self._sequences(X)
        batch = SequenceBatch(seqs)
        out = self.network_.predict(batch.X)  # (B, T_max, O)
        if self.per_sequence_:
            return out[np.arange(len(seqs)), batch.lengths - 1]  # (B, O)
        outs = batch.unpad(out)
        return outs[0] if single else outs

    def _flat(self, X, y, pred):
        """Concatenate per-step lists so that a score covers all steps of all sequences."""
        if isinstance(pred, list):
            _, per_sequence = split_targets(pred, y)
            if not per_sequence:
                return np.concatenate([np.asarray(v) for v in y]), np.concatenate(pred)
        return y, pred


_PARAMS_DOC = """
    n_cells : int or "auto", default="auto"
        LSTM memory cells; "auto" from the amount of data (:func:`evolino.presets.auto_n_cells`).
    readout : {"linear", "svr", "svc"}, default="linear"
        Least squares (Evolino; pseudo-inverse when ``ridge=0``), epsilon-SVR or
        maximum-margin SVC on 0/1 targets (Evoke; :mod:`evolino.readout_svm`).
    ridge : "auto" or float, default="auto"
        L2 penalty of the linear readout, relative to the state energy; "auto" chooses it per
        candidate by generalized cross-validation (:class:`evolino.Evolino`).
    C : float, default=1.0
        SVM regularization (``"svr"``, ``"svc"``), > 0.
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
        SVM kernel.
    max_samples : int, optional
        SVM readouts fit on at most this many evenly spaced steps during evolution
        (the final readout uses all).
    search : {"esp", "cmaes"}, default="cmaes"
        CMA-ES evolves the gains of the best random network, ESP the weights
        (``encoding="auto"`` of :class:`evolino.Evolino`).
    popsize : int, default=40
        Networks per generation (ESP: 10 subpopulations x 4 trials, :data:`evolino.presets.SUPERVISED`).
    max_generations : int or "auto", default="auto"
        "auto": :func:`evolino.presets.auto_generations` (20 at up to 100 cells, fewer on wider ones).
    search_options : dict, optional
        More options of the strategy (e.g. ``{"trials": 4}``, ``{"sigma0": 0.3}``).
    washout : int, default=0
        First steps of every sequence that neither fit nor score the readout.
    validation : float, default=0.25
        Fraction held out for the fitness (see :class:`evolino.Evolino`); 0 scores the fit part.
    input_scale : "auto" or float, default="auto"
        Factor on the (standardized) inputs (:class:`evolino.Evolino`); "auto" chooses it from the data.
    init_scale : "auto" or float, default="auto"
        Scale of the random initial weights.
    gates : {"auto", "lstm", "reservoir"}, default="auto"
        Initial gate regime (:class:`evolino.Evolino`).
    lags : int or "auto", default=SUPERVISED.lags
        The linear readout also reads the inputs of the last ``lags`` steps (:class:`evolino.Evolino`);
        "auto" decides from the data (0 with an SVM readout).
    peepholes, forget_gate : bool, default=True
    n_jobs : int, optional
        Worker processes for fitness evaluation (None or 1: this process, -1: all CPUs).
    callbacks : sequence of callables, optional
        Called after every generation with the status dict of :func:`evolino.loop.run_search`;
        returning True stops the search.
    verbose : int, default=0
        1: a progress bar on stderr.
    standardize : bool, default=True
        Centre and scale the features (and regression targets) from the training data inside the
        network (:class:`evolino.Evolino`); no ``StandardScaler`` needed.
    random_state : int, numpy Generator or RandomState, optional
"""

_ATTRS_DOC = """
    n_features_in_ : int
    n_outputs_ : int
    network_ : EvolinoNetwork
        The trained network (``save``/``load`` as ``.npz`` with a linear readout).
    spec_ : LSTMSpec
    genome_ : ndarray of shape (n_params,)
        The evolved hidden weights (``n_params = spec_.n_params``).
    readout_ : fitted readout (``coef_`` ``(1, n_cells + 1, n_outputs)`` when linear)
    trainer_ : Evolino
        The training core that fitted it (``result_``: the search's result).
    history_ : dict of per-generation lists
    best_fitness_ : float
    seed_ : int
    per_sequence_ : bool
        Whether ``y`` had one target per sequence.
"""
