"""Evolino's fitness: run the training sequences, compute the readout, score on held-out steps.

For every candidate (Schmidhuber, Wierstra, Gagliolo & Gomez 2007): the training
sequences are run through its LSTM (teacher-forced when the output is fed
back), the washout is dropped, the cell outputs of the *fit* part are collected
into a state matrix, the output weights are the least-squares solution on it,
and the fitness is the NRMSE of that network on the *validation* part: in closed
loop (its own outputs fed back) for generation tasks, input-driven otherwise.
The whole population goes through the batched kernel and one batched readout
solve.
"""

from __future__ import annotations

import numpy as np

from .lstm import LSTMSpec, forward, prepare
from .model import closed_loop, teacher_inputs

__all__ = ["EvolinoFitness"]


class EvolinoFitness:
    """Picklable fitness function ``genomes (P, n_params) -> validation NRMSE (P,)``.

    Parameters
    ----------
    spec : LSTMSpec
    Y : ndarray of shape (B, T, O)
        Targets.
    X : ndarray of shape (B, T, I_ext) or None
        External inputs.
    washout : int
        Initial steps of each sequence excluded from the readout fit and the score.
    split : int
        Steps ``[washout, split)`` fit the readout, ``[split, T)`` validate.
    feedback : bool
        Previous target is an input (teacher forcing), validation in closed loop.
    readout : readout object with ``fit(S, Y) -> self`` and ``coef_ (P, H+1, O)``
        Optional hooks: ``validation_loss(out (P, N, O), Y (N, O)) -> (P,)`` replaces the
        NRMSE (classification readouts), ``for_final()`` gives the readout of the final network.
    input_scale : float
        Factor on every network input (see :class:`~evolino.model.EvolinoNetwork`).
    max_bytes : int, default=2**30
        Memory budget of one batched evaluation. A population whose activations
        (``P x B x T x H`` cell outputs plus gate pre-activations) would exceed it is
        evaluated in consecutive population chunks: same results (every candidate's
        fitness is independent of its chunk-mates), bounded memory.
    """

    def __init__(self, spec: LSTMSpec, Y, X, *, washout: int, split: int, feedback: bool, readout,
                 input_scale: float = 1.0, max_bytes: int = 2**30):
        self.max_bytes = max_bytes
        self.spec, self.Y, self.X = spec, Y, X
        self.washout, self.split, self.feedback, self.readout = washout, split, feedback, readout
        self.input_scale = input_scale
        self.inputs = teacher_inputs(Y, X, input_scale) if feedback else X * input_scale
        self._scale = float(np.std(Y[:, split:])) or 1.0

    def _fit_readout(self, h, end, readout=None):
        """Readout weights ``(P, H+1, O)`` on cell outputs ``h`` ``(P, B, >=end, H)`` steps ``[washout, end)``."""
        P, H, O = h.shape[0], self.spec.n_cells, self.Y.shape[-1]
        S = h[:, :, self.washout : end].reshape(P, -1, H)
        readout = self.readout if readout is None else readout
        return readout.fit(S, self.Y[:, self.washout : end].reshape(-1, O)).coef_

    def chunk_size(self) -> int:
        """Candidates per batched evaluation under ``max_bytes``."""
        B, T = self.Y.shape[:2]
        per = B * T * self.spec.n_cells * np.dtype(self.spec.dtype).itemsize * (self.spec.n_units + 3)
        return max(1, int(self.max_bytes // per))

    def __call__(self, genomes) -> np.ndarray:
        """Validation NRMSE ``(P,)`` of ``genomes`` ``(P, n_params)``; inf where it is not finite."""
        genomes = np.asarray(genomes)
        n = self.chunk_size()
        if len(genomes) <= n:
            return self._evaluate(genomes)
        return np.concatenate([self._evaluate(genomes[i : i + n]) for i in range(0, len(genomes), n)])

    def _evaluate(self, genomes) -> np.ndarray:
        w = prepare(self.spec, genomes)
        with np.errstate(all="ignore"):
            if self.feedback:
                h, state = forward(self.spec, w, self.inputs[:, : self.split], return_state=True)
                coef = self._fit_readout(h, self.split)
                X_val = None if self.X is None else self.inputs[:, self.split :, : self.X.shape[-1]]
                out = closed_loop(self.spec, w, coef, state, self.Y[:, self.split - 1],
                                  self.Y.shape[1] - self.split, X_val, self.input_scale)
            else:
                h = forward(self.spec, w, self.inputs)
                coef = self._fit_readout(h, self.split)
                out = h[:, :, self.split :] @ coef[:, None, :-1] + coef[:, None, -1:]
            loss = getattr(self.readout, "validation_loss", None)  # e.g. SVC: misclassification + margin
            if loss is not None:
                O = self.Y.shape[-1]
                return loss(out.reshape(out.shape[0], -1, O), self.Y[:, self.split :].reshape(-1, O))
            err = out - self.Y[None, :, self.split :]
            fit = np.sqrt(np.mean(err.reshape(err.shape[0], -1) ** 2, axis=1)) / self._scale
        return np.where(np.isfinite(fit), fit, np.inf)

    def final_readout(self, genome, refit: bool = True) -> np.ndarray:
        """Readout ``(H+1, O)`` of one genome ``(n_params,)``, fitted teacher-forced on all
        post-washout steps (``refit``) or, as during evolution, on the fit part only."""
        h = forward(self.spec, genome[None], self.inputs)
        # an SVM subsampled during evolution fits all states now
        readout = self.readout.for_final() if hasattr(self.readout, "for_final") else self.readout
        return self._fit_readout(h, self.Y.shape[1] if refit else self.split, readout)[0]
