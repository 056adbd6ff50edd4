"""Training data for the supervised core: user arrays -> padded batch, fit and validation steps.

Accepted shapes (``Y`` targets, ``X`` external inputs):

- one series: ``(T,)``, ``(T, F)``, a pandas Series or DataFrame;
- several sequences of one length: ``(B, T, F)``;
- sequences of different lengths: a list of ``(T_i,)`` / ``(T_i, F)`` arrays;
- per-sequence targets (``per_sequence=True``): ``(B,)`` or ``(B, O)``, one row per sequence of ``X``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ._validate import EvolinoError, check_array, check_number, check_positive_int
from .sequences import SequenceBatch, teacher_inputs

__all__ = ["as_sequences", "prepare_data", "split_targets", "Scaler", "TrainingData"]


def _is_sequence_list(A) -> bool:
    if not isinstance(A, (list, tuple)) or not A:
        return False
    first = A[0]
    return np.ndim(first) == 2 or (np.ndim(first) == 1 and hasattr(first, "shape"))


def as_sequences(A, name: str, dtype=np.float64) -> tuple[list, bool]:
    """``(list of (T_i, F) arrays, single)``: ``single`` if ``A`` was one series.

    A 1-D series (also a pandas Series) becomes one feature; NaN/inf and empty
    sequences are refused with an error naming ``name``.
    """
    if _is_sequence_list(A):
        seqs = []
        for i, a in enumerate(A):
            a = check_array(getattr(a, "to_numpy", lambda: a)(), f"{name}[{i}]", ndims=(1, 2), dtype=dtype,
                            finite=True)
            seqs.append(a[:, None] if a.ndim == 1 else a)
        single = False
    else:
        if hasattr(A, "to_numpy"):  # pandas
            A = A.to_numpy()
        a = check_array(A, name, ndims=(1, 2, 3), dtype=dtype, finite=True)
        single = a.ndim < 3
        seqs = [a[:, None]] if a.ndim == 1 else [a] if a.ndim == 2 else list(a)
    if not seqs:
        raise EvolinoError(f"{name} must hold at least one sequence")
    for i, s in enumerate(seqs):
        if len(s) == 0:
            raise EvolinoError(f"{name} must hold at least one time step" + ("" if single else f" (sequence {i})"))
    widths = sorted({s.shape[1] for s in seqs})
    if len(widths) > 1:
        raise EvolinoError(f"{name}: all sequences must have the same number of features, got widths {widths}")
    return seqs, single


@dataclass(frozen=True)
class Scaler:
    """Standardization of a network's data, fitted on the training data and kept with the model.

    The network works on ``(x - x_mean) / x_std`` and ``(y - y_mean) / y_std``; its outputs are
    mapped back. ``y_min``/``y_max``: the training targets' range (raw units), the yardstick of
    the divergence guard. Arrays of one value per feature; ``None`` fields mean identity.
    """

    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None
    y_min: np.ndarray | None = None
    y_max: np.ndarray | None = None

    FIELDS = ("x_mean", "x_std", "y_mean", "y_std", "y_min", "y_max")

    def arrays(self) -> dict:
        """The non-None fields as ``{"scaler.<name>": array}`` (for saving)."""
        return {f"scaler.{k}": getattr(self, k) for k in self.FIELDS if getattr(self, k) is not None}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Scaler":
        return cls(**{k: np.asarray(arrays[f"scaler.{k}"], dtype=np.float64) for k in cls.FIELDS
                      if f"scaler.{k}" in arrays})


def _moments(seqs, lengths, name):
    """Mean and std (0 -> 1) per feature over the real steps of padded ``seqs`` ``(B, T, F)``."""
    real = np.concatenate([s[:n] for s, n in zip(seqs, lengths)])
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = real.mean(axis=0), real.std(axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise EvolinoError(f"{name} holds values too large to standardize (up to {np.abs(real).max():.3g}: their "
                           "variance overflows); rescale the data, e.g. divide by its largest value")
    return mean, np.where(std > 0, std, 1.0)


class TrainingData:
    """Padded inputs and targets plus the flat step indices of the fit and validation parts."""

    def __init__(self, Y, X, *, feedback, per_sequence, washout, validation, dtype):
        self.feedback, self.per_sequence, self.dtype = feedback, per_sequence, dtype
        self.washout = check_positive_int(washout, "washout", minimum=0)
        v = validation
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            self.n_val = check_positive_int(v, "validation", minimum=0)
            self.frac = None
        else:
            self.frac = check_number(v, "validation", low=0.0, high=1.0)
            if self.frac == 1.0:
                raise EvolinoError("validation must be < 1 (a fraction of the steps or sequences), got 1.0")
        self.validation = v
        if X is None and not feedback:
            raise EvolinoError("X is required when feedback=False (the network needs inputs)")
        xs = None if X is None else as_sequences(X, "X", dtype)[0]
        if per_sequence:
            self._init_per_sequence(Y, xs)
        else:
            self._init_per_step(Y, xs)

    def _init_per_sequence(self, Y, xs):
        if self.feedback:
            raise EvolinoError("per-sequence targets need feedback=False (nothing to feed back)")
        if xs is None:
            raise EvolinoError("per-sequence targets need the sequences X")
        Y = check_array(getattr(Y, "to_numpy", lambda: Y)(), "Y", ndims=(1, 2), dtype=self.dtype, finite=True)
        Y = Y[:, None] if Y.ndim == 1 else Y
        if len(Y) != len(xs):
            raise EvolinoError(f"Y must hold one target row per sequence of X ({len(xs)}), got {len(Y)}")
        self.batch, self.Y_rows = SequenceBatch(xs, self.dtype), Y
        self.n_outputs, self.n_inputs = Y.shape[1], xs[0].shape[1]

    def _init_per_step(self, Y, xs):
        ys, _ = as_sequences(Y, "Y", self.dtype)
        if xs is not None:
            if len(xs) != len(ys):
                raise EvolinoError(f"X and Y must hold the same number of sequences, got {len(xs)} and {len(ys)}")
            for i, (x, y) in enumerate(zip(xs, ys)):
                if len(x) != len(y):
                    raise EvolinoError(f"X and Y must have the same steps, got {len(x)} and {len(y)}"
                                     + ("" if len(ys) == 1 else f" in sequence {i}"))
        self.batch_y = SequenceBatch(ys, self.dtype)
        self.batch = None if xs is None else SequenceBatch(xs, self.dtype)
        lengths = self.batch_y.lengths
        if self.feedback and not self.batch_y.equal_lengths:
            raise EvolinoError("feedback=True needs all sequences to have the same number of steps "
                             f"(got lengths {sorted(set(lengths.tolist()))})")
        short = np.flatnonzero(lengths < self.washout + (2 if self.feedback else 1))
        if short.size:
            T = lengths[short[0]]
            raise EvolinoError(f"Y has {T} steps" + ("" if len(ys) == 1 else f" in sequence {short[0]}")
                             + f": need more than washout={self.washout}"
                             + (" plus one closed-loop step" if self.feedback else ""))
        self.cuts = np.array([self._cut(T) for T in lengths])
        self.n_outputs = ys[0].shape[1]
        self.n_inputs = (0 if xs is None else xs[0].shape[1]) + (self.n_outputs if self.feedback else 0)

    @property
    def n_rows(self) -> int:
        """Readout rows before the validation split: post-washout steps, or sequences (per-sequence targets)."""
        if self.per_sequence:
            return len(self.Y_rows)
        return int(sum(max(0, int(T) - self.washout) for T in self.batch_y.lengths))

    def standardize(self, inputs: bool = True, targets: bool = True) -> Scaler:
        """Centre and scale inputs and/or targets in place from the training data; return the :class:`Scaler`."""
        kw = {}
        if inputs and self.batch is not None:
            m, sd = _moments(self.batch.X, self.batch.lengths, "X")
            self.batch.X = ((self.batch.X - m) / sd).astype(self.dtype)
            kw.update(x_mean=m, x_std=sd)
        if self.per_sequence:
            Y = self.Y_rows
            lo, hi = Y.min(axis=0), Y.max(axis=0)
            if targets:
                m, sd = _moments([Y], [len(Y)], "Y")
                self.Y_rows = ((Y - m) / sd).astype(self.dtype)
                kw.update(y_mean=m, y_std=sd)
        else:
            yb = self.batch_y
            real = np.concatenate(yb.unpad(yb.X))
            lo, hi = real.min(axis=0), real.max(axis=0)
            if targets:
                m, sd = _moments(yb.X, yb.lengths, "Y")
                yb.X = ((yb.X - m) / sd).astype(self.dtype)
                kw.update(y_mean=m, y_std=sd)
        return Scaler(**kw, y_min=lo.astype(np.float64), y_max=hi.astype(np.float64))

    def _cut(self, T) -> int:
        """First validation step of a sequence of ``T`` steps.

        A fraction never takes the last fit step (a sequence too short to hold steps
        out is scored on its fit steps); a number of steps must leave one to fit.
        """
        n_post = T - self.washout
        if self.frac is None:
            n_val = self.n_val
        else:
            n_val = min(n_post - 1, max(1 if self.frac > 0 else 0, int(round(self.frac * n_post))))
        if self.feedback and n_val < 1:
            raise EvolinoError("feedback=True needs validation > 0 and a sequence longer than washout + 1: "
                             "the closed-loop steps score a candidate")
        if n_post - n_val < 1:
            raise EvolinoError(f"validation={self.validation!r} leaves no steps to fit the readout after "
                             f"washout={self.washout} (sequence of {T} steps)")
        return T - n_val

    def digest(self) -> list:
        h = hashlib.sha256()
        parts = [self.batch.X if self.batch is not None else None]
        parts += [self.Y_rows] if self.per_sequence else [self.batch_y.X, self.batch_y.lengths]
        for a in parts:
            h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
        shape = list((self.batch or self.batch_y).X.shape)
        return [shape, bool(self.per_sequence), h.hexdigest()[:16]]

    def fitness_arrays(self, seed, *, stratify=False, noise=False) -> dict:
        """Keyword arguments of :class:`~evolino.fitness.EvolinoFitness` (data part).

        ``noise`` (feedback only): also ``noise_draw``, a standard normal draw from ``seed`` the
        size of the fed-back targets of the teacher-forced inputs, which the readout's states see
        scaled by the fitness's ``noise`` (the usual stabilizer of closed-loop generation).
        """
        if self.per_sequence:
            return self._per_sequence_arrays(seed, stratify)
        yb = self.batch_y
        Yflat = yb.X.reshape(-1, self.n_outputs)
        fit = np.concatenate([yb.steps(b, self.washout, c) for b, c in enumerate(self.cuts)])
        val = np.concatenate([yb.steps(b, c, n) for b, (c, n) in enumerate(zip(self.cuts, yb.lengths))])
        if self.feedback:
            X = None if self.batch is None else self.batch.X
            inputs = teacher_inputs(yb.X, X)
            lo, hi = Yflat[fit].min(axis=0), Yflat[fit].max(axis=0)
            out = dict(inputs=inputs, fit_idx=fit, Y_fit=Yflat[fit], split=int(self.cuts[0]), Y_seq=yb.X, X_ext=X,
                       out_range=(lo - (hi - lo), hi + (hi - lo)), warm=int(self.washout))
            if noise:
                rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
                out["noise_draw"] = rng.standard_normal(inputs[..., -self.n_outputs :].shape).astype(inputs.dtype)
            return out
        if val.size == 0:  # nothing held out: score the fit steps themselves
            return dict(inputs=self.batch.X, fit_idx=fit, Y_fit=Yflat[fit])
        return dict(inputs=self.batch.X, fit_idx=fit, Y_fit=Yflat[fit], val_idx=val, Y_val=Yflat[val])

    def _per_sequence_arrays(self, seed, stratify):
        last, Y = self.batch.last(), self.Y_rows
        n = len(last)
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        frac = self.frac if self.frac is not None else min(1.0, self.n_val / n)
        if stratify:
            labels = Y[:, 0] > 0.5 if Y.shape[1] == 1 else np.argmax(Y, axis=1)
            val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: int(round(frac * np.sum(labels == c)))]
                                  for c in np.unique(labels)])
        else:
            val = rng.permutation(n)[: int(round(frac * n))]
        val = np.sort(val)
        if val.size == 0 or val.size == n:  # nothing to hold out: score the fit part itself
            return dict(inputs=self.batch.X, fit_idx=last, Y_fit=Y)
        fit = np.setdiff1d(np.arange(n), val)
        return dict(inputs=self.batch.X, fit_idx=last[fit], Y_fit=Y[fit], val_idx=last[val], Y_val=Y[val])


def split_targets(seqs, y, name="y"):
    """``(targets, per_sequence)`` for a list of sequences: per-step arrays, or one row per sequence."""
    if y is None:
        raise EvolinoError("requires y to be passed, but the target y is None")
    per_step = isinstance(y, (list, tuple)) and any(np.ndim(v) > 0 for v in y)
    if not per_step and np.ndim(y) >= 2 and np.shape(y)[:2] == (len(seqs), len(seqs[0])) and \
            all(len(s) == len(seqs[0]) for s in seqs):
        y, per_step = list(np.asarray(y)), True  # (B, T[, O]) per-step targets of a 3-D X
    if per_step:
        if len(y) != len(seqs):
            raise EvolinoError(f"{name} must hold one target array per sequence ({len(seqs)}), got {len(y)}")
        out = []
        for i, (x, v) in enumerate(zip(seqs, y)):
            v = np.asarray(v)
            if v.ndim not in (1, 2) or len(v) != len(x):
                raise EvolinoError(f"{name}[{i}] must have shape ({len(x)},) or ({len(x)}, n_outputs) to match X[{i}], "
                                 f"got {v.shape}")
            out.append(v)
        return out, False
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != len(seqs):
        raise EvolinoError(f"{name} must be a list of per-step target arrays (one per sequence) or an array of shape "
                         f"({len(seqs)},) or ({len(seqs)}, n_outputs) (one target per sequence), got {y.shape}")
    return y, True


def prepare_data(Y, X=None, *, feedback, per_sequence=False, washout=0, validation=0.25, dtype=np.float64):
    """Check and lay out training data (see the module docstring); returns :class:`TrainingData`."""
    return TrainingData(Y, X, feedback=feedback, per_sequence=per_sequence, washout=washout,
                        validation=validation, dtype=np.dtype(dtype).type)


def cast(v, dtype):
    """Floating arrays (also inside tuples) of the fitness arrays in ``dtype``; indices and ints unchanged."""
    if isinstance(v, tuple):
        return tuple(cast(x, dtype) for x in v)
    if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
        return v.astype(dtype)
    return v
