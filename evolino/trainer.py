"""The Evolino trainer, the one supervised training core: evolve hidden LSTM weights, compute output weights.

``Evolino(...).fit(Y, X=...)`` wires an :class:`~evolino.lstm.LSTMSpec`, a search
strategy (:func:`~evolino.search.make_strategy`), a readout and an evaluator around
:class:`~evolino.fitness.EvolinoFitness` and runs :func:`~evolino.loop.run_search`.
It serves every supervised path: one long series, several sequences (a 3-D array
or a list of different lengths), targets per step or per sequence, generation with
output feedback, regression or classification losses. The scikit-learn estimators
are thin adapters over it. The network kept is the best ever seen by validation
fitness. Checkpoints are ``.npz`` + JSON, written atomically; ``fit(..., resume=True)``
continues a run bit-identically.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import _data
from ._checkpoint import CHECKPOINT_VERSION, load_checkpoint, run_config, save_checkpoint
from ._io import check_writable
from ._resources import check_run_memory
from ._validate import EvolinoError, EvolinoTypeError, as_rng, check_choice, check_float_dtype, check_number, check_positive_int
from .evaluate import make_evaluator
from .autoscale import choose_scales, generation_zero
from .fitness import LOSSES, EvolinoFitness, first_generation_check, free_run_options
from .genome import ENCODINGS, Direct, EncodedFitness, make_encoding
from .loop import History, progress_bar, run_search
from .lstm import GATE_REGIMES, LSTMSpec
from .model import EvolinoNetwork
from .presets import SUPERVISED, auto_generations, auto_mutation_scale, auto_n_cells
from .readout import MIN_STEPS_AUTO, Linear
from .search import STRATEGIES, make_strategy

__all__ = ["Evolino", "CHECKPOINT_VERSION"]

READOUTS = ("linear", "svr", "svc")


def _size(v, name, auto, minimum=1):
    """``v`` checked as an int >= ``minimum``, or ``auto`` for ``"auto"``."""
    if isinstance(v, str) and v != "auto":
        raise EvolinoTypeError(f"{name} must be an int >= {minimum} or 'auto', got {v!r}")
    return auto if isinstance(v, str) else check_positive_int(v, name, minimum=minimum)


class Evolino:
    """Train an LSTM by Evolino (Schmidhuber, Wierstra, Gagliolo & Gomez, Neural Computation 2007).

    Parameters
    ----------
    n_cells : int, "auto" or LSTMSpec, default="auto"
        Memory cells (or a full spec; its ``n_inputs`` must match the data). ``"auto"``: from the
        amount of data, :func:`evolino.presets.auto_n_cells` of the post-washout steps (or
        sequences), 0.15 per row within [20, 300] (``n_cells_``).
    search : {"esp", "cmaes"} or strategy object, default="cmaes"
        ``"esp"`` with ``encoding="direct"`` is the paper's Evolino. A strategy object must have
        the ask/tell protocol and the encoding's ``n_params`` dimensions.
    readout : {"linear", "svr", "svc"} or readout object, default="linear"
        ``"svr"``/``"svc"``: support-vector readouts of Evoke with default options
        (:mod:`evolino.readout_svm`; pass an ``SVR(...)``/``SVC(...)`` object for others).
    ridge : "auto" or float, default="auto"
        Ridge penalty of the ``"linear"`` readout, relative to the state energy (times
        ``trace(S^T S) / H`` of each candidate's centred states, so a value means the same
        whatever the scale of the states). ``"auto"``: each candidate picks its penalty from
        :data:`evolino.readout.RIDGE_GRID` (0 included): the one with the least error on the
        validation steps where they are scored one step at a time (input-driven data,
        ``horizon=1``), by generalized cross-validation on the fit steps otherwise;
        0: the pseudo-inverse of the Evolino paper (see :class:`~evolino.readout.Linear`).
    washout : int, default=100
        Initial steps of each training sequence the readout ignores (the transient of the
        zero start). With ``feedback``, also the warm-up of every validation free run: each
        starts from a fresh network teacher-forced over the ``washout`` true steps before it,
        so forecasts need at least that much history.
    validation : float or int, default=0.25
        Held-out part on which fitness is measured. Per-step targets: the final
        fraction of each sequence's post-washout steps (or that many steps); 0 scores
        the fit steps themselves (input-driven only). Per-sequence targets: a random
        fraction of the sequences (stratified by class for classification losses).
    feedback : bool, default=True
        Feed the previous target (training) / output (generation) back as input.
    loss : {"nrmse", "vpt", "multilabel", "multiclass"} or callable, default="nrmse"
        Validation loss; classification losses expect 0/1 targets (one column per label,
        or one-hot rows for ``"multiclass"``). A readout's own ``validation_loss`` (SVC)
        takes precedence over ``"nrmse"``. ``"vpt"`` (feedback): minus the valid prediction
        time of the free runs (error per output / std < 0.4), as a fraction of ``horizon``.
    horizon : int, "auto" or None, default="auto"
        Feedback tasks: score many free runs of ``horizon`` steps started every ``stride``
        steps across the validation part, each after a warm-up of ``washout`` true steps (e.g.
        84 for Mackey-Glass's NRMSE84; 1 for one-step prediction) instead of one free run over
        the whole validation part (None). ``"auto"``: four scales at once, a weighted geometric
        mean of the NRMSE of one run over all of the validation part (weight 1/2: it sees slow
        instabilities) and of seven runs each of a quarter (half-overlapping), a sixteenth and a
        sixty-fourth of it (what a chaotic series allows; :class:`~evolino.fitness.EvolinoFitness`).
        Diverging runs are clipped to the training range (plus its width on either side), so
        they get a bounded worst score.
    stride : int, optional
        Steps between free-run starts (default ``horizon // 2``).
    noise : float or "auto", default=SUPERVISED.noise
        Feedback tasks: std of Gaussian noise (standardized units) on the fed-back targets of
        the teacher-forced inputs the readout is fitted on, the usual stabilizer of closed-loop
        generation. ``"auto"``: generation 0 picks it from :data:`~evolino.autoscale.NOISE_GRID`
        (:func:`~evolino.autoscale.choose_noise`; recorded in ``noise_``, ``chosen_`` and ``noise_table_``).
    popsize : int, default=40
        Networks per generation (ESP: a multiple of ``trials``, ``search_options``).
    max_generations : int, "auto" or None, default="auto"
        ``"auto"``: :func:`evolino.presets.auto_generations`, 20 at up to 100 cells and
        ``20 * (100 / n_cells) ** 2`` on wider networks (2 at 300), so the cost hardly grows with
        the width (``max_generations_``). None: only the other budgets stop the run.
    max_evaluations, target_fitness : optional budgets
    peepholes, forget_gate : bool, default=True
    init_scale : "auto" or float, default="auto"
        Scale of the random initial genomes (weights of order ``init_scale / sqrt(fan-in)``,
        :meth:`LSTMSpec.init`).
    input_scale : "auto" or float, default="auto"
        Factor on every (standardized) network input, external and fed back, folded into
        the input weights. Small inputs keep the cells near their operating point, a rich
        and nearly linear filter bank (closed-loop generation of superimposed sines wants
        1e-5); nonlinear signals want larger values (Mackey-Glass: 3). ``"auto"`` (for
        either scale): a generation 0 scores random networks over a small grid with this
        run's fitness and keeps the best point (:mod:`evolino.autoscale`; recorded in
        ``chosen_`` and ``scale_table_``). Task presets: :mod:`evolino.presets`.
    gates : {"auto", "lstm", "reservoir"}, default="auto"
        The initial gate regime (:meth:`LSTMSpec.init`): remembering LSTM cells, or an echo
        state network of tanh units (forget gates ~0, input and output gates ~1); ``"auto"``:
        chosen with the scales.
    encoding : {"auto", "direct", "dct", "gains"}, default="auto"
        What the search evolves (:mod:`evolino.genome`): the weights themselves (the paper),
        the low-frequency DCT coefficients of a smooth correction of every weight matrix of
        the best random network of generation 0 (:class:`~evolino.genome.DCT`, Koutnik et al.
        2010), or gains and bias shifts of its units (:class:`~evolino.genome.Gains`). The
        compressed spaces keep a few hundred genes whatever the width, where evolution of wide
        networks pays (``search="cmaes"`` suits them: full covariance is affordable there).
        ``"auto"``: ``"direct"`` for ESP and strategy objects, ``"gains"`` for the other
        strategies (the measured default: benchmarks/RESULTS.md, "forecasting with default
        arguments").
    encoding_options : dict, optional
        Options of the encoding: ``{"coefficients": 16}`` (DCT), ``{"per_cell": False}`` (gains).
    search_options : dict, optional
        Options of the strategy; defaults from :data:`evolino.presets.SUPERVISED`
        (ESP: ``trials=4``, ``mutation_scale=0.01``, ``patience=10``; CMA-ES: ``sigma0=0.1``).
    evaluator : {"serial", "pool", "ray"}, evaluator object or None, default=None
        Where fitness is computed (:mod:`evolino.evaluate`); None: serial for ``n_jobs``
        None or 1, else a process pool. Every evaluator gives the same result.
    n_jobs : int, optional
        Workers of a pool / Ray evaluator (-1: all CPUs).
    refit : bool, default=True
        Fit the final network's readout on all post-washout steps (fit + validation part). With
        closed-loop validation the refit is kept only if its validation free runs score at least
        as well as the evolved readout's (``refitted_`` says which was kept).
    checkpoint : path, optional
        Write a checkpoint there every ``checkpoint_every`` generations and at the end.
    checkpoint_every : int, default=10
    callbacks : sequence of callables ``f(status) -> bool | None`` (see :mod:`evolino.loop`)
    verbose : int, default=0
        1: show a progress bar (stderr). The trainer never prints otherwise.
    standardize : bool, default=True
        Centre and scale the inputs (and, for a linear readout with the ``"nrmse"`` loss, the targets) per feature
        from the training data before training; the transform is kept in the network
        (:class:`~evolino._data.Scaler`, saved with it) and undone on output, so the network
        takes and returns raw data. ``input_scale`` then acts on unit-variance inputs.
    dtype : float64 or float32
        Of the network, its final readout and every forward pass (see ``evolution_dtype``).
    evolution_dtype : float32, float64 or None, default=None
        Of the forward passes and closed loops while the scales are chosen and during evolution
        (None: ``dtype``). ``np.float32`` halves the memory the kernels stream (faster with the
        compiled backend); the final readout, the saved network and ``lags="auto"``'s choice are in ``dtype``.
    recurrent_dtype : float32, float64 or None, default=np.float32
        The recurrent weights are float32 numbers in a float64 network (:class:`~evolino.lstm.LSTMSpec`):
        the compiled kernels then read half the bytes per step, every sum stays in float64. None: no rounding.
    backend : {"auto", "numpy", "numba"}, default="auto"
        Kernel backend of every forward pass and closed loop (``"auto"``: the compiled numba
        kernels when installed, ``pip install evolino[fast]``); results agree to float rounding.
    lags : int or "auto", default="auto"
        The readout also reads the (standardized) network inputs of the last ``lags`` steps beside
        the cells (:func:`evolino.sequences.lag_features`): with feedback, a linear autoregression
        of order ``lags`` that the evolved cells correct (the linear part of an NG-RC). ``"auto"``:
        chosen in generation 0, 0 or an order of :data:`evolino.autoscale.LAG_GRID`
        (:func:`~evolino.autoscale.choose_lags`; recorded in ``chosen_`` and ``lag_table_``).
    seed : int, optional
        Seeds everything; None draws one (recorded in ``seed_``).

    Attributes
    ----------
    network_ : EvolinoNetwork
    result_ : evolino.loop.Result
    history_ : dict of lists (per generation)
    best_fitness_ : float
    seed_ : int
    n_cells_, max_generations_ : int
        The width and generation budget of the run (``"auto"`` resolved).
    strategy_ : the search strategy
    readout_ : the fitted final readout object
    chosen_ : dict
        The scales used (``input_scale``, ``init_scale``) and ``scale_evaluations``, the
        evaluations the automatic choice spent (not counted in ``max_evaluations``).
    input_scale_, init_scale_ : float
    scale_table_ : list of dict
        The automatic choice's grid and scores (empty when both scales were given); a network
        wider than :data:`~evolino.autoscale.PROBE_CELLS` has rows at both widths (``n_cells``).
    lag_table_ : list of dict
        ``lags="auto"``'s probes (:func:`~evolino.autoscale.choose_lags`; empty otherwise).
    noise_table_ : list of dict
        ``noise="auto"``'s probes (:func:`~evolino.autoscale.choose_noise`; empty otherwise).
    noise_ : float
        The noise the readout was fitted with.
    """

    def __init__(self, n_cells=SUPERVISED.n_cells, *, search=SUPERVISED.search, readout="linear", ridge="auto",
                 washout=100, validation=0.25, feedback=True, loss="nrmse", horizon="auto", stride=None, noise=SUPERVISED.noise,
                 popsize=SUPERVISED.popsize, max_generations=SUPERVISED.max_generations,
                 max_evaluations=None, target_fitness=None, peepholes=True, forget_gate=True,
                 init_scale=SUPERVISED.init_scale, input_scale=SUPERVISED.input_scale, gates=SUPERVISED.gates,
                 encoding=SUPERVISED.encoding, encoding_options=None, search_options=None,
                 evaluator=None, n_jobs=None, refit=True, checkpoint=None, checkpoint_every=10, callbacks=(),
                 verbose=0, standardize=True, dtype=np.float64, evolution_dtype=None,
                 recurrent_dtype=np.float32, backend="auto",
                 lags=SUPERVISED.lags, seed=None):
        self.n_cells = n_cells
        self.search = search
        self.readout = readout
        self.ridge = ridge
        self.washout = washout
        self.validation = validation
        self.feedback = feedback
        self.loss = loss
        self.horizon = horizon
        self.stride = stride
        self.noise = noise
        self.popsize = popsize
        self.max_generations = max_generations
        self.max_evaluations = max_evaluations
        self.target_fitness = target_fitness
        self.peepholes = peepholes
        self.forget_gate = forget_gate
        self.init_scale = init_scale
        self.input_scale = input_scale
        self.gates = gates
        self.encoding = encoding
        self.encoding_options = encoding_options
        self.search_options = search_options
        self.evaluator = evaluator
        self.n_jobs = n_jobs
        self.refit = refit
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.callbacks = callbacks
        self.verbose = verbose
        self.standardize = standardize
        self.dtype = dtype
        self.evolution_dtype = evolution_dtype
        self.recurrent_dtype = recurrent_dtype
        self.backend = backend
        self.lags = lags
        self.seed = seed

    # --- set-up ----------------------------------------------------------------
    def _spec(self, n_inputs, n_rows):
        if isinstance(self.n_cells, LSTMSpec):
            if self.n_cells.n_inputs != n_inputs:
                raise ValueError(f"n_cells spec has n_inputs={self.n_cells.n_inputs}, the data need {n_inputs}")
            return self.n_cells
        n = _size(self.n_cells, "n_cells", auto_n_cells(n_rows))
        return LSTMSpec(n_inputs, n, peepholes=self.peepholes, forget_gate=self.forget_gate, dtype=self.dtype,
                        recurrent_dtype=self.recurrent_dtype)

    def _evolution_dtype(self, spec):
        if self.evolution_dtype is None:
            return spec.dtype
        return check_float_dtype(self.evolution_dtype, "evolution_dtype", none_ok=True).type

    def _readout(self):
        if isinstance(self.readout, str):
            name = check_choice(self.readout, "readout", READOUTS)
            if name == "linear":
                return Linear(ridge=self.ridge)
            from .readout_svm import SVC, SVR  # lazy: imports scikit-learn

            return SVR() if name == "svr" else SVC()
        if not hasattr(self.readout, "fit") or not hasattr(self.readout, "predict"):
            raise TypeError(f"readout must be one of {READOUTS} or an object with fit(S, Y) and predict(S), "
                            f"got {self.readout!r}")
        if self.feedback and getattr(self.readout, "kernel", "linear") != "linear":
            raise ValueError(f"feedback=True needs linear output weights (kernel='linear') to run in closed loop, "
                             f"got kernel={self.readout.kernel!r}")
        return self.readout

    def _strategy(self, encoding, seed, init_scale, gates="lstm"):
        if not isinstance(self.search, str):
            for attr in ("ask", "tell", "best", "state_dict"):
                if not hasattr(self.search, attr):
                    raise TypeError(f"search must be one of {STRATEGIES} or a strategy object; it lacks {attr}")
            return self.search
        name = check_choice(self.search, "search", STRATEGIES)
        if self.search_options is not None and not isinstance(self.search_options, dict):
            raise TypeError(f"search_options must be a dict or None, got {self.search_options!r}")
        opts = {**SUPERVISED.search_options(name), **(self.search_options or {})}
        if "sigma0" in opts:  # beyond ~1e6 the sampled weights only saturate the cells, and near 1e308 overflow to inf
            opts["sigma0"] = check_number(opts["sigma0"], "sigma0", low=0.0, low_open=True, high=1e6)
        if opts.get("mutation_scale") == "auto":
            opts["mutation_scale"] = auto_mutation_scale(encoding.n_params, relative=not isinstance(encoding, Direct))
        popsize = None if self.popsize is None else check_positive_int(self.popsize, "popsize")
        # the encoding is the strategy's "spec": its genes, their groups (ESP's units) and random ones
        return make_strategy(name, encoding, popsize=popsize, seed=int(seed), init_scale=init_scale,
                             init_options={"gates": gates}, **opts)

    # --- training ----------------------------------------------------------------
    def fit(self, Y, *args, X=None, per_sequence=False, resume=False) -> EvolinoNetwork:
        """Evolve a network for targets ``Y`` given inputs ``X``.

        Parameters
        ----------
        Y : array-like of shape (T,), (T, O) or (B, T, O), a list of (T_i,) / (T_i, O) arrays,
            or, with ``per_sequence``, an array (B,) / (B, O): one target per sequence
            (read out at its last step). A pandas Series / DataFrame is one series.
        X : array-like of shape (T, I) or (B, T, I), or a list of (T_i, I) arrays, keyword only
            External inputs (required when ``feedback=False``). With ``feedback=True`` the
            network's input at ``t`` is ``[X[t], Y[t-1]]``.
        per_sequence : bool, default=False
            ``Y`` holds one target row per sequence of ``X``.
        resume : bool, default=False
            Continue from ``checkpoint`` (same configuration and data).

        Returns
        -------
        EvolinoNetwork
            The trained network (also ``self.network_``).
        """
        if args:
            raise TypeError("Evolino.fit takes the targets first and the inputs by keyword: fit(Y, X=X); "
                            "a second positional argument is refused so that inputs and targets are never swapped")
        if not isinstance(self.feedback, (bool, np.bool_)):
            raise TypeError(f"feedback must be a bool, got {self.feedback!r}")
        loss = self.loss if callable(self.loss) else check_choice(self.loss, "loss", LOSSES)
        every = check_positive_int(self.checkpoint_every, "checkpoint_every")
        if self.checkpoint is not None:
            check_writable(self.checkpoint, "checkpoint")
        data = _data.prepare_data(Y, X, feedback=bool(self.feedback), per_sequence=per_sequence,
                                  washout=self.washout, validation=self.validation, dtype=self.dtype)
        spec = self._spec(data.n_inputs, data.n_rows)
        self.n_cells_ = spec.n_cells
        self.max_generations_ = None if self.max_generations is None else \
            _size(self.max_generations, "max_generations", auto_generations(spec.n_cells))
        readout = self._readout()
        scales = {k: self._scale(k) for k in ("input_scale", "init_scale", "gates")}
        name, enc_opts = self._encoding_name(), self._encoding_options()
        lags = _size(self.lags, "lags", "auto", minimum=0)
        if lags and not isinstance(readout, Linear):  # "auto": none
            if lags != "auto":
                raise EvolinoError("lags need the linear readout (readout='linear'); use lags=0 with an SVM readout")
            lags = 0
        config = run_config(self, spec, data, scales)
        if resume:
            if self.checkpoint is None:
                raise ValueError("resume=True needs checkpoint=<path>")
            seed, state, history, elapsed, chosen, base = load_checkpoint(self.checkpoint, config, self.seed)
        else:
            seed = int(as_rng(self.seed).integers(2**32)) if self.seed is None else self.seed
            seed = check_positive_int(seed, "seed", minimum=0)
            state, history, elapsed, chosen, base = None, History(), 0.0, None, None
        self.seed_ = seed
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be a bool, got {self.standardize!r}")
        # targets only for least squares on a regression loss: SVM options (epsilon) are in target units
        std_targets = bool(self.standardize) and loss == "nrmse" and isinstance(readout, Linear)
        scaler = data.standardize(inputs=bool(self.standardize), targets=std_targets)
        self.scaler_ = scaler
        if isinstance(self.noise, str) and self.noise != "auto":
            raise EvolinoTypeError(f"noise must be a float >= 0 or 'auto', got {self.noise!r}")
        noise = "auto" if self.noise == "auto" else check_number(self.noise, "noise", low=0.0)
        arrays = data.fitness_arrays(seed, stratify=loss in ("multilabel", "multiclass"), noise=bool(noise))
        fixed_noise = 0.0 if noise == "auto" or "noise_draw" not in arrays else noise  # nothing fed back: none
        n_fit = len(arrays["fit_idx"])
        if n_fit == 0:
            raise EvolinoError("no training steps or sequences are left to fit the readout: pass more data or a "
                               "smaller validation")
        if hasattr(readout, "_check_targets"):  # e.g. SVC wants 0/1 labels: say so now, not inside the fitness
            readout._check_targets(arrays["Y_fit"] if arrays.get("Y_val") is None
                                   else np.concatenate([arrays["Y_fit"], arrays["Y_val"]]))
        if getattr(readout, "ridge", None) == "auto" and n_fit < MIN_STEPS_AUTO:
            raise ValueError(f"ridge='auto' needs at least {MIN_STEPS_AUTO} fit steps to cross-validate, got "
                             f"{n_fit} sample{'s' if n_fit != 1 else ''}: pass more data or ridge=0")
        fixed = 0 if lags == "auto" else lags
        runs = free_run_options(bool(self.feedback), loss, self.horizon, self.stride)
        fitness = final_fitness = EvolinoFitness(spec, readout=readout, loss=loss, input_scale=1.0, lags=fixed,
                                                 noise=fixed_noise, backend=self.backend, **runs, **arrays)
        evo_dtype = self._evolution_dtype(spec)
        if evo_dtype != spec.dtype:  # evolution in its own precision; the final readout in the network's
            evo_arrays = {k: _data.cast(v, evo_dtype) for k, v in arrays.items()}
            fitness = EvolinoFitness(dataclasses.replace(spec, dtype=evo_dtype), readout=readout, loss=loss,
                                     input_scale=1.0, lags=fixed, noise=fixed_noise, backend=self.backend, **runs,
                                     **evo_arrays)
        check_run_memory(fitness, self.popsize if isinstance(self.popsize, int) else 16, spec.n_params)
        n_jobs = self.n_jobs  # never more workers than candidates (a pool also caps itself per call)
        if isinstance(n_jobs, int) and isinstance(self.popsize, int) and n_jobs > self.popsize > 0:
            n_jobs = self.popsize
        evaluator = make_evaluator(self.evaluator, n_jobs=n_jobs)
        created = isinstance(self.evaluator, str) or self.evaluator is None
        try:
            fresh = chosen is None
            if fresh:
                chosen, tables = generation_zero(fitness, final_fitness, spec, evaluator, scales, lags=lags,
                                                 noise=noise if noise == "auto" else fixed_noise, seed=seed)
                self.scale_table_, self.lag_table_, self.noise_table_ = tables["scales"], tables["lags"], tables["noise"]
            lags, self.noise_ = int(chosen.get("lags", fixed)), float(chosen.get("noise", fixed_noise))
            if lags != fixed:  # built without lags for the choice
                fitness, final_fitness = fitness.with_lags(lags), final_fitness.with_lags(lags)
            if self.noise_ != fixed_noise:
                fitness, final_fitness = fitness.with_noise(self.noise_), final_fitness.with_noise(self.noise_)
            if fresh and name != "direct":
                chosen, base = self._base_network(fitness, spec, evaluator, chosen, seed)
            fitness.input_scale = input_scale = chosen["input_scale"]
            self.chosen_ = chosen
            self.input_scale_, self.init_scale_ = chosen["input_scale"], chosen["init_scale"]
            self.encoding_ = encoding = make_encoding(name, spec, base=base, **enc_opts)
            strategy = self._strategy(encoding, seed, chosen["init_scale"], chosen["gates"])
            if state is not None:
                try:
                    strategy.load_state_dict(state)
                except (KeyError, TypeError, ValueError) as exc:
                    raise EvolinoError(f"{self.checkpoint}: the strategy state cannot be restored ({exc})") from exc
            run_fitness = fitness if isinstance(encoding, Direct) else EncodedFitness(fitness, encoding)
            result = self._run(strategy, run_fitness, evaluator, config, seed, chosen, history, elapsed, every,
                               base)
        finally:
            if created:
                evaluator.close()
        genome = np.asarray(self.encoding_.decode(result.best_genome), dtype=spec.dtype)
        final_fitness.input_scale = input_scale
        final = final_fitness.final_readout(genome, refit=bool(self.refit))
        self.refitted_ = bool(getattr(final, "refitted_", self.refit))  # False: the refit was unstable, not kept
        self.strategy_, self.result_, self.history_ = strategy, result, result.history
        self.best_fitness_ = result.best_fitness
        self.readout_ = final
        coef = final.coef_[0] if hasattr(final, "coef_") else final
        self.network_ = EvolinoNetwork(spec, genome, coef, feedback=bool(self.feedback), washout=data.washout,
                                       input_scale=input_scale, scaler=scaler, encoding=self.encoding_.to_dict(),
                                       lags=lags, backend=self.backend)
        return self.network_

    def _scale(self, name):
        v = getattr(self, name)
        if name == "gates":
            return check_choice(v, "gates", ("auto",) + GATE_REGIMES)
        if isinstance(v, str):
            return check_choice(v, name, ("auto",))
        return check_number(v, name, low=0.0, low_open=True)

    def _encoding_name(self):
        name = check_choice(self.encoding, "encoding", ("auto",) + tuple(ENCODINGS))
        if name == "auto":  # ESP's subpopulations are the cells of the weight genome (the paper's Evolino)
            return "direct" if not isinstance(self.search, str) or self.search == "esp" else "gains"
        return name

    def _encoding_options(self):
        if self.encoding_options is not None and not isinstance(self.encoding_options, dict):
            raise EvolinoTypeError(f"encoding_options must be a dict or None, got {self.encoding_options!r}")
        opts = dict(self.encoding_options or {})
        if opts and self._encoding_name() == "direct":
            raise EvolinoError("encoding_options apply to encoding='dct' or 'gains'; the direct encoding has none")
        return opts

    def _base_network(self, fitness, spec, evaluator, chosen, seed):
        """The base of a compressed encoding: the best of ``popsize`` random networks at the chosen scales.

        Their evaluations are added to ``chosen["scale_evaluations"]`` (generation 0).
        """
        fixed = {k: chosen[k] for k in ("input_scale", "init_scale", "gates")}
        n = check_positive_int(self.popsize or SUPERVISED.popsize, "popsize")
        _, _, base = choose_scales(fitness, spec, evaluator, seed=seed + 1, n_networks=n, return_best=True,
                                   **fixed)
        return {**chosen, "scale_evaluations": chosen["scale_evaluations"] + n}, np.asarray(base, np.float64)

    def _run(self, strategy, fitness, evaluator, config, seed, chosen, history, elapsed, every, base=None):
        """:func:`run_search` with checkpoints and the progress bar."""
        callbacks = list(self.callbacks)
        if not history["generation"]:  # a fresh run: say at once when no candidate can be scored
            callbacks.insert(0, first_generation_check(getattr(fitness, "fitness", fitness)))  # through an encoding
        if self.checkpoint is not None:
            def save_cb(status):
                if status["generation"] % every == 0:
                    save_checkpoint(self.checkpoint, config, seed, chosen, strategy, history, status["elapsed"], base)
            callbacks.append(save_cb)
        bar = None
        if self.verbose:
            bar, cb = progress_bar(self.max_generations_)
            callbacks.insert(0, cb)
        try:
            result = run_search(strategy, fitness, evaluator=evaluator, max_generations=self.max_generations_,
                                max_evaluations=self.max_evaluations, target_fitness=self.target_fitness,
                                callbacks=callbacks, history=history, time_offset=elapsed)
        finally:
            if bar is not None:
                bar.close()
        if self.checkpoint is not None and history["time"]:
            save_checkpoint(self.checkpoint, config, seed, chosen, strategy, history, history["time"][-1], base)
        return result
