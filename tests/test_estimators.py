"""EvolinoRegressor / EvolinoClassifier: scikit-learn conformance, sequences, references, bad input."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from evolino import EvolinoRegressor as LazyRegressor
from evolino.estimators import EXPECTED_FAILED_CHECKS, EvolinoClassifier, EvolinoRegressor
from evolino.readout import Linear
from reference import lstm_reference


# the API checks fit dozens of times; a small budget keeps them to seconds (the defaults are learned below)
CHECKS = dict(n_cells=8, popsize=10, max_generations=2, random_state=0)


@parametrize_with_checks([EvolinoRegressor(**CHECKS), EvolinoClassifier(**CHECKS)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    """Every API check of scikit-learn; the ones assuming independent rows are expected to fail."""
    check(estimator)


# --- behaviour beyond the API checks ----------------------------------------------
FAST = dict(n_cells=4, popsize=20, max_generations=3)


def _series(rng, T):
    X = rng.normal(size=(T, 2))
    y = np.zeros(T)
    for t in range(1, T):  # a leaky memory of the first input plus the current second one
        y[t] = 0.6 * y[t - 1] + 0.4 * X[t - 1, 0]
    return X, y + 0.5 * X[:, 1]


def test_lazy_export():
    assert LazyRegressor is EvolinoRegressor


def test_predictions_equal_reference_lstm_on_variable_length_sequences():
    rng = np.random.default_rng(0)
    data = [_series(rng, T) for T in (30, 45, 12)]
    Xs, ys = [d[0] for d in data], [d[1] for d in data]
    est = EvolinoRegressor(**FAST, washout=3, standardize=False, ridge=0.0, lags=0, random_state=0).fit(Xs, ys)
    assert not est.per_sequence_ and est.n_features_in_ == 2
    preds = est.predict(Xs)
    coef = est.readout_.coef_[0]
    states = []
    for X, p in zip(Xs, preds):
        h, _, _ = lstm_reference(est.spec_, est.genome_, X * est.input_scale_)
        states.append(h)
        np.testing.assert_allclose(p, h @ coef[:-1, 0] + coef[-1, 0], atol=1e-10)  # padding never leaks
        np.testing.assert_allclose(est.predict(X), p, atol=1e-12)
    # the final readout is least squares on all post-washout steps of all sequences
    S = np.concatenate([h[3:] for h in states])
    Y = np.concatenate([y[3:] for y in ys])
    sm, ym = S.mean(0), Y.mean()
    W = np.linalg.lstsq(S - sm, Y - ym, rcond=None)[0]
    np.testing.assert_allclose(coef[:-1, 0], W, rtol=1e-6, atol=1e-8)
    # score covers all steps of all sequences
    yt, yp = np.concatenate(ys), np.concatenate(preds)
    assert est.score(Xs, ys) == pytest.approx(1 - ((yt - yp) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())


def test_learns_memory_task_and_is_reproducible():
    rng = np.random.default_rng(1)
    X, y = _series(rng, 400)
    a = EvolinoRegressor(random_state=3).fit(X[:300], y[:300])
    b = clone(a).fit(X[:300], y[:300])
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = EvolinoRegressor(random_state=4).fit(X[:300], y[:300])
    assert not np.array_equal(a.predict(X), c.predict(X))
    # continues the same series: predict the whole series, score the unseen part
    pred = a.predict(X)
    assert pred[300:].shape == (100,)
    r2 = 1 - np.mean((pred[300:] - y[300:]) ** 2) / np.var(y[300:])
    assert r2 > 0.9, r2


def test_sequence_classification_needs_memory():
    """The class is the sign of the first input only; the label is read at the last step, 8-15 steps later."""
    rng = np.random.default_rng(2)

    def make(n):
        labels = rng.integers(0, 2, n)
        X = []
        for k in labels:
            x = rng.normal(scale=0.3, size=(rng.integers(8, 16), 1))
            x[0, 0] = 1.0 if k else -1.0
            X.append(x)
        return X, np.where(labels == 1, "pos", "neg")

    X, y = make(60)
    Xt, yt = make(40)
    clf = EvolinoClassifier(input_scale=1.0, max_generations=10, random_state=0).fit(X, y)
    assert clf.per_sequence_ and list(clf.classes_) == ["neg", "pos"]
    assert clf.predict(Xt).shape == (40,)
    assert clf.score(Xt, yt) > 0.9, clf.score(Xt, yt)
    d = clf.decision_function(Xt)
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[(d > 0).astype(int)])
    svc = EvolinoClassifier(readout="svc", input_scale=1.0, max_generations=10, random_state=0).fit(X, y)
    assert svc.score(Xt, yt) > 0.9, svc.score(Xt, yt)


def test_per_step_multiclass_lists():
    rng = np.random.default_rng(3)
    Xs = [rng.normal(size=(T, 1)) for T in (40, 25)]
    ys = [np.digitize(x[:, 0], [-0.5, 0.5]) for x in Xs]  # 3 classes from the current input
    clf = EvolinoClassifier(random_state=0, input_scale=1.0).fit(Xs, ys)
    pred = clf.predict(Xs)
    assert [p.shape for p in pred] == [(40,), (25,)]
    assert clf.decision_function(Xs)[0].shape == (40, 3)
    assert clf.score(Xs, ys) > 0.8


def test_pipeline_and_grid_search_with_time_series_split():
    rng = np.random.default_rng(4)
    X, y = _series(rng, 240)
    pipe = make_pipeline(StandardScaler(), EvolinoRegressor(**FAST, random_state=0))
    grid = GridSearchCV(pipe, {"evolinoregressor__n_cells": [2, 4]}, cv=TimeSeriesSplit(n_splits=3))
    grid.fit(X * 10 + 3, y)
    assert grid.best_params_["evolinoregressor__n_cells"] in (2, 4)
    assert np.isfinite(grid.score(X * 10 + 3, y))
    # lists of sequences split by sequence
    Xs = [X[i : i + 40] for i in range(0, 240, 40)]
    ys = [y[i : i + 40] for i in range(0, 240, 40)]
    scores = cross_val_score(EvolinoRegressor(**FAST, random_state=0), Xs, ys, cv=TimeSeriesSplit(n_splits=2))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_svm_readouts_and_nonlinear_kernel():
    rng = np.random.default_rng(5)
    X, y = _series(rng, 200)
    svr = EvolinoRegressor(**FAST, readout="svr", epsilon=0.01, max_samples=50, random_state=0).fit(X, y)
    assert svr.readout_.max_samples is None  # the final readout used all steps
    assert svr.score(X, y) > 0.5
    assert svr.network_.coef.shape == (5, 1)
    np.testing.assert_allclose(svr.network_.predict(X)[:, 0], svr.predict(X), atol=1e-10)
    rbf = EvolinoRegressor(**FAST, readout="svr", kernel="rbf", epsilon=0.01, random_state=0).fit(X, y)
    assert rbf.predict(X).shape == (200,)
    with pytest.raises(ValueError, match="non-linear kernel"):
        rbf.network_.save("never-written.npz")
    np.testing.assert_allclose(rbf.network_.predict(X)[:, 0], rbf.predict(X), atol=1e-10)
    multi = EvolinoRegressor(**FAST, readout="svc", random_state=0).fit(X, np.c_[y > 0, X[:, 1] > 0].astype(float))
    assert multi.predict(X).shape == (200, 2)


def test_feedback_regressor_continues_the_training_series():
    rng = np.random.default_rng(6)
    X, y = _series(rng, 150)
    est = EvolinoRegressor(**FAST, feedback=True, washout=10, random_state=0).fit(X[:100], y[:100])
    pred = est.predict(X[100:])
    assert pred.shape == (50,)
    # closed loop from the end of the training data, warmed up on it (not from a zero state)
    ref = est.network_.forecast(y[:100], 50, X=X)
    np.testing.assert_allclose(pred, ref[:, 0], atol=1e-10)
    np.testing.assert_allclose(est.forecast(50, X=X[100:]), pred, atol=1e-12)
    with pytest.raises(ValueError, match="same number of steps"):
        EvolinoRegressor(**FAST, feedback=True).fit([X, X[:100]], [y, y[:100]])
    with pytest.raises(ValueError, match="per-step targets"):
        EvolinoRegressor(**FAST, feedback=True).fit([X, X], np.array([1.0, 2.0]))


def test_feedback_regressor_on_a_series_alone_needs_no_dummy_input():
    t = np.arange(400)
    y = np.sin(0.2 * t) + np.sin(0.311 * t)
    est = EvolinoRegressor(**FAST, feedback=True, washout=50, random_state=0).fit(None, y[:300])
    assert est.n_features_in_ == 0 and est.network_.n_external == 0
    fc = est.forecast(100)
    np.testing.assert_allclose(fc, est.network_.forecast(y[:300], 100)[:, 0])
    np.testing.assert_array_equal(est.predict(np.empty((100, 0))), fc)
    assert np.sqrt(np.mean((fc[:20] - y[300:320]) ** 2)) < 0.1 * y.std()
    # another history: warm up on it instead
    np.testing.assert_allclose(est.forecast(10, history=y[:200]), est.network_.forecast(y[:200], 10)[:, 0])


def test_feedback_regressor_passes_the_forecast_length_to_the_fitness():
    t = np.arange(400)
    y = np.sin(0.2 * t) + np.sin(0.311 * t)
    est = EvolinoRegressor(**FAST, feedback=True, washout=50, horizon=12, random_state=0).fit(None, y[:300])
    assert est.trainer_.horizon == 12
    from evolino import Evolino
    direct = Evolino(4, popsize=20, max_generations=3, washout=50, horizon=12, seed=est.seed_).fit(y[:300])
    np.testing.assert_array_equal(est.forecast(30), direct.forecast(y[:300], 30)[:, 0])
    assert EvolinoRegressor(**FAST, horizon=12, random_state=0).fit(*_series(np.random.default_rng(1), 60)) \
        .trainer_.horizon == "auto"  # input-driven: no free runs, nothing to set
    with pytest.raises(ValueError, match="horizon=500 must be between 1 and the validation part"):
        EvolinoRegressor(**FAST, feedback=True, washout=50, horizon=500, random_state=0).fit(None, y[:300])


def test_parallel_evaluation_equals_serial():
    rng = np.random.default_rng(7)
    X, y = _series(rng, 80)
    a = EvolinoRegressor(**FAST, random_state=0).fit(X, y)
    b = EvolinoRegressor(**FAST, n_jobs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_callbacks_see_every_generation():
    seen = []
    X, y = _series(np.random.default_rng(8), 60)
    EvolinoRegressor(**FAST, callbacks=[lambda s: seen.append(s["generation"])], random_state=0).fit(X, y)
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(
    "est,X,y,match",
    [
        (EvolinoClassifier(**FAST), np.zeros((10, 5, 2)), np.ones(10), "at least 2 classes"),
        (EvolinoClassifier(**FAST), np.zeros((10, 5)), np.arange(10) % 2, r"3-D array .*X\[:, :, None\]"),
        (EvolinoClassifier(**FAST), [np.zeros((5, 2)), np.zeros((4, 2))], np.array(["a", "a"]), "2 classes"),
        (EvolinoClassifier(**FAST), np.zeros((10, 5, 2)), np.zeros((10, 2)), "y"),
        (EvolinoClassifier(**FAST), [np.zeros((5, 2))] * 2, [np.zeros(5), np.zeros(4)], r"y\[1\] must have shape"),
        (EvolinoRegressor(**FAST), [np.zeros((5, 2))] * 2, np.zeros(3), "one target per sequence"),
        (EvolinoRegressor(**FAST), [np.zeros((5, 2)), np.zeros((5, 3))], [np.zeros(5)] * 2, "same number of features"),
        (EvolinoRegressor(**FAST), [np.zeros((5, 2)), np.zeros(5)], [np.zeros(5)] * 2, r"X\[1\] must be a 2-D"),
        (EvolinoRegressor(**FAST, readout="svr", C=0.0), np.zeros((10, 2)), np.zeros(10), "C must be > 0"),
        (EvolinoRegressor(**FAST, readout="svr", epsilon=-1), np.zeros((10, 2)), np.zeros(10), "epsilon must be >= 0"),
        (EvolinoRegressor(**FAST, readout="svr", kernel="cubic"), np.zeros((10, 2)), np.zeros(10), "kernel must be"),
        (EvolinoRegressor(**FAST, readout="svr", max_samples=1), np.zeros((10, 2)), np.zeros(10), "max_samples"),
        (EvolinoRegressor(**FAST, readout="svm"), np.zeros((10, 2)), np.zeros(10), "did you mean 'svr'"),
        (EvolinoClassifier(**FAST, readout="svr"), np.zeros((10, 5, 2)), np.arange(10) % 2, "readout must be one of"),
        (EvolinoRegressor(**FAST, readout="svc"), np.zeros((10, 2)), np.arange(10.0), "0/1 targets"),
        (EvolinoRegressor(**FAST, washout=10), np.zeros((10, 2)), np.zeros(10), "washout=10"),
        (EvolinoRegressor(**FAST, validation=1.0), np.zeros((10, 2)), np.zeros(10), "validation must be < 1"),
        (EvolinoRegressor(**FAST, random_state="x"), np.zeros((10, 2)), np.zeros(10), "random_state"),
    ],
)
def test_bad_input(est, X, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        est.fit(X, y)


def test_bad_input_at_predict():
    X, y = _series(np.random.default_rng(9), 40)
    est = EvolinoRegressor(**FAST, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 2 features"):
        est.predict(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="expecting 2 features"):
        est.predict([np.zeros((5, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(est.predict([X, X[:7]])) == 2


def test_classifier_takes_3d_arrays_and_lists_alike_and_gives_probabilities():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, 40)
    X = rng.normal(scale=0.3, size=(40, 12, 1))
    X[:, 0, 0] = np.where(labels == 1, 1.0, -1.0)
    y = np.where(labels == 1, "pos", "neg")
    a = EvolinoClassifier(**FAST, input_scale=1.0, random_state=0).fit(X, y)
    b = EvolinoClassifier(**FAST, input_scale=1.0, random_state=0).fit(list(X), y)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(list(X)))
    assert a.per_sequence_ and a.predict(X).shape == (40,)
    proba = a.predict_proba(X)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba >= 0) & (proba <= 1))
    # the probability of "pos" increases with the readout's output (a monotone calibration)
    d = a.decision_function(X)
    order = np.argsort(d)
    assert np.all(np.diff(proba[order, 1]) >= -1e-12)
    # on a well-separated task it is confident where it is right
    right = a.predict(X) == y
    assert np.mean(proba[np.arange(40), np.searchsorted(a.classes_, y)][right] > 0.5) > 0.9


def test_classifier_follows_the_estimator_api():
    """The API checks scikit-learn cannot run on 3-D input (its checks use 2-D X), done by hand."""
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 8, 2))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    clf = EvolinoClassifier(**FAST, random_state=0)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    assert clone(clf).get_params() == clf.get_params()
    clf.set_params(n_cells=3)
    assert clf.n_cells == 3 and clf.fit(X, y) is clf
    assert clf.n_features_in_ == 2 and list(clf.classes_) == [0, 1]
    with pytest.raises(ValueError, match="expecting 2 features"):
        clf.predict(X[:, :, :1])
    grid = GridSearchCV(EvolinoClassifier(**FAST, random_state=0), {"n_cells": [2, 3]}, cv=2).fit(X, y)
    assert grid.best_params_["n_cells"] in (2, 3) and grid.predict(X).shape == (30,)
    import pickle

    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


def test_n_jobs_reaches_the_evaluator_on_every_path(monkeypatch):
    import evolino.trainer as trainer_module

    seen = []
    real = trainer_module.make_evaluator

    def spy(name, n_jobs=None, **kw):
        seen.append((name, n_jobs))
        return real(name, n_jobs=n_jobs, **kw)

    monkeypatch.setattr(trainer_module, "make_evaluator", spy)
    X, y = _series(np.random.default_rng(12), 60)
    EvolinoRegressor(**FAST, n_jobs=2, random_state=0).fit(X, y)
    EvolinoRegressor(**FAST, n_jobs=2, feedback=True, washout=5, random_state=0).fit(X, y)
    EvolinoClassifier(**FAST, n_jobs=2, random_state=0).fit(X[None].repeat(4, 0), np.arange(4) % 2)
    assert seen == [(None, 2)] * 3


def test_esp_layout_does_not_depend_on_feedback(monkeypatch):
    import evolino.trainer as trainer_module

    made = []
    real = trainer_module.make_strategy

    def spy(*args, **kw):
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(trainer_module, "make_strategy", spy)
    X, y = _series(np.random.default_rng(13), 60)
    for feedback in (False, True):
        EvolinoRegressor(search="esp", popsize=40, max_generations=1, feedback=feedback, washout=5,
                         random_state=0).fit(X, y)
    assert [(s.subpop_size, s.trials) for s in made] == [(10, 4), (10, 4)]


def test_classifier_with_fewer_sequences_than_readout_weights():
    """A cross-validation fold of 19 sequences for 20 cells (21 readout weights) is rank-deficient:
    the readout's minimum-norm solution must serve it (it raised LinAlgError('Singular matrix'))."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(19, 12, 2))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    clf = EvolinoClassifier(20, ridge=0, popsize=8, max_generations=1, random_state=0,
                            search="esp", search_options=dict(trials=2)).fit(X, y)
    assert clf.predict(X).shape == (19,)
    # the readout on such states equals the pseudo-inverse (minimum-norm least squares) solution
    S = rng.normal(size=(1, 19, 20))
    Y = y[:, None].astype(float)
    coef = Linear().fit(S, Y).coef_[0]
    A = np.c_[S[0], np.ones(19)]
    np.testing.assert_allclose(A @ coef, A @ np.linalg.lstsq(A, Y, rcond=None)[0], atol=1e-8)
