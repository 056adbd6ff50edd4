"""Baseline forecasters of benchmarks/forecasting.py, and their model selection.

Models (all with a ridge readout on features, in standardised units; :class:`Scaled`
converts to and from a task's units):

- :class:`ESN`: ReservoirPy ``Reservoir`` (its ``W``, ``Win``, bias initialisers and
  seed; bias drawn by ReservoirPy's ``bernoulli`` with the input scaling), the
  leaky-tanh update of ``Reservoir._step``, readout on the reservoir state.
- :class:`NVAR`: ReservoirPy's ``NVAR`` features (linear delayed inputs and their
  unique monomials of exactly ``order``; ``_monomial_idx`` taken from the node) —
  NG-RC of Gauthier et al., Nat. Commun. 2021; in feedback use it predicts the
  increment ``y[t] - y[t-1]`` as they do.
- :class:`LinearAR`: ridge regression on the last ``lags`` inputs.
- :class:`Persistence`: ``y_hat[t] = y[t-1]``.

The readout is ridge regression with an unpenalised intercept, the formula of
ReservoirPy's ``Ridge`` node (``W = (Fc'Fc + ridge I)^-1 Fc'Yc`` on centred
features, ``b = mean(Y) - mean(F) W``), computed once per feature set so that
every ridge of a grid reuses the Gram matrix. :func:`self_check` confirms the
batched loops here reproduce ReservoirPy's nodes and ``Ridge``.

Conventions, as evolino's networks: in feedback use the input at step ``t`` is
``Y[t-1]`` (0 at ``t = 0``) and the output at ``t`` predicts ``Y[t]``;
``generate(n, Y_prefix=...)`` teacher-forces the prefix, then feeds outputs back;
input-driven, the output at ``t`` predicts ``Y[t]`` from ``X[0..t]``.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import linalg

MAX_FEATURES = 1000  # NVAR sets larger than this are skipped (Gram matrix cost grows as features^2)


def shift(Y):
    """Teacher-forcing inputs ``(B, T, O)``: ``U[:, t] = Y[:, t-1]``, zeros at ``t = 0``."""
    return np.concatenate([np.zeros_like(Y[:, :1]), Y[:, :-1]], axis=1)


class RidgeReadout:
    """Centred ridge regression with unpenalised intercept, from features ``F (N, d)`` and targets ``(N, O)``."""

    def __init__(self, F, Y):
        self.mf, self.my = F.mean(axis=0), Y.mean(axis=0)
        Fc = F - self.mf
        self.G, self.C = Fc.T @ Fc, Fc.T @ (Y - self.my)

    def solve(self, ridge):
        A = self.G + ridge * np.eye(len(self.G))
        with warnings.catch_warnings():  # tiny ridges on rank-deficient features are ill-conditioned by design
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            try:
                W = linalg.solve(A, self.C, assume_a="pos")
            except linalg.LinAlgError:
                W = linalg.lstsq(A, self.C)[0]
        return W, self.my - self.mf @ W


class _Linear:
    """Features from a causal state machine + ridge readout; subclasses define ``init_state`` and ``step``."""

    feedback = True
    increment = False

    def run(self, U, state=None):
        """Features ``(B, T, d)`` of inputs ``U (B, T, I)`` from ``state`` (zero state if None)."""
        state = self.init_state(U.shape[0]) if state is None else state
        F = np.empty((U.shape[0], U.shape[1], self.n_features))
        for t in range(U.shape[1]):
            state, F[:, t] = self.step(state, U[:, t])
        return F, state

    def prepare(self, F, U, Y):
        """Readout statistics on feature rows ``F (B, N, d)``, inputs ``U`` and targets ``Y (B, N, O)``."""
        target = Y - U if self.increment else Y
        self._stats = RidgeReadout(F.reshape(-1, F.shape[-1]), target.reshape(-1, target.shape[-1]))

    def solve(self, ridge):
        self.W, self.b = self._stats.solve(ridge)
        return self

    def output(self, F, U):
        out = F @ self.W + self.b
        return out + U if self.increment else out

    def fit(self, Y, X=None, *, washout=0, ridge=1e-6):
        """Fit on one sequence ``Y (T, O)`` (inputs ``X (T, I)`` when input-driven)."""
        U = shift(Y[None]) if self.feedback else X[None]
        F, _ = self.run(U)
        self.prepare(F[:, washout:], U[:, washout:], Y[None, washout:])
        return self.solve(ridge)

    def warm(self, Y_prefix):
        """State after teacher forcing on ``Y_prefix (B, L, O)``, ready to consume ``Y_prefix[:, -1]``."""
        return self.run(shift(Y_prefix))[1]

    def free_run(self, state, y, n_steps):
        """``n_steps`` closed-loop outputs ``(B, n, O)`` from ``state``, first input ``y (B, O)``."""
        out = np.empty((y.shape[0], n_steps, y.shape[1]))
        with np.errstate(all="ignore"):  # a diverging free run is scored, not raised
            for t in range(n_steps):
                state, f = self.step(state, y)
                y = out[:, t] = self.output(f, y)
        return out

    def generate(self, n_steps, *, Y_prefix):
        Y = np.asarray(Y_prefix, dtype=np.float64)
        Yb = Y if Y.ndim == 3 else Y[None]
        out = self.free_run(self.warm(Yb), Yb[:, -1], n_steps)
        return out if Y.ndim == 3 else out[0]

    def predict(self, X=None, *, Y=None):
        A = np.asarray(Y if self.feedback else X, dtype=np.float64)
        Ab = A if A.ndim == 3 else A[None]
        U = shift(Ab) if self.feedback else Ab
        with np.errstate(all="ignore"):
            out = self.output(self.run(U)[0], U)
        return out if A.ndim == 3 else out[0]


class ESN(_Linear):
    """Echo state network: a ReservoirPy ``Reservoir`` run in batches, ridge readout on its state.

    Parameters
    ----------
    n_inputs : int
    units, sr, lr, input_scaling : ReservoirPy ``Reservoir`` parameters (bias scaled like the input)
    seed : int
    feedback : bool
    """

    def __init__(self, n_inputs, *, units=500, sr=0.9, lr=1.0, input_scaling=1.0, seed=0, feedback=True):
        from reservoirpy.mat_gen import bernoulli
        from reservoirpy.nodes import Reservoir

        self.feedback = feedback
        self.node = Reservoir(units, sr=sr, lr=lr, input_scaling=input_scaling,
                              bias=bernoulli(input_scaling=input_scaling), seed=seed, input_dim=n_inputs)
        self.node.initialize(np.zeros((1, n_inputs)))
        self.Wr = self.node.W.tocsr()  # sparse (units, units): W @ S.T is the fastest product here
        self.WinT = np.asarray(self.node.Win.todense() if hasattr(self.node.Win, "todense") else self.node.Win).T
        self.bias = np.asarray(self.node.bias, dtype=np.float64).reshape(-1)
        self.lr = float(lr)
        self.n_features = units

    def init_state(self, B):
        return np.zeros((B, self.n_features))

    def step(self, S, u):
        # Reservoir._step: x <- (1 - lr) x + lr tanh(W x + Win u + bias), for a batch of states
        S = (1.0 - self.lr) * S + self.lr * np.tanh((self.Wr @ S.T).T + u @ self.WinT + self.bias)
        return S, S


class NVAR(_Linear):
    """NG-RC / nonlinear vector autoregression with ReservoirPy's ``NVAR`` features.

    Parameters
    ----------
    n_inputs : int
    delay, order, strides : ReservoirPy ``NVAR`` parameters (lags ``0, s, ..., (delay-1) s``;
        linear features plus all unique monomials of exactly ``order``)
    feedback : bool
        Predict increments (NG-RC) when True, the target itself otherwise.
    """

    def __init__(self, n_inputs, *, delay=2, order=2, strides=1, feedback=True):
        from reservoirpy.nodes import NVAR as _NVAR

        self.node = _NVAR(delay=delay, order=order, strides=strides)
        self.node.initialize(np.zeros((1, n_inputs)))
        self.idx = self.node._monomial_idx
        self.delay, self.strides, self.n_inputs = delay, strides, n_inputs
        self.feedback = self.increment = feedback
        self.n_features = self.node.output_dim

    def init_state(self, B):
        return np.zeros((B, self.delay * self.strides, self.n_inputs))  # newest input first, as NVAR.store

    def step(self, store, u):
        store = np.concatenate([u[:, None], store[:, :-1]], axis=1)
        lin = store[:, :: self.strides].reshape(store.shape[0], -1)
        return store, np.concatenate([lin, np.prod(lin[:, self.idx], axis=2)], axis=1)


class LinearAR(_Linear):
    """Ridge regression on the last ``lags`` inputs (an AR model in feedback use, an FIR filter input-driven)."""

    def __init__(self, n_inputs, *, lags=4, feedback=True):
        self.lags, self.n_inputs, self.feedback = lags, n_inputs, feedback
        self.n_features = lags * n_inputs

    def init_state(self, B):
        return np.zeros((B, self.lags, self.n_inputs))

    def step(self, store, u):
        store = np.concatenate([u[:, None], store[:, :-1]], axis=1)
        return store, store.reshape(store.shape[0], -1)


class Persistence:
    """``y_hat[t] = y[t-1]``; closed loop: the last prefix value repeated.

    ``targets`` (input-driven tasks only): the observed outputs ``(T, O)``, whose
    previous value is the prediction — information the other rows do not get.
    """

    def __init__(self, targets=None):
        self.targets = targets

    def generate(self, n_steps, *, Y_prefix):
        Y = np.asarray(Y_prefix, dtype=np.float64)
        return np.repeat(Y[..., -1:, :], n_steps, axis=-2)

    def predict(self, X=None, *, Y=None):
        Y = self.targets if Y is None else np.asarray(Y, dtype=np.float64)
        return np.concatenate([Y[..., :1, :], Y[..., :-1, :]], axis=-2)


class Scaled:
    """Wraps a model fitted in standardised units so that it reads and returns a task's units."""

    def __init__(self, model, y_mean, y_std, x_mean=None, x_std=None):
        self.model, self.ym, self.ys, self.xm, self.xs = model, y_mean, y_std, x_mean, x_std

    def generate(self, n_steps, *, Y_prefix):
        return self.model.generate(n_steps, Y_prefix=(np.asarray(Y_prefix) - self.ym) / self.ys) * self.ys + self.ym

    def predict(self, X=None, *, Y=None):
        if Y is not None:
            return self.model.predict(Y=(np.asarray(Y) - self.ym) / self.ys) * self.ys + self.ym
        return self.model.predict((np.asarray(X) - self.xm) / self.xs) * self.ys + self.ym


