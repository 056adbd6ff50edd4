"""scikit-learn estimators: :class:`EvolinoRegressor` and :class:`EvolinoClassifier`.

The data are sequences. ``X`` is either one sequence ``(T, n_features)`` whose rows
are time steps in order, or a list of such arrays (lengths may differ, widths may
not). Targets come per step (``y`` ``(T,)`` / ``(T, n_outputs)``, or a list with one
such array per sequence) or, for a list of sequences, per sequence (``y`` an array
``(n_sequences,)`` / ``(n_sequences, n_outputs)``: read out at each sequence's last
step, e.g. sequence classification). Every sequence starts from the zero state.

Training is Evolino (Schmidhuber, Wierstra, Gagliolo & Gomez 2007): the hidden
LSTM weights are evolved (ESP or CMA-ES), the readout is computed for each
candidate on the steps of the *fit* part -- least squares (``readout="linear"``)
or an SVM (Evoke: ``"svr"``, ``"svc"``) -- and the fitness is the error on the
*validation* part: the last ``validation`` fraction of each sequence's steps
(per-step targets) or a random ``validation`` fraction of the sequences
(per-sequence targets, stratified by class). The final readout is refitted on
all steps. All sequences of a population run as one padded batch through the
population-batched kernel; padding follows the real steps, so the causal LSTM
never sees it.

Because a row's prediction depends on the rows before it, the checks of
``sklearn.utils.estimator_checks`` that shuffle or subset rows fail by design:
they are listed with the reason in :data:`EXPECTED_FAILED_CHECKS`.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_array as sk_check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._validate import as_rng, check_choice, check_number, check_positive_int
from .lstm import LSTMSpec, forward, initial_state, prepare
from .model import EvolinoNetwork, closed_loop
from .readout import Linear
from .readout_svm import SVC, SVR, classification_loss, regression_loss

__all__ = ["EvolinoRegressor", "EvolinoClassifier", "EXPECTED_FAILED_CHECKS"]

_ORDER = ("the rows of X are time steps of one sequence, so a row's prediction depends on the rows before it: "
          "predicting on {} changes the predictions")
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": _ORDER.format("a subset of the rows (a shorter history)"),
    "check_methods_sample_order_invariance": _ORDER.format("reordered rows (another sequence)"),
}
"""Checks of ``sklearn.utils.estimator_checks`` that assume rows are independent samples (name -> reason)."""


# ESP networks per chromosome and generation: 4 gives subpopulations of popsize/4 = 10, which
# measured better than ESP's 10 trials (subpopulations of 4) at the small default budget
_ESP_TRIALS = 4


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


def _split_targets(seqs, y, name="y"):
    """``(targets, per_sequence)`` for a list of sequences: per-step arrays, or one row per sequence."""
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    per_step = isinstance(y, (list, tuple)) and any(np.ndim(v) > 0 for v in y)
    if per_step:
        if len(y) != len(seqs):
            raise ValueError(f"{name} must hold one target array per sequence ({len(seqs)}), got {len(y)}")
        out = []
        for i, (x, v) in enumerate(zip(seqs, y)):
            v = np.asarray(v)
            if v.ndim not in (1, 2) or len(v) != len(x):
                raise ValueError(f"{name}[{i}] must have shape ({len(x)},) or ({len(x)}, n_outputs) to match X[{i}], "
                                 f"got {v.shape}")
            out.append(v)
        return out, False
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != len(seqs):
        raise ValueError(f"{name} must be a list of per-step target arrays (one per sequence) or an array of shape "
                         f"({len(seqs)},) or ({len(seqs)}, n_outputs) (one target per sequence), got {y.shape}")
    return y, True


class _Batch:
    """Sequences ``(T_i, F)`` padded at the end into one array ``(B, T_max, F)``.

    Steps are addressed by flat indices into ``B * T_max``.
    """

    def __init__(self, seqs):
        self.lengths = np.array([len(s) for s in seqs])
        self.T = int(self.lengths.max())
        self.X = np.zeros((len(seqs), self.T, seqs[0].shape[1]))
        for b, s in enumerate(seqs):
            self.X[b, : len(s)] = s

    def steps(self, b, start, stop) -> np.ndarray:
        return b * self.T + np.arange(start, stop)

    def last(self) -> np.ndarray:
        return np.arange(len(self.lengths)) * self.T + self.lengths - 1

    def unpad(self, A):
        """``(B, T_max, ...)`` -> list of ``(T_i, ...)``."""
        return [A[b, :n] for b, n in enumerate(self.lengths)]


class _SequenceFitness:
    """Picklable fitness ``genomes (P, n) -> (P,)``: readout fitted on the fit steps, loss on the validation steps.

    ``X`` ``(B, T, F)`` already multiplied by ``input_scale``; ``fit_idx``/``val_idx`` are flat indices
    into ``B * T``; ``loss`` is ``"regression"``, ``"multilabel"`` or ``"multiclass"``.
    """

    def __init__(self, spec, X, fit_idx, Y_fit, val_idx, Y_val, readout, loss):
        self.spec, self.X, self.readout, self.loss = spec, X, readout, loss
        self.fit_idx, self.Y_fit, self.val_idx, self.Y_val = fit_idx, Y_fit, val_idx, Y_val

    def __call__(self, genomes) -> np.ndarray:
        with np.errstate(all="ignore"):
            h = forward(self.spec, prepare(self.spec, genomes), self.X)  # (P, B, T, H)
            h = h.reshape(h.shape[0], -1, h.shape[-1])
            out = self.readout.fit(h[:, self.fit_idx], self.Y_fit).predict(h[:, self.val_idx])  # (P, N_val, O)
        if self.loss == "regression":
            return regression_loss(out, self.Y_val)
        return classification_loss(out, self.Y_val, multilabel=self.loss == "multilabel")


# --- the estimators ------------------------------------------------------------
class _EvolinoBase(BaseEstimator):
    _readouts = ("linear", "svr", "svc")

    def _check_params(self):
        p = {
            "n_cells": check_positive_int(self.n_cells, "n_cells"),
            "readout": check_choice(self.readout, "readout", self._readouts),
            "washout": check_positive_int(self.washout, "washout", minimum=0),
            "validation": check_number(self.validation, "validation", low=0.0, high=1.0),
            "max_generations": check_positive_int(self.max_generations, "max_generations"),
            "popsize": None if self.popsize is None else check_positive_int(self.popsize, "popsize"),
            "input_scale": check_number(self.input_scale, "input_scale", low=0.0, low_open=True),
        }
        if p["validation"] == 1.0:
            raise ValueError("validation must be < 1 (a fraction of the steps or sequences), got 1.0")
        check_number(self.init_scale, "init_scale", low=0.0)
        check_number(self.ridge, "ridge", low=0.0)
        for name in ("peepholes", "forget_gate"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.search_options is not None and not isinstance(self.search_options, dict):
            raise TypeError(f"search_options must be a dict or None, got {self.search_options!r}")
        rs = self.random_state
        if rs is None:
            p["seed"] = int(np.random.default_rng().integers(2**32))
        elif isinstance(rs, np.random.RandomState):
            p["seed"] = int(rs.randint(2**31))
        elif isinstance(rs, np.random.Generator):
            p["seed"] = int(rs.integers(2**32))
        elif isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            p["seed"] = check_positive_int(rs, "random_state", minimum=0)
        else:
            raise TypeError(f"random_state must be None, an int or a random generator, got {rs!r}")
        p["readout_obj"] = self._make_readout(p["readout"])
        return p

    def _make_readout(self, name):
        if name == "linear":
            return Linear(ridge=check_number(self.ridge, "ridge", low=0.0))
        kw = dict(kernel=self.kernel, C=self.C, max_samples=self.max_samples)
        readout = SVR(epsilon=self.epsilon, **kw) if name == "svr" else SVC(**kw)
        readout._check_options()  # out-of-range SVM options fail now, not after a generation
        return readout

    def _encode(self, Y):
        """Targets ``(n, ...)`` -> float ``(n, O)`` readout targets."""
        raise NotImplementedError

    def _validate_fit_data(self, X, y):
        """-> (list of sequences, targets (list of (T_i, ...) or array (B, ...)), per_sequence)."""
        if _is_sequence_list(X):
            seqs = _check_sequences(self, X, reset=True)
            targets, per_sequence = _split_targets(seqs, y)
            if per_sequence:
                targets = self._check_y(targets)
            else:
                flat = self._check_y(np.concatenate([np.asarray(t) for t in targets]))
                targets = np.split(flat, np.cumsum([len(t) for t in targets])[:-1])
            return seqs, targets, per_sequence
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=self._multi_output, y_numeric=False)
        return [X], [self._check_y(y)], False

    def _fit(self, X, y):
        p = self._check_params()
        seqs, targets, per_sequence = self._validate_fit_data(X, y)
        self.per_sequence_ = per_sequence
        Y = self._encode(np.asarray(targets) if per_sequence else np.concatenate(targets))  # (N_all, O)
        if p["readout"] == "svc" and not np.all((Y == 0) | (Y == 1)):
            raise ValueError("readout='svc' needs 0/1 targets (one column per label); use EvolinoClassifier for labels")
        self.n_outputs_ = Y.shape[1]
        batch = _Batch(seqs)
        idx_fit, idx_val, row_fit, row_val = self._split(batch, Y, per_sequence, p)
        spec = LSTMSpec(self.n_features_in_, p["n_cells"], peepholes=bool(self.peepholes),
                        forget_gate=bool(self.forget_gate))
        Xs = batch.X * p["input_scale"]
        fitness = _SequenceFitness(spec, Xs, idx_fit, Y[row_fit], idx_val, Y[row_val], p["readout_obj"],
                                   self._loss_kind())
        genome, history = self._evolve(spec, fitness, p)
        # the final readout: all post-washout steps, no subsample
        final = p["readout_obj"].for_final() if hasattr(p["readout_obj"], "for_final") else p["readout_obj"]
        h = forward(spec, genome[None], Xs).reshape(1, -1, spec.n_cells)
        idx_all = np.concatenate([idx_fit, idx_val]) if idx_val is not idx_fit else idx_fit
        rows_all = np.concatenate([row_fit, row_val]) if idx_val is not idx_fit else row_fit
        self.readout_ = final.fit(h[:, idx_all], Y[rows_all])
        self.spec_, self.genome_, self.seed_, self.history_ = spec, genome, p["seed"], history
        self.best_fitness_ = float(history["best"][-1])
        self.input_scale_ = p["input_scale"]
        return self

    def _split(self, batch, Y, per_sequence, p):
        """Flat step indices and target rows of the fit and validation parts."""
        v, washout = p["validation"], p["washout"]
        if per_sequence:
            last = batch.last()
            val = self._validation_sequences(Y, v, p["seed"])
            if val.size == 0 or val.size == len(last):
                rows = np.arange(len(last))
                return last, last, rows, rows
            fit = np.setdiff1d(np.arange(len(last)), val)
            return last[fit], last[val], fit, val
        short = np.flatnonzero(batch.lengths <= washout)
        if short.size:
            i = short[0]
            raise ValueError(f"X: sequence {i} has {batch.lengths[i]} steps, need more than washout={washout}")
        idx_fit, idx_val, row_fit, row_val = [], [], [], []
        start = 0  # first row of this sequence in the concatenated targets
        for b, T in enumerate(batch.lengths):
            n_post = T - washout
            n_val = min(int(round(v * n_post)), n_post - 1)
            cut = T - n_val
            idx_fit.append(batch.steps(b, washout, cut))
            idx_val.append(batch.steps(b, cut, T))
            row_fit.append(start + np.arange(washout, cut))
            row_val.append(start + np.arange(cut, T))
            start += T
        idx_fit, idx_val = np.concatenate(idx_fit), np.concatenate(idx_val)
        row_fit, row_val = np.concatenate(row_fit), np.concatenate(row_val)
        if idx_val.size == 0:  # too short to hold steps out: score the fit part itself
            return idx_fit, idx_fit, row_fit, row_fit
        return idx_fit, idx_val, row_fit, row_val

    def _validation_sequences(self, Y, v, seed) -> np.ndarray:
        rng = as_rng(seed)
        n = len(Y)
        return np.sort(rng.permutation(n)[: int(round(v * n))])

    def _evolve(self, spec, fitness, p):
        from .evaluate import make_evaluator
        from .loop import run_search
        from .trainer import Evolino

        # the trainer builds strategies (ESP cell slices, initial genomes) for the estimators too
        opts = dict(self.search_options or {})
        if self.search == "esp":
            opts.setdefault("trials", _ESP_TRIALS)
        strategy = Evolino(spec, search=self.search, popsize=p["popsize"], init_scale=self.init_scale,
                           search_options=opts)._strategy(spec, p["seed"])
        evaluator = make_evaluator(None, n_jobs=self.n_jobs)
        try:
            history = run_search(strategy, fitness, evaluator=evaluator, max_generations=p["max_generations"],
                                 callbacks=list(self.callbacks or ()))
        finally:
            evaluator.close()
        return np.asarray(strategy.best[0], dtype=spec.dtype), history

    # --- prediction --------------------------------------------------------------
    def _outputs(self, X):
        """Readout outputs: ``(T, O)`` for one sequence, a list of them for a list (``(B, O)`` per sequence)."""
        check_is_fitted(self, "readout_")
        if _is_sequence_list(X):
            seqs, single = _check_sequences(self, X, reset=False), False
        else:
            seqs, single = [validate_data(self, X, dtype=np.float64, reset=False)], True
        batch = _Batch(seqs)
        h = forward(self.spec_, self.genome_[None], batch.X * self.input_scale_)  # (1, B, T, H)
        out = self.readout_.predict(h.reshape(1, -1, self.spec_.n_cells))[0].reshape(len(seqs), batch.T, -1)
        if self.per_sequence_:
            return out[np.arange(len(seqs)), batch.lengths - 1]  # (B, O)
        outs = batch.unpad(out)
        return outs[0] if single else outs

    @property
    def network_(self) -> EvolinoNetwork:
        """The trained network (:class:`~evolino.model.EvolinoNetwork`: save/load as ``.npz``); linear readouts only."""
        check_is_fitted(self, "readout_")
        if getattr(self, "network_feedback_", None) is not None:
            return self.network_feedback_
        if not hasattr(self.readout_, "coef_"):
            raise AttributeError("network_ needs linear output weights; this readout uses a non-linear kernel")
        return EvolinoNetwork(self.spec_, self.genome_, self.readout_.coef_[0], input_scale=self.input_scale_)

    def _flat(self, X, y, pred):
        """Concatenate per-step lists so that a score covers all steps of all sequences."""
        if isinstance(pred, list):
            _, per_sequence = _split_targets(pred, y)
            if not per_sequence:
                return np.concatenate([np.asarray(v) for v in y]), np.concatenate(pred)
        return y, pred


class EvolinoRegressor(RegressorMixin, _EvolinoBase):
    """LSTM regressor trained by Evolino: evolved hidden weights, computed readout.

    Input-driven: the output at step ``t`` is a function of ``X[0..t]``. With
    ``feedback=True`` the previous target is also an input while training
    (teacher forcing) and ``predict`` feeds back its own previous output (closed
    loop); this uses :class:`~evolino.trainer.Evolino` and needs per-step targets
    and sequences of one length.

    Parameters
    ----------
    n_cells : int, default=10
        LSTM memory cells.
    readout : {"linear", "svr", "svc"}, default="linear"
        Least squares (Evolino; pseudo-inverse when ``ridge=0``), epsilon-SVR or
        maximum-margin SVC on 0/1 targets (Evoke; :mod:`evolino.readout_svm`).
    ridge : float, default=0.0
        L2 penalty of the linear readout.
    C : float, default=1.0
        SVM regularization (``"svr"``, ``"svc"``), > 0.
    epsilon : float, default=0.1
        SVR tube width in target units, >= 0.
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
        SVM kernel.
    max_samples : int, optional
        SVM readouts fit on at most this many evenly spaced steps during evolution
        (the final readout uses all).
    search : {"esp", "cmaes"}, default="esp"
    popsize : int, default=40
        Networks per generation (ESP: a multiple of ``trials``, which is 4 here unless
        ``search_options`` says otherwise).
    max_generations : int, default=10
    search_options : dict, optional
        More options of the strategy (e.g. ``{"trials": 4}``, ``{"sigma0": 0.3}``).
    washout : int, default=0
        First steps of every sequence that neither fit nor score the readout.
    validation : float, default=0.25
        Fraction held out for the fitness (see the module docstring); 0 scores the fit part.
    input_scale : float, default=0.1
        Factor on the inputs; small inputs keep the cells in their nearly linear range.
        Standardize the features first (e.g. ``StandardScaler`` in a Pipeline).
    init_scale : float, default=1.0
        Scale of the random initial weights.
    peepholes, forget_gate : bool, default=True
    feedback : bool, default=False
    n_jobs : int, optional
        Worker processes for fitness evaluation (None or 1: this process).
    callbacks : sequence of callables, optional
        Called after every generation with the status dict of :func:`evolino.loop.run_search`
        (e.g. a progress bar); returning True stops the search.
    random_state : int, numpy Generator or RandomState, optional

    Attributes
    ----------
    n_features_in_ : int
    n_outputs_ : int
    spec_ : LSTMSpec
    genome_ : ndarray of shape (spec_.n_params,)
        Evolved hidden weights.
    readout_ : fitted readout (``coef_`` ``(1, n_cells + 1, n_outputs)`` when linear)
    history_ : dict of per-generation lists
    best_fitness_ : float
        Validation loss of the chosen network (NRMSE; SVC: error rate + margin term).
    seed_ : int
    per_sequence_ : bool
        Whether ``y`` had one target per sequence.

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

    def __init__(self, n_cells=10, *, readout="linear", ridge=0.0, C=1.0, epsilon=0.1, kernel="linear",
                 max_samples=None, search="esp", popsize=40, max_generations=10, search_options=None, washout=0,
                 validation=0.25, input_scale=0.1, init_scale=1.0, peepholes=True, forget_gate=True,
                 feedback=False, n_jobs=None, callbacks=None, random_state=None):
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
        return "multilabel" if self.readout == "svc" else "regression"

    def fit(self, X, y):
        """Evolve the network.

        Parameters
        ----------
        X : array of shape (T, n_features) or list of arrays (T_i, n_features)
        y : array of shape (T,) or (T, n_outputs); for a list X: a list of such arrays,
            or an array (n_sequences,) / (n_sequences, n_outputs) of per-sequence targets

        Returns
        -------
        self
        """
        if not isinstance(self.feedback, (bool, np.bool_)):
            raise TypeError(f"feedback must be a bool, got {self.feedback!r}")
        if self.feedback:
            return self._fit_feedback(X, y)
        self.__dict__.pop("network_feedback_", None)
        return self._fit(X, y)

    def _fit_feedback(self, X, y):
        from .trainer import Evolino

        p = self._check_params()
        if self.kernel != "linear" and p["readout"] != "linear":
            raise ValueError("feedback=True needs linear output weights (kernel='linear')")
        seqs, targets, per_sequence = self._validate_fit_data(X, y)
        if per_sequence:
            raise ValueError("feedback=True needs per-step targets y (one array per sequence)")
        if len({len(s) for s in seqs}) > 1:
            raise ValueError("feedback=True needs all sequences of X to have the same number of steps")
        Y = np.stack([t.reshape(len(t), -1) for t in targets])  # (B, T, O)
        val = p["validation"] if p["validation"] > 0 else 1
        trainer = Evolino(p["n_cells"], search=self.search, readout=p["readout_obj"], washout=p["washout"],
                          validation=val, feedback=True, popsize=p["popsize"], max_generations=p["max_generations"],
                          peepholes=bool(self.peepholes), forget_gate=bool(self.forget_gate),
                          init_scale=self.init_scale, input_scale=p["input_scale"], search_options=self.search_options,
                          evaluator="serial" if self.n_jobs in (None, 1) else "pool",
                          callbacks=list(self.callbacks or ()), seed=p["seed"])
        net = trainer.fit(Y, np.stack(seqs))
        self.per_sequence_ = False
        self.n_outputs_ = Y.shape[-1]
        self.spec_, self.genome_, self.seed_, self.history_ = net.spec, net.genome, trainer.seed_, trainer.history_
        self.best_fitness_ = trainer.best_fitness_
        self.input_scale_ = p["input_scale"]
        self.readout_ = p["readout_obj"]
        self.network_feedback_ = net
        return self

    def predict(self, X):
        """Outputs: ``(T,)`` or ``(T, n_outputs)`` for one sequence, a list of those for a list of
        sequences, or ``(n_sequences, ...)`` when fitted on per-sequence targets."""
        if getattr(self, "network_feedback_", None) is not None:
            out = self._predict_closed_loop(X)
        else:
            out = self._outputs(X)
        if self._y_1d:
            out = [o[..., 0] for o in out] if isinstance(out, list) else out[..., 0]
        return out

    def _predict_closed_loop(self, X):
        net = self.network_feedback_
        single = not _is_sequence_list(X)
        if single:
            seqs = [validate_data(self, X, dtype=np.float64, reset=False)]
        else:
            seqs = _check_sequences(self, X, reset=False)
        outs = []
        for s in seqs:  # own outputs fed back from the zero state
            state = initial_state(net.spec, 1, 1)
            w = prepare(net.spec, net.genome)
            y0 = np.zeros((1, net.n_outputs))
            outs.append(closed_loop(net.spec, w, net.coef[None], state, y0, len(s), s[None] * net.input_scale,
                                    net.input_scale)[0, 0])
        return outs[0] if single else outs

    def score(self, X, y, sample_weight=None):
        """R^2 over all steps (of all sequences), see :func:`sklearn.metrics.r2_score`."""
        y_true, pred = self._flat(X, y, self.predict(X))
        return r2_score(y_true, pred, sample_weight=sample_weight)


