"""Forecasting: multi-segment closed-loop fitness, bounded scores on divergence, one-step use."""

import numpy as np
import pytest

from evolino import Evolino, LSTMSpec, forward, prepare
from evolino.fitness import WORST, EvolinoFitness
from evolino.metrics import regression_loss
from evolino.readout import Linear
from evolino.tasks import MackeyGlassTask
from reference import BACKENDS, lstm_reference

SERIES = MackeyGlassTask(train=400).train_series  # (500, 1)
WASHOUT, N_VAL = 50, 150


def _free_runs_by_hand(spec, g, Y, horizon, stride, input_scale=1.0, warm=WASHOUT, starts=None, fit_noise=None):
    """Teacher forcing then closed loop, one segment at a time, from the equations: each run from a fresh
    network teacher-forced over the ``warm`` steps before it (0: over the whole series before it).
    ``fit_noise`` (T, 1) is added to the fed-back values the readout's states see, not to the warm-ups."""
    T, split = len(Y), len(Y) - N_VAL
    prev = np.r_[[[0.0]], Y[:-1]]
    noisy = prev if fit_noise is None else prev + fit_noise
    h, _, _ = lstm_reference(spec, g, noisy[:split] * input_scale)
    S, Yf = h[WASHOUT:split], Y[WASHOUT:split]
    A = np.c_[S, np.ones(len(S))]
    W = np.linalg.lstsq(A, Yf, rcond=None)[0]
    lo, hi = Yf.min(), Yf.max()
    lo, hi = lo - (hi - lo), hi + (hi - lo)  # fed-back outputs are clipped to the training range, widened
    outs, targets = [], []
    for s in range(split, T - horizon + 1, stride) if starts is None else starts:
        _, hh, cc = lstm_reference(spec, g, prev[s - warm if warm else 0 : s] * input_scale)
        y = Y[s - 1]
        for t in range(horizon):
            o, hh, cc = lstm_reference(spec, g, (y * input_scale)[None], hh, cc)
            y = np.clip(np.r_[o[0], 1.0] @ W, lo, hi)
            outs.append(y)
            targets.append(Y[s + t])
    return np.array(outs), np.array(targets)


def _capped(out, target, horizon, cap=1.0):
    """Mean over runs of each run's RMS error / std of all targets, capped at ``cap`` (+ 0.01 log beyond)."""
    scale, total = np.std(target), []
    for i in range(0, len(out), horizon):
        e = np.sqrt(np.mean((out[i : i + horizon] - target[i : i + horizon]) ** 2)) / scale
        total.append(min(e, cap) + 0.01 * np.log(max(e, cap) / cap))
    return np.mean(total)