# --- model selection ------------------------------------------------------------------
@dataclass
class Protocol:
    """Validation carved from a task's training part, in standardised units.

    ``mode``: ``"closed"`` (free runs), ``"onestep"`` (teacher-forced one-step) or
    ``"driven"`` (input-driven). Readouts are fitted on rows ``[washout, split)``
    and scored on ``[split, T)``: closed loop on windows starting at
    ``split, split + stride, ...`` (prefix = the previous ``warm`` samples, or all
    of them if ``warm`` is None; ``horizon`` free-run steps), otherwise one-step.
    ``loss(pred, truth)`` (``(B, H, O)`` each) is lower-is-better.
    """

    mode: str
    Y: np.ndarray
    X: np.ndarray | None
    washout: int
    split: int
    loss: Callable
    warm: int | None = None
    horizon: int = 0
    stride: int = 1

    def inputs(self):
        return self.X[None] if self.mode == "driven" else shift(self.Y[None])

    def windows(self):
        starts = range(self.split, len(self.Y) - self.horizon + 1, self.stride)
        warm = self.warm
        if warm is None:  # a single window whose prefix is everything before it
            starts, warm = [self.split], self.split
        pre = np.stack([self.Y[s - warm : s] for s in starts])
        return pre, np.stack([self.Y[s : s + self.horizon] for s in starts])


