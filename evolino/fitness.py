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

from ._backend import check_backend, resolve_backend, spread
from ._validate import EvolinoError, check_positive_int
from .lstm import LSTMSpec, forward, prepare
from .metrics import classification_loss, free_run_loss, free_run_vpt, regression_loss
from .sequences import closed_loop, input_history, lag_features, with_lags

__all__ = ["EvolinoFitness", "LOSSES", "first_generation_check", "free_run_options"]

LOSSES = ("nrmse", "vpt", "multilabel", "multiclass")
WORST = 1e6  # the loss of a candidate whose outputs are not finite (bounded, so strategies can rank)


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
    loss : {"nrmse", "vpt", "multilabel", "multiclass"} or callable, default="nrmse"
        ``callable(out (P, N, O), Y (N, O)) -> (P,)``, lower is better. ``"vpt"`` (feedback only):
        minus the valid prediction time of the free runs, as a fraction of ``horizon``.
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
    horizon : int, "auto" or None
        ``feedback`` only: score many free runs of ``horizon`` steps, started every ``stride``
        steps across the validation part from teacher-forced states (all batched), instead of
        one free run over the whole validation part (None). ``"auto"``: four scales at once,
        a weighted geometric mean of the NRMSE of the one run over all of the validation part
        (weight 1/2) and of seven half-overlapping runs of a quarter of it and seven runs each
        of a sixteenth and a sixty-fourth (those at least two steps long), which share the other
        half (``loss="nrmse"``; other losses score the quarter runs only). The long run sees a
        slow instability whose error is still small after a quarter of the part; the shortest runs see what a
        chaotic series allows, which is predictable for a few steps only (there every good
        model's long-run NRMSE is about the same, so the short runs decide).
    stride : int, optional
        Steps between the starts of those runs (default ``max(1, horizon // 2)``).
    warm : int, optional
        ``feedback`` only: every free run starts from the state of a fresh network (zero state)
        teacher-forced over the ``warm`` true steps before it, as a forecast from a history of
        ``warm`` steps does (the trainer passes its ``washout``: the transient it declares
        forgotten). A network whose state still remembers its start after ``warm`` steps scores
        what such a forecast would give, which from the long teacher-forced run it never shows.
        0 or None: from the state of the teacher-forced run over the whole sequence.
    out_range : (lo, hi) arrays of shape (O,), optional
        ``feedback`` only: closed-loop outputs are clipped to this range before they are fed
        back, so a diverging candidate gets a large but finite (bounded) loss, never inf/NaN.
    run_cap : float or None, default=1.0
        ``feedback``, ``loss="nrmse"``, runs longer than one step: the loss of a set of free runs
        is the mean of each run's NRMSE capped at ``run_cap`` (:func:`~evolino.metrics.free_run_loss`;
        1 is the error of forecasting the mean), so a few runs that diverge count as runs that
        gave up, not as the whole score. None: one NRMSE pooled over the runs.
    lags : int, default=0
        The readout also reads the network inputs of the last ``lags`` steps
        (:func:`~evolino.sequences.lag_features`: with feedback, a linear autoregression of order
        ``lags`` beside the cells); its weights ``(P, H + lags * I + 1, O)``.
    vpt_threshold : float, default=0.4
        ``loss="vpt"``: a free run is valid while its error, normalised per output by the
        validation targets' std (RMS over outputs), stays below this.
    noise : float, default=0.0
        ``feedback`` only: the states the readout is fitted on see ``noise * noise_draw`` added to
        the fed-back columns of ``inputs`` (the last ``O``); the free runs start from clean inputs.
    noise_draw : ndarray of shape (B, T, O), optional
        A fixed standard normal draw, needed for ``noise > 0`` (:meth:`with_noise`).
    final_idx, Y_final : optional
        Steps and targets of the final readout fit (default: ``fit_idx`` and ``val_idx``).
    max_bytes : int, default=2**30
        Memory budget of one batched evaluation. A population whose activations would
        exceed it is evaluated in consecutive chunks: same results (every candidate's
        fitness is independent of its chunk-mates), bounded memory.
    backend : {"auto", "numpy", "numba"}, default="auto"
        Kernel backend of the forward pass and the closed loop (:func:`evolino.lstm.forward`).
    """

    def __init__(self, spec: LSTMSpec, inputs, fit_idx, Y_fit, *, val_idx=None, Y_val=None, readout,
                 loss="nrmse", input_scale: float = 1.0, split=None, Y_seq=None, X_ext=None, horizon=None,
                 stride=None, warm=None, out_range=None, run_cap=1.0, lags=0, vpt_threshold=0.4, noise=0.0, noise_draw=None,
                 final_idx=None, Y_final=None,
                 max_bytes: int = 2**30, backend: str = "auto"):
        self.backend = check_backend(backend)
        self.spec, self.readout, self.loss = spec, readout, loss
        self.inputs_clean, self._noise_draw = inputs, noise_draw
        self._set_noise(noise)
        self.out_range, self.vpt_threshold = out_range, float(vpt_threshold)
        self.run_cap = None if run_cap is None else float(run_cap)
        self.input_scale, self.max_bytes = input_scale, max_bytes
        self.fit_idx, self.Y_fit = np.asarray(fit_idx), Y_fit
        self.val_idx_given = val_idx is not None or split is not None
        self.feedback = split is not None
        self.split, self.Y_seq, self.X_ext = split, Y_seq, X_ext
        B, T = inputs.shape[:2]
        self._set_lags(lags)
        if self.feedback:
            # the teacher-forced part runs over steps [0, split) only: re-address the fit steps
            b, t = np.divmod(self.fit_idx, T)
            if np.any(t >= split):
                raise ValueError("fit steps must lie before the closed-loop validation (split)")
            self._fit_run = b * split + t
            n_val = T - split
            auto = horizon == "auto"
            if auto:  # seven half-overlapping runs over the validation part
                horizon = max(1, n_val // 4)
            self.horizon = n_val if horizon is None else int(horizon)
            # plus the other scales (all of it; a sixteenth and a sixty-fourth), unless the runs are one
            # step (one-step use) or a readout's own validation loss (SVC) replaces the NRMSE
            multi = auto and self.horizon > 1 and loss == "nrmse" and getattr(readout, "validation_loss", None) is None
            if not 1 <= self.horizon <= n_val:
                raise ValueError(f"horizon={horizon} must be between 1 and the validation part ({n_val} steps); "
                                 f"lower horizon or raise validation")
            self.stride = max(1, self.horizon // 2) if stride is None else int(stride)
            self.starts = np.arange(split, T - self.horizon + 1, self.stride)  # (K,) free-run starts
            self.warm = int(warm or 0)
            if not 0 <= self.warm <= split:
                raise ValueError(f"warm={warm} must be between 0 and the start of the validation part ({split})")
            idx = self.starts[:, None] + np.arange(self.horizon)  # (K, h)
            self.Y_val = Y_seq[:, idx].reshape(-1, Y_seq.shape[-1])  # (B*K*h, O)
            self._val1 = (np.arange(B)[:, None] * T + self.starts[None, :]).ravel()  # horizon 1, into (B, T)
            std = self.Y_val.std(axis=0)
            self._val_std = np.where(std > 0, std, 1.0)
            self.other_runs = self._other_scales(n_val) if multi else []  # [(starts, h, Y (B*K*h, O))]
        else:
            self.other_runs, self.warm = [], 0
            self._fit_run = self.fit_idx
            self.val_idx, self.Y_val = (self.fit_idx, Y_fit) if val_idx is None else (np.asarray(val_idx), Y_val)
        if final_idx is None:
            if self.feedback:
                final_idx = np.concatenate([self.fit_idx, (np.arange(B)[:, None] * T
                                                           + np.arange(split, T)).ravel()])
                Y_final = np.concatenate([Y_fit, Y_seq[:, split:].reshape(-1, Y_seq.shape[-1])])
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
        return cls(spec, readout=readout, **{**data.fitness_arrays(seed, stratify=stratify), **kwargs})

    def chunk_size(self) -> int:
        """Candidates per batched evaluation under ``max_bytes``."""
        B, T = self.inputs.shape[:2]
        steps = B * T + (B * len(self.starts) * self.warm if self.feedback else 0)  # + the warm-ups of the free runs
        per = steps * self.spec.n_cells * np.dtype(self.spec.dtype).itemsize * (self.spec.n_units + 3)
        return max(1, int(self.max_bytes // per))

    def __call__(self, genomes) -> np.ndarray:
        """Validation loss ``(P,)`` of ``genomes`` ``(P, n_params)``; :data:`WORST` where it is not finite."""
        genomes = np.asarray(genomes)
        n = self.chunk_size()
        if len(genomes) <= n:
            return self._on_threads(genomes)
        return np.concatenate([self._on_threads(genomes[i : i + n]) for i in range(0, len(genomes), n)])

    def _on_threads(self, genomes) -> np.ndarray:
        """:meth:`_evaluate` over ranges of ``genomes`` on the kernel threads (:func:`~evolino._backend.spread`).

        With the compiled backend the whole evaluation, readout solves and scoring
        included, runs in threads (NumPy's linear algebra releases the GIL too), not
        only the kernels. A candidate's loss does not depend on the others in its
        batch, so the losses are one thread's, bit for bit; the ranges split one
        memory chunk, so the peak memory stays that of one chunk.
        """
        if resolve_backend(self.backend) != "numba" or not getattr(self.readout, "thread_safe", True):
            return self._evaluate(genomes)  # (an SVM readout: see readout_svm._SVMReadout.thread_safe)
        parts = {}

        def call(lo, hi):
            fn = copy.copy(self)  # a readout is fitted in place: one per range
            fn.readout = copy.deepcopy(self.readout)
            parts[lo] = fn._evaluate(genomes[lo:hi])

        spread(call, len(genomes))
        return np.concatenate([parts[lo] for lo in sorted(parts)])

    def _score(self, out) -> np.ndarray:
        """Loss ``(P,)`` of validation outputs ``out`` ``(P, N_val, O)``."""
        hook = getattr(self.readout, "validation_loss", None)  # e.g. SVC: misclassification + margin
        if hook is not None and self.loss == "nrmse":
            return hook(out, self.Y_val)
        if callable(self.loss):
            return np.asarray(self.loss(out, self.Y_val), dtype=np.float64)
        if self.loss == "vpt":
            return free_run_vpt(out, self.Y_val, self.horizon, self._val_std, self.vpt_threshold)
        if self.loss == "nrmse":
            return regression_loss(out, self.Y_val)
        return classification_loss(out, self.Y_val, multilabel=self.loss == "multilabel")

    def _evaluate(self, genomes) -> np.ndarray:
        w = prepare(self.spec, genomes, self.input_scale)
        P, H = len(genomes), self.spec.n_cells
        with np.errstate(all="ignore"):
            if self.feedback and self.horizon == 1:  # one-step use: teacher-forced outputs are the free runs
                S = forward(self.spec, w, self.inputs, backend=self.backend).reshape(P, -1, H)
                out = self._fit_predict(S, self.fit_idx, self._val1)
            elif self.feedback:
                h, state = forward(self.spec, w, self.inputs[:, : self.split], return_state=True, backend=self.backend)
                S_fit = h.reshape(P, -1, H)[:, self._fit_run]
                gain = self._gain(S_fit)
                readout = self.readout.fit(with_lags(S_fit, self._lags_at(self.fit_idx), gain), self.Y_fit)
                return self._closed_loop_loss(w, self._unscale(readout, gain).coef_, state)
            else:
                S = forward(self.spec, w, self.inputs, backend=self.backend).reshape(P, -1, H)
                out = self._fit_predict(S, self.fit_idx, self.val_idx)
            loss = self._score(out)
        return np.where(np.isfinite(loss), loss, WORST)

    def _closed_loop_loss(self, w, coef, state) -> np.ndarray:
        """Loss ``(P,)`` of the validation free runs with output weights ``coef`` ``(P, H + lags * I + 1, O)``."""
        with np.errstate(all="ignore"):
            out = self._free_runs(w, coef, state)
            capped = self.run_cap is not None and self.loss == "nrmse" \
                and getattr(self.readout, "validation_loss", None) is None
            loss = self._runs_loss(out, self.Y_val, self.horizon) if capped else self._score(out)
            if self.other_runs:  # the weighted geometric mean over the scales of the default horizon
                logs = [np.log(loss)] + [np.log(self._runs_loss(self._free_runs(w, coef, state, starts, h), Y, h))
                                         for starts, h, Y in self.other_runs]
                loss = np.exp(np.tensordot(self._scale_weights(len(logs)), logs, axes=1))
        return np.where(np.isfinite(loss), loss, WORST)

    def with_lags(self, lags: int) -> "EvolinoFitness":
        """A shallow copy whose readout reads ``lags`` lags (the data arrays are shared)."""
        fn = copy.copy(self)
        fn._set_lags(lags)
        return fn

    @property
    def has_noise_draw(self) -> bool:
        """Whether :meth:`with_noise` can add noise (feedback with a ``noise_draw``)."""
        return self._noise_draw is not None

    def with_noise(self, noise: float) -> "EvolinoFitness":
        """A shallow copy fitting its readout on inputs with ``noise * noise_draw`` on the fed-back columns."""
        fn = copy.copy(self)
        fn._set_noise(noise)
        fn._set_lags(fn.lags)
        return fn

    def _set_noise(self, noise):
        self.noise, self.inputs = float(noise), self.inputs_clean
        if self.noise:
            if self._noise_draw is None:
                raise ValueError("noise > 0 needs noise_draw")
            self.inputs = self.inputs_clean.copy()
            self.inputs[..., -self._noise_draw.shape[-1]:] += self.noise * self._noise_draw

    def _set_lags(self, lags):
        """``lags`` and the lag features of every step (flat ``b * T + t``), from the inputs the states see."""
        B, T = self.inputs.shape[:2]
        self.lags = int(lags)
        self._F = lag_features(self.inputs, self.lags).reshape(B * T, -1) if self.lags else None

    def _lags_at(self, idx):
        """Lag features ``(N, lags * I)`` of the flat steps ``idx``, or None without lags."""
        return None if self._F is None else self._F[idx]

    def _gain(self, S_fit):
        """Factor ``(P,)`` on the lag features: a candidate's mean cell variance over the fit steps
        ``S_fit`` ``(P, N, H)`` / the lag features' mean variance, in square root (None without lags).

        A relative ridge penalizes every feature alike in units of their mean energy; with cells
        near their operating point (tiny variance) beside unit-variance lags, any penalty would
        silence the cells. Scaled to the cells' energy, both parts are penalized in proportion.
        """
        if self._F is None:
            return None
        with np.errstate(all="ignore"):
            lag_var = float(np.mean(np.var(self._F[self.fit_idx], axis=0)))
            gain = np.sqrt(np.mean(np.var(S_fit, axis=1, dtype=np.float64), axis=-1) / lag_var)
        return np.where(np.isfinite(gain) & (gain > 0), gain, 1.0)

    def _unscale(self, readout, gain):
        """The readout's lag weights back on unscaled lag features (``coef_`` rows ``H:-1``)."""
        if gain is not None and hasattr(readout, "coef_"):
            readout.coef_ = readout.coef_.copy()
            readout.coef_[:, self.spec.n_cells : -1] *= np.asarray(gain, readout.coef_.dtype)[:, None, None]
        return readout

    def _features(self, S, idx, gain=None):
        """Readout features ``(P, N, H + lags * I)`` of the flat steps ``idx`` of states ``S`` ``(P, B*T, H)``."""
        return with_lags(S[:, idx], self._lags_at(idx), gain)

    def _runs_loss(self, out, Y, horizon) -> np.ndarray:
        """NRMSE ``(P,)`` of free runs of ``horizon`` steps: capped per run, or pooled (``run_cap=None``)."""
        if self.run_cap is None:
            return regression_loss(out, Y)
        return free_run_loss(out, Y, horizon, self.run_cap)

    def _other_scales(self, n_val) -> list:
        """The runs of ``horizon="auto"`` besides the quarter scale: ``[(starts (K,), h, Y (B*K*h, O))]``.

        One run over the whole validation part and, while at least two steps long, seven evenly
        spaced runs of a sixteenth and of a sixty-fourth of it: a chaotic series is predictable
        for a few steps only, a sum of sines for all of them.
        """
        runs = [(self.starts[:1], n_val)]
        for h in (n_val // 16, n_val // 64):
            if h >= 2:
                runs.append((np.unique(np.linspace(self.split, self.split + n_val - h, 7).astype(int)), h))
        O = self.Y_seq.shape[-1]
        return [(st, h, self.Y_seq[:, st[:, None] + np.arange(h)].reshape(-1, O)) for st, h in runs]

    @staticmethod
    def _scale_weights(n) -> np.ndarray:
        """Weights ``(n,)`` of the log-NRMSE of the scales ``[quarter, all, shorter...]``: the run over
        all of the validation part has half the weight, the others share the rest."""
        if n == 2:
            return np.array([0.5, 0.5])
        return np.r_[0.5 / (n - 1), 0.5, np.full(n - 2, 0.5 / (n - 1))]

    def _free_runs(self, w, coef, state, starts=None, horizon=None) -> np.ndarray:
        """Outputs ``(P, B*K*h, O)`` of the ``K`` free runs (default: :attr:`starts`, :attr:`horizon`),
        all batched in one closed loop."""
        starts = self.starts if starts is None else starts
        horizon = self.horizon if horizon is None else horizon
        P, B, H = state.h.shape
        K = len(starts)
        if self.warm:  # fresh networks, teacher-forced over the warm steps before each start (batched)
            idx = starts[:, None] - self.warm + np.arange(self.warm)  # (K, warm)
            Xw = self.inputs_clean[:, idx].reshape(B * K, self.warm, -1)
            _, st = forward(self.spec, w, Xw, return_state=True, backend=self.backend)
            h0, c0 = st.h, st.c
        else:
            states, t = [state], self.split
            for s in starts[1:]:  # teacher-forced through the validation part, to each start
                _, st = forward(self.spec, w, self.inputs_clean[:, t:s], h0=states[-1], return_state=True,
                                backend=self.backend)
                states.append(st)
                t = s
            h0 = np.stack([st.h for st in states], axis=2).reshape(P, B * K, H)
            c0 = np.stack([st.c for st in states], axis=2).reshape(P, B * K, H)
        y0 = self.Y_seq[:, starts - 1].reshape(B * K, -1)  # the last true value before each run
        X = None
        if self.X_ext is not None:
            X = self.X_ext[:, starts[:, None] + np.arange(horizon)].reshape(B * K, horizon, -1)
        history = None
        if self.lags > 1:  # the true inputs of the lags - 1 steps before each start (0 = the mean before the sequence)
            history = input_history(self.inputs_clean, starts, self.lags - 1).reshape(B * K, self.lags - 1, -1)
        out = closed_loop(self.spec, w, coef, type(state)(h0, c0), y0, horizon, X, out_range=self.out_range,
                          lags=self.lags, history=history, backend=self.backend)
        return out.reshape(P, -1, out.shape[-1])

    @property
    def _holdout(self) -> bool:
        """Whether the readout chooses its ridge on the validation steps (one-step scoring, ``ridge="auto"``)."""
        one_step = not self.feedback or self.horizon == 1
        return one_step and getattr(self.readout, "ridge", None) == "auto" and hasattr(self.readout, "fit_holdout") \
            and self.val_idx_given

    def _fit_predict(self, S, fit, val):
        """Readout fitted on the flat steps ``fit`` of states ``S`` ``(P, B*T, H)``, outputs on ``val``
        ``(P, N_val, O)``."""
        gain = self._gain(S[:, fit])
        S_fit, S_val = self._features(S, fit, gain), self._features(S, val, gain)
        if self._holdout:
            return self.readout.fit_holdout(S_fit, self.Y_fit, S_val, self.Y_val).predict(S_val)
        return self.readout.fit(S_fit, self.Y_fit).predict(S_val)

    def final_readout(self, genome, refit: bool = True):
        """The readout of one genome ``(n_params,)``, fitted teacher-forced on the fit and
        validation steps (``refit``) or, as during evolution, on the fit steps only.

        Closed-loop validation (``feedback``, ``horizon > 1``, a linear readout): the refitted
        readout is kept only if its validation free runs score at least as well as those of the
        readout fitted on the fit steps, which is the one evolution scored.

        Returns the fitted readout object (``coef_`` ``(1, H + lags * I + 1, O)`` when linear), with
        ``refitted_`` saying which of the two it is.
        """
        w = prepare(self.spec, genome[None], self.input_scale)
        S = forward(self.spec, w, self.inputs, backend=self.backend).reshape(1, -1, self.spec.n_cells)
        gain = self._gain(S[:, self.fit_idx])  # the lag features scaled as during evolution
        if self._holdout:  # the ridge chosen on the validation steps, as during evolution
            val = self._val1 if self.feedback else self.val_idx
            chosen = copy.deepcopy(self.readout).fit_holdout(self._features(S, self.fit_idx, gain), self.Y_fit,
                                                             self._features(S, val, gain), self.Y_val)
            readout = copy.deepcopy(self.readout)
            readout.ridge = float(chosen.ridge_[0])
        else:  # an SVM subsampled during evolution fits all states now
            readout = self.readout.for_final() if hasattr(self.readout, "for_final") else copy.deepcopy(self.readout)
        idx, Y = (self.final_idx, self.Y_final) if refit else (self.fit_idx, self.Y_fit)
        final = self._unscale(copy.deepcopy(readout).fit(self._features(S, idx, gain), Y), gain)
        final.refitted_ = bool(refit)
        if refit and self.feedback and self.horizon > 1 and hasattr(final, "coef_"):
            # the refitted readout is not the one whose free runs were scored: keep it only if it scores at
            # least as well on them (it has seen those steps, so only an unstable closed loop loses)
            evolved = self._unscale(readout.fit(self._features(S, self.fit_idx, gain), self.Y_fit), gain)
            _, state = forward(self.spec, w, self.inputs[:, : self.split], return_state=True, backend=self.backend)
            if self._closed_loop_loss(w, final.coef_, state)[0] > self._closed_loop_loss(w, evolved.coef_, state)[0]:
                evolved.refitted_ = False
                return evolved
        return final


def free_run_options(feedback, loss, horizon, stride) -> dict:
    """A trainer's ``horizon`` and ``stride`` as :class:`EvolinoFitness` options, checked.

    Parameters
    ----------
    feedback : bool
    loss : str or callable
    horizon : int, "auto" or None
    stride : int or None

    Returns
    -------
    dict
        The free-run options (feedback tasks; empty for input-driven data).
    """
    given = {"horizon": horizon, "stride": stride}
    if not feedback:
        for name, v in given.items():
            if v not in (None, "auto"):
                raise ValueError(f"{name} applies to feedback=True (free runs); leave it None for input-driven data")
        if loss == "vpt":
            raise ValueError("loss='vpt' scores free runs: it needs feedback=True")
        return {}
    return {name: v if (name == "horizon" and v == "auto") else check_positive_int(v, name)
            for name, v in given.items() if v is not None}


def first_generation_check(fitness):
    """A callback stopping generation 1 when every candidate's loss was not finite: no later one can do better.

    Constant validation targets are exempt: their NRMSE is undefined (0/0) for every candidate,
    whatever its outputs, and the run still picks the network by its fitted readout.

    Parameters
    ----------
    fitness : EvolinoFitness
        The weight-space fitness of the run (its ``Y_val`` is read once).

    Returns
    -------
    callable ``check(status)`` for :func:`evolino.loop.run_search`; raises EvolinoError.
    """
    Y_val = np.asarray(fitness.Y_val)
    constant = Y_val.size > 0 and bool(np.all(Y_val.std(axis=0) <= 1e-9 * (1 + np.abs(Y_val).max(axis=0))))

    def check(status):
        if status["generation"] == 1 and not constant and np.all(np.asarray(status["fitness"]) == WORST):
            raise EvolinoError("every candidate of generation 1 had a non-finite loss (NaN or inf outputs): the "
                               "data or the scales overflow the network; check the data for huge values, or lower "
                               "input_scale / init_scale")
    return check