@pytest.mark.parametrize("horizon,stride", [(20, 10), (30, 45), (N_VAL, None)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_segment_fitness_equals_a_plain_loop(horizon, stride, backend):
    rng = np.random.default_rng(0)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 3)
    kw = {} if stride is None else dict(stride=stride)
    fits = [EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True, readout=Linear(),
                                     horizon=horizon, input_scale=0.5, backend=backend, run_cap=cap, **kw)
            for cap in (1.0, 0.05, None)]
    got = [f(genomes) for f in fits]
    for p, g in enumerate(genomes):
        out, target = _free_runs_by_hand(spec, g, SERIES, horizon, stride or max(1, horizon // 2), 0.5)
        assert got[0][p] == pytest.approx(_capped(out, target, horizon), rel=1e-6)
        assert got[1][p] == pytest.approx(_capped(out, target, horizon, 0.05), rel=1e-6)
        # run_cap=None: one NRMSE pooled over the runs
        assert got[2][p] == pytest.approx(np.sqrt(np.mean((out - target) ** 2)) / np.std(target), rel=1e-6)


def test_a_few_diverging_runs_count_as_runs_that_gave_up():
    # one run of four far off (clipped at 100 std) and three good ones beat four runs that all decay to the mean
    from evolino.metrics import free_run_loss

    t = (-1.0) ** np.arange(40)[:, None]  # std 1, and every run of forecasts of the mean has NRMSE 1
    diverged = np.r_[t[:30], np.full((10, 1), 100.0)]
    decayed = np.zeros_like(t)
    capped = free_run_loss(np.stack([diverged, decayed]), t, 10)
    assert capped[0] == pytest.approx((1 + 0.01 * np.log(np.sqrt(10001))) / 4)  # (99^2 + 101^2) / 2 = 10001 and capped[1] == pytest.approx(1.0)
    # beyond the cap, runs further off still rank worse
    assert free_run_loss(np.full((1, 40, 1), 1e3), t, 10)[0] > free_run_loss(np.full((1, 40, 1), 10.0), t, 10)[0] > 1
    pooled = regression_loss(np.stack([diverged, decayed]), t)
    assert pooled[0] > pooled[1]  # what the pooled NRMSE prefers instead
    assert free_run_loss(np.full((1, 40, 1), np.nan), t, 10)[0] == np.inf


@pytest.mark.parametrize("warm", [0, 7])
def test_free_runs_start_after_warm_steps_from_a_fresh_network(warm):
    # the trainer warms over its washout (the tests above); other warm-ups and the whole history (0)
    rng = np.random.default_rng(4)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 2)
    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Linear(), horizon=25, warm=warm)
    got = fit(genomes)
    for p, g in enumerate(genomes):
        out, target = _free_runs_by_hand(spec, g, SERIES, 25, 12, warm=warm)
        assert got[p] == pytest.approx(_capped(out, target, 25), rel=1e-6)
    with pytest.raises(ValueError, match="warm"):
        EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True, readout=Linear(),
                                 horizon=25, warm=len(SERIES))


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_horizon_is_a_weighted_geometric_mean_over_four_scales(backend):
    rng = np.random.default_rng(2)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 3)
    got = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Linear(), horizon="auto", input_scale=0.5, backend=backend)(genomes)
    split = len(SERIES) - N_VAL
    h = N_VAL // 4
    for p, g in enumerate(genomes):
        runs = [_free_runs_by_hand(spec, g, SERIES, h, h // 2, 0.5),  # seven half-overlapping quarters
                _free_runs_by_hand(spec, g, SERIES, N_VAL, 1, 0.5)]  # all of the validation part
        for k in (16, 64):  # seven evenly spaced runs of a sixteenth and a sixty-fourth (150 // 64 = 2 steps)
            hk = N_VAL // k
            starts = sorted({int(v) for v in np.linspace(split, len(SERIES) - hk, 7)})
            runs.append(_free_runs_by_hand(spec, g, SERIES, hk, None, 0.5, starts=starts))
        lengths = [h, N_VAL, N_VAL // 16, N_VAL // 64]
        nrmse = [_capped(out, target, hk) for (out, target), hk in zip(runs, lengths)]
        # the run over all of the validation part has half the weight, the other three share the rest
        assert got[p] == pytest.approx(nrmse[0] ** (1 / 6) * nrmse[1] ** 0.5 * (nrmse[2] * nrmse[3]) ** (1 / 6),
                                       rel=1e-6)


def test_auto_horizon_on_a_short_validation_part_is_one_step_prediction():
    # under 8 validation steps the quarter is one step: one-step scoring, with no other scales
    rng = np.random.default_rng(3)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 2)
    kw = dict(washout=WASHOUT, validation=6, feedback=True, readout=Linear())
    auto = EvolinoFitness.from_data(spec, SERIES, horizon="auto", **kw)
    assert not auto.other_runs
    np.testing.assert_array_equal(auto(genomes), EvolinoFitness.from_data(spec, SERIES, horizon=1, **kw)(genomes))


def test_horizon_one_is_one_step_prediction():
    rng = np.random.default_rng(1)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 2)
    one = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Linear(), horizon=1)(genomes)
    for p, g in enumerate(genomes):
        out, target = _free_runs_by_hand(spec, g, SERIES, 1, 1, warm=0)  # one-step use: the whole history
        assert one[p] == pytest.approx(np.sqrt(np.mean((out - target) ** 2)) / np.std(target), rel=1e-6)


