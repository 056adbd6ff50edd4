"""BPTTTrainer: gradient training of the LSTM of :mod:`evolino.lstm` (see :mod:`evolino.bptt.grad`)."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from .._validate import as_rng, check_array, check_choice, check_number, check_positive_int
from ..lstm import LSTMSpec
from .grad import _check_params, _check_sequences, _loss_and_grad, _run, _weights, forward

__all__ = ["BPTTTrainer"]


# --- optimizers -----------------------------------------------------------------------
class _Adam:
    """Adam (Kingma & Ba 2015) with bias correction, on a flat parameter vector."""

    def __init__(self, n, dtype, lr, betas, eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = np.zeros(n, dtype)
        self.v = np.zeros(n, dtype)
        self.t = 0

    def step(self, theta, grad):
        self.t += 1
        self.m *= self.b1
        self.m += (1.0 - self.b1) * grad
        self.v *= self.b2
        self.v += (1.0 - self.b2) * grad * grad
        m_hat = self.m / (1.0 - self.b1**self.t)
        v_hat = self.v / (1.0 - self.b2**self.t)
        theta -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class _SGD:
    """SGD with (heavy-ball) momentum in PyTorch's form: ``v = mu v + g``, ``theta -= lr v``."""

    def __init__(self, n, dtype, lr, momentum):
        self.lr, self.mu = lr, momentum
        self.v = np.zeros(n, dtype)

    def step(self, theta, grad):
        self.v *= self.mu
        self.v += grad
        theta -= self.lr * self.v


def _clip(grad: np.ndarray, clip: float | None) -> float:
    """Scale ``grad`` in place to norm ``<= clip``; returns the norm before clipping."""
    norm = float(np.sqrt(np.dot(grad, grad)))
    if clip is not None and norm > clip:
        grad *= clip / norm
    return norm


