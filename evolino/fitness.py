"""Evolino's fitness: run the training sequences, compute the readout, score on held-out steps.

For every candidate (Schmidhuber, Wierstra, Gagliolo & Gomez 2007): the training
sequences are run through its LSTM (teacher-forced when the output is fed
back), the cell outputs of the *fit* steps are collected into a state matrix,
the output weights are computed on it (least squares, or an SVM), and the
fitness is the loss of that network on the *validation* steps: in closed loop
(its own outputs fed back) for generation tasks, input-driven otherwise. The
whole population goes through the batched kernel and one batched readout solve.

Steps are addressed by flat indices into the padded batch ``(B, T)`` (``b * T + t``),
so one fitness serves one long series, many sequences of different lengths, and
targets given per step or per sequence (the state at each sequence's last step).
"""

from __future__ import annotations

import copy

import numpy as np

from .lstm import LSTMSpec, forward, prepare
from .metrics import classification_loss, regression_loss
from .sequences import closed_loop

__all__ = ["EvolinoFitness", "LOSSES"]

LOSSES = ("nrmse", "multilabel", "multiclass")


class EvolinoFitness:
    """Picklable fitness function ``genomes (P, n_params) -> validation loss (P,)``.

    Parameters
    ----------
    spec : LSTMSpec
    inputs : ndarray of shape (B, T, I)
        Raw network inputs (teacher-forced ``[X[t], Y[t-1]]`` when ``feedback``), padded
        at the end for sequences shorter than ``T``.
    fit_idx : int array of shape (N_fit,)
        Flat indices ``b * T + t`` of the steps whose states fit the readout.
    Y_fit : ndarray of shape (N_fit, O)
    val_idx, Y_val : int array (N_val,) and ndarray (N_val, O), optional
        Input-driven validation steps (``feedback=False``).
    readout : object with ``fit(S (P, N, H), Y (N, O)) -> self`` and ``predict``
        Optional hooks: ``validation_loss(out (P, N, O), Y (N, O)) -> (P,)`` replaces
        the loss (SVC), ``for_final()`` gives the readout of the final network.
    loss : {"nrmse", "multilabel", "multiclass"} or callable, default="nrmse"
        ``callable(out (P, N, O), Y (N, O)) -> (P,)``, lower is better.
    input_scale : float, default=1.0
        Folded into the input weights (:func:`~evolino.lstm.prepare`).
    split : int, optional
        ``feedback`` only: the validation runs in closed loop over steps ``[split, T)``
        of every sequence, from the teacher-forced state at ``split``; the readout
        fits ``fit_idx``, which must lie before ``split``.
    Y_seq : ndarray of shape (B, T, O), optional
        ``feedback`` only: the targets (the closed loop starts from ``Y_seq[:, split-1]``).
    X_ext : ndarray of shape (B, T, I_ext), optional
        ``feedback`` only: external inputs during the closed loop.
    final_idx, Y_final : optional
        Steps and targets of the final readout fit (default: ``fit_idx`` and ``val_idx``).
    max_bytes : int, default=2**30
        Memory budget of one batched evaluation. A population whose activations would
        exceed it is evaluated in consecutive chunks: same results (every candidate's
        fitness is independent of its chunk-mates), bounded memory.
    """

    def __init__(self, spec: LSTMSpec, inputs, fit_idx, Y_fit, *, val_idx=None, Y_val=None, readout,
                 loss="nrmse", input_scale: float = 1.0, split=None, Y_seq=None, X_ext=None, final_idx=None,
                 Y_final=None, max_bytes: int = 2**30):
        self.spec, self.inputs, self.readout, self.loss = spec, inputs, readout, loss
        self.input_scale, self.max_bytes = input_scale, max_bytes
        self.fit_idx, self.Y_fit = np.asarray(fit_idx), Y_fit
        self.feedback = split is not None
        self.split, self.Y_seq, self.X_ext = split, Y_seq, X_ext
        B, T = inputs.shape[:2]
        if self.feedback:
            # the teacher-forced part runs over steps [0, split) only: re-address the fit steps
            b, t = np.divmod(self.fit_idx, T)
            if np.any(t >= split):
                raise ValueError("fit steps must lie before the closed-loop validation (split)")
            self._fit_run = b * split + t
            self.Y_val = Y_seq[:, split:].reshape(-1, Y_seq.shape[-1])
        else:
            self._fit_run = self.fit_idx
            self.val_idx, self.Y_val = (self.fit_idx, Y_fit) if val_idx is None else (np.asarray(val_idx), Y_val)
        if final_idx is None:
            if self.feedback:
                final_idx = np.concatenate([self.fit_idx, (np.arange(B)[:, None] * T
                                                           + np.arange(split, T)).ravel()])
                Y_final = np.concatenate([Y_fit, self.Y_val])
            elif val_idx is None:
                final_idx, Y_final = self.fit_idx, Y_fit
            else:
                final_idx, Y_final = np.concatenate([self.fit_idx, self.val_idx]), np.concatenate([Y_fit, Y_val])
        self.final_idx, self.Y_final = np.asarray(final_idx), Y_final

    @classmethod
    def from_data(cls, spec: LSTMSpec, Y, X=None, *, washout: int, validation, feedback: bool, readout,
                  per_sequence: bool = False, seed: int = 0, **kwargs) -> "EvolinoFitness":
        """The fitness the trainer builds for data ``Y``, ``X`` (see :class:`evolino.Evolino`).

        ``validation``: fraction or number of held-out steps (sequences, with ``per_sequence``);
        ``seed`` draws the held-out sequences; ``kwargs`` go to the constructor.
        """
        from ._data import prepare_data

        data = prepare_data(Y, X, feedback=feedback, per_sequence=per_sequence, washout=washout,
                            validation=validation, dtype=spec.dtype)
        stratify = kwargs.get("loss", "nrmse") in ("multilabel", "multiclass")
        return cls(spec, readout=readout, **data.fitness_arrays(seed, stratify=stratify), **kwargs)

    def chunk_size(self) -> int:
        """Candidates per batched evaluation under ``max_bytes``."""
        B, T = self.inputs.shape[:2]
        per = B * T * self.spec.n_cells * np.dtype(self.spec.dtype).itemsize * (self.spec.n_units + 3)
        return max(1, int(self.max_bytes // per))

    def __call__(self, genomes) -> np.ndarray:
        """Validation loss ``(P,)`` of ``genomes`` ``(P, n_params)``; inf where it is not finite."""
        genomes = np.asarray(genomes)
        n = self.chunk_size()
        if len(genomes) <= n:
            return self._evaluate(genomes)
        return np.concatenate([self._evaluate(genomes[i : i + n]) for i in range(0, len(genomes), n)])

    def _score(self, out) -> np.ndarray:
        """Loss ``(P,)`` of validation outputs ``out`` ``(P, N_val, O)``."""
        hook = getattr(self.readout, "validation_loss", None)  # e.g. SVC: misclassification + margin
        if hook is not None and self.loss == "nrmse":
            return hook(out, self.Y_val)
        if callable(self.loss):
            return np.asarray(self.loss(out, self.Y_val), dtype=np.float64)
        if self.loss == "nrmse":
            return regression_loss(out, self.Y_val)
        return classification_loss(out, self.Y_val, multilabel=self.loss == "multilabel")

    def _evaluate(self, genomes) -> np.ndarray:
        w = prepare(self.spec, genomes, self.input_scale)
        P, H, O = len(genomes), self.spec.n_cells, self.Y_fit.shape[-1]
        with np.errstate(all="ignore"):
            if self.feedback:
                h, state = forward(self.spec, w, self.inputs[:, : self.split], return_state=True)
                S = h.reshape(P, -1, H)
                coef = self.readout.fit(S[:, self._fit_run], self.Y_fit).coef_
                n_val = self.inputs.shape[1] - self.split
                X_val = None if self.X_ext is None else self.X_ext[:, self.split :]
                out = closed_loop(self.spec, w, coef, state, self.Y_seq[:, self.split - 1], n_val, X_val)
                out = out.reshape(P, -1, O)
            else:
                S = forward(self.spec, w, self.inputs).reshape(P, -1, H)
                out = self.readout.fit(S[:, self._fit_run], self.Y_fit).predict(S[:, self.val_idx])
            loss = self._score(out)
        return np.where(np.isfinite(loss), loss, np.inf)

    def final_readout(self, genome, refit: bool = True):
        """The readout of one genome ``(n_params,)``, fitted teacher-forced on the fit and
        validation steps (``refit``) or, as during evolution, on the fit steps only.

        Returns the fitted readout object (``coef_`` ``(1, H + 1, O)`` when linear).
        """
        h = forward(self.spec, prepare(self.spec, genome[None], self.input_scale), self.inputs)
        S = h.reshape(1, -1, self.spec.n_cells)
        # an SVM subsampled during evolution fits all states now
        readout = self.readout.for_final() if hasattr(self.readout, "for_final") else copy.deepcopy(self.readout)
        idx, Y = (self.final_idx, self.Y_final) if refit else (self.fit_idx, self.Y_fit)
        return readout.fit(S[:, idx], Y)
