"""The one supervised core: input scaling in one place, data layouts, results, files, output."""

import re
from pathlib import Path

import numpy as np
import pytest

from evolino import Evolino, EvolinoNetwork, LSTMSpec, forward, prepare, step
from evolino.fitness import EvolinoFitness
from evolino.lstm import initial_state
from evolino.metrics import nrmse
from evolino.readout import Linear
from evolino.sequences import closed_loop
from evolino.tasks import SinesTask
from reference import lstm_reference, with_version

TASK = SinesTask(terms=2)


def _scaled_genome(spec, genome, s):
    """The same network with its input weights W multiplied by ``s`` (written from the layout)."""
    w = spec.unpack(genome)
    for u in spec.units:
        w[f"W_{u}"] = w[f"W_{u}"] * s
    return spec.pack(w)


# --- input_scale is applied exactly once -----------------------------------------------------
@pytest.mark.parametrize("s", [1e-3, 0.5, 3.0])
def test_input_scale_equals_scaled_input_weights_everywhere(s):
    rng = np.random.default_rng(0)
    spec = LSTMSpec(3, 5)  # two external inputs + one fed-back output
    g = spec.init(rng, 1)[0]
    g_s = _scaled_genome(spec, g, s)
    X = rng.normal(size=(2, 30, 3))
    # the kernel
    np.testing.assert_allclose(forward(spec, prepare(spec, g, s), X)[0], forward(spec, g_s, X), atol=1e-12)
    st = initial_state(spec, 1, 2)
    a, b = step(spec, prepare(spec, g[None], s), st, X[:, 0]), step(spec, g_s[None], st, X[:, 0])
    np.testing.assert_allclose(a.h, b.h, atol=1e-12)
    # the reference loop, fed raw inputs times s, agrees too (one multiplication, not two)
    ref, _, _ = lstm_reference(spec, g, X[0] * s)
    np.testing.assert_allclose(forward(spec, prepare(spec, g, s), X[0])[0], ref, atol=1e-12)
    # the closed loop and the trained-network methods take raw inputs
    coef = rng.normal(size=(6, 1))
    net, net1 = (EvolinoNetwork(spec, g, coef, feedback=True, input_scale=s),
                 EvolinoNetwork(spec, g_s, coef, feedback=True, input_scale=1.0))
    Y, Xe = rng.normal(size=(20, 1)), rng.normal(size=(35, 2))
    np.testing.assert_allclose(net.predict(Xe[:20], Y=Y), net1.predict(Xe[:20], Y=Y), atol=1e-12)
    np.testing.assert_allclose(net.generate(15, Y_prefix=Y, X=Xe), net1.generate(15, Y_prefix=Y, X=Xe), atol=1e-12)
    h, state = forward(spec, prepare(spec, g[None], s), np.c_[Xe[:20], np.r_[[[0.0]], Y[:-1]]][None],
                       return_state=True)
    out = closed_loop(spec, prepare(spec, g[None], s), coef[None], state, Y[-1][None], 15, Xe[None, 20:])
    np.testing.assert_allclose(out[0, 0], net.generate(15, Y_prefix=Y, X=Xe), atol=1e-12)


def test_trainer_network_uses_its_input_scale_once():
    tr = Evolino(5, washout=100, popsize=8, max_generations=1, input_scale=0.01, seed=0, standardize=False,
                 search="esp", search_options=dict(trials=4))
    net = tr.fit(TASK.train_series)
    same = EvolinoNetwork(net.spec, _scaled_genome(net.spec, net.genome, 0.01), net.coef, feedback=True, lags=net.lags)
    np.testing.assert_allclose(net.generate(50, Y_prefix=TASK.train_series),
                               same.generate(50, Y_prefix=TASK.train_series), atol=1e-9)


