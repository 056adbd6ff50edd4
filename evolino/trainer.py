"""The Evolino trainer: evolve hidden LSTM weights, compute output weights.

``Evolino(...).fit(Y)`` wires an :class:`~evolino.lstm.LSTMSpec`, a search strategy
(ESP or CMA-ES), a readout and an evaluator around :class:`~evolino.fitness.EvolinoFitness`
and runs :func:`~evolino.loop.run_search`. The network kept is the best ever
seen by validation fitness (not the last generation's best). Checkpoints are
``.npz`` + JSON, written atomically; ``fit(..., resume=True)`` continues a run
bit-identically.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ._validate import as_rng, check_array, check_choice, check_number, check_positive_int
from .fitness import EvolinoFitness
from .evaluate import make_evaluator
from .loop import History, run_search
from .lstm import LSTMSpec
from .model import EvolinoNetwork, load_npz, save_npz_atomic
from .readout import Linear
from .search import make_strategy

__all__ = ["Evolino", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1
SEARCHES = ("esp", "cmaes")
READOUTS = ("linear", "svr", "svc")


def _as_batch(A, name, dtype):
    A = check_array(A, name, ndims=(2, 3), dtype=dtype, finite=True)
    return A if A.ndim == 3 else A[None]


class Evolino:
    """Train an LSTM by Evolino (Schmidhuber, Wierstra, Gagliolo & Gomez, Neural Computation 2007).

    Parameters
    ----------
    n_cells : int or LSTMSpec, default=10
        Memory cells (or a full spec; its ``n_inputs`` must match the data).
    search : {"esp", "cmaes"} or strategy object, default="esp"
        A strategy object must have the ask/tell protocol and ``spec.n_params`` dimensions.
    readout : {"linear", "svr", "svc"} or readout object, default="linear"
        ``"svr"``/``"svc"``: support-vector readouts of Evoke with default options
        (:mod:`evolino.readout_svm`; pass an ``SVR(...)``/``SVC(...)`` object for others).
    ridge : float, default=0.0
        Ridge penalty of the ``"linear"`` readout (0 = pseudo-inverse, as in Evolino).
        Absolute: see :class:`~evolino.readout.Linear` before using it with a small ``input_scale``.
    washout : int, default=100
        Initial steps of each training sequence the readout ignores.
    validation : float or int, default=0.25
        Held-out final part of each training sequence on which fitness is measured:
        a fraction of the post-washout steps, or a number of steps.
    feedback : bool, default=True
        Feed the previous target (training) / output (generation) back as input.
    popsize : int, optional
        Networks per generation (strategy default if None).
    max_generations : int, default=100
    max_evaluations, target_fitness : optional budgets
    peepholes, forget_gate : bool, default=True
    init_scale : float, default=1.0
        Scale of the random initial genomes (see :meth:`LSTMSpec.init`).
    input_scale : float, default=1e-3
        Factor on every network input (external and fed back). Small inputs keep
        the cells near their operating point, a rich and nearly linear filter
        bank, which is what closed-loop generation of signals made by a linear
        recurrence (superimposed sines) needs; PyBrain's Evolino scales its
        back-projection by 0.01 for the same reason. Measured on 2 sines, random
        10-cell networks reach 1e-5 NRMSE at 1e-3 and 1e-2 at 1; the CLI uses 1e-5
        with 40 cells. Nonlinear signals want larger values: Mackey-Glass uses 3.
    search_options : dict, optional
        Extra keyword arguments of the strategy (e.g. ``subpop_size``, ``sigma0``).
    evaluator : {"serial", "pool", "ray"} or evaluator object, default="serial"
        Where fitness is computed (see :mod:`evolino.evaluate`); every evaluator gives
        the same result for the same seed.
    n_jobs : int, optional
        Workers of a ``"pool"`` / ``"ray"`` evaluator (default: all CPUs).
    refit : bool, default=True
        Fit the final network's readout on all post-washout steps (fit + validation part).
    checkpoint : path, optional
        Write a checkpoint there every ``checkpoint_every`` generations and at the end.
    checkpoint_every : int, default=10
    callbacks : sequence of callables ``f(status) -> bool | None`` (see :mod:`evolino.loop`)
    dtype : float64 or float32
    seed : int, optional
        Seeds everything; None draws one (recorded in ``seed_``).

    Attributes
    ----------
    network_ : EvolinoNetwork
    history_ : dict of lists (per generation)
    best_fitness_ : float
    seed_ : int
    strategy_ : the search strategy
    """

    def __init__(self, n_cells=10, *, search="esp", readout="linear", ridge=0.0, washout=100,
                 validation=0.25, feedback=True, popsize=None, max_generations=100, max_evaluations=None,
                 target_fitness=None, peepholes=True, forget_gate=True, init_scale=1.0, input_scale=1e-3,
                 search_options=None,
                 evaluator="serial", n_jobs=None, refit=True, checkpoint=None, checkpoint_every=10, callbacks=(),
                 dtype=np.float64, seed=None):
        self.n_cells = n_cells
        self.search = search
        self.readout = readout
        self.ridge = ridge
        self.washout = washout
        self.validation = validation
        self.feedback = feedback
        self.popsize = popsize
        self.max_generations = max_generations
        self.max_evaluations = max_evaluations
        self.target_fitness = target_fitness
        self.peepholes = peepholes
        self.forget_gate = forget_gate
        self.init_scale = init_scale
        self.input_scale = input_scale
        self.search_options = search_options
        self.evaluator = evaluator
        self.n_jobs = n_jobs
        self.refit = refit
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.callbacks = callbacks
        self.dtype = dtype
        self.seed = seed

    # --- set-up ----------------------------------------------------------------
    def _spec(self, n_inputs):
        if isinstance(self.n_cells, LSTMSpec):
            if self.n_cells.n_inputs != n_inputs:
                raise ValueError(f"n_cells spec has n_inputs={self.n_cells.n_inputs}, the data need {n_inputs}")
            return self.n_cells
        return LSTMSpec(n_inputs, check_positive_int(self.n_cells, "n_cells"), peepholes=self.peepholes,
                        forget_gate=self.forget_gate, dtype=self.dtype)

    def _data(self, Y, X):
        dtype = np.dtype(self.dtype).type
        Y = _as_batch(Y, "Y", dtype)
        if X is None and not self.feedback:
            raise ValueError("X is required when feedback=False (the network needs inputs)")
        if X is not None:
            X = _as_batch(X, "X", dtype)
            if X.shape[:2] != Y.shape[:2]:
                raise ValueError(f"X and Y must have the same sequences and steps, got {X.shape} and {Y.shape}")
        T = Y.shape[1]
        washout = check_positive_int(self.washout, "washout", minimum=0)
        if T < washout + 2:
            raise ValueError(f"Y has {T} steps: need at least washout + 2 = {washout + 2}")
        v = self.validation
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            n_val = check_positive_int(v, "validation")
        else:
            n_val = int(round(check_number(v, "validation", low=0.0, high=1.0, low_open=True) * (T - washout)))
        n_val = max(1, n_val)
        split = T - n_val
        if split - washout < 1:
            raise ValueError(f"validation={v!r} leaves no steps to fit the readout after washout={washout}")
        return Y, X, washout, split

    def _readout(self):
        if isinstance(self.readout, str):
            name = check_choice(self.readout, "readout", READOUTS)
            if name == "linear":
                return Linear(ridge=check_number(self.ridge, "ridge", low=0.0))
            from .readout_svm import SVC, SVR  # lazy: imports scikit-learn

            return SVR() if name == "svr" else SVC()
        if not hasattr(self.readout, "fit"):
            raise TypeError(f"readout must be one of {READOUTS} or an object with fit(S, Y), got {self.readout!r}")
        if getattr(self.readout, "kernel", "linear") != "linear":
            raise ValueError(f"readout must give linear output weights (kernel='linear') for the Evolino trainer, "
                             f"got kernel={self.readout.kernel!r}; EvolinoRegressor accepts other kernels")
        return self.readout

    def _strategy(self, spec, seed):
        if not isinstance(self.search, str):
            for attr in ("ask", "tell", "best", "state_dict"):
                if not hasattr(self.search, attr):
                    raise TypeError(f"search must be one of {SEARCHES} or a strategy object; it lacks {attr}")
            return self.search
        name = check_choice(self.search, "search", SEARCHES)
        opts = dict(self.search_options or {})
        init_rng = as_rng(np.random.SeedSequence(seed).spawn(2)[1])
        scale = check_number(self.init_scale, "init_scale", low=0.0)
        if name == "esp":
            opts.setdefault("init", lambda rng, size: spec.init(rng, size, scale))
            opts.setdefault("units", spec.cell_slices)
        else:
            opts.setdefault("x0", spec.init(init_rng, 1, scale)[0])
        if self.popsize is not None:
            opts["popsize"] = check_positive_int(self.popsize, "popsize")
        return make_strategy(name, spec.n_params, seed=int(seed), **opts)

    def _evaluator(self):
        """The evaluator to use and whether this call created it (then the trainer closes it)."""
        created = isinstance(self.evaluator, str) or self.evaluator is None
        return make_evaluator(self.evaluator, n_jobs=self.n_jobs), created

    def _config(self, spec, Y, X):
        """What must match for a checkpoint to be resumed (JSON-able)."""
        digest = hashlib.sha256(Y.tobytes() + (b"" if X is None else X.tobytes())).hexdigest()[:16]
        return {
            "spec": [spec.n_inputs, spec.n_cells, spec.peepholes, spec.forget_gate, np.dtype(spec.dtype).name],
            "search": self.search if isinstance(self.search, str) else type(self.search).__name__,
            "readout": self.readout if isinstance(self.readout, str) else type(self.readout).__name__,
            "ridge": float(self.ridge), "washout": int(self.washout), "validation": self.validation,
            "feedback": bool(self.feedback), "popsize": self.popsize, "init_scale": float(self.init_scale),
            "input_scale": float(self.input_scale),
            "search_options": {k: v for k, v in (self.search_options or {}).items() if isinstance(v, (int, float, str, bool))},
            "data": [list(Y.shape), None if X is None else list(X.shape), digest],
        }

    # --- training ----------------------------------------------------------------
    def fit(self, Y, X=None, *, resume=False) -> EvolinoNetwork:
        """Evolve a network for targets ``Y`` ``(T, O)`` or ``(B, T, O)``, inputs ``X`` ``(T, I)`` / ``(B, T, I)``.

        With ``feedback=True`` the network's input at ``t`` is ``[X[t], Y[t-1]]``.
        ``resume=True`` continues from ``checkpoint`` (same configuration and data).
        Returns the trained :class:`EvolinoNetwork` (also ``self.network_``).
        """
        Y, X, washout, split = self._data(Y, X)
        n_inputs = (0 if X is None else X.shape[-1]) + (Y.shape[-1] if self.feedback else 0)
        spec = self._spec(n_inputs)
        readout = self._readout()
        input_scale = check_number(self.input_scale, "input_scale", low=0.0, low_open=True)
        fitness = EvolinoFitness(spec, Y, X, washout=washout, split=split, feedback=bool(self.feedback),
                                 readout=readout, input_scale=input_scale)
        config = self._config(spec, Y, X)
        every = check_positive_int(self.checkpoint_every, "checkpoint_every")
        if resume:
            if self.checkpoint is None:
                raise ValueError("resume=True needs checkpoint=<path>")
            seed, strategy, history, elapsed = self._load_checkpoint(spec, config)
        else:
            seed = int(as_rng(self.seed).integers(2**32)) if self.seed is None else self.seed
            seed = check_positive_int(seed, "seed", minimum=0)
            strategy, history, elapsed = self._strategy(spec, seed), History(), 0.0
        self.seed_ = seed
        callbacks = list(self.callbacks)
        if self.checkpoint is not None:
            def save_cb(status):
                if status["generation"] % every == 0:
                    self._save_checkpoint(config, seed, strategy, history, status["elapsed"])
            callbacks.append(save_cb)
        evaluator, created = self._evaluator()
        try:
            history = run_search(strategy, fitness, evaluator=evaluator, max_generations=self.max_generations,
                                 max_evaluations=self.max_evaluations, target_fitness=self.target_fitness,
                                 callbacks=callbacks, history=history, time_offset=elapsed)
        finally:
            if created:
                evaluator.close()
        if self.checkpoint is not None and history["time"]:
            self._save_checkpoint(config, seed, strategy, history, history["time"][-1])
        genome, best = strategy.best
        genome = np.asarray(genome, dtype=spec.dtype)
        coef = fitness.final_readout(genome, refit=bool(self.refit))
        self.strategy_ = strategy
        self.history_ = history
        self.best_fitness_ = float(best)
        self.network_ = EvolinoNetwork(spec, genome, coef, feedback=bool(self.feedback), washout=washout,
                                       input_scale=input_scale)
        return self.network_

    # --- checkpoints -------------------------------------------------------------
    def _save_checkpoint(self, config, seed, strategy, history, elapsed):
        arrays, plain = {}, {}
        for k, v in strategy.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"strategy.{k}"] = v
            else:
                plain[k] = v.item() if isinstance(v, np.generic) else v
        meta = {"format": "evolino.checkpoint", "version": CHECKPOINT_VERSION, "config": config, "seed": seed,
                "strategy": plain, "history": dict(history), "elapsed": float(elapsed)}
        save_npz_atomic(self.checkpoint, arrays, meta)

    def _load_checkpoint(self, spec, config):
        arrays, meta = load_npz(self.checkpoint, "evolino.checkpoint", CHECKPOINT_VERSION)
        saved = json.loads(json.dumps(meta["config"]))
        if saved != json.loads(json.dumps(config)):
            diff = sorted(k for k in config if saved.get(k) != json.loads(json.dumps(config[k])))
            raise ValueError(f"checkpoint {self.checkpoint} was written by a different configuration or data "
                             f"(differs in: {', '.join(diff)})")
        strategy = self._strategy(spec, meta["seed"])
        state = dict(meta["strategy"])
        state.update({k[len("strategy."):]: v for k, v in arrays.items() if k.startswith("strategy.")})
        strategy.load_state_dict(state)
        return meta["seed"], strategy, History(meta["history"]), float(meta["elapsed"])

