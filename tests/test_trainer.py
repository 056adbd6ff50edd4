
import numpy as np
import pytest

from evolino import Evolino, EvolinoNetwork, LSTMSpec, forward, prepare
from evolino.sequences import teacher_inputs
from evolino.tasks import SinesTask, nrmse
from reference import BACKENDS, lstm_reference, with_version

TASK = SinesTask(terms=2)


def _small(**kw):
    base = dict(n_cells=5, washout=100, popsize=20, max_generations=3, seed=1,
                search="esp", search_options=dict(trials=4), lags=0)  # the cells alone (lags: test_lags.py)
    base.update(kw)
    return Evolino(**base)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generate_equals_manual_feedback_loop(backend):
    rng = np.random.default_rng(0)
    spec = LSTMSpec(2, 4)  # one external input + one fed-back output
    net = EvolinoNetwork(spec, spec.init(rng, 1)[0], rng.normal(size=(5, 1)), feedback=True, input_scale=0.5,
                         backend=backend)
    Y = rng.normal(size=(20, 1))
    X = rng.normal(size=(30, 1))
    gen = net.generate(10, Y_prefix=Y, X=X)
    # manual: teacher-forced prefix, then own output fed back, from the equations
    inputs = 0.5 * np.c_[X[:20], np.r_[0.0, Y[:-1, 0]]]
    _, h, c = lstm_reference(spec, net.genome, inputs)
    y = Y[-1, 0]
    manual = []
    for t in range(10):
        x = 0.5 * np.array([[X[20 + t, 0], y]])
        out, h, c = lstm_reference(spec, net.genome, x, h, c)
        y = out[0] @ net.coef[:-1, 0] + net.coef[-1, 0]
        manual.append(y)
    np.testing.assert_allclose(gen[:, 0], manual, atol=1e-12)
    # predict is the teacher-forced one-step output
    pred = net.predict(X[:20], Y=Y)
    ref, _, _ = lstm_reference(spec, net.genome, inputs)
    np.testing.assert_allclose(pred[:, 0], ref @ net.coef[:-1, 0] + net.coef[-1, 0], atol=1e-12)


def test_final_readout_equals_lstsq_on_collected_states():
    # a well-conditioned state matrix: one least-squares solution (on clean teacher forcing: noise 0)
    tr = _small(ridge=0.0, input_scale=0.3, seed=2, noise=0.0)
    net = tr.fit(TASK.train_series)
    assert tr.refitted_  # the refit on all post-washout steps was kept (its closed loop scored no worse)
    sc = tr.scaler_
    Y = (TASK.train_series[None] - sc.y_mean) / sc.y_std  # the trainer works on standardized data
    h = forward(net.spec, prepare(net.spec, net.genome, net.input_scale), teacher_inputs(Y)[0])[0]
    S, T = h[100:], Y[0, 100:]
    sm, ym = S.mean(0), T.mean(0)
    W = np.linalg.lstsq(S - sm, T - ym, rcond=None)[0]
    coef = net._coef_std
    np.testing.assert_allclose(coef[:-1], W, rtol=1e-6, atol=1e-6 * np.abs(W).max())
    A = np.c_[S, np.ones(len(S))]
    ref = A @ np.linalg.lstsq(A, T, rcond=None)[0]
    np.testing.assert_allclose(A @ coef, ref, atol=1e-9)
    # in raw units: the same fit, mapped back
    np.testing.assert_allclose(A @ net.coef, ref * sc.y_std + sc.y_mean, atol=1e-9 * float(sc.y_std[0]))


