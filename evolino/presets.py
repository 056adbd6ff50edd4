"""Presets: the one table of task-specific settings, each field with the reason for its value.

The CLI, the benchmarks and the docs read these; nothing else holds a second
copy. ``Supervised`` is what :class:`evolino.Evolino` and the scikit-learn
estimators use when a user brings new data; the task presets are measured
settings for the papers' benchmarks (benchmarks/RESULTS.md has the runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["auto_mutation_scale", "auto_n_cells", "auto_generations",
           "Supervised", "Preset", "SUPERVISED", "SINES", "MACKEY_GLASS", "ANBNCN", "POLE", "PRESETS", "PolePreset",
           "RPG", "RPGPreset"]


@dataclass(frozen=True)
class Supervised:
    """Defaults of the supervised trainer and estimators (data the project never saw)."""

    # the readout's width decides most tasks, and the width a series carries depends on its length:
    # "auto" = auto_n_cells, about one cell per five fit steps (RESULTS "width from the data")
    n_cells: int | str = "auto"
    # CMA-ES on the gains of the best random network ("auto" encoding): beat ESP on the weights at a
    # third of the evaluations on most forecasting tasks (Lorenz VPT 8.7 -> 16.9, RESULTS)
    search: str = "cmaes"
    encoding: str = "auto"  # "gains" for CMA-ES and the other distribution strategies, "direct" for ESP
    # "auto" = auto_generations: 20 at up to 100 cells (800 evaluations at popsize 40: CMA-ES on 12 gains
    # has converged by then), fewer on wider networks, so that a run costs about the same whatever the width
    max_generations: int | str = "auto"
    popsize: int = 40  # ESP 10 subpopulations x 4 trials: measured better than 4 x 10 at small budgets
    trials: int = 4  # ESP networks per chromosome at popsize 40 (see popsize)
    input_scale: float | str = "auto"  # depends on the data: chosen by a generation-0 sweep (evolino.autoscale)
    init_scale: float | str = "auto"  # likewise (weights of order init_scale / sqrt(fan-in))
    gates: str = "auto"  # remembering LSTM cells or an echo state network: chosen with the scales
    # an autoregression on the last inputs beside the cells, if it halves generation 0's validation loss
    # (evolino.autoscale.choose_lags): 8 superimposed sines 6.1e-4 -> 7e-11 (RESULTS "lag features")
    lags: int | str = "auto"
    # std of the noise on the fed-back targets the readout is fitted on, from the validation free runs of
    # generation 0's networks (evolino.autoscale.choose_noise): Mackey-Glass NRMSE84 1.35e-3 -> 7.4e-4, laser
    # closed loop 0.0616 -> 0.0441, none chosen for 8 sines or Lorenz (RESULTS "noise chosen from the data")
    noise: float | str = "auto"
    # ESP's Cauchy scale: "auto" = 0.01 / sqrt(n_params). Every offspring weight gets Cauchy noise, whose
    # heavy tail makes ~0.6 s n weights jump by more than 0.1: PyBrain's 0.01 made every generation after
    # the first worse at 50 cells (median NRMSE 0.15 -> 1.4 on Mackey-Glass); 1e-4 improved 2x in 8 (RESULTS)
    mutation_scale: float | str = "auto"
    patience: int = 10  # ESP burst mutation after 10 stale generations (Gomez's ESP)
    sigma0: float = 0.1  # CMA-ES step size, relative to weights of order 1 / sqrt(fan-in)

    def search_options(self, search: str) -> dict:
        """Options of :func:`evolino.search.make_strategy` for ``search`` ("esp" or "cmaes")."""
        if search == "esp":
            return {"trials": self.trials, "mutation_scale": self.mutation_scale, "patience": self.patience}
        if search == "cmaes":  # pycma's tolfun (1e-11) and tolfunhist (1e-12) are absolute: on 8 sines the
            # validation NRMSE itself is ~1e-11, and 20 generations at 50 cells stopped after 2 (the budgets stop it)
            return {"sigma0": self.sigma0, "tolfun": 0.0, "tolfunhist": 0.0}
        return {"sigma0": self.sigma0}


@dataclass(frozen=True)
class Preset(Supervised):
    """A supervised benchmark task's measured settings (``generations``: the CLI's budget)."""

    generations: int = 100
    washout: int = 100
    horizon: int | str | None = "auto"  # free-run length of the fitness (Evolino's horizon)
    lags: int | str = 0  # the papers' Evolino: the readout reads the cells only (a sum of sines is else an AR's)
    noise: float | str = 0.0  # the papers' Evolino: clean teacher forcing

    def trainer_kwargs(self, search: str = "esp") -> dict:
        """Keyword arguments of :class:`evolino.Evolino` for this preset."""
        return dict(n_cells=self.n_cells, search=search, popsize=self.popsize, input_scale=self.input_scale,
                    init_scale=self.init_scale, gates=self.gates, washout=self.washout,
                    max_generations=self.generations, horizon=self.horizon, lags=self.lags, noise=self.noise,
                    search_options=self.search_options(search))


# 2 sines: 40 cells at input_scale 1e-5 reach test NRMSE ~2e-9 in ~4 s (RESULTS.md "sines");
# a tiny input keeps the cells linear (sines are a linear recurrence); Cauchy 1e-4 for the
# fine convergence such small errors need; burst after 5 stale generations.
SINES = Preset(n_cells=40, input_scale=1e-5, init_scale=1.0, mutation_scale=1e-4, patience=5, generations=75,
               washout=100, horizon=None, gates="lstm")  # one free run over the validation part (as measured)

# Mackey-Glass: width matters more than evolution (150 cells); a nonlinear signal wants large
# inputs (3, where 1e-3 is too linear); 15 generations ~50 s, NRMSE84 ~2e-3 (RESULTS.md).
MACKEY_GLASS = Preset(n_cells=150, input_scale=3.0, init_scale=1.0, mutation_scale=1e-3, patience=5, generations=15,
                      washout=100, horizon=84, gates="lstm")  # NRMSE84: score 84-step free runs


@dataclass(frozen=True)
class AnbncnPreset(Supervised):
    """a^n b^n c^n with EvolinoRegressor (benchmarks/anbncn.py)."""

    n_cells: int = 4  # the smallest network that counts reliably in the measurements
    search: str = "esp"  # the measured strategy (Gomez's ESP on the weights, as in the Evolino paper)
    input_scale: float = 1.0  # symbols are one-hot; counting needs saturated gates
    init_scale: float = 3.0  # large weights: saturated gates from the start
    mutation_scale: float = 0.3  # the value of Gomez's ESP code (benchmarks/REFERENCES.md 3.1)
    gates: str = "lstm"  # counting needs cells that remember
    washout: int = 0  # every string is scored whole: the end marker is each string's last step
    validation: float = 0.0  # holding out final steps would hide the end marker from the readout
    generations: int = 300
    # the counting readout needs exact least squares on raw one-hot inputs: with the supervised defaults
    # (ridge="auto", standardized inputs) seed 0 accepted 0 of the 10 training strings, with both 1..200
    ridge: float = 0.0
    standardize: bool = False

    def estimator_kwargs(self) -> dict:
        """Keyword arguments of :class:`evolino.EvolinoRegressor` for this preset."""
        return dict(n_cells=self.n_cells, search=self.search, washout=self.washout, validation=self.validation,
                    input_scale=self.input_scale, init_scale=self.init_scale, gates=self.gates,
                    ridge=self.ridge, standardize=self.standardize,
                    search_options={"mutation_scale": self.mutation_scale})


ANBNCN = AnbncnPreset()


@dataclass(frozen=True)
class PolePreset:
    """LSTM policies for pole balancing (chosen on a few seeds of single and double pole)."""

    n_cells: int = 2  # the smallest memory that solves double pole without velocities
    # the CLI default, with command_options: SNES from mean 0 at step 2, restarted after 60 generations without
    # a better sample. Double pole without velocities, held-out seeds 10-29: 20/20 solved in a mean 2,360
    # evaluations, against xNES's 3,442 and SNES's 12/20 at the papers' settings (RESULTS "policy search")
    search: str = "snes"
    # inputs straight to the outputs as well when the velocities are observed (a Markov task): with SNES, held-out
    # seeds 10-29, 20/20 solved in a mean 612 evaluations, against 1,362 without (RESULTS "Direct input-output
    # connections"); without velocities they hurt (6/10 solved on seeds 0-9), so they stay off there
    direct_with_velocities: bool = True
    snes_sigma0: float = 2.0
    patience: int = 60
    trials: int = 5  # ESP networks per chromosome
    mutation_scale: float = 0.1  # policies live at weights of order 1
    init_scale: float = 2.0  # ESP's initial subpopulations: spec.init at scale 2
    sigma0: float = 1.0  # CMA-ES step size from mean 0
    max_evaluations: int = 100_000  # the literature's budget (CoSyNE, JMLR 2008)

    def search_options(self, search: str) -> dict:
        """Options of :func:`evolino.search.make_strategy` for ``search`` on a pole task."""
        if search == "esp":
            return {"trials": self.trials, "mutation_scale": self.mutation_scale}
        if search == "cosyne":
            return {}  # CoSyNE's own defaults (Cauchy 0.3 at rate 0.3), population from spec.init at init_scale
        return {"sigma0": self.sigma0}  # CMA-ES, SNES, xNES, PGPE: from mean 0 with step 1

    def command_options(self, search: str) -> dict:
        """What ``evolino pole`` adds to :meth:`search_options`: SNES's measured step and restarts."""
        return {"sigma0": self.snes_sigma0, "patience": self.patience} if search == "snes" else {}


