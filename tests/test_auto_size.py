"""Settings that follow the amount of data: width, generations, the autoregression's orders, CMA-ES's stop."""

import numpy as np
import pytest

from evolino import Evolino, EvolinoRegressor, LSTMSpec
from evolino.autoscale import LAG_GRID, choose_lags
from evolino.evaluate import make_evaluator
from evolino.fitness import EvolinoFitness
from evolino.presets import SUPERVISED, auto_generations, auto_n_cells
from evolino.readout import Linear
from evolino.search import make_strategy


@pytest.mark.parametrize("rows, cells", [(0, 20), (100, 20), (140, 21), (300, 45), (1000, 150), (2000, 300),
                                         (10**6, 300)])
def test_width_is_one_cell_per_five_fit_steps_within_bounds(rows, cells):
    assert auto_n_cells(rows) == cells


@pytest.mark.parametrize("cells, generations", [(10, 20), (100, 20), (120, 14), (150, 9), (300, 2), (500, 1),
                                                (2000, 1)])
def test_generations_fall_with_the_square_of_the_width(cells, generations):
    assert auto_generations(cells) == generations


def test_trainer_resolves_width_and_generations_from_the_data():
    t = np.arange(260)
    y = np.sin(0.2 * t) + np.sin(0.311 * t)
    tr = Evolino(washout=50, popsize=6, seed=0)  # 210 post-washout steps
    net = tr.fit(y)
    assert tr.n_cells_ == net.spec.n_cells == round(0.15 * 210) == 32
    assert tr.max_generations_ == 20 and tr.history_["generation"][-1] == 20
    # given values are kept
    tr = Evolino(7, washout=50, popsize=6, max_generations=2, seed=0)
    net = tr.fit(y)
    assert (tr.n_cells_, net.spec.n_cells, tr.max_generations_, tr.history_["generation"][-1]) == (7, 7, 2, 2)


def test_per_sequence_targets_size_the_network_by_sequences():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(180, 6, 1))
    y = X.sum(axis=(1, 2))
    reg = EvolinoRegressor(popsize=6, max_generations=1, random_state=0).fit(X, y)
    assert reg.trainer_.n_cells_ == 27  # 180 sequences, one readout row each: 0.15 * 180
    assert reg.network_.spec.n_cells == 27


@pytest.mark.parametrize("name", ["n_cells", "max_generations"])
def test_auto_sizes_refuse_other_strings(name):
    with pytest.raises((TypeError, ValueError), match=name):
        Evolino(**{name: "big"}, washout=10).fit(np.sin(np.arange(80.0)))


def test_lag_orders_leave_two_fit_steps_per_autoregression_weight():
    # 230 fit steps: order 64 (65 weights) is scored, which four steps per weight would exclude
    t = np.arange(330)
    y = (np.sin(0.2 * t) + np.sin(0.311 * t))[:, None]
    spec = LSTMSpec(1, 4)
    fit = EvolinoFitness.from_data(spec, y, washout=50, validation=50, feedback=True, readout=Linear(ridge="auto"),
                                   horizon=25, input_scale=1e-3)
    assert len(fit.fit_idx) == 230
    _, table, _ = choose_lags(fit, spec, make_evaluator("serial"), dict(init_scale=1.0, gates="lstm"), seed=0)
    orders = [r["lags"] for r in table if r["network"] == "zero"]
    assert orders == [L for L in LAG_GRID if 2 * (L + 1) <= 230] and 64 in orders


def _tiny_losses(strategy, generations):
    """Tell losses of order 1e-13 (a linear recurrence's validation NRMSE); generations run before a stop."""
    for g in range(generations):
        X = strategy.ask()
        strategy.tell(1e-13 * (1.0 + 1e-3 * np.sum(X**2, axis=1)))
        if strategy.stop():
            return g + 1
    return generations


def test_supervised_cma_es_is_not_stopped_by_losses_near_zero():
    opts = SUPERVISED.search_options("cmaes")
    assert _tiny_losses(make_strategy("cmaes", 12, popsize=8, seed=0, **opts), 10) == 10
    # pycma's own absolute tolerances stop it at once: the setting above is what keeps it going
    assert _tiny_losses(make_strategy("cmaes", 12, popsize=8, seed=0, sigma0=opts["sigma0"]), 10) < 5