class EvolinoClassifier(ClassifierMixin, _EvolinoBase):
    """LSTM sequence classifier trained by Evolino / Evoke.

    Per-step labels (``y`` ``(T,)`` per sequence: every step is classified from the
    steps up to it) or per-sequence labels (``X`` a list, ``y`` ``(n_sequences,)``:
    each sequence is classified at its last step). The readout fits 0/1 targets
    (one column for two classes, one-hot for more) by least squares
    (``"linear"``) or by maximum-margin SVMs, one per class (``"svc"``, Evoke).
    The fitness is the validation misclassification rate plus a margin term that
    only breaks ties (:func:`evolino.readout_svm.classification_loss`).

    Parameters
    ----------
    n_cells : int, default=10
    readout : {"linear", "svc"}, default="linear"
    ridge, C, kernel, max_samples, search, popsize, max_generations, search_options,
    washout, validation, input_scale, init_scale, peepholes, forget_gate, n_jobs, callbacks, random_state
        As in :class:`EvolinoRegressor`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_, spec_, genome_, readout_, history_, best_fitness_, seed_, per_sequence_
        As in :class:`EvolinoRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.normal(size=(20, 1)) + m for m in rng.choice([-1.0, 1.0], size=40)]
    >>> y = np.array(["up" if x.mean() > 0 else "down" for x in X])
    >>> clf = EvolinoClassifier(random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _readouts = ("linear", "svc")
    _multi_output = False

    def __init__(self, n_cells=10, *, readout="linear", ridge=0.0, C=1.0, kernel="linear", max_samples=None,
                 search="esp", popsize=40, max_generations=10, search_options=None, washout=0, validation=0.25,
                 input_scale=0.1, init_scale=1.0, peepholes=True, forget_gate=True, n_jobs=None,
                 callbacks=None, random_state=None):
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
        self.random_state = random_state

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

    def _validation_sequences(self, Y, v, seed):
        """Stratified: the ``v`` fraction of each class's sequences."""
        rng = as_rng(seed)
        labels = Y[:, 0] if Y.shape[1] == 1 else np.argmax(Y, axis=1)
        val = [rng.permutation(np.flatnonzero(labels == c))[: int(round(v * np.sum(labels == c)))]
               for c in np.unique(labels)]
        return np.sort(np.concatenate(val))

    def fit(self, X, y):
        """Evolve the network.

        Parameters
        ----------
        X : array of shape (T, n_features) or list of arrays (T_i, n_features)
        y : labels, array of shape (T,); for a list X: a list of such arrays (per step),
            or an array (n_sequences,) (one label per sequence)

        Returns
        -------
        self
        """
        return self._fit(X, y)

    def decision_function(self, X):
        """Decision values ``2 * output - 1``: ``(T,)`` for two classes (> 0: ``classes_[1]``), else
        ``(T, n_classes)``; a list for a list of sequences, ``(n_sequences, ...)`` if per sequence."""
        out = self._outputs(X)

        def d(o):
            return 2 * o[..., 0] - 1 if o.shape[-1] == 1 else 2 * o - 1

        return [d(o) for o in out] if isinstance(out, list) else d(out)

    def predict(self, X):
        """Labels: ``(T,)`` for one sequence, a list of those for a list, or ``(n_sequences,)`` if per sequence."""
        out = self._outputs(X)

        def labels(o):
            k = (o[..., 0] > 0.5).astype(np.intp) if o.shape[-1] == 1 else np.argmax(o, axis=-1)
            return self.classes_[k]

        return [labels(o) for o in out] if isinstance(out, list) else labels(out)

    def score(self, X, y, sample_weight=None):
        """Accuracy over all steps (of all sequences) or all sequences."""
        y_true, pred = self._flat(X, y, self.predict(X))
        return accuracy_score(y_true, pred, sample_weight=sample_weight)
