"""SVM readouts (Evoke) against scikit-learn fitted directly on the same states."""

import warnings

import numpy as np
import pytest
from sklearn import svm
from sklearn.exceptions import ConvergenceWarning

from evolino import Evolino, LSTMSpec, forward
from evolino._data import prepare_data
from evolino.fitness import EvolinoFitness
from evolino.metrics import classification_loss, regression_loss
from evolino.readout_svm import SVC, SVR
from evolino._backend import numba_available
from evolino.readout import Linear
from evolino.tasks import SinesTask


def _states(rng, P=3, N=150, H=4):
    return np.tanh(rng.normal(size=(P, N, H)) * [0.5, 1.0, 2.0, 0.1][:H] + [0.0, 0.3, -0.2, 0.5][:H])


def _standardize(S):
    return (S - S.mean(0)) / S.std(0)


def _sk(model, A, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(A, y)


@pytest.mark.parametrize("solver", ["libsvm", "liblinear"])
@pytest.mark.parametrize("standardize", [True, False])
def test_svr_equals_sklearn_on_the_same_states(solver, standardize):
    rng = np.random.default_rng(0)
    S = _states(rng)
    Y = np.c_[S[0] @ [1.0, -2.0, 0.5, 3.0], np.sin(3 * S[0, :, 1])] + 2.0 + 0.05 * rng.normal(size=(150, 2))
    r = SVR(C=3.0, epsilon=0.05, solver=solver, standardize=standardize, tol=1e-4).fit(S, Y)
    assert r.coef_.shape == (3, 5, 2)
    out = r.predict(S)
    for p in range(3):
        A = _standardize(S[p]) if standardize else S[p]
        for o in range(2):
            if solver == "libsvm":
                ref = _sk(svm.SVR(kernel="linear", C=3.0, epsilon=0.05, tol=1e-4), A, Y[:, o]).predict(A)
            else:  # the documented definition: liblinear on centred targets
                m = _sk(svm.LinearSVR(C=3.0, epsilon=0.05, tol=1e-4, loss="epsilon_insensitive", dual=True,
                                      random_state=0), A, Y[:, o] - Y[:, o].mean())
                ref = m.predict(A) + Y[:, o].mean()
            np.testing.assert_allclose(out[p, :, o], ref, atol=1e-9)
            # coef_ is a plain linear map of the raw states: the same predictions by hand
            np.testing.assert_allclose(S[p] @ r.coef_[p, :-1, o] + r.coef_[p, -1, o], ref, atol=1e-9)


@pytest.mark.parametrize("solver", ["libsvm", "liblinear"])
def test_svc_equals_sklearn_decision_on_the_target_scale(solver):
    rng = np.random.default_rng(1)
    S = _states(rng)
    Y = np.c_[S[0, :, 0] + 0.3 * S[0, :, 2] > 0.1, S[0, :, 1] < 0.35].astype(float)
    r = SVC(C=2.0, solver=solver, tol=1e-4).fit(S, Y)
    out = r.predict(S)
    for p in range(3):
        A = _standardize(S[p])
        for o in range(2):
            if solver == "libsvm":
                m = _sk(svm.SVC(kernel="linear", C=2.0, tol=1e-4), A, Y[:, o].astype(int))
            else:
                m = _sk(svm.LinearSVC(C=2.0, tol=1e-4, loss="hinge", dual=True, random_state=0), A, Y[:, o].astype(int))
            d = m.decision_function(A)
            np.testing.assert_allclose(out[p, :, o], (1 + d) / 2, atol=1e-9)
            np.testing.assert_array_equal(out[p, :, o] > 0.5, m.predict(A) == 1)
            np.testing.assert_allclose(r.decision_function(S)[p, :, o], d, atol=1e-9)
    # the separable target of candidate 0 is learned
    assert ((out[0] > 0.5) == Y).mean() > 0.95


def test_nonlinear_kernel_predicts_like_sklearn_and_has_no_weights():
    rng = np.random.default_rng(2)
    S = _states(rng, P=2, N=80)
    y = np.sin(4 * S[0, :, 0]) * S[0, :, 1]
    r = SVR(kernel="rbf", C=5.0, epsilon=0.01, gamma=0.7).fit(S, y)
    assert not hasattr(r, "coef_")
    S_new = _states(np.random.default_rng(3), P=2, N=30)
    for p in range(2):
        A, mu, sd = S[p], S[p].mean(0), S[p].std(0)
        ref = svm.SVR(kernel="rbf", C=5.0, epsilon=0.01, gamma=0.7).fit((A - mu) / sd, y)
        np.testing.assert_allclose(r.predict(S_new)[p, :, 0], ref.predict((S_new[p] - mu) / sd), atol=1e-10)
    with pytest.raises(ValueError, match="kernel='linear'"):
        Evolino(4, readout=SVR(kernel="rbf"))._readout()


def test_subsample_during_evolution_and_all_states_for_the_final_fit():
    rng = np.random.default_rng(4)
    S = _states(rng, P=2, N=101)
    y = S[0] @ [1.0, 0.5, -1.0, 2.0]
    r = SVR(epsilon=0.01, max_samples=11, solver="libsvm").fit(S, y)
    idx = np.arange(0, 101, 10)  # 11 evenly spaced states, both ends included
    A = S[1, idx]
    ref = svm.SVR(kernel="linear", epsilon=0.01).fit((A - A.mean(0)) / A.std(0), y[idx])
    np.testing.assert_allclose(r.predict(S)[1, idx, 0], ref.predict((A - A.mean(0)) / A.std(0)), atol=1e-9)
    final = r.for_final()
    assert final.max_samples is None and not hasattr(final, "coef_") and final.epsilon == 0.01
    full = final.fit(S, y)
    A = S[1]
    ref = svm.SVR(kernel="linear", epsilon=0.01).fit((A - A.mean(0)) / A.std(0), y)
    np.testing.assert_allclose(full.predict(S)[1, :, 0], ref.predict((A - A.mean(0)) / A.std(0)), atol=1e-9)


def test_per_candidate_targets_and_constant_label_column():
    rng = np.random.default_rng(5)
    S = _states(rng, P=2, N=60)
    Y = np.stack([(S[0, :, :1] > 0), (S[1, :, :1] > 0.2)]).astype(float)  # (P, N, 1)
    Y = np.concatenate([Y, np.ones((2, 60, 1))], axis=2)  # second label always on
    out = SVC().fit(S, Y).predict(S)
    assert ((out[:, :, 0] > 0.5) == (Y[:, :, 0] > 0.5)).mean() > 0.9
    np.testing.assert_allclose(out[:, :, 1], 1.0)


def test_losses_against_formulas():
    out = np.array([[[0.9], [0.2], [0.6], [0.4]], [[0.1], [0.8], [0.6], [0.4]]])  # (2, 4, 1)
    Y = np.array([[1.0], [0.0], [0.0], [1.0]])
    # candidate 0: wrong on steps 2 and 3; margins 0.8, 0.6, -0.2, -0.2
    hinge0 = np.mean([0.2, 0.4, 1.2, 1.2])
    hinge1 = np.mean([1.8, 1.6, 1.2, 1.2])
    np.testing.assert_allclose(classification_loss(out, Y), [0.5 + np.tanh(hinge0) / 5, 1.0 + np.tanh(hinge1) / 5])
    # arg-max decisions for one-hot rows
    o = np.array([[[0.2, 0.7, 0.1], [0.5, 0.4, 0.3]]])
    Y3 = np.array([[0, 1, 0], [0, 0, 1]], float)
    assert 0.5 <= classification_loss(o, Y3, multilabel=False)[0] < 0.5 + 1 / 3
    y = np.array([[1.0], [2.0], [4.0]])
    np.testing.assert_allclose(regression_loss(np.array([[[1.0], [2.0], [5.0]]]), y),
                               [np.sqrt(1 / 3) / np.std(y)])
    assert regression_loss(np.full((1, 3, 1), np.nan), y)[0] == np.inf


def test_evolino_fitness_with_svc_is_the_validation_classification_loss():
    """The trainer's fitness with an SVC readout, recomputed with scikit-learn and the formula."""
    rng = np.random.default_rng(6)
    T, split = 80, 60
    X = rng.normal(size=(1, T, 1))
    Y = (np.convolve(X[0, :, 0], [1.0, 1.0])[:T] > 0).astype(float)[None, :, None]  # needs one step of memory
    spec = LSTMSpec(1, 3)
    genomes = spec.init(rng, 4, scale=2.0)
    data = prepare_data(Y, X, feedback=False, washout=5, validation=T - split)
    fit = EvolinoFitness(spec, readout=SVC(C=1.0, tol=1e-4), **data.fitness_arrays(0))(genomes)
    h = forward(spec, genomes, X)[:, 0]  # (P, T, H)
    for p in range(4):
        A = h[p, 5:split]
        mu, sd = A.mean(0), A.std(0)
        m = _sk(svm.LinearSVC(C=1.0, tol=1e-4, loss="hinge", dual=True, random_state=0), (A - mu) / sd,
                Y[0, 5:split, 0].astype(int))
        d = m.decision_function((h[p, split:] - mu) / sd)
        s = 2 * Y[0, split:, 0] - 1
        expected = np.mean(d * s <= 0) + np.tanh(np.mean(np.maximum(0, 1 - d * s))) / (T - split + 1)
        assert fit[p] == pytest.approx(expected, abs=1e-9)


def test_a_fitness_with_an_svm_readout_is_never_spread_over_threads(monkeypatch):
    # liblinear's coordinate order comes from the C library's global rand(): concurrent fits on two
    # threads interleave it, and the losses would change with the timing
    import evolino.fitness as fitness_module

    def refuse(*args, **kwargs):
        raise AssertionError("an SVM readout's fitness was spread over threads")

    monkeypatch.setattr(fitness_module, "spread", refuse)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1, 80, 1))
    Y = (np.convolve(X[0, :, 0], [1.0, 1.0])[:80] > 0).astype(float)[None, :, None]
    spec = LSTMSpec(1, 3)
    data = prepare_data(Y, X, feedback=False, washout=5, validation=20)
    for readout in (SVC(C=1.0), SVR(C=1.0)):
        fn = EvolinoFitness(spec, readout=readout, backend="numba" if numba_available() else "auto",
                            **data.fitness_arrays(0))
        assert np.all(np.isfinite(fn(spec.init(rng, 4, scale=2.0))))
    assert not SVC.thread_safe and getattr(Linear(), "thread_safe", True)


