"""The trained model: an LSTM (hidden genome) plus a linear readout.

Input convention for networks with output feedback (generation tasks): the
network's input at step ``t`` is ``[X[t], Y[t-1]]`` (external inputs, if any,
then the previous target, 0 at ``t = 0``) and its output is the prediction of
``Y[t]``. Teacher forcing feeds the true ``Y[t-1]``; closed-loop generation feeds
the network's own previous output.

Saved as one ``.npz`` file of plain arrays plus a JSON metadata string (never
pickle: loading a file cannot run code).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from ._validate import check_array, check_number, check_positive_int
from .lstm import LSTMSpec, forward, prepare, step

__all__ = ["EvolinoNetwork", "teacher_inputs", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def teacher_inputs(Y: np.ndarray, X: np.ndarray | None = None, input_scale: float = 1.0) -> np.ndarray:
    """Network inputs for teacher forcing: ``input_scale * [X[t], Y[t-1]]`` with ``Y[-1] = 0``.

    ``Y`` ``(B, T, O)``, ``X`` ``(B, T, I_ext)`` or None -> ``(B, T, I_ext + O)``.
    """
    prev = np.zeros_like(Y)
    prev[:, 1:] = Y[:, :-1] * input_scale
    if X is not None:
        X = X * input_scale
    return prev if X is None else np.concatenate([X, prev], axis=-1)


def closed_loop(spec, weights, coef, state, y_prev, n_steps, X=None, input_scale=1.0):
    """Generate ``n_steps`` outputs of ``P`` networks feeding back their own output.

    Parameters
    ----------
    weights : LSTMWeights of P networks
    coef : (P, H + 1, O) readout weights
    state : LSTMState, ``(P, B, H)`` after the teacher-forced prefix
    y_prev : (B, O) or (P, B, O)
        The last true target, the input of the first generated step.
    X : (B, n_steps, I_ext) external inputs (already multiplied by ``input_scale``), or None
    input_scale : float
        Factor applied to the fed-back output, as to all inputs.

    Returns
    -------
    (P, B, n_steps, O)
    """
    P, B = state.h.shape[:2]
    O = coef.shape[-1]
    Wout, bout = coef[:, None, :-1, :], coef[:, None, -1:, :]  # (P,1,H,O), (P,1,1,O)
    out = np.empty((P, B, n_steps, O), spec.dtype)
    y = np.broadcast_to(y_prev, (P, B, O)).astype(spec.dtype)
    for t in range(n_steps):
        x = y * input_scale
        if X is not None:
            x = np.concatenate([np.broadcast_to(X[:, t], (P, B, X.shape[-1])), x], axis=-1)
        state = step(spec, weights, state, x)
        y = (state.h[:, :, None, :] @ Wout + bout)[:, :, 0, :]
        out[:, :, t] = y
    return out


class EvolinoNetwork:
    """A trained LSTM with a linear readout.

    Parameters
    ----------
    spec : LSTMSpec
        ``spec.n_inputs`` = external inputs + (outputs if ``feedback``).
    genome : array of shape (spec.n_params,)
        Hidden LSTM weights.
    coef : array of shape (spec.n_cells + 1, O)
        Output weights, last row the bias.
    feedback : bool, default=False
        Whether the previous output is an input (generation tasks).
    washout : int, default=0
        Steps whose outputs the readout was not fitted on (informative).
    input_scale : float, default=1.0
        Every network input (external and fed back) is multiplied by this. A
        small value keeps the cells near their operating point, where they act
        as a rich, nearly linear filter bank (PyBrain's Evolino scales its
        back-projection by 0.01 for the same reason).
    """

    def __init__(self, spec: LSTMSpec, genome, coef, *, feedback: bool = False, washout: int = 0,
                 input_scale: float = 1.0):
        if not isinstance(spec, LSTMSpec):
            raise TypeError(f"spec must be an LSTMSpec, got {type(spec).__name__}")
        self.spec = spec
        self.genome = spec._check_genomes(genome, "genome")
        if self.genome.ndim != 1:
            raise ValueError(f"genome must have shape ({spec.n_params},), got {self.genome.shape}")
        self.coef = check_array(coef, "coef", ndims=(2,), dtype=spec.dtype, finite=True)
        if self.coef.shape[0] != spec.n_cells + 1:
            raise ValueError(f"coef must have shape ({spec.n_cells + 1}, O), got {self.coef.shape}")
        self.feedback = bool(feedback)
        self.washout = check_positive_int(washout, "washout", minimum=0)
        self.input_scale = check_number(input_scale, "input_scale", low=0.0, low_open=True)
        if self.feedback and spec.n_inputs < self.n_outputs:
            raise ValueError("with feedback, spec.n_inputs must count the fed-back outputs")
        self._weights = prepare(spec, self.genome)

    @property
    def n_outputs(self) -> int:
        return self.coef.shape[1]

    @property
    def n_external(self) -> int:
        """Width of the external input ``X`` (without fed-back outputs)."""
        return self.spec.n_inputs - (self.n_outputs if self.feedback else 0)

    # --- inference -----------------------------------------------------------
    def _batch(self, A, name, width, allow_none=False):
        if A is None:
            if allow_none or width == 0:
                return None
            raise ValueError(f"{name} is required: this network has {width} external inputs")
        A = check_array(A, name, ndims=(2, 3), dtype=self.spec.dtype, finite=True)
        if A.shape[-1] != width:
            raise ValueError(f"{name} must have {width} features in its last axis, got shape {A.shape}")
        if A.shape[-2] == 0:
            raise ValueError(f"{name} must hold at least one time step, got shape {A.shape}")
        return A if A.ndim == 3 else A[None]

    def states(self, X=None, *, Y=None, return_state=False):
        """Cell outputs ``(B, T, H)`` (input-driven, or teacher-forced by ``Y`` when ``feedback``)."""
        Xb = self._batch(X, "X", self.n_external, allow_none=self.feedback and self.n_external == 0)
        if self.feedback:
            Yb = self._batch(Y, "Y", self.n_outputs)
            if Xb is not None and Xb.shape[:2] != Yb.shape[:2]:
                raise ValueError(f"X and Y must have the same number of sequences and steps, got {Xb.shape} and {Yb.shape}")
            inputs = teacher_inputs(Yb, Xb, self.input_scale)
        else:
            if Y is not None:
                raise ValueError("Y is only used by networks with feedback=True")
            inputs = Xb * self.input_scale
        h, state = forward(self.spec, self._weights, inputs, return_state=True)
        return (h[0], state) if return_state else h[0]

    def predict(self, X=None, *, Y=None) -> np.ndarray:
        """One-step outputs.

        Parameters
        ----------
        X : array of shape (T, I_ext) or (B, T, I_ext), optional for feedback networks without external inputs
        Y : array of shape (T, O) or (B, T, O)
            The true series (teacher forcing), required when ``feedback``: the
            output at ``t`` predicts ``Y[t]`` from ``Y[:t]``.

        Returns
        -------
        ndarray of shape (T, O) or (B, T, O)
        """
        single = (Y if self.feedback else X) is not None and np.ndim(Y if self.feedback else X) == 2
        h = self.states(X, Y=Y)
        out = h @ self.coef[:-1] + self.coef[-1]
        return out[0] if single else out

    def generate(self, n_steps: int, *, Y_prefix, X=None) -> np.ndarray:
        """Closed-loop generation after a teacher-forced prefix (``feedback`` networks).

        Parameters
        ----------
        n_steps : int
        Y_prefix : array of shape (L, O) or (B, L, O)
            True series to warm the network up on; generation continues at step ``L``.
        X : array of shape (L + n_steps, I_ext) or (B, L + n_steps, I_ext), optional
            External inputs for prefix and generated steps.

        Returns
        -------
        ndarray of shape (n_steps, O) or (B, n_steps, O)
        """
        if not self.feedback:
            raise ValueError("generate needs a network trained with feedback=True; use predict")
        n_steps = check_positive_int(n_steps, "n_steps")
        Yb = self._batch(Y_prefix, "Y_prefix", self.n_outputs)
        L = Yb.shape[1]
        Xb = self._batch(X, "X", self.n_external)
        if Xb is not None and Xb.shape[:2] != (Yb.shape[0], L + n_steps):
            raise ValueError(f"X must have shape ({Yb.shape[0]}, {L + n_steps}, {self.n_external}), got {Xb.shape}")
        _, state = self.states(None if Xb is None else Xb[:, :L], Y=Yb, return_state=True)
        out = closed_loop(self.spec, self._weights, self.coef[None], state, Yb[:, -1], n_steps,
                          None if Xb is None else Xb[:, L:] * self.input_scale, self.input_scale)[0]
        return out[0] if np.ndim(Y_prefix) == 2 else out

    # --- persistence ---------------------------------------------------------
    def metadata(self) -> dict:
        s = self.spec
        return {
            "format": "evolino.EvolinoNetwork", "version": FORMAT_VERSION,
            "spec": {"n_inputs": s.n_inputs, "n_cells": s.n_cells, "peepholes": s.peepholes,
                     "forget_gate": s.forget_gate, "dtype": np.dtype(s.dtype).name},
            "feedback": self.feedback, "washout": self.washout, "n_outputs": self.n_outputs,
            "input_scale": self.input_scale,
        }

    def save(self, path) -> None:
        """Write ``path`` (``.npz``: arrays ``genome``, ``coef`` and JSON ``metadata``) atomically."""
        save_npz_atomic(path, {"genome": self.genome, "coef": self.coef}, self.metadata())

    @classmethod
    def load(cls, path) -> "EvolinoNetwork":
        """Read a network written by :meth:`save`; a corrupt or foreign file raises ValueError."""
        arrays, meta = load_npz(path, "evolino.EvolinoNetwork", FORMAT_VERSION)
        try:
            spec = LSTMSpec(**{**meta["spec"], "dtype": np.dtype(meta["spec"]["dtype"]).type})
            return cls(spec, arrays["genome"], arrays["coef"], feedback=meta["feedback"],
                       washout=meta["washout"], input_scale=meta["input_scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid evolino model file ({exc})") from exc


def save_npz_atomic(path, arrays: dict, meta: dict) -> None:
    """Write arrays + JSON metadata to ``path`` as ``.npz``: temporary file, fsync, rename.

    A crash mid-write leaves any previous file at ``path`` intact. The archive is
    byte-for-byte reproducible (fixed member order and timestamps), so two identical
    runs write identical files.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    members = {"metadata": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, value in members.items():
                    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with zf.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path, kind: str, version: int) -> tuple[dict, dict]:
    """Arrays and metadata of an evolino ``.npz`` file of ``kind``; never unpickles."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("metadata")))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as an evolino .npz file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ValueError(f"{path}: not an {kind} file (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != version:
        raise ValueError(f"{path}: file format version {meta.get('version')} is not supported (expected {version})")
    return arrays, meta