def test_noisy_final_readout_equals_lstsq_on_states_of_noisy_teacher_forcing():
    # noise=0.01: the readout is fitted on states whose fed-back inputs carry 0.01 x a standard normal draw,
    # drawn from the run's seed (third child of its SeedSequence), standardized units
    tr = _small(ridge=0.0, input_scale=0.3, seed=2, noise=0.01)
    net = tr.fit(TASK.train_series)
    assert tr.refitted_ and tr.noise_ == 0.01 and tr.noise_table_ == []
    sc = tr.scaler_
    Y = (TASK.train_series[None] - sc.y_mean) / sc.y_std
    inputs = teacher_inputs(Y)
    draw = np.random.default_rng(np.random.SeedSequence(tr.seed_).spawn(3)[2]).standard_normal(inputs.shape)
    h = forward(net.spec, prepare(net.spec, net.genome, net.input_scale), inputs[0] + 0.01 * draw[0])[0]
    A = np.c_[h[100:], np.ones(len(h) - 100)]
    ref = A @ np.linalg.lstsq(A, Y[0, 100:], rcond=None)[0]
    np.testing.assert_allclose(A @ net._coef_std, ref, atol=1e-9)
    clean = forward(net.spec, prepare(net.spec, net.genome, net.input_scale), inputs[0])[0]
    assert np.abs(clean - h).max() > 1e-5  # the noise reached the states


@pytest.mark.parametrize("search", ["esp", "cmaes"])
def test_best_so_far_is_monotone_and_kept(search):
    opts = dict(trials=4) if search == "esp" else dict(sigma0=0.1)
    tr = _small(search=search, max_generations=6, search_options=opts)
    tr.fit(TASK.train_series)
    best = np.array(tr.history_["best"])
    assert np.all(np.diff(best) <= 0)
    assert best[-1] == min(tr.history_["gen_best"]) == tr.best_fitness_
    assert tr.history_["generation"] == list(range(1, 7))


def test_learns_two_sines_far_better_than_constant():
    tr = _small(n_cells=10, max_generations=5)
    net = tr.fit(TASK.train_series)
    score, gen = TASK.score(net)
    zero = nrmse(np.zeros_like(TASK.test_target), TASK.test_target)
    assert zero > 0.9
    assert score < 1e-3 * zero, score


def test_float32_evolution_keeps_a_float64_network_fitted_in_float64():
    tr = _small(n_cells=10, max_generations=3, ridge=0.0, input_scale=0.3, evolution_dtype=np.float32)
    net = tr.fit(TASK.train_series)
    assert net.spec.dtype == np.float64 and net.genome.dtype == np.float64 and net.coef.dtype == np.float64
    # the final readout is least squares on float64 states of the chosen genome (all post-washout steps)
    Y = (TASK.train_series[None] - tr.scaler_.y_mean) / tr.scaler_.y_std
    h = forward(net.spec, prepare(net.spec, net.genome, net.input_scale), teacher_inputs(Y)[0])[0]
    A = np.c_[h[100:], np.ones(len(h) - 100)]
    ref = A @ np.linalg.lstsq(A, Y[0, 100:], rcond=None)[0]
    np.testing.assert_allclose(A @ net._coef_std, ref, atol=1e-9)
    score, _ = TASK.score(net)  # float64 throughout: 0.019 (float32 costs accuracy here: 0.073)
    assert score < 0.2 * nrmse(np.zeros_like(TASK.test_target), TASK.test_target), score
    with pytest.raises(ValueError, match="evolution_dtype"):
        _small(evolution_dtype="int8").fit(TASK.train_series)


def test_same_seed_same_run_and_different_seed_differs():
    a, b, c = _small(), _small(), _small(seed=2)
    na, nb, nc = (t.fit(TASK.train_series) for t in (a, b, c))
    assert a.history_["best"] == b.history_["best"]
    np.testing.assert_array_equal(na.genome, nb.genome)
    assert a.history_["best"] != c.history_["best"]


@pytest.mark.parametrize("search,noise", [("esp", 0.0), ("cmaes", 0.0), ("cmaes", "auto")])
def test_checkpoint_resume_equals_uninterrupted(tmp_path, search, noise):
    opts = dict(trials=4) if search == "esp" else dict(sigma0=0.1)
    full = _small(search=search, max_generations=6, search_options=opts, noise=noise)
    full_net = full.fit(TASK.train_series)
    ck = tmp_path / "ck.npz"
    part = _small(search=search, max_generations=4, search_options=opts, checkpoint=ck, checkpoint_every=2, noise=noise)
    part.fit(TASK.train_series)
    rest = _small(search=search, max_generations=6, search_options=opts, checkpoint=ck, noise=noise)
    rest_net = rest.fit(TASK.train_series, resume=True)
    assert rest.history_["best"] == full.history_["best"]
    assert rest.history_["evaluations"] == full.history_["evaluations"]
    assert rest.noise_ == full.noise_
    np.testing.assert_array_equal(rest_net.genome, full_net.genome)
    np.testing.assert_array_equal(rest_net.coef, full_net.coef)