# --- standardization ------------------------------------------------------------------------
def test_standardization_round_trips_and_is_saved(tmp_path):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 2)) * [5.0, 0.01] + [100.0, -3.0]
    Y = np.zeros((300, 1))
    for t in range(1, 300):
        Y[t] = 0.7 * Y[t - 1] + 0.3 * (X[t - 1, 0] - 100.0) / 5.0
    Y = 1e3 * Y + 42.0
    tr = Evolino(5, feedback=False, washout=10, popsize=8, max_generations=1, seed=0, search="esp", search_options=dict(trials=4))
    net = tr.fit(Y, X=X)
    sc = tr.scaler_
    np.testing.assert_allclose(sc.x_mean, X.mean(0)), np.testing.assert_allclose(sc.x_std, X.std(0))
    np.testing.assert_allclose(sc.y_mean, Y.mean(0)), np.testing.assert_allclose(sc.y_std, Y.std(0))
    # the same network on standardized data, mapped back by hand
    plain = EvolinoNetwork(net.spec, net.genome, net._coef_std, input_scale=net.input_scale, lags=net.lags)
    by_hand = plain.predict((X - sc.x_mean) / sc.x_std) * sc.y_std + sc.y_mean
    np.testing.assert_allclose(net.predict(X), by_hand, rtol=1e-9, atol=1e-9 * np.abs(Y).max())
    path = tmp_path / "m.npz"
    net.save(path)
    back = EvolinoNetwork.load(path)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    np.testing.assert_array_equal(back.scaler.y_max, Y.max(0))
    # without standardization the data go in raw
    off = Evolino(5, feedback=False, washout=10, popsize=8, max_generations=1, seed=0, standardize=False,
                  search="esp", search_options=dict(trials=4))
    assert off.fit(Y, X=X).scaler.x_mean is None


def test_feedback_network_standardizes_its_fed_back_output():
    series = TASK.train_series * 50.0 + 7.0
    tr = Evolino(5, washout=100, popsize=8, max_generations=2, seed=0, search="esp", search_options=dict(trials=4),
                 input_scale=0.3)  # well conditioned: the test compares two round-off paths
    net = tr.fit(series)
    sc = tr.scaler_
    plain = EvolinoNetwork(net.spec, net.genome, net._coef_std, feedback=True, input_scale=net.input_scale,
                           lags=net.lags)
    z = (series - sc.y_mean) / sc.y_std
    np.testing.assert_allclose(net.generate(40, Y_prefix=series),
                               plain.generate(40, Y_prefix=z) * sc.y_std + sc.y_mean, rtol=0, atol=1e-6)


# --- data layouts ------------------------------------------------------------------------------
def _memory_task(rng, T):
    X = rng.normal(size=(T, 1))
    Y = np.zeros_like(X)
    for t in range(1, T):
        Y[t] = 0.7 * Y[t - 1] + 0.3 * X[t - 1]
    return X, Y


def _small(**kw):
    return Evolino(**{**dict(n_cells=4, feedback=False, washout=5, popsize=8, max_generations=2, seed=0,
                             input_scale=0.1, search="esp", search_options=dict(trials=4)), **kw})


def test_list_of_sequences_equals_the_3d_array():
    rng = np.random.default_rng(1)
    data = [_memory_task(rng, 40) for _ in range(3)]
    X3, Y3 = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    a, b = _small(), _small()
    na = a.fit(Y3, X=X3)
    nb = b.fit([d[1] for d in data], X=[d[0] for d in data])
    assert a.history_["best"] == b.history_["best"]
    np.testing.assert_array_equal(na.coef, nb.coef)


def test_variable_length_fitness_equals_a_plain_loop_over_sequences():
    rng = np.random.default_rng(2)
    data = [_memory_task(rng, T) for T in (30, 47, 12)]
    Xs, Ys = [d[0] for d in data], [d[1] for d in data]
    spec = LSTMSpec(1, 3)
    genomes = spec.init(rng, 4)
    fit = EvolinoFitness.from_data(spec, Ys, Xs, washout=4, validation=0.25, feedback=False, readout=Linear())
    got = fit(genomes)
    for p, g in enumerate(genomes):  # each sequence alone from the zero state, written plainly
        S_fit, Y_fit, S_val, Y_val = [], [], [], []
        for X, Y in zip(Xs, Ys):
            h, _, _ = lstm_reference(spec, g, X)
            n_val = min(len(X) - 4 - 1, max(1, round(0.25 * (len(X) - 4))))
            cut = len(X) - n_val
            S_fit.append(h[4:cut]), Y_fit.append(Y[4:cut]), S_val.append(h[cut:]), Y_val.append(Y[cut:])
        A = np.c_[np.concatenate(S_fit), np.ones(sum(map(len, S_fit)))]
        W = np.linalg.lstsq(A, np.concatenate(Y_fit), rcond=None)[0]
        Yv = np.concatenate(Y_val)
        out = np.c_[np.concatenate(S_val), np.ones(len(Yv))] @ W
        assert got[p] == pytest.approx(np.sqrt(np.mean((out - Yv) ** 2)) / np.std(Yv), rel=1e-6)