# --- trainer --------------------------------------------------------------------------
class BPTTTrainer:
    """Train the Evolino LSTM and its linear output layer by (truncated) BPTT.

    Parameters
    ----------
    spec_or_n_cells : LSTMSpec or int
        The network, or its number of cells ``H`` (then ``n_inputs`` is taken from
        ``X`` at :meth:`fit`, with ``peepholes``, ``forget_gate`` and ``dtype``).
    n_outputs : int, default=1
    lr : float, default=1e-2
        Learning rate, > 0.
    optimizer : {'adam', 'sgd'}, default='adam'
        Adam, or SGD with momentum ``momentum``.
    clip : float or None, default=1.0
        Maximal Euclidean norm of the whole gradient (genome and output weights
        together); larger gradients are scaled down. ``None`` disables clipping.
    epochs : int, default=100
        Passes over the training sequences.
    batch_size : int or None, default=16
        Sequences per mini-batch (drawn without replacement, reshuffled every
        epoch); ``None`` uses all sequences.
    truncate : int or None, default=None
        Truncated BPTT window: one optimizer step per chunk of ``truncate`` steps,
        the state carried over from the previous chunk. ``None``: full BPTT, one
        step per mini-batch.
    washout : int, default=0
        Leading steps of every sequence that do not count in the loss.
    patience : int or None, default=10
        Stop after this many epochs without a new best monitored loss (the
        validation loss if validation data are given, else the epoch's training
        loss). ``None`` never stops early.
    momentum : float, default=0.9
        Momentum of ``optimizer='sgd'``, in ``[0, 1)``.
    betas : tuple of float, default=(0.9, 0.999)
        Adam's decay rates, each in ``[0, 1)``.
    init_scale : float, default=1.0
        Scale of the initial hidden weights (see :meth:`LSTMSpec.init`).
    max_time : float or None, default=None
        Wall-clock budget in seconds, checked at the end of every epoch.
    peepholes, forget_gate : bool, default=True
        Only used when ``spec_or_n_cells`` is an int.
    dtype : numpy dtype, default=np.float64
        Only used when ``spec_or_n_cells`` is an int.
    callbacks : sequence of callables, default=()
        ``callback(status) -> bool | None`` after every epoch; ``True`` stops.
        ``status`` holds ``epoch``, ``train_loss``, ``val_loss``, ``best_loss``,
        ``elapsed``.
    seed : int, numpy.random.Generator or None
        Seeds the initial weights and the mini-batch order.

    Attributes
    ----------
    spec_ : LSTMSpec
    genome_ : ndarray of shape (n_params,)
        Hidden weights of the best epoch (lowest monitored loss).
    coef_ : ndarray of shape (H + 1, O)
        Output weights of the best epoch; row ``H`` is the bias.
    history_ : dict of lists
        Per epoch: ``epoch``, ``train_loss`` (mean of the epoch's mini-batch
        losses, during training), ``val_loss`` (NaN without validation data),
        ``time`` (seconds since the start of :meth:`fit`).
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial weights).
    stop_reason_ : str
        ``'epochs'``, ``'patience'``, ``'max_time'``, ``'callback'`` or ``'diverged'``.

    Examples
    --------
    >>> import numpy as np
    >>> from evolino.bptt import teacher_forcing
    >>> t = np.arange(120.0)
    >>> inputs, targets = teacher_forcing(np.sin(0.2 * t)[:, None])
    >>> tr = BPTTTrainer(4, epochs=5, washout=10, seed=0).fit(targets, X=inputs)
    >>> tr.coef_.shape, len(tr.history_["train_loss"])
    ((5, 1), 5)
    """

    def __init__(
        self,
        spec_or_n_cells,
        *,
        n_outputs=1,
        lr=1e-2,
        optimizer="adam",
        clip=1.0,
        epochs=100,
        batch_size=16,
        truncate=None,
        washout=0,
        patience=10,
        momentum=0.9,
        betas=(0.9, 0.999),
        init_scale=1.0,
        max_time=None,
        peepholes=True,
        forget_gate=True,
        dtype=np.float64,
        callbacks=(),
        seed=None,
    ):
        self.spec_or_n_cells = spec_or_n_cells
        self.n_outputs = n_outputs
        self.lr = lr
        self.optimizer = optimizer
        self.clip = clip
        self.epochs = epochs
        self.batch_size = batch_size
        self.truncate = truncate
        self.washout = washout
        self.patience = patience
        self.momentum = momentum
        self.betas = betas
        self.init_scale = init_scale
        self.max_time = max_time
        self.peepholes = peepholes
        self.forget_gate = forget_gate
        self.dtype = dtype
        self.callbacks = callbacks
        self.seed = seed

    # --- setup ------------------------------------------------------------------------
    def _check_options(self):
        check_number(self.lr, "lr", low=0.0, low_open=True)
        check_choice(self.optimizer, "optimizer", ("adam", "sgd"))
        if self.clip is not None:
            check_number(self.clip, "clip", low=0.0, low_open=True)
        check_positive_int(self.epochs, "epochs")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        if self.truncate is not None:
            check_positive_int(self.truncate, "truncate")
        check_positive_int(self.washout, "washout", minimum=0)
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        check_positive_int(self.n_outputs, "n_outputs")
        mu = check_number(self.momentum, "momentum", low=0.0)
        if mu >= 1.0:
            raise ValueError(f"momentum must be < 1, got {mu}")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {self.betas!r}")
        for beta in self.betas:
            if not 0.0 <= check_number(beta, "betas") < 1.0:
                raise ValueError(f"betas must lie in [0, 1), got {self.betas!r}")
        check_number(self.init_scale, "init_scale", low=0.0, low_open=True)
        if self.max_time is not None:
            check_number(self.max_time, "max_time", low=0.0, low_open=True)
        if callable(self.callbacks) or not all(callable(cb) for cb in self.callbacks):
            raise TypeError("callbacks must be a sequence of callables")

    def _make_spec(self, n_inputs: int) -> LSTMSpec:
        s = self.spec_or_n_cells
        if isinstance(s, LSTMSpec):
            return s
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"spec_or_n_cells must be an LSTMSpec or an int, got {s!r}")
        check_positive_int(s, "spec_or_n_cells")
        return LSTMSpec(n_inputs, int(s), peepholes=self.peepholes, forget_gate=self.forget_gate, dtype=self.dtype)

    def _make_optimizer(self, n, dtype):
        if self.optimizer == "adam":
            return _Adam(n, dtype, float(self.lr), tuple(float(b) for b in self.betas))
        return _SGD(n, dtype, float(self.lr), float(self.momentum))

    # --- fit --------------------------------------------------------------------------
    def fit(self, Y, *args, X=None, Y_val=None, X_val=None, init_genome=None, init_coef=None) -> "BPTTTrainer":
        """Train on sequences ``X`` -> ``Y``; keep the weights of the best epoch.

        Same argument order as :meth:`evolino.Evolino.fit`: targets first, inputs by keyword.

        Parameters
        ----------
        Y : array of shape (T, O) or (B, T, O)
            Targets.
        X : array of shape (T, I) or (B, T, I), keyword only, required
            Input sequences (for generation tasks, see :func:`teacher_forcing`).
        X_val, Y_val : arrays of shape (T', I) / (T', O) or (B', T', I) / (B', T', O), optional
            Validation sequences (same washout) for early stopping and model
            selection; both or neither.
        init_genome : array of shape (n_params,), optional
            Initial hidden weights instead of ``spec.init(seed)``.
        init_coef : array of shape (H + 1, O), optional
            Initial output weights instead of small uniform ones.

        Returns
        -------
        self
        """
        if args:
            raise TypeError("BPTTTrainer.fit takes the targets first and the inputs by keyword: fit(Y, X=X); "
                            "a second positional argument is refused so that inputs and targets are never swapped")
        if X is None:
            raise ValueError("X is required: BPTTTrainer.fit(Y, X=inputs) (for generation tasks "
                             "X, Y = teacher_forcing(series))")
        self._check_options()
        X_arr = check_array(X, "X", ndims=(2, 3))
        spec = self._make_spec(X_arr.shape[-1])
        washout, O = int(self.washout), int(self.n_outputs)
        X, Y = _check_sequences(spec, X_arr, Y, O, washout)
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val and Y_val must be given together")
        val = None
        if X_val is not None:
            Xv, Yv = _check_sequences(spec, X_val, Y_val, O, washout, names=("X_val", "Y_val"))
            val = (Xv.transpose(1, 0, 2), Yv.transpose(1, 0, 2))
        rng = as_rng(self.seed)
        H, dt = spec.n_cells, spec.dtype
        genome = spec.init(rng, 1, float(self.init_scale))[0] if init_genome is None else init_genome
        if init_coef is None:
            a = 1.0 / np.sqrt(H + 1)
            init_coef = rng.uniform(-a, a, (H + 1, O)).astype(dt)
        genome, coef = _check_params(spec, genome, init_coef, O, names=("init_genome", "init_coef"))
        n = spec.n_params
        theta = np.concatenate([genome, coef.ravel()])  # one flat vector for clipping and the optimizer
        opt = self._make_optimizer(theta.size, dt)
        clip = None if self.clip is None else float(self.clip)

        self.spec_ = spec
        self.history_ = {"epoch": [], "train_loss": [], "val_loss": [], "time": []}
        best_theta, best_loss, best_epoch, reason = theta.copy(), np.inf, 0, "epochs"
        B = X.shape[0]
        bs = B if self.batch_size is None else min(int(self.batch_size), B)
        t0 = time.perf_counter()
        for epoch in range(1, int(self.epochs) + 1):
            order = rng.permutation(B)
            losses, weights = [], []
            for s in range(0, B, bs):
                idx = order[s : s + bs]
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected below
                    ok = self._train_batch(spec, theta, opt, clip, X[idx], Y[idx], losses, weights)
                if not ok:
                    reason = "diverged"
                    break
            if reason == "diverged":
                self._warn_diverged(epoch, losses[-1], best_epoch)
                break
            train_loss = float(np.average(losses, weights=weights))
            val_loss = np.nan
            if val is not None:
                val_loss = self._mse(spec, theta[:n], theta[n:].reshape(H + 1, O), *val, washout)
            monitored = val_loss if val is not None else train_loss
            if not np.isfinite(monitored):
                self._warn_diverged(epoch, monitored, best_epoch)
                reason = "diverged"
                break
            h = self.history_
            h["epoch"].append(epoch)
            h["train_loss"].append(train_loss)
            h["val_loss"].append(float(val_loss))
            h["time"].append(time.perf_counter() - t0)
            if monitored < best_loss:
                best_theta, best_loss, best_epoch = theta.copy(), monitored, epoch
            status = dict(epoch=epoch, train_loss=train_loss, val_loss=float(val_loss),
                          best_loss=float(best_loss), elapsed=h["time"][-1])
            if any(cb(status) for cb in self.callbacks):
                reason = "callback"
                break
            if self.patience is not None and epoch - best_epoch >= self.patience:
                reason = "patience"
                break
            if self.max_time is not None and h["time"][-1] >= self.max_time:
                reason = "max_time"
                break
        self.genome_ = best_theta[:n].copy()
        self.coef_ = best_theta[n:].reshape(H + 1, O).copy()
        self.best_epoch_ = best_epoch
        self.stop_reason_ = reason
        return self

    def _train_batch(self, spec, theta, opt, clip, Xb, Yb, losses, weights) -> bool:
        """Optimizer steps on one mini-batch ``(b, T, .)``; False if the loss or gradient is not finite."""
        n, H, O, washout = spec.n_params, spec.n_cells, int(self.n_outputs), int(self.washout)
        Xt, Yt = Xb.transpose(1, 0, 2), Yb.transpose(1, 0, 2)
        T, b, _ = Xt.shape
        k = T if self.truncate is None else min(int(self.truncate), T)
        state = (np.zeros((b, H), spec.dtype),) * 2
        for s in range(0, T, k):
            if s + k <= washout:  # no loss in this chunk: only advance the state
                tape = _run(spec, _weights(spec, theta[:n]), theta[n:].reshape(H + 1, O), Xt[s : s + k], state)
                state = (tape.h[-1], tape.c[-1])
                continue
            count = b * (min(s + k, T) - max(s, washout)) * O
            loss, dg, dc, state = _loss_and_grad(
                spec, _weights(spec, theta[:n]), theta[n:].reshape(H + 1, O), Xt[s : s + k], Yt[s : s + k],
                max(0, washout - s), None, state, 1.0 / count, keep_state=True,
            )
            losses.append(loss)
            weights.append(count)
            grad = np.concatenate([dg, dc.ravel()])
            if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
                return False
            _clip(grad, clip)
            opt.step(theta, grad)
        return True

    @staticmethod
    def _mse(spec, genome, coef, Xt, Yt, washout) -> float:
        B = Xt.shape[1]
        zeros = np.zeros((B, spec.n_cells), spec.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            y = _run(spec, _weights(spec, genome), coef, Xt, (zeros, zeros)).y
            return float(np.mean((y[washout:] - Yt[washout:]) ** 2))

    def _warn_diverged(self, epoch, loss, best_epoch):
        warnings.warn(
            f"BPTT diverged in epoch {epoch} (loss {loss}); stopped and kept the weights of epoch "
            f"{best_epoch} (the best so far{', the initial weights' if best_epoch == 0 else ''}). "
            "Try a smaller lr or a clip.",
            RuntimeWarning,
            stacklevel=3,
        )

    # --- use --------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "genome_"):
            raise ValueError("this BPTTTrainer is not fitted yet: call fit(X, Y) first")

    def predict(self, X) -> np.ndarray:
        """Outputs ``(T, O)`` or ``(B, T, O)`` for inputs ``X`` ``(T, I)`` or ``(B, T, I)`` (input-driven)."""
        self._check_fitted()
        return forward(self.spec_, self.genome_, self.coef_, X)[1]

    def to_network(self, *, feedback: bool = False):
        """The trained network as an :class:`evolino.model.EvolinoNetwork` (predict / generate / save).

        Parameters
        ----------
        feedback : bool, default=False
            Generate in closed loop, feeding the output back as the next input
            (for networks trained with :func:`teacher_forcing`).
        """
        self._check_fitted()
        from ..model import EvolinoNetwork  # lazy: model.py sits above this module's dependencies

        return EvolinoNetwork(self.spec_, self.genome_, self.coef_, feedback=feedback, washout=int(self.washout))