def test_resume_refuses_other_configuration(tmp_path):
    ck = tmp_path / "ck.npz"
    _small(max_generations=2, checkpoint=ck).fit(TASK.train_series)
    with pytest.raises(ValueError, match="different configuration.*n_cells|different configuration.*spec"):
        _small(n_cells=6, max_generations=3, checkpoint=ck).fit(TASK.train_series, resume=True)
    with pytest.raises(ValueError, match="different configuration.*data"):
        _small(max_generations=3, checkpoint=ck).fit(TASK.train_series * 2, resume=True)


def test_save_load_round_trip(tmp_path):
    net = _small(max_generations=1).fit(TASK.train_series)
    path = tmp_path / "m.npz"
    net.save(path)
    back = EvolinoNetwork.load(path)
    np.testing.assert_array_equal(back.generate(50, Y_prefix=TASK.train_series),
                                  net.generate(50, Y_prefix=TASK.train_series))
    assert back.metadata() == net.metadata()
    # a file of another format version is refused clearly
    with pytest.raises(ValueError, match="version"):
        EvolinoNetwork.load(with_version(path, tmp_path / "v.npz", 999))
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read"):
        EvolinoNetwork.load(tmp_path / "bad.npz")


def test_input_driven_task_without_feedback():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1))
    Y = np.zeros_like(X)  # a leaky average of the input: needs memory, not feedback
    for t in range(1, len(X)):
        Y[t] = 0.7 * Y[t - 1] + 0.3 * X[t - 1]
    tr = Evolino(6, feedback=False, washout=20, popsize=20, max_generations=3, input_scale=0.1,
                 search="esp", search_options=dict(trials=4), seed=0)
    net = tr.fit(Y, X=X)
    pred = net.predict(X)
    assert pred.shape == (300, 1)
    assert nrmse(pred[20:], Y[20:]) < 0.05


@pytest.mark.parametrize(
    "kwargs,data,match",
    [
        (dict(), np.zeros((50, 1)), "washout"),
        (dict(), np.full((400, 1), np.nan), "NaN"),
        (dict(), np.zeros((3, 400)), "washout"),
        (dict(search="espp"), TASK.train_series, "did you mean 'esp'"),
        (dict(readout="svmm"), TASK.train_series, "readout"),
        (dict(max_generations=-1), TASK.train_series, "max_generations"),
        (dict(validation=1.5), TASK.train_series, "validation"),
        (dict(input_scale=0), TASK.train_series, "input_scale"),
        (dict(feedback=False), TASK.train_series, "X is required"),
    ],
)
def test_trainer_bad_input(kwargs, data, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _small(**kwargs).fit(data)


def test_fitness_is_evaluated_in_chunks_under_a_memory_budget():
    from evolino._data import prepare_data
    from evolino.fitness import EvolinoFitness
    from evolino.readout import Linear

    spec = LSTMSpec(1, 4)
    data = prepare_data(TASK.train_series, feedback=True, washout=100, validation=100)
    kw = dict(readout=Linear(), input_scale=1e-3, **data.fitness_arrays(0))
    whole = EvolinoFitness(spec, **kw)
    # 3 candidates per chunk: 400 steps plus the 100-step warm-up of the one free run
    small = EvolinoFitness(spec, max_bytes=3 * 500 * 4 * 8 * 7, **kw)
    assert small.chunk_size() == 3 and whole.chunk_size() >= 10
    g = spec.init(0, 10, 1.0)
    np.testing.assert_array_equal(small(g), whole(g))


def test_one_dimensional_series_equals_one_column():
    a, b = _small(max_generations=2), _small(max_generations=2)
    na, nb = a.fit(TASK.train_series[:, 0]), b.fit(TASK.train_series)
    assert a.history_["best"] == b.history_["best"]
    np.testing.assert_array_equal(na.coef, nb.coef)