def test_vpt_loss_counts_valid_steps():
    rng = np.random.default_rng(2)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 2)
    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Linear(), horizon=40, stride=20, loss="vpt")
    got = fit(genomes)
    for p, g in enumerate(genomes):
        out, target = _free_runs_by_hand(spec, g, SERIES, 40, 20)
        err = np.abs(out - target).reshape(-1, 40) / np.std(target)
        valid = [np.argmax(e > 0.4) if (e > 0.4).any() else 40 for e in err]
        assert got[p] == pytest.approx(-np.mean(valid) / 40)
        assert -1 <= got[p] <= 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_diverging_network_gets_a_bounded_worst_score(backend):
    spec = LSTMSpec(1, 3)
    g = spec.init(0, 1)[0]

    class Exploding(Linear):  # a readout that feeds back 1e6 times its input: the closed loop explodes
        def fit(self, S, Y):
            super().fit(S, Y)
            self.coef_[:, -1] = 1e300
            return self

    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Exploding(), horizon=30, backend=backend)
    with np.errstate(all="raise"):
        loss = fit(g[None])
    assert np.isfinite(loss[0]) and loss[0] <= WORST
    ok = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                  readout=Linear(), horizon=30, backend=backend)(g[None])
    assert loss[0] > ok[0]


def test_a_refit_whose_closed_loop_scores_worse_is_not_kept():
    spec = LSTMSpec(1, 4)
    g = spec.init(0, 1)[0]
    n_fit = len(SERIES) - N_VAL - WASHOUT

    class UnstableRefit(Linear):  # fitted on more than the fit steps, it feeds back 1e6 times its input
        def fit(self, S, Y):
            super().fit(S, Y)
            if S.shape[1] > n_fit:
                self.coef_[:, -1] = 1e6
            return self

    kw = dict(washout=WASHOUT, validation=N_VAL, feedback=True, horizon=30)
    fit = EvolinoFitness.from_data(spec, SERIES, readout=UnstableRefit(), **kw)
    final = fit.final_readout(g)
    assert final.refitted_ is False
    np.testing.assert_array_equal(final.coef_, fit.final_readout(g, refit=False).coef_)
    plain = EvolinoFitness.from_data(spec, SERIES, readout=Linear(), **kw)
    assert plain.final_readout(g, refit=False).refitted_ is False
    # the loss it compares is the fitness itself for the evolved readout
    w = prepare(spec, g[None])
    _, state = forward(spec, w, plain.inputs[:, : plain.split], return_state=True)
    evolved = plain.final_readout(g, refit=False).coef_
    assert plain._closed_loop_loss(w, evolved, state)[0] == pytest.approx(plain(g[None])[0], rel=1e-12)


def test_noise_changes_the_fit_not_the_validation_start():
    tr = [Evolino(4, washout=WASHOUT, validation=N_VAL, horizon=30, noise=n, popsize=8, max_generations=1, seed=0,
                  search="esp", search_options=dict(trials=4)) for n in (0.0, 0.1)]
    a, b = (t.fit(SERIES) for t in tr)
    assert not np.array_equal(a.coef, b.coef)
    c = Evolino(4, washout=WASHOUT, validation=N_VAL, horizon=30, noise=0.1, popsize=8, max_generations=1, seed=0,
                search="esp", search_options=dict(trials=4)).fit(SERIES)
    np.testing.assert_array_equal(b.coef, c.coef)  # a fixed draw from the seed


def test_noisy_fit_equals_a_plain_loop_with_noise_on_the_fed_back_values():
    rng = np.random.default_rng(1)
    spec = LSTMSpec(1, 4)
    genomes = spec.init(rng, 3)
    draw = rng.standard_normal((1, len(SERIES), 1))
    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True, readout=Linear(),
                                   horizon=30, input_scale=0.5, noise=0.05, noise_draw=draw)
    clean = fit.with_noise(0.0)
    got, got_clean = fit(genomes), clean(genomes)
    assert np.all(got != got_clean)
    for p, g in enumerate(genomes):
        out, target = _free_runs_by_hand(spec, g, SERIES, 30, 15, 0.5, fit_noise=0.05 * draw[0])
        assert got[p] == pytest.approx(_capped(out, target, 30), rel=1e-6)
        out, target = _free_runs_by_hand(spec, g, SERIES, 30, 15, 0.5)
        assert got_clean[p] == pytest.approx(_capped(out, target, 30), rel=1e-6)
    np.testing.assert_array_equal(clean.with_noise(0.05)(genomes), got)