def safe(loss):
    return float(loss) if np.isfinite(loss) else np.inf


def select(proto, make, configs, ridges):
    """Pick a feature configuration and a ridge on ``proto``, then refit on all training rows.

    ``make(**config)`` builds a model; the teacher-forced features of the whole
    training series are computed once per configuration (they are causal, so rows
    before ``split`` never see the validation part) and reused by every ridge.
    Returns ``(model, chosen dict, validation loss, configurations tried)``.
    """
    U, Y = proto.inputs(), proto.Y[None]
    w, s = proto.washout, proto.split
    best, tried = (np.inf, None), 0
    if proto.mode == "closed":
        pre, truth = proto.windows()
    for cfg in configs:
        model = make(**cfg)
        if model.n_features > MAX_FEATURES:
            continue
        F, _ = model.run(U)
        model.prepare(F[:, w:s], U[:, w:s], Y[:, w:s])
        state = model.warm(pre) if proto.mode == "closed" else None
        for ridge in ridges:
            tried += 1
            model.solve(ridge)
            with np.errstate(all="ignore"):
                if proto.mode == "closed":
                    loss = proto.loss(model.free_run(state, pre[:, -1], proto.horizon), truth)
                else:
                    loss = proto.loss(model.output(F[:, s:], U[:, s:]), Y[:, s:])
            if safe(loss) < best[0] or best[1] is None:
                best = (safe(loss), dict(cfg, ridge=ridge))
    if best[1] is None:
        raise ValueError(f"every configuration has more than MAX_FEATURES = {MAX_FEATURES} features")
    chosen = dict(best[1])
    ridge = chosen.pop("ridge")
    model = make(**chosen)
    F, _ = model.run(U)
    model.prepare(F[:, w:], U[:, w:], Y[:, w:])
    model.solve(ridge)
    return model, dict(chosen, ridge=ridge), best[0], tried


def grid(**axes):
    """All combinations of the keyword axes, as dicts."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def self_check(seed=0):
    """Assert that the batched loops reproduce ReservoirPy's Reservoir, NVAR and Ridge nodes."""
    from reservoirpy.nodes import Ridge

    rng = np.random.default_rng(seed)
    U = rng.normal(size=(60, 2))
    esn = ESN(2, units=50, sr=1.1, lr=0.4, input_scaling=0.7, seed=seed)
    np.testing.assert_allclose(esn.run(U[None])[0][0], esn.node.run(U), rtol=1e-10, atol=1e-12)
    nv = NVAR(2, delay=3, order=2, strides=2)
    np.testing.assert_allclose(nv.run(U[None])[0][0], nv.node.run(U), rtol=1e-10, atol=1e-12)
    F, Y = esn.node.run(U), rng.normal(size=(60, 3))
    node = Ridge(ridge=1e-3).fit(F, Y)
    W, b = RidgeReadout(F, Y).solve(1e-3)
    np.testing.assert_allclose(W, node.Wout, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b, np.ravel(node.bias), rtol=1e-6, atol=1e-9)
