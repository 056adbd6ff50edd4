"""Support-vector readouts (Evoke: Schmidhuber, Gagliolo, Wierstra & Gomez, ESANN 2006).

Evoke replaces Evolino's pseudo-inverse by a support vector machine fitted on the
cell outputs of the evolved LSTM: :class:`SVR` (epsilon-insensitive regression)
and :class:`SVC` (maximum-margin classification of 0/1 targets, one binary
machine per output column). Both follow the readout interface of
:class:`evolino.readout.Linear`: ``fit(S (P, N, H), Y (N, O) | (P, N, O)) -> self``
fits one machine per candidate and output; with the linear kernel (the default,
as in Evoke) the result is ``coef_ (P, H + 1, O)`` (row ``H`` the bias), so an SVM
readout works wherever the linear one does, closed loop included.

Choices, and why:

- **Standardized states** (``standardize=True``): the SVM's ``C`` and kernel widths
  are scale-dependent while evolved states can have any scale (``input_scale``
  1e-3 gives states that vary by 1e-3). Each candidate's states are centred and
  divided by their standard deviation per cell before the fit; the scaling is
  folded back into ``coef_``.
- **SVC outputs on the 0/1 target scale**: the output is ``(1 + d) / 2`` for the
  SVM decision value ``d``, so the margin hyperplanes ``d = -1, +1`` map to the
  targets 0 and 1 and every consumer thresholds at 0.5, whatever the readout.
- **Cost** (measured by ``benchmarks/anbncn.py``, RESULTS.md): one SVM
  per candidate and output is 10-100x the batched least-squares solve. The
  ``liblinear`` solver (``LinearSVR``/``LinearSVC``, default for the linear
  kernel) is several times faster than ``libsvm`` but penalises the bias a
  little (``SVR`` therefore centres its targets first); ``max_samples`` fits
  each candidate on evenly spaced states during evolution, and
  ``for_final()`` gives the same readout without the subsample for the final
  network. Whether Evoke subsampled is not known (benchmarks/REFERENCES.md §2).
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np

from ._validate import EvolinoError, EvolinoTypeError, check_array, check_choice, check_number, check_positive_int
from .metrics import classification_loss

__all__ = ["SVR", "SVC", "KERNELS"]

KERNELS = ("linear", "rbf", "poly", "sigmoid")
SOLVERS = ("auto", "libsvm", "liblinear")


def _subsample(N: int, max_samples) -> np.ndarray:
    """Evenly spaced indices (deterministic, covering the whole series) of at most ``max_samples`` of ``N``."""
    if max_samples is None or N <= max_samples:
        return np.arange(N)
    return np.unique(np.linspace(0, N - 1, max_samples).round().astype(np.intp))


class _SVMReadout:
    """Shared machinery of :class:`SVR` and :class:`SVC` (one scikit-learn machine per candidate and output)."""

    # liblinear draws its coordinate order from the C library's one global rand(), reseeded per fit and used
    # without the GIL: two fits at once on two threads interleave their draws and the solutions change with
    # the timing. So a fitness with this readout is never spread over threads (EvolinoFitness._on_threads).
    thread_safe = False

    def __init__(self, *, kernel="linear", C=1.0, gamma="scale", degree=3, coef0=0.0, standardize=True,
                 solver="auto", max_samples=None, tol=1e-3, max_iter=None):
        self.kernel = kernel
        self.C = C
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.standardize = standardize
        self.solver = solver
        self.max_samples = max_samples
        self.tol = tol
        self.max_iter = max_iter

    def __repr__(self):
        names = ("kernel", "C", "epsilon", "gamma", "degree", "coef0", "standardize", "solver", "max_samples",
                 "tol", "max_iter")
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in names if hasattr(self, k))
        return f"{type(self).__name__}({args})"

    # --- options ---------------------------------------------------------------
    def _check_options(self) -> dict:
        opts = {
            "kernel": check_choice(self.kernel, "kernel", KERNELS),
            "C": check_number(self.C, "C", low=0.0, low_open=True),
            "tol": check_number(self.tol, "tol", low=0.0, low_open=True),
            "degree": check_positive_int(self.degree, "degree"),
            "coef0": check_number(self.coef0, "coef0"),
        }
        if isinstance(self.gamma, str):
            opts["gamma"] = check_choice(self.gamma, "gamma", ("scale", "auto"))
        else:
            opts["gamma"] = check_number(self.gamma, "gamma", low=0.0, low_open=True)
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise EvolinoTypeError(f"standardize must be a bool, got {self.standardize!r}")
        solver = check_choice(self.solver, "solver", SOLVERS)
        if solver == "auto":
            solver = "liblinear" if opts["kernel"] == "linear" else "libsvm"
        if solver == "liblinear" and opts["kernel"] != "linear":
            raise EvolinoError(f"solver='liblinear' needs kernel='linear', got kernel={self.kernel!r}")
        opts["solver"] = solver
        opts["max_samples"] = (None if self.max_samples is None
                               else check_positive_int(self.max_samples, "max_samples", minimum=2))
        opts["max_iter"] = None if self.max_iter is None else check_positive_int(self.max_iter, "max_iter")
        return opts

    def for_final(self):
        """A copy (unfitted) that fits on all states: the readout of the final network."""
        new = copy.copy(self)
        new.__dict__ = {k: v for k, v in self.__dict__.items() if not k.endswith("_")}
        new.max_samples = None
        return new

    # --- fitting ---------------------------------------------------------------
    def _check_targets(self, Y):  # overridden by SVC
        return Y

    def _machine(self, opts):  # one unfitted scikit-learn estimator
        raise NotImplementedError

    def _fit_one(self, model, A, y):
        """Fit ``model`` on standardized states ``A`` ``(n, H)``, targets ``y`` ``(n,)`` -> (model, (w, b) | None)."""
        raise NotImplementedError

    def fit(self, S, Y):
        """Fit one machine per candidate and output.

        Parameters
        ----------
        S : array of shape (P, N, H)
            States of ``P`` candidates.
        Y : array of shape (N,), (N, O) or (P, N, O)
            Targets (``SVC``: 0/1 labels per output column).

        Returns
        -------
        self
        """
        opts = self._check_options()
        S = check_array(S, "S", ndims=(3,), dtype=np.float64, finite=True)
        Y = check_array(Y, "Y", ndims=(1, 2, 3), dtype=np.float64, finite=True)
        if Y.ndim == 1:
            Y = Y[:, None]
        P, N, H = S.shape
        if N == 0:
            raise EvolinoError("S must hold at least one time step (axis 1), got 0")
        if Y.shape[-2] != N or (Y.ndim == 3 and Y.shape[0] != P):
            raise EvolinoError(f"Y must have shape ({N}, O) or ({P}, {N}, O) to match S {S.shape}, got {Y.shape}")
        Y = self._check_targets(np.broadcast_to(Y, (P, N, Y.shape[-1])))
        O = Y.shape[-1]
        idx = _subsample(N, opts["max_samples"])
        Ss, Ys = S[:, idx], Y[:, idx]  # (P, n, H), (P, n, O)
        if self.standardize:
            mu = Ss.mean(axis=1)  # (P, H)
            sd = Ss.std(axis=1)
            sd = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(mu)), sd, 1.0)  # constant cell: leave as is
        else:
            mu, sd = np.zeros((P, H)), np.ones((P, H))
        linear = opts["kernel"] == "linear"
        coef = np.zeros((P, H + 1, O)) if linear else None
        models = [[None] * O for _ in range(P)]
        self.n_unconverged_ = 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for p in range(P):
                A = (Ss[p] - mu[p]) / sd[p]  # (n, H)
                for o in range(O):
                    model, wb = self._fit_one(self._machine(opts), A, Ys[p, :, o])
                    models[p][o] = model
                    if linear:
                        w, b = wb
                        coef[p, :H, o] = w / sd[p]  # fold the standardization back into the weights
                        coef[p, H, o] = b - w @ (mu[p] / sd[p])
        from sklearn.exceptions import ConvergenceWarning

        for w in caught:  # many random candidates are ill-posed: count, do not flood the console
            if issubclass(w.category, ConvergenceWarning):
                self.n_unconverged_ += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.n_features_ = H
        self.n_outputs_ = O
        if linear:
            self.coef_ = coef
            self.__dict__.pop("models_", None)
        else:
            self.models_, self.mean_, self.scale_ = models, mu, sd
            self.__dict__.pop("coef_", None)
        return self

    # --- prediction ------------------------------------------------------------
    def _decision(self, model, A):  # -> (n,) on the output scale
        raise NotImplementedError

    def predict(self, S) -> np.ndarray:
        """Outputs ``(P, N, O)`` for states ``S`` ``(P, N, H)`` (or ``(P, B, N, H)`` -> ``(P, B, N, O)``)."""
        if not hasattr(self, "n_outputs_"):
            raise EvolinoError(f"this {type(self).__name__} readout is not fitted yet: call fit(S, Y) first")
        S = check_array(S, "S", ndims=(3, 4), dtype=np.float64)
        P = len(self.coef_) if hasattr(self, "coef_") else len(self.models_)
        if S.shape[0] != P or S.shape[-1] != self.n_features_:
            raise EvolinoError(f"S must have shape ({P}, ..., {self.n_features_}) for this readout, got {S.shape}")
        if hasattr(self, "coef_"):
            W = self.coef_ if S.ndim == 3 else self.coef_[:, None]
            return S @ W[..., :-1, :] + W[..., -1:, :]
        out = np.empty(S.shape[:-1] + (self.n_outputs_,))
        for p in range(P):
            A = ((S[p] - self.mean_[p]) / self.scale_[p]).reshape(-1, S.shape[-1])
            for o in range(self.n_outputs_):
                out[p, ..., o] = self._decision(self.models_[p][o], A).reshape(S.shape[1:-1])
        return out


class SVR(_SVMReadout):
    """Epsilon-insensitive support vector regression readout for a population (Evoke).

    Parameters
    ----------
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
        Only the linear kernel gives ``coef_`` (needed by the closed loop and
        :class:`~evolino.model.EvolinoNetwork`); the others keep the fitted machines.
    C : float, default=1.0
        Inverse regularization strength, > 0.
    epsilon : float, default=0.1
        Width of the insensitive tube, in target units, >= 0.
    gamma : {"scale", "auto"} or float, default="scale"
        Kernel coefficient of rbf, poly and sigmoid (scikit-learn's meaning).
    degree : int, default=3
    coef0 : float, default=0.0
    standardize : bool, default=True
        Centre and scale each candidate's states per cell before the fit.
    solver : {"auto", "libsvm", "liblinear"}, default="auto"
        ``"auto"``: ``liblinear`` (``sklearn.svm.LinearSVR``, bias slightly
        penalised, targets centred first) for the linear kernel, else ``libsvm``
        (``sklearn.svm.SVR``, exact dual with a free bias).
    max_samples : int, optional
        Fit on at most this many evenly spaced states (speed during evolution).
    tol : float, default=1e-3
    max_iter : int, optional
        Solver iteration cap (scikit-learn's default if None).

    Attributes
    ----------
    coef_ : ndarray of shape (P, H + 1, O)
        Linear kernel only; row ``H`` is the bias.
    models_ : list of P lists of O fitted scikit-learn machines
        Non-linear kernels only (with ``mean_``, ``scale_`` of shape ``(P, H)``).
    n_unconverged_ : int
        Machines whose solver stopped at ``max_iter``.

    Examples
    --------
    >>> import numpy as np
    >>> S = np.random.default_rng(0).normal(size=(2, 60, 3))
    >>> SVR(epsilon=0.01).fit(S, S[0] @ np.ones((3, 1))).coef_.shape
    (2, 4, 1)
    """

    def __init__(self, *, kernel="linear", C=1.0, epsilon=0.1, gamma="scale", degree=3, coef0=0.0,
                 standardize=True, solver="auto", max_samples=None, tol=1e-3, max_iter=None):
        super().__init__(kernel=kernel, C=C, gamma=gamma, degree=degree, coef0=coef0, standardize=standardize,
                         solver=solver, max_samples=max_samples, tol=tol, max_iter=max_iter)
        self.epsilon = epsilon

    def _check_options(self):
        opts = super()._check_options()
        opts["epsilon"] = check_number(self.epsilon, "epsilon", low=0.0)
        return opts

    def _machine(self, opts):
        from sklearn import svm

        if opts["solver"] == "liblinear":
            return svm.LinearSVR(C=opts["C"], epsilon=opts["epsilon"], tol=opts["tol"], loss="epsilon_insensitive",
                                 dual=True, random_state=0, max_iter=opts["max_iter"] or 1000)
        return svm.SVR(kernel=opts["kernel"], C=opts["C"], epsilon=opts["epsilon"], gamma=opts["gamma"],
                       degree=opts["degree"], coef0=opts["coef0"], tol=opts["tol"],
                       max_iter=opts["max_iter"] or -1)

    def _fit_one(self, model, A, y):
        from sklearn.svm import LinearSVR

        if isinstance(model, LinearSVR):
            shift = float(y.mean())  # liblinear penalises the bias: fit the centred targets
            model.fit(A, y - shift)
            return model, (model.coef_.ravel(), float(np.ravel(model.intercept_)[0]) + shift)
        model.fit(A, y)
        if model.kernel == "linear":
            return model, (model.coef_.ravel(), float(model.intercept_[0]))
        return model, None

    def _decision(self, model, A):
        return model.predict(A)


class SVC(_SVMReadout):
    """Maximum-margin classification readout for a population (Evoke): one binary SVM per output column.

    Targets are 0/1 per output column (multi-label, or one-hot rows for one
    class out of several). The output is ``(1 + d) / 2`` for the decision value
    ``d``: above 0.5 means "label on", and the margins ``d = -1, +1`` sit at the
    targets 0 and 1. A column holding one label only gets that constant output.

    Parameters
    ----------
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
    C : float, default=1.0
    gamma, degree, coef0, standardize, max_samples, tol, max_iter
        As in :class:`SVR`.
    solver : {"auto", "libsvm", "liblinear"}, default="auto"
        ``liblinear``: ``sklearn.svm.LinearSVC(loss="hinge")`` (bias slightly
        penalised); ``libsvm``: ``sklearn.svm.SVC``.

    Attributes
    ----------
    coef_ : ndarray of shape (P, H + 1, O)
        Linear kernel only, on the output scale ``(1 + d) / 2``.
    models_, n_unconverged_
        As in :class:`SVR`.

    Examples
    --------
    >>> import numpy as np
    >>> S = np.random.default_rng(0).normal(size=(2, 60, 3))
    >>> Y = (S[0, :, :1] > 0).astype(float)
    >>> out = SVC().fit(S, Y).predict(S)
    >>> bool(((out[0] > 0.5) == Y).mean() > 0.9)
    True
    """

    def _check_targets(self, Y):
        if not np.all((Y == 0) | (Y == 1)):
            raise EvolinoError("Y must hold 0/1 labels for the SVC readout (one column per label)")
        return Y

    def _machine(self, opts):
        from sklearn import svm

        if opts["solver"] == "liblinear":
            return svm.LinearSVC(C=opts["C"], tol=opts["tol"], loss="hinge", dual=True, random_state=0,
                                 max_iter=opts["max_iter"] or 1000)
        return svm.SVC(kernel=opts["kernel"], C=opts["C"], gamma=opts["gamma"], degree=opts["degree"],
                       coef0=opts["coef0"], tol=opts["tol"], max_iter=opts["max_iter"] or -1)

    def _fit_one(self, model, A, y):
        if y.min() == y.max():  # one label only: a constant output at that target
            const = float(y[0])
            return const, (np.zeros(A.shape[1]), const)
        model.fit(A, y.astype(np.intp))  # classes_ = [0, 1]: d > 0 means label 1
        if getattr(model, "kernel", "linear") == "linear":
            return model, (0.5 * model.coef_.ravel(), 0.5 * (1.0 + float(np.ravel(model.intercept_)[0])))
        return model, None

    def _decision(self, model, A):
        if isinstance(model, numbers.Real):
            return np.full(len(A), float(model))
        return 0.5 * (1.0 + model.decision_function(A))

    def decision_function(self, S) -> np.ndarray:
        """Decision values ``d = 2 * predict(S) - 1`` (the SVM's own scale: margins at -1 and +1)."""
        return 2.0 * self.predict(S) - 1.0

    @staticmethod
    def validation_loss(out, Y) -> np.ndarray:
        """Fitness of outputs ``(P, N, O)`` against 0/1 targets: see :func:`classification_loss` (multi-label)."""
        return classification_loss(out, Y, multilabel=True)