def test_automatic_noise_is_the_best_level_scored_plainly():
    from evolino import autoscale
    from evolino.evaluate import Serial

    spec = LSTMSpec(1, 4)
    draw = np.random.default_rng(2).standard_normal((1, len(SERIES), 1))
    kw = dict(washout=WASHOUT, validation=N_VAL, feedback=True, readout=Linear(), horizon=30, input_scale=0.3,
              noise_draw=draw)
    fit = EvolinoFitness.from_data(spec, SERIES, **kw)
    chosen = dict(init_scale=1.0, gates="lstm")
    grid = (0.0, 1e-3, 0.03, 0.3)
    noise, table, n = autoscale.choose_noise(fit, spec, Serial(), chosen, seed=5, grid=grid)
    genomes = spec.init(np.random.default_rng(np.random.SeedSequence([5, 0x4015E])), autoscale.N_NETWORKS, 1.0,
                        gates="lstm")
    scores = [np.mean(np.sort(EvolinoFitness.from_data(spec, SERIES, noise=s, **kw)(genomes))[:2]) for s in grid]
    assert [r["score"] for r in table] == pytest.approx(scores, rel=1e-12)
    assert noise == grid[int(np.argmin(scores))] and n == len(grid) * autoscale.N_NETWORKS
    assert len(set(np.round(scores, 12))) == len(grid)  # the levels differ: a choice was made


def test_trainer_noise_auto_records_generation_zero_choice():
    from evolino.autoscale import NOISE_GRID

    kw = dict(washout=WASHOUT, validation=N_VAL, horizon=30, popsize=8, max_generations=1, seed=0,
              search="esp", search_options=dict(trials=4))
    tr = Evolino(4, noise="auto", **kw)
    tr.fit(SERIES)
    assert [r["noise"] for r in tr.noise_table_] == list(NOISE_GRID)
    best = min(tr.noise_table_, key=lambda r: r["score"])["noise"]
    assert tr.chosen_["noise"] == tr.noise_ == best
    fixed = Evolino(4, noise=best, **kw)
    fixed.fit(SERIES)
    assert fixed.noise_table_ == [] and fixed.noise_ == best
    driven = Evolino(4, noise="auto", feedback=False, **{**kw, "horizon": None})
    driven_net = driven.fit(SERIES[1:], X=SERIES[:-1])
    assert driven.noise_ == 0.0 and driven.noise_table_ == []
    fixed = Evolino(4, noise=0.01, feedback=False, **{**kw, "horizon": None}).fit(SERIES[1:], X=SERIES[:-1])
    np.testing.assert_array_equal(fixed.predict(SERIES[:-1]), driven_net.predict(SERIES[:-1]))  # nothing fed back: no noise