@dataclass(frozen=True)
class GymPreset:
    """``evolino gym``: SNES with restarts, chosen on classic-control tasks with the velocities hidden."""

    # SNES at the papers' settings, restarted after 20 generations without a better sample. Held out (100
    # episodes, seeds 0-9): MountainCar-v0 10/10 >= -110 (9/10 without restarts: seed 2 never reached the goal),
    # CartPole-v1 10/10 with margin 15 (median evaluations unchanged, 870), Acrobot-v1 10/10 with 10 training
    # episodes and margin 15 (restarts changed nothing there); RESULTS "SNES with restarts on gymnasium tasks"
    search: str = "snes"
    patience: int = 20

    def command_options(self, search: str) -> dict:
        """What ``evolino gym`` adds to the strategy's own defaults: SNES's restarts."""
        return {"patience": self.patience} if search == "snes" else {}


@dataclass(frozen=True)
class RPGPreset:
    """Recurrent policy gradients (:mod:`evolino.rl.rpg`), chosen on T-maze corridors of 4-20 (4-8 seeds each)."""

    n_cells: int = 4  # N=5: 3/5 solved with 4 cells, 1/5 with 2 (the memory starts at a saddle, W_out ~ dh ~ 0)
    direct: bool = True  # inputs straight to the outputs, the cells only carry memory: N=5 8/8 vs 4/8 without
    episodes: int = 32  # per gradient step: N=5 8/8 solved; 16 episodes 6/8, 64 episodes 7/8 at 1.6x the cost
    lr: float = 0.03  # Adam's step (each weight moves by about lr per step): N=5 8/8; 0.1 6/8; 0.01 4/5
    init_scale: float = 2.0  # larger weights separate the two signals' states: N=4, 2 cells 0/5 at 1.0
    # forget gates nearly open (sigma(5) = 0.993), so the signal outlives the corridor: N=10 4/5 solved and
    # N=20 2/4 at bias 5, against 2/5 and 0/4 at bias 3
    forget_bias: float = 5.0
    sigma: float = 0.5  # Gaussian head's initial std on actions in [-1, 1] (learned from there)
    max_evaluations: int = 100_000  # training episodes, as the pole searches' evaluation budget