def test_evolino_trainer_with_svr_readout_generates_sines():
    task = SinesTask(terms=2)
    tr = Evolino(10, readout=SVR(C=10.0, epsilon=1e-3, max_samples=100), popsize=20, max_generations=3,
                 search="esp", search_options=dict(trials=4), seed=1)
    net = tr.fit(task.train_series)
    score, _ = task.score(net)
    assert score < 0.3, score  # closed loop, 300 steps: far better than a constant (NRMSE ~1)
    assert isinstance(Evolino(4, readout="svc")._readout(), SVC)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(C=0.0), "C must be > 0"),
        (dict(C=-1.0), "C must be > 0"),
        (dict(epsilon=-0.1), "epsilon must be >= 0"),
        (dict(kernel="cubic"), "kernel must be one of"),
        (dict(kernel="rbf", solver="liblinear"), "solver='liblinear' needs kernel='linear'"),
        (dict(solver="qp"), "solver must be one of"),
        (dict(gamma=-1.0), "gamma must be > 0"),
        (dict(gamma="big"), "gamma must be one of"),
        (dict(max_samples=1), "max_samples must be >= 2"),
        (dict(tol=0.0), "tol must be > 0"),
        (dict(degree=0), "degree must be >= 1"),
    ],
)
def test_svm_options_out_of_range(kwargs, match):
    S = np.zeros((1, 10, 2))
    with pytest.raises(ValueError, match=match):
        SVR(**kwargs).fit(S, np.arange(10.0))


def test_bad_data():
    S = _states(np.random.default_rng(7), P=2, N=20)
    with pytest.raises(ValueError, match="0/1 labels"):
        SVC().fit(S, np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="Y must have shape"):
        SVR().fit(S, np.zeros(19))
    with pytest.raises(ValueError, match="S must be 3-D"):
        SVR().fit(S[0], np.zeros(20))
    with pytest.raises(ValueError, match="NaN"):
        SVR().fit(np.full((1, 5, 2), np.nan), np.zeros(5))
    with pytest.raises(TypeError, match="standardize must be a bool"):
        SVR(standardize="yes").fit(S, np.zeros(20))
    with pytest.raises(ValueError, match="not fitted"):
        SVR().predict(S)
    r = SVR().fit(S, np.arange(20.0))
    with pytest.raises(ValueError, match="S must have shape"):
        r.predict(S[:, :, :3])
