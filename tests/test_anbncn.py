"""a^n b^n c^n: target sets against a brute-force reading of the language, scoring, and a short learning run."""

import numpy as np
import pytest

from evolino.estimators import EvolinoRegressor
from evolino.presets import ANBNCN
from evolino.tasks.anbncn import INPUTS, OUTPUTS, AnbncnTask, anbncn_string, encode, next_symbol_sets


def _continuations(prefix, max_m):
    """Symbols x such that prefix + x starts some word S a^m b^m c^m T, m = 1..max_m (brute force)."""
    words = ["S" + "a" * m + "b" * m + "c" * m + "T" for m in range(1, max_m + 1)]
    return {w[len(prefix)] for w in words if w.startswith(prefix) and len(w) > len(prefix)}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_target_sets_match_the_language(n):
    word = "S" + "a" * n + "b" * n + "c" * n + "T"
    assert anbncn_string(n) == word
    X, Y = encode(n)
    assert X.shape == Y.shape == (3 * n + 1, 4)
    for t in range(3 * n + 1):
        expected = _continuations(word[: t + 1], max_m=n + 3)
        assert set(next_symbol_sets(n)[t]) == expected
        assert {OUTPUTS[k] for k in np.flatnonzero(Y[t])} == expected
        assert INPUTS[int(np.argmax(X[t]))] == word[t] and X[t].sum() == 1


def test_sample_string_by_hand():
    # S a a b b c c T: after S {a}; after each a {a, b}; b -> {b}; b -> {c}; c -> {c}; c -> {T}
    _, Y = encode(2)
    a, b, c, T = np.eye(4)
    np.testing.assert_array_equal(Y, [a, a + b, a + b, b, c, c, T])


def _oracle(X, broken_from=None):
    """Counter-based predictor of the next-symbol sets (written without the task's code)."""
    out = np.zeros((len(X), 4))
    na = nb = nc = 0
    for t, sym in enumerate(np.argmax(X, axis=1)):
        na, nb, nc = na + (sym == 1), nb + (sym == 2), nc + (sym == 3)
        if sym in (0, 1):
            out[t, [0] if sym == 0 else [0, 1]] = 1
        elif sym == 2:
            out[t, 1 if nb < na else 2] = 1
        else:
            out[t, 2 if nc < na else 3] = 1
    if broken_from is not None and na >= broken_from:
        out[-1] = 1 - out[-1]
    return out


def test_scoring_with_oracles():
    task = AnbncnTask(test_max=40)
    assert task.generalization(_oracle) == 40
    N, ok = task.score(lambda X: _oracle(X, broken_from=7))
    assert N == 6 and ok[:6].all() and not ok[6:].any()
    # a near miss (an output just below the threshold) rejects the string
    assert task.accepted(lambda X: _oracle(X) * 0.5, [1, 2]).tolist() == [False, False]
    with pytest.raises(ValueError, match="shape"):
        task.accepted(lambda X: _oracle(X)[:, :3], [1])


def test_short_run_learns_small_n():
    """Train on n = 1..5 for 100 generations: most seeds accept all training strings, some generalize."""
    task = AnbncnTask(train_max=5, test_max=30)
    Ns = []
    for seed in range(5):
        model = EvolinoRegressor(**{**ANBNCN.estimator_kwargs(), "max_generations": 100, "random_state": seed})
        Ns.append(task.generalization(model.fit(task.train_X, task.train_Y)))
    assert sum(N >= 5 for N in Ns) >= 2, Ns
    assert max(Ns) > 5, Ns


@pytest.mark.parametrize("kwargs,match", [(dict(train_max=0), "train_max"), (dict(test_max=-1), "test_max"),
                                          (dict(threshold="x"), "threshold")])
def test_bad_task_options(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AnbncnTask(**kwargs)
    with pytest.raises(ValueError, match="n must be >= 1"):
        encode(0)


def test_cli_anbncn_writes_results_and_model(tmp_path, capsys):
    import json

    from evolino import EvolinoNetwork
    from evolino.cli import main

    out = tmp_path / "run"
    assert main(["anbncn", "--generations", "3", "--test-max", "12", "--out", str(out), "--no-progress",
                 "--no-plot"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "anbncn" and res["reference_status"] == "NOT VERIFIED"
    assert 0 <= res["generalization_N"] <= 12 and res["evaluations"] == 3 * 40
    net = EvolinoNetwork.load(out / "model.npz")
    task = AnbncnTask(test_max=12)
    assert task.generalization(net.predict) == res["generalization_N"]  # the saved model scores the same
    assert "anbncn (linear readout" in capsys.readouterr().out
    assert main(["anbncn", "--generations", "2", "--readout", "svc", "--C", "-1", "--no-progress"]) == 2
    assert "C must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["anbncn", "--readout", "qp"])
