"""The trained model: an LSTM (hidden genome) plus a readout.

Input convention for networks with output feedback (generation tasks): the
network's input at step ``t`` is ``[X[t], Y[t-1]]`` (see :mod:`evolino.sequences`).
All methods take raw inputs; the network's ``input_scale`` is folded into its
input weights once, when it is built.

Saved as one ``.npz`` file of plain arrays plus a JSON metadata string
(:mod:`evolino._io`; never pickle: loading a file cannot run code).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._data import Scaler
from ._io import load_npz, meta_value, save_npz
from ._validate import EvolinoError, EvolinoTypeError, EvolinoWarning, check_array, check_number, check_positive_int
from ._backend import check_backend
from .lstm import LSTMSpec, forward, prepare
from .sequences import closed_loop, input_history, lag_features, teacher_inputs, with_lags

__all__ = ["EvolinoNetwork", "FORMAT_VERSION"]

FORMAT_VERSION = 4  # 4: recurrent_dtype in the spec; 3: lags; 2: standardization (Scaler) stored with the model; 1 to 3 are still read


class EvolinoNetwork:
    """A trained LSTM with a readout.

    Parameters
    ----------
    spec : LSTMSpec
        ``spec.n_inputs`` = external inputs + (outputs if ``feedback``).
    genome : array of shape (spec.n_params,)
        Hidden LSTM weights.
    coef : array of shape (spec.n_cells + lags * spec.n_inputs + 1, O), or a fitted readout object
        Output weights (cell outputs, lag features, last row the bias); or a readout with
        ``predict(S (1, N, H + lags * I))``
        (e.g. an SVM with a non-linear kernel: such a network cannot be saved or
        run in closed loop).
    feedback : bool, default=False
        Whether the previous output is an input (generation tasks).
    washout : int, default=0
        Steps whose outputs the readout was not fitted on (informative).
    input_scale : float, default=1.0
        Every network input (external and fed back) is multiplied by this, inside the
        input weights. A small value keeps the cells near their operating point, where
        they act as a rich, nearly linear filter bank (PyBrain's Evolino scales its
        back-projection by 0.01 for the same reason).
    scaler : Scaler, optional
        Standardization fitted on the training data: the network sees standardized
        inputs (and fed-back outputs) and its readout ``coef`` is in standardized target
        units; both are folded into the weights here, so every method takes and returns
        raw data. ``coef`` (the attribute) holds the output weights in raw units.
    lags : int, default=0
        The readout also reads the network inputs of the last ``lags`` steps, standardized
        (:func:`evolino.sequences.lag_features`; with feedback a linear autoregression beside the cells).
    encoding : dict, optional
        How the weights were evolved (``Encoding.to_dict()`` of :mod:`evolino.genome`; default
        ``{"name": "direct"}``), saved with the network. ``genome`` holds the decoded weights.
    backend : {"auto", "numpy", "numba"}, default="auto"
        Kernel backend of :meth:`predict` and :meth:`generate` (see :func:`evolino.lstm.forward`);
        not saved.
    """

    def __init__(self, spec: LSTMSpec, genome, coef, *, feedback: bool = False, washout: int = 0,
                 input_scale: float = 1.0, scaler: Scaler | None = None, encoding: dict | None = None,
                 lags: int = 0, backend: str = "auto"):
        if not isinstance(spec, LSTMSpec):
            raise EvolinoTypeError(f"spec must be an LSTMSpec, got {type(spec).__name__}")
        self.spec = spec
        self.backend = check_backend(backend)
        self.genome = spec._check_genomes(genome, "genome")
        if self.genome.ndim != 1:
            raise EvolinoError(f"genome must have shape ({spec.n_params},), got {self.genome.shape}")
        self.lags = check_positive_int(lags, "lags", minimum=0)
        n_features = spec.n_cells + self.lags * spec.n_inputs
        if hasattr(coef, "predict") and not isinstance(coef, np.ndarray):
            self.coef, self.readout = None, coef
            n_out = np.shape(coef.predict(np.zeros((1, 1, n_features), spec.dtype)))[-1]
        else:
            self.coef = check_array(coef, "coef", ndims=(2,), dtype=spec.dtype, finite=True)
            if self.coef.shape[0] != n_features + 1:
                raise EvolinoError(f"coef must have shape ({n_features + 1}, O) for {spec.n_cells} cells and "
                                   f"{self.lags} lags of {spec.n_inputs} inputs, got {self.coef.shape}")
            self.readout, n_out = None, self.coef.shape[1]
        self._n_outputs = int(n_out)
        self.feedback = bool(feedback)
        self.washout = check_positive_int(washout, "washout", minimum=0)
        self.input_scale = check_number(input_scale, "input_scale", low=0.0, low_open=True)
        if self.feedback and self.coef is None:
            raise EvolinoError("feedback networks need linear output weights (coef), not a non-linear readout")
        if self.feedback and spec.n_inputs < self.n_outputs:
            raise EvolinoError("with feedback, spec.n_inputs must count the fed-back outputs")
        self.scaler = Scaler() if scaler is None else scaler
        # how the weights were evolved (evolino.genome), kept for the record; the genome is always decoded
        self.encoding = {"name": "direct"} if encoding is None else dict(encoding)
        self._coef_std = self.coef  # in standardized target units (as fitted); saved
        sc = self.scaler
        if sc.y_std is not None and self.coef is not None:
            self.coef = np.concatenate([self.coef[:-1] * sc.y_std, self.coef[-1:] * sc.y_std + sc.y_mean])
            self.coef = self.coef.astype(spec.dtype)
        scale, shift = self._input_map()
        self._weights = prepare(spec, self.genome, scale, shift)
        # lag features read standardized inputs (x - mean) / std, per input: the mean and 1 / std
        self._lag_map = (np.zeros(spec.n_inputs) if shift is None else shift, scale / self.input_scale)
        if self.lags and self.coef is not None:  # fold the standardization into the lag rows
            H, (m, z) = spec.n_cells, self._lag_map
            ms, zs = np.tile(m, self.lags), np.tile(z, self.lags)
            lag = self.coef[H:-1]
            self.coef = np.concatenate([self.coef[:H], lag * zs[:, None],
                                        self.coef[-1:] - (ms * zs) @ lag]).astype(spec.dtype)

    def _input_map(self):
        """Per-input scale and shift of ``[X, Y_prev]``: standardization times ``input_scale``."""
        sc, E, O = self.scaler, self.n_external, self.n_outputs
        parts = [(sc.x_mean, sc.x_std, E)] + ([(sc.y_mean, sc.y_std, O)] if self.feedback else [])
        scale, shift = [], []
        for mean, std, n in parts:
            scale.append(np.full(n, self.input_scale) if std is None else self.input_scale / np.asarray(std))
            shift.append(np.zeros(n) if mean is None else np.asarray(mean, dtype=np.float64))
        scale, shift = np.concatenate(scale), np.concatenate(shift)
        return scale, (shift if np.any(shift) else None)

    @property
    def n_outputs(self) -> int:
        return self._n_outputs

    @property
    def n_external(self) -> int:
        """Width of the external input ``X`` (without fed-back outputs)."""
        return self.spec.n_inputs - (self.n_outputs if self.feedback else 0)

    # --- inference -----------------------------------------------------------
    def _batch(self, A, name, width, allow_none=False):
        if A is None:
            if allow_none or width == 0:
                return None
            raise EvolinoError(f"{name} is required: this network has {width} external inputs")
        A = check_array(A, name, ndims=(1, 2, 3) if width == 1 else (2, 3), dtype=self.spec.dtype, finite=True)
        if A.ndim == 1:
            A = A[:, None]
        if A.shape[-1] != width:
            raise EvolinoError(f"{name} must have {width} features in its last axis, got shape {A.shape}")
        if A.shape[-2] == 0:
            raise EvolinoError(f"{name} must hold at least one time step, got shape {A.shape}")
        return A if A.ndim == 3 else A[None]

    def _readout(self, h, inputs):
        """Outputs ``(B, T, O)`` of cell outputs ``h`` ``(B, T, H)`` and network inputs ``(B, T, I)``."""
        m, z = self._lag_map  # steps before the start count as the mean (0 standardized), as in training
        if self.coef is None:
            B, T, H = h.shape
            F = None
            if self.lags:  # the readout was fitted on standardized lag features
                F = lag_features((inputs - m) * z, self.lags).astype(h.dtype).reshape(B * T, -1)
            S = with_lags(h.reshape(1, -1, H), F)
            out = self.readout.predict(S)[0].reshape(B, T, -1)
            sc = self.scaler
            return out if sc.y_std is None else out * sc.y_std + sc.y_mean
        H = self.spec.n_cells
        out = h @ self.coef[:H] + self.coef[-1]
        if not self.lags:
            return out
        return out + lag_features(inputs.astype(h.dtype, copy=False), self.lags, m) @ self.coef[H:-1]

    def states(self, X=None, *, Y=None, return_state=False):
        """Cell outputs ``(B, T, H)`` (input-driven, or teacher-forced by ``Y`` when ``feedback``)."""
        inputs = self._inputs(X, Y)
        h, state = forward(self.spec, self._weights, inputs, return_state=True, backend=self.backend)
        return (h[0], state) if return_state else h[0]

    def _inputs(self, X, Y):
        """Network inputs ``(B, T, I)`` of ``X`` (and ``Y`` teacher-forced when ``feedback``), checked."""
        Xb = self._batch(X, "X", self.n_external, allow_none=self.feedback and self.n_external == 0)
        if self.feedback:
            Yb = self._batch(Y, "Y", self.n_outputs)
            if Xb is not None and Xb.shape[:2] != Yb.shape[:2]:
                raise EvolinoError(f"X and Y must have the same number of sequences and steps, got {Xb.shape} and {Yb.shape}")
            inputs = teacher_inputs(Yb, Xb)
        else:
            if Y is not None:
                raise EvolinoError("Y is only used by networks with feedback=True")
            inputs = Xb
        return inputs

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
        ref = Y if self.feedback else X
        single = ref is not None and np.ndim(ref) <= 2
        inputs = self._inputs(X, Y)
        out = self._readout(forward(self.spec, self._weights, inputs, backend=self.backend)[0], inputs)
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
            raise EvolinoError("generate needs a network trained with feedback=True; use predict")
        n_steps = check_positive_int(n_steps, "n_steps")
        Xb = self._batch(X, "X", self.n_external)
        Yb = self._batch(Y_prefix, "Y_prefix", self.n_outputs)
        B, L = Yb.shape[:2]
        if Xb is not None and Xb.shape[:2] != (B, L + n_steps):
            raise EvolinoError(f"X must have shape ({B}, {L + n_steps}, {self.n_external}), got {Xb.shape}")
        inputs = self._inputs(None if Xb is None else Xb[:, :L], Yb)
        _, state = forward(self.spec, self._weights, inputs, return_state=True, backend=self.backend)
        history = None
        if self.lags > 1:  # the inputs of the lags - 1 steps before the first generated one (the mean before the prefix)
            history = input_history(inputs, [L], self.lags - 1, self._lag_map[0])[:, 0]
        with np.errstate(all="ignore"):
            out = closed_loop(self.spec, self._weights, self.coef[None], state, Yb[:, -1], n_steps,
                              None if Xb is None else Xb[:, L:], lags=self.lags, history=history,
                              backend=self.backend)[0]
        self._check_range(out)
        return out[0] if np.ndim(Y_prefix) <= 2 else out

    def forecast(self, history, steps: int, *, X=None) -> np.ndarray:
        """Warm up on the true ``history``, then run ``steps`` steps in closed loop.

        Parameters
        ----------
        history : array of shape (L,), (L, O) or (B, L, O)
            The series up to now (raw units); the forecast starts at step ``L``.
        steps : int
        X : array of shape (L + steps, I_ext) or (B, L + steps, I_ext), optional
            External inputs over history and forecast.

        Returns
        -------
        ndarray of shape (steps, O) or (B, steps, O)
            Warns (:class:`~evolino._validate.EvolinoWarning`) if the forecast leaves the training range.
        """
        return self.generate(steps, Y_prefix=history, X=X)

    def _check_range(self, out):
        """Warn once if closed-loop outputs ``(B, n, O)`` leave the training range (widened by twice its width)."""
        sc = self.scaler
        if sc.y_min is None or getattr(self, "_warned", False):
            return
        width = np.maximum(sc.y_max - sc.y_min, 1e-12)
        lo, hi = sc.y_min - 2 * width, sc.y_max + 2 * width
        bad = ~np.isfinite(out) | (out < lo) | (out > hi)
        if bad.any():
            step = int(np.argmax(bad.any(axis=(0, 2))))
            worst = out[np.isfinite(out)]
            peak = float(np.max(np.abs(worst))) if worst.size else float("nan")
            self._warned = True
            warnings.warn(f"the closed loop left the training range [{float(sc.y_min.min()):.4g}, "
                          f"{float(sc.y_max.max()):.4g}] at step {step} (|y| up to {peak:.3g}): the generated "
                          "sequence diverges. Train with ridge='auto' (or a larger ridge), noise=0.01-0.1 and a "
                          "validation horizon close to the one used, or forecast shorter.", EvolinoWarning, stacklevel=3)

    # --- persistence ---------------------------------------------------------
    def metadata(self) -> dict:
        s = self.spec
        return {
            "format": "evolino.EvolinoNetwork", "version": FORMAT_VERSION,
            "spec": {"n_inputs": s.n_inputs, "n_cells": s.n_cells, "peepholes": s.peepholes,
                     "forget_gate": s.forget_gate, "dtype": np.dtype(s.dtype).name,
                     **({"recurrent_dtype": np.dtype(s.recurrent_dtype).name} if s.rounds_recurrent else {})},
            "feedback": self.feedback, "washout": self.washout, "n_outputs": self.n_outputs,
            "input_scale": self.input_scale, "encoding": self.encoding, "lags": self.lags,
        }

    def save(self, path) -> None:
        """Write ``path`` (``.npz``: arrays ``genome``, ``coef`` and JSON ``metadata``) atomically."""
        if self.coef is None:
            raise EvolinoError("this network's readout has no output weight matrix (a non-linear kernel): "
                             "it cannot be saved; use a linear readout to save the model")
        save_npz(path, {"genome": self.genome, "coef": self._coef_std, **self.scaler.arrays()}, self.metadata())

    @classmethod
    def load(cls, path) -> "EvolinoNetwork":
        """Read a network written by :meth:`save`; a corrupt or foreign file raises EvolinoError naming it."""
        arrays, meta = load_npz(path, "evolino.EvolinoNetwork", (1, FORMAT_VERSION),
                                members=("genome", "coef", "scaler.*"))
        if not all(np.all(np.isfinite(v)) for k, v in arrays.items() if k.startswith("scaler.")):
            raise EvolinoError(f"{path}: the standardization arrays hold NaN or inf; the file is corrupt")
        spec = meta_value(meta, "spec", dict, path)
        for key in ("peepholes", "forget_gate"):
            meta_value(spec, key, bool, path)
        for key in ("n_inputs", "n_cells"):
            meta_value(spec, key, int, path, minimum=1)
        feedback = meta_value(meta, "feedback", bool, path)
        washout = meta_value(meta, "washout", int, path, minimum=0)
        input_scale = meta_value(meta, "input_scale", float, path)
        lags = meta_value(meta, "lags", int, path, minimum=0) if "lags" in meta else 0  # version < 3: none
        try:
            rd = meta_value(spec, "recurrent_dtype", str, path) if "recurrent_dtype" in spec else None  # < 4: none
            spec = LSTMSpec(**{**spec, "dtype": np.dtype(meta_value(spec, "dtype", str, path)).type, "recurrent_dtype": rd})
            return cls(spec, arrays["genome"], arrays["coef"], feedback=feedback, washout=washout,
                       input_scale=input_scale, scaler=Scaler.from_arrays(arrays),
                       encoding=meta.get("encoding") if isinstance(meta.get("encoding"), dict) else None, lags=lags)
        except (KeyError, TypeError, ValueError) as exc:
            raise EvolinoError(f"{path}: not a valid evolino model file ({type(exc).__name__}: {exc})") from exc