@pytest.mark.parametrize("kwargs,match", [
    (dict(horizon=N_VAL + 1), "horizon"),
    (dict(horizon=0), "horizon"),
    (dict(feedback=False, horizon=5), "horizon applies to feedback"),
    (dict(feedback=False, loss="vpt"), "vpt"),
    (dict(noise=-1.0), "noise"),
    (dict(noise="loud"), "noise must be a float >= 0 or 'auto'"),
])
def test_bad_forecasting_options(kwargs, match):
    X = np.zeros_like(SERIES)
    tr = Evolino(4, washout=WASHOUT, validation=N_VAL, popsize=8, max_generations=1, seed=0,
                 search="esp", search_options=dict(trials=4), **kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        tr.fit(SERIES, X=None if tr.feedback else X)


def test_automatic_scales_are_the_best_grid_point_scored_plainly():
    from evolino import autoscale
    from evolino.evaluate import Serial

    spec = LSTMSpec(1, 4)
    fit = EvolinoFitness.from_data(spec, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                   readout=Linear(), horizon=30)
    chosen, table = autoscale.choose_scales(fit, spec, Serial(), seed=3, n_networks=4)
    grid = [(r, g, a) for r in autoscale.GATES for g in autoscale.INIT_SCALES for a in autoscale.INPUT_SCALES]
    assert len(table) == len(grid)
    scores = {}
    for k, (r, g, a) in enumerate(grid):
        genomes = spec.init(np.random.default_rng(np.random.SeedSequence([3, 0x5CA1E, k])), 4, g, gates=r)
        fit.input_scale = a
        f = np.sort([fit(x[None])[0] for x in genomes])  # one network at a time
        scores[(r, g, a)] = np.mean(f[:2])
    best = min(scores, key=scores.get)
    assert (chosen["gates"], chosen["init_scale"], chosen["input_scale"]) == best
    assert chosen["scale_evaluations"] == 4 * len(table)
    # a value given is kept and only the others are searched
    fit.input_scale = 1.0
    chosen, table = autoscale.choose_scales(fit, spec, Serial(), input_scale=0.3, gates="lstm", seed=3,
                                            n_networks=4)
    assert chosen["input_scale"] == 0.3 and chosen["gates"] == "lstm" and len(table) == len(autoscale.INIT_SCALES)


def test_a_wide_network_is_probed_narrow_then_its_best_points_at_full_width():
    from evolino import autoscale
    from evolino.evaluate import Serial

    wide, small = LSTMSpec(1, 6), LSTMSpec(1, 3)
    built = {s.n_cells: EvolinoFitness.from_data(s, SERIES, washout=WASHOUT, validation=N_VAL, feedback=True,
                                                 readout=Linear(), horizon=30) for s in (wide, small)}
    kw = dict(init_scale=1.0, gates="lstm", seed=3, n_networks=2)
    chosen, table, best = autoscale.choose_scales(built[6], wide, Serial(), probe_cells=3, keep=3, return_best=True, **kw)
    # the grid at 3 cells equals the grid scored by a fitness built at 3 cells
    _, plain = autoscale.choose_scales(built[3], small, Serial(), **kw)
    assert [r["score"] for r in table[: len(plain)]] == [r["score"] for r in plain]
    assert all(r["n_cells"] == 3 for r in table[: len(plain)])
    # its three best points, scored at 6 cells with the same random streams; the best of those is chosen
    kept = sorted(plain, key=lambda r: r["score"])[:3]
    full = {}
    for r in kept:
        genomes = wide.init(np.random.default_rng(np.random.SeedSequence([3, 0x5CA1E, 0])), 2, 1.0, gates="lstm")
        built[6].input_scale = r["input_scale"]
        full[r["input_scale"]] = np.min(built[6](genomes))  # the best half of two
    assert [r["n_cells"] for r in table[len(plain):]] == [6, 6, 6]
    np.testing.assert_allclose([r["score"] for r in table[len(plain):]], [full[r["input_scale"]] for r in kept],
                               rtol=1e-12)
    assert chosen["input_scale"] == min(full, key=full.get) and best.shape == (wide.n_params,)
    assert chosen["scale_evaluations"] == 2 * (len(plain) + 3)


def test_default_arguments_learn_a_short_mackey_glass_series():
    task = MackeyGlassTask(train=600)
    tr = Evolino(seed=0, max_generations=3, horizon=50)
    net = tr.fit(task.train_series)
    assert tr.chosen_["scale_evaluations"] > 0 and tr.chosen_["gates"] in ("lstm", "reservoir")
    seg = task.segments()[:5]
    pred = net.forecast(seg[:, : task.warm], 50)
    truth = seg[:, task.warm : task.warm + 50]
    err = np.sqrt(np.mean((pred - truth) ** 2)) / np.std(truth)
    zero = np.sqrt(np.mean(truth**2)) / np.std(truth)  # the zero predictor
    mean = 1.0  # the training mean, in the same units
    assert err < 0.2 * min(zero, mean), (err, zero)


def test_generate_warns_once_when_the_closed_loop_leaves_the_training_range():
    from evolino import EvolinoNetwork
    from evolino._data import Scaler
    from evolino._validate import EvolinoWarning

    spec = LSTMSpec(1, 3)
    coef = np.zeros((4, 1))
    coef[-1] = 50.0  # outputs 50 whatever the state: far outside [0, 1]
    net = EvolinoNetwork(spec, spec.init(0, 1)[0], coef, feedback=True,
                         scaler=Scaler(y_min=np.zeros(1), y_max=np.ones(1)))
    with pytest.warns(EvolinoWarning, match="left the training range.*ridge"):
        net.forecast(np.full((10, 1), 0.5), 20)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.forecast(np.full((10, 1), 0.5), 20)  # once per network
    sane = EvolinoNetwork(spec, spec.init(0, 1)[0], np.r_[np.zeros((3, 1)), [[0.5]]], feedback=True,
                          scaler=Scaler(y_min=np.zeros(1), y_max=np.ones(1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sane.forecast(np.full((10, 1), 0.5), 20)
