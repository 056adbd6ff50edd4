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

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_array as sk_check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._data import split_targets
from ._validate import check_choice, seed_from_random_state
from .presets import SUPERVISED
from .readout import Linear
from .readout_svm import SVC, SVR
from .sequences import SequenceBatch
from .trainer import Evolino

__all__ = ["EvolinoRegressor", "EvolinoClassifier", "EXPECTED_FAILED_CHECKS"]

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
            raise ValueError(f"X[{i}] must be a 2-D array (n_steps, n_features), got shape {np.shape(x)}")
        seqs.append(sk_check_array(x, dtype=np.float64, input_name=f"X[{i}]"))
    widths = sorted({s.shape[1] for s in seqs})
    if len(widths) > 1:
        raise ValueError(f"X: all sequences must have the same number of features, got widths {widths}")
    if reset:
        est.n_features_in_ = widths[0]
        est.__dict__.pop("feature_names_in_", None)
    elif widths[0] != est.n_features_in_:
        raise ValueError(f"X has {widths[0]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    return seqs


# --- the estimators ------------------------------------------------------------
class _EvolinoBase(BaseEstimator):
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

    def _trainer(self, *, feedback, loss, seed) -> Evolino:
        """The training core with this estimator's parameters."""
        return Evolino(self.n_cells, search=self.search, readout=self._make_readout(), ridge=self.ridge,
                       washout=self.washout, validation=self.validation, feedback=feedback, loss=loss,
                       popsize=self.popsize, max_generations=self.max_generations, peepholes=self.peepholes,
                       forget_gate=self.forget_gate, init_scale=self.init_scale, input_scale=self.input_scale,
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

    def _fit(self, X, y, *, feedback=False):
        for name in ("peepholes", "forget_gate"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        seed = seed_from_random_state(self.random_state)
        seqs, targets, per_sequence = self._validate_fit_data(X, y)
        if feedback and per_sequence:
            raise ValueError("feedback=True needs per-step targets y (one array per sequence)")
        Y = self._encode(np.asarray(targets) if per_sequence else np.concatenate(targets))  # (N_all, O)
        if self.readout == "svc" and not np.all((Y == 0) | (Y == 1)):
            raise ValueError("readout='svc' needs 0/1 targets (one column per label); use EvolinoClassifier for labels")
        if not per_sequence:
            Y = np.split(Y, np.cumsum([len(t) for t in targets])[:-1])
        trainer = self._trainer(feedback=feedback, loss=self._loss_kind(), seed=seed)
        net = trainer.fit(Y, X=seqs, per_sequence=per_sequence)
        self.per_sequence_, self.n_outputs_ = per_sequence, net.n_outputs
        self.network_, self.readout_, self.trainer_ = net, trainer.readout_, trainer
        self.spec_, self.genome_, self.seed_ = net.spec, net.genome, trainer.seed_
        self.history_, self.best_fitness_, self.input_scale_ = trainer.history_, trainer.best_fitness_, net.input_scale
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
    n_cells : int, default=50
        LSTM memory cells.
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
    search : {"esp", "cmaes"}, default="esp"
    popsize : int, default=40
        Networks per generation (ESP: 10 subpopulations x 4 trials, :data:`evolino.presets.SUPERVISED`).
    max_generations : int, default=10
    search_options : dict, optional
        More options of the strategy (e.g. ``{"trials": 4}``, ``{"sigma0": 0.3}``).
    washout : int, default=0
        First steps of every sequence that neither fit nor score the readout.
    validation : float, default=0.25
        Fraction held out for the fitness (see :class:`evolino.Evolino`); 0 scores the fit part.
    input_scale : float, default=1e-3
        Factor on the (standardized) inputs (:class:`evolino.Evolino`); raise it for strongly
        nonlinear tasks.
    init_scale : float, default=1.0
        Scale of the random initial weights.
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
    genome_ : ndarray of shape (spec_.n_params,)
    readout_ : fitted readout (``coef_`` ``(1, n_cells + 1, n_outputs)`` when linear)
    trainer_ : Evolino
        The training core that fitted it (``result_``: the search's result).
    history_ : dict of per-generation lists
    best_fitness_ : float
    seed_ : int
    per_sequence_ : bool
        Whether ``y`` had one target per sequence.
"""


class EvolinoRegressor(RegressorMixin, _EvolinoBase):
    __doc__ = f"""LSTM regressor trained by Evolino: evolved hidden weights, computed readout.

    Input-driven: the output at step ``t`` is a function of ``X[0..t]``. With
    ``feedback=True`` the previous target is also an input while training
    (teacher forcing) and ``predict`` feeds back its own previous output (closed
    loop from the zero state); this needs per-step targets and sequences of one length.

    Parameters
    ----------{_PARAMS_DOC}    epsilon : float, default=0.1
        SVR tube width in target units, >= 0.
    feedback : bool, default=False

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
                 kernel="linear", max_samples=None, search="esp", popsize=SUPERVISED.popsize, max_generations=10,
                 search_options=None, washout=0, validation=0.25, input_scale=SUPERVISED.input_scale,
                 init_scale=SUPERVISED.init_scale, peepholes=True, forget_gate=True, feedback=False, n_jobs=None,
                 callbacks=None, verbose=0, standardize=True, random_state=None):
        self.n_cells = n_cells
        self.readout = readout
        self.ridge = ridge
        self.C = C
        self.epsilon = epsilon
        self.kernel = kernel
        self.max_samples = max_samples
        self.search = search
        self.popsize = popsize
        self.max_generations = max_generations
        self.search_options = search_options
        self.washout = washout
        self.validation = validation
        self.input_scale = input_scale
        self.init_scale = init_scale
        self.peepholes = peepholes
        self.forget_gate = forget_gate
        self.feedback = feedback
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.verbose = verbose
        self.standardize = standardize
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_y(self, y):
        y = sk_check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D per sequence, got shape {y.shape}")
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
            raise TypeError(f"feedback must be a bool, got {self.feedback!r}")
        return self._fit(X, y, feedback=bool(self.feedback))

    def predict(self, X):
        """Outputs: ``(T,)`` or ``(T, n_outputs)`` for one sequence, a list of those for several
        sequences, or ``(n_sequences, ...)`` when fitted on per-sequence targets."""
        check_is_fitted(self, "network_")
        out = self._predict_closed_loop(X) if self.network_.feedback else self._outputs(X)
        if self._y_1d:
            out = [o[..., 0] for o in out] if isinstance(out, list) else out[..., 0]
        return out

    def _predict_closed_loop(self, X):
        seqs, single = self._sequences(X)
        outs = [self.network_.generate(len(s), X=s) for s in seqs]  # own outputs fed back from the zero state
        return outs[0] if single else outs

    def score(self, X, y, sample_weight=None):
        """R^2 over all steps (of all sequences), see :func:`sklearn.metrics.r2_score`."""
        y_true, pred = self._flat(X, y, self.predict(X))
        return r2_score(y_true, pred, sample_weight=sample_weight)


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
                 max_samples=None, search="esp", popsize=SUPERVISED.popsize, max_generations=10,
                 search_options=None, washout=0, validation=0.25, input_scale=SUPERVISED.input_scale,
                 init_scale=SUPERVISED.init_scale, peepholes=True, forget_gate=True, n_jobs=None, callbacks=None,
                 verbose=0, standardize=True, random_state=None):
        self.n_cells = n_cells
        self.readout = readout
        self.ridge = ridge
        self.C = C
        self.kernel = kernel
        self.max_samples = max_samples
        self.search = search
        self.popsize = popsize
        self.max_generations = max_generations
        self.search_options = search_options
        self.washout = washout
        self.validation = validation
        self.input_scale = input_scale
        self.init_scale = init_scale
        self.peepholes = peepholes
        self.forget_gate = forget_gate
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.verbose = verbose
        self.standardize = standardize
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # refused as ambiguous (see the class docstring)
        tags.input_tags.three_d_array = True
        return tags

    def _refuse_two_d(self, X):
        raise ValueError(f"X has shape {np.shape(X)}: EvolinoClassifier needs sequences, a 3-D array "
                         "(n_sequences, n_steps, n_features) or a list of (n_steps, n_features) arrays; "
                         "for univariate series of shape (n_series, n_steps) pass X[:, :, None]")

    def _check_y(self, y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(f"y must hold one label per step or per sequence (1-D), got shape {y.shape}")
        check_classification_targets(y)
        return y

    def _encode(self, y):
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y must contain at least 2 classes to train a classifier, got 1 class: {classes[0]!r}")
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