def test_per_sequence_targets_read_the_last_step():
    rng = np.random.default_rng(3)
    Xs = [rng.normal(size=(T, 2)) for T in (9, 14, 11, 20, 7, 16, 13, 10)]
    y = np.array([x[:, 0].sum() for x in Xs])[:, None]
    tr = _small(validation=0.25, standardize=False, ridge=0.0)
    net = tr.fit(y, X=Xs, per_sequence=True)
    out = [net.predict(x)[-1] for x in Xs]
    S = np.array([forward(net.spec, prepare(net.spec, net.genome, 0.1), x)[0, -1] for x in Xs])
    A = np.c_[S, np.ones(len(S))]
    np.testing.assert_allclose(np.array(out), A @ np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-8)


def test_pandas_and_1d_series_are_one_series():
    pd = pytest.importorskip("pandas")
    series = TASK.train_series[:, 0]
    a = Evolino(5, washout=100, popsize=8, max_generations=1, seed=0, search="esp", search_options=dict(trials=4))
    b = Evolino(5, washout=100, popsize=8, max_generations=1, seed=0, search="esp", search_options=dict(trials=4))
    na, nb = a.fit(pd.Series(series)), b.fit(series)
    np.testing.assert_array_equal(na.coef, nb.coef)
    np.testing.assert_array_equal(na.generate(10, Y_prefix=series), nb.generate(10, Y_prefix=pd.DataFrame(series)))


def test_swapped_arguments_are_refused():
    X, Y = _memory_task(np.random.default_rng(4), 60)
    with pytest.raises(TypeError, match=r"fit\(Y, X=X\)"):
        _small().fit(X, Y)


# --- the one result type, evaluators from n_jobs -------------------------------------------------
def test_trainer_carries_the_search_result():
    tr = _small(max_generations=3)
    X, Y = _memory_task(np.random.default_rng(5), 60)
    tr.fit(Y, X=X)
    r = tr.result_
    assert r.generations == 3 and r.evaluations == 24 and r.stop_reason == "max_generations"
    assert r.best_fitness == tr.best_fitness_ == min(r.history["gen_best"])
    np.testing.assert_array_equal(r.best_genome, tr.network_.genome)


def test_n_jobs_alone_chooses_a_pool():
    X, Y = _memory_task(np.random.default_rng(6), 60)
    a, b = _small(), _small(n_jobs=2)
    a.fit(Y, X=X)
    b.fit(Y, X=X)  # no "serial evaluator uses one process" error
    assert a.history_["best"] == b.history_["best"]


# --- output is opt-in ---------------------------------------------------------------------------
def test_library_is_silent_unless_verbose(capsys):
    X, Y = _memory_task(np.random.default_rng(7), 60)
    _small().fit(Y, X=X)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    _small(verbose=1).fit(Y, X=X)
    loud = capsys.readouterr()
    assert loud.out == "" and "2/2" in loud.err


# --- files ------------------------------------------------------------------------------------------
def test_policy_files_are_atomic_and_version_checked(tmp_path):
    from evolino.rl import Policy, PolicySpec

    spec = PolicySpec(4, 2, 1)
    pol = Policy(spec, spec.init(0, 1)[0], info={"task": "x"})
    path = tmp_path / "p.npz"
    pol.save(path)
    back = Policy.load(path)
    np.testing.assert_array_equal(back.genome, pol.genome)
    with pytest.raises(ValueError, match="version"):
        Policy.load(with_version(path, tmp_path / "v.npz", 999))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_nrmse_axis():
    rng = np.random.default_rng(8)
    y, p = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    per = nrmse(p, y, axis=0)
    assert per.shape == (3,)
    for k in range(3):
        assert per[k] == pytest.approx(np.sqrt(np.mean((p[:, k] - y[:, k]) ** 2)) / np.std(y[:, k]))
    assert isinstance(nrmse(p, y), float)


# --- README examples run as written ------------------------------------------------------------
def _readme_blocks():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("k", range(len(_readme_blocks())))
def test_readme_python_examples_run(k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_blocks()[k], f"README.md block {k}", "exec"), {})