# width: one cell per five fit steps (validation 0.25: 0.15 per post-washout step), in [20, 300]. Read off
# the forecasting table: 300 cells beat 100 on every task with >= 1,500 fit steps (Mackey-Glass 1.37e-3 vs
# 6.78e-3 at generation 1), and 50 beat 100 and 300 on MSO-8's 225 (2.4e-11, 5.8e-11, 3.2e-8)
CELLS_PER_ROW = 0.15
MIN_CELLS, MAX_CELLS = 20, 300
GENERATIONS, GENERATION_CELLS = 20, 100  # max_generations="auto": 20 generations at up to 100 cells


def auto_n_cells(n_rows: int) -> int:
    """``n_cells="auto"``: memory cells for ``n_rows`` post-washout steps (or sequences) of training data.

    ``round(0.15 * n_rows)``, clipped to ``[MIN_CELLS, MAX_CELLS]``: about one cell per five readout
    rows at the default validation fraction.
    """
    return int(min(MAX_CELLS, max(MIN_CELLS, round(CELLS_PER_ROW * int(n_rows)))))


def auto_generations(n_cells: int, generations: int = GENERATIONS) -> int:
    """``max_generations="auto"``: ``generations`` at up to 100 cells, ``generations * (100 / n_cells) ** 2``
    (at least 1) on wider networks, whose evaluations cost about the square of the width."""
    return int(max(1, min(generations, round(generations * (GENERATION_CELLS / int(n_cells)) ** 2))))


def auto_mutation_scale(n_params: int, relative: bool = False) -> float:
    """ESP's Cauchy mutation scale for a genome of ``n_params`` genes: ``0.01 / sqrt(n_params)`` for weights,
    ``0.1 / sqrt(n_params)`` for the relative genes of a compressed encoding (:mod:`evolino.genome`)."""
    return (0.1 if relative else 0.01) / float(n_params) ** 0.5


SUPERVISED = Supervised()
POLE = PolePreset()
GYM = GymPreset()
RPG = RPGPreset()
PRESETS = {"sines": SINES, "mackey-glass": MACKEY_GLASS, "anbncn": ANBNCN, "pole": POLE}


def as_dict(preset) -> dict:
    """Plain dict of a preset (for results files)."""
    return asdict(preset)



