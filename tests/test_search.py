"""Search strategies: convergence on standard functions, ESP mechanics, NaN, exact resume, bad input."""

import io
import json

import numpy as np
import pytest

from evolino.lstm import LSTMSpec
from evolino.search import CMAES, ESP, make_strategy
from evolino.search.functions import ellipsoid, rosenbrock, sphere


OPTIMUM = {sphere: 0.0, ellipsoid: 0.0, rosenbrock: 1.0}


def run(es, fn, *, max_evals, target=-np.inf):
    while es.evaluations < max_evals and es.best[1] > target and not es.stop():
        es.tell(fn(es.ask()))
    return es


def uniform_init(n):
    return lambda rng, size: rng.uniform(-1.0, 1.0, (size, n))


def roundtrip(d):
    """``d`` through np.savez (arrays) + JSON (everything else), as a checkpoint would store it."""
    arrays = {k: v for k, v in d.items() if isinstance(v, np.ndarray)}
    rest = {k: v for k, v in d.items() if not isinstance(v, np.ndarray)}
    for k, v in rest.items():
        assert isinstance(v, (int, float, str)) and not isinstance(v, bool), (k, type(v))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out.update(json.loads(json.dumps(rest)))
    return out


# --- convergence -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn, n, max_evals",
    [(sphere, 10, 3_000), (sphere, 50, 30_000), (ellipsoid, 10, 10_000), (rosenbrock, 10, 15_000)],
)
def test_cmaes_reaches_1e_8(fn, n, max_evals):
    x0 = np.random.default_rng(0).uniform(-1, 1, n)
    es = run(CMAES(x0, 0.5, seed=3), fn, max_evals=max_evals, target=1e-8)
    genome, f = es.best
    assert f <= 1e-8
    assert np.allclose(genome, OPTIMUM[fn], atol=1e-3)
    assert np.isclose(fn(genome[None])[0], f)


@pytest.mark.parametrize(
    "fn, n, tol",
    # ESP's fixed Cauchy scale limits its precision (see esp.py); thresholds are a few
    # times above what 8 seeds reached and far below the starting values (3.4, 17, 5e5, 480)
    [(sphere, 10, 2e-3), (sphere, 50, 0.3), (ellipsoid, 10, 10.0), (rosenbrock, 10, 9.0)],
)
def test_esp_minimizes(fn, n, tol):
    es = run(ESP(n, seed=5, init=uniform_init(n)), fn, max_evals=20_000)
    genome, f = es.best
    assert f < tol
    assert np.isclose(fn(genome[None])[0], f)


def test_esp_with_units_minimizes():
    n = 12
    es = run(ESP(units=[slice(0, 4), slice(4, 8), np.arange(8, 12)], seed=1, init=uniform_init(n)),
             sphere, max_evals=20_000)
    assert es.best[1] < 1e-2


# --- ESP mechanics ---------------------------------------------------------------------
def _membership(es, X, k, idx):
    """For each network, which chromosome of unit ``k`` it holds (found by value)."""
    sub = es.subpopulation(k)  # (S, len(idx))
    match = np.all(X[:, None, idx] == sub[None, :, :], axis=2)  # (P, S)
    assert np.all(match.sum(axis=1) >= 1)
    return match.argmax(axis=1)


def test_esp_every_chromosome_takes_part_in_trials_networks():
    units = [slice(0, 3), np.array([5, 3, 4]), slice(6, 8)]
    es = ESP(units=units, subpop_size=8, trials=5, seed=0, init=uniform_init(8))
    assert es.n_units == len(units) == 3
    assert es.popsize == 40
    for k, idx in enumerate([np.arange(3), np.array([5, 3, 4]), np.arange(6, 8)]):
        assert es.subpopulation(k).shape == (8, len(idx))
    for _ in range(3):
        X = es.ask()
        assert X.shape == (40, 8)
        for k, idx in enumerate([np.arange(3), np.array([5, 3, 4]), np.arange(6, 8)]):
            counts = np.bincount(_membership(es, X, k, idx), minlength=8)
            assert np.all(counts == 5)
        es.tell(sphere(X))


@pytest.mark.parametrize("rule", ["best", "mean"])
def test_esp_chromosome_fitness_rule_selects_the_survivors(rule):
    S, T = 8, 4
    es = ESP(6, units=[slice(0, 3), slice(3, 6)], subpop_size=S, trials=T, chromosome_fitness=rule,
             patience=None, seed=2, init=uniform_init(6))
    X = es.ask()
    f = sphere(X) + np.random.default_rng(9).normal(0, 0.01, len(X))
    members = [_membership(es, X, k, np.arange(3 * k, 3 * k + 3)) for k in range(2)]
    old = [es.subpopulation(k) for k in range(2)]
    es.tell(f)
    for k in range(2):
        agg = np.array([(f[members[k] == c].min() if rule == "best" else f[members[k] == c].mean())
                        for c in range(S)])
        top = np.argsort(agg, kind="stable")[: S // 4]
        # the best quarter survives unchanged, in rank order
        np.testing.assert_array_equal(es.subpopulation(k)[: S // 4], old[k][top])


def test_esp_offspring_without_crossover_are_cauchy_mutants_of_the_top_quarter():
    es = ESP(4, subpop_size=8, trials=2, crossover=False, mutation_scale=1e-3, patience=None, seed=4,
             init=uniform_init(4))
    X = es.ask()
    old = es.pop.copy()
    es.tell(sphere(X))
    children = es.pop[2:]
    # each child is within a few scales of one of the survivors (heavy tails: use the median distance)
    d = np.abs(children[:, None, :] - es.pop[None, :2, :]).min(axis=1)
    assert np.median(d) < 5e-3
    assert not np.any(np.all(np.isin(children, old), axis=1))


def test_burst_mutation_fires_after_patience_and_recentres_on_best():
    n, S, patience = 6, 20, 4
    es = ESP(n, units=[slice(0, 3), slice(3, 6)], subpop_size=S, trials=3, patience=patience,
             burst_scale=0.05, seed=7, init=uniform_init(n))
    # first generation: a clear winner; afterwards nothing ever beats it
    X = es.ask()
    f = sphere(X)
    es.tell(f)
    best_x = X[np.argmin(f)]
    for g in range(patience - 1):
        es.ask()
        es.tell(np.full(es.popsize, 10.0 + g))
        assert es.bursts == 0
    es.ask()
    es.tell(np.full(es.popsize, 99.0))
    assert es.bursts == 1
    np.testing.assert_array_equal(es.best[0], best_x)
    # every subpopulation now sits on the best network's unit: one exact copy + Cauchy noise
    np.testing.assert_array_equal(es.pop[0], best_x)
    assert np.all(np.abs(np.median(es.pop, axis=0) - best_x) < 0.05)
    assert np.mean(np.abs(es.pop[1:] - best_x) < 0.5) > 0.8
    # the counter restarts: the next burst needs another `patience` stale generations
    for _ in range(patience - 1):
        es.ask()
        es.tell(np.full(es.popsize, 99.0))
    assert es.bursts == 1


def test_esp_never_bursts_while_improving():
    es = ESP(5, patience=3, seed=1, init=uniform_init(5))
    for g in range(12):  # the best improves every generation: never stale
        X = es.ask()
        es.tell(sphere(X) * 1e-6 + 1.0 / (g + 1))
    assert es.bursts == 0 and es.stale == 0
    for g in range(8):  # no improvement at all: a burst every `patience` stale generations
        X = es.ask()
        es.tell(np.full(len(X), 10.0))
    assert es.bursts == 8 // 3, es.bursts


# --- NaN / inf ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: ESP(5, subpop_size=8, trials=4, seed=0, init=uniform_init(5)),
    lambda: CMAES(np.ones(5), 0.5, seed=0),
])
def test_nan_and_inf_are_worst_and_never_crash(make):
    es = make()
    X = es.ask()
    es.tell(np.full(len(X), np.nan))  # a whole generation broken
    assert es.best[1] == np.inf
    rng = np.random.default_rng(0)
    for _ in range(30):
        X = es.ask()
        f = sphere(X)
        bad = rng.random(len(f)) < 0.3
        f[bad] = rng.choice([np.nan, np.inf, -np.inf], size=bad.sum())
        es.tell(f)
    genome, fbest = es.best
    assert np.isfinite(fbest)
    assert np.isclose(sphere(genome[None])[0], fbest)


def test_cmaes_converges_with_nan_regions():
    def f(X):
        y = sphere(X)
        y[X[:, 0] > 1.5] = np.nan  # an infeasible half-space
        return y

    es = run(CMAES(np.full(8, 1.0), 0.5, seed=2), f, max_evals=5_000, target=1e-8)
    assert es.best[1] <= 1e-8


# --- resume, determinism, global RNG ------------------------------------------------------------
def _trajectory(es, n_gen, fn=sphere):
    out = []
    for _ in range(n_gen):
        X = es.ask()
        out.append(X)
        es.tell(fn(X))
    return out


ESP_KW = dict(units=[slice(0, 4), slice(4, 8)], subpop_size=8, trials=3, patience=2, init=uniform_init(8))


def check_resume(make, pending):
    """Run ``make(11)`` 40 generations on Rosenbrock; stop a twin after 17 (with an ask pending or not), resume
    a strategy of another seed from its state: the last 23 generations, the best and the counts must be identical.

    Returns the uninterrupted and the resumed strategy.
    """
    full = make(11)
    expected = _trajectory(full, 40, rosenbrock)
    first = make(11)
    _trajectory(first, 17, rosenbrock)
    if pending:
        first.ask()
    state = roundtrip(first.state_dict())
    resumed = make(999)  # the saved state, not the seed, decides
    resumed.load_state_dict(state)
    assert resumed.generation == 17
    got = _trajectory(resumed, 23, rosenbrock)
    for a, b in zip(expected[17:], got):
        np.testing.assert_array_equal(a, b)
    assert resumed.best[1] == full.best[1]
    np.testing.assert_array_equal(resumed.best[0], full.best[0])
    assert resumed.evaluations == full.evaluations
    return full, resumed


@pytest.mark.parametrize("kind", ["esp", "cmaes", "ipop", "bipop"])
@pytest.mark.parametrize("pending", [False, True])
def test_resume_is_bit_identical(kind, pending):
    def make(seed):
        if kind == "esp":
            return ESP(8, seed=seed, **ESP_KW)
        restarts = None if kind == "cmaes" else kind
        # a tiny per-run iteration limit makes the restarts happen within the test
        opts = {} if kind == "cmaes" else {"maxiter": 6}
        return CMAES(np.full(8, 0.5), 0.3, restarts=restarts, seed=seed, **opts)

    full, resumed = check_resume(make, pending)
    if kind == "esp":
        assert full.bursts > 0  # the resumed span includes burst mutation
    if kind in ("ipop", "bipop"):
        assert full.irun >= 2 and resumed.irun == full.irun
    if kind == "ipop":
        assert full.popsize == make(0).popsize * 2 ** full.irun


def test_ipop_doubles_popsize_on_restart():
    es = CMAES(np.zeros(4), 0.5, restarts="ipop", seed=0, maxiter=5)
    sizes = [es.popsize]
    for _ in range(30):
        es.tell(sphere(es.ask()))
        sizes.append(es.popsize)
    distinct = list(dict.fromkeys(sizes))
    assert distinct == [distinct[0] * 2**i for i in range(len(distinct))] and len(distinct) >= 3
    assert es.stop() == {}


def test_restarts_exhausted_then_stop():
    es = CMAES(np.zeros(3), 0.5, restarts="ipop", max_restarts=1, seed=0, maxiter=3)
    run(es, sphere, max_evals=10_000)
    assert "maxiter" in es.stop() and es.irun == 1


@pytest.mark.parametrize("make", [
    lambda s: ESP(8, seed=s, **ESP_KW),
    lambda s: CMAES(np.zeros(8), 0.5, seed=s),
    lambda s: CMAES(np.zeros(8), 0.5, restarts="bipop", seed=s, maxiter=4),
])
def test_same_seed_same_populations(make):
    a, b, c = _trajectory(make(5), 12), _trajectory(make(5), 12), _trajectory(make(6), 12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_cmaes_never_touches_global_rng():
    np.random.seed(123)
    before = np.random.get_state()
    es = CMAES(np.zeros(6), 0.5, restarts="bipop", seed=1, maxiter=5)
    _trajectory(es, 40)
    es2 = make_strategy("cmaes", LSTMSpec(1, 2), seed=3)
    _trajectory(es2, 3)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_ask_twice_returns_same_population():
    for es in (ESP(4, subpop_size=4, trials=2, seed=0), CMAES(np.zeros(4), seed=0)):
        a = es.ask()
        a[:] = 0  # a copy: the caller cannot corrupt the pending population
        b, c = es.ask(), es.ask()
        np.testing.assert_array_equal(b, c)
        assert not np.all(b == 0)
        es.tell(sphere(b))
        assert es.generation == 1 and es.evaluations == len(b)


def test_diagonal_default_depends_on_size():
    assert CMAES(np.zeros(10)).es.opts["CMA_diagonal"] in (False, 0)
    big = CMAES(np.zeros(2001), seed=0)
    assert big.diagonal and big.es.opts["CMA_diagonal"] is True
    assert CMAES(np.zeros(10), diagonal=True).es.opts["CMA_diagonal"] is True


# --- make_strategy ---------------------------------------------------------------------------
def test_make_strategy():
    spec = LSTMSpec(1, 3)
    esp = make_strategy("esp", spec, popsize=40, seed=0)
    assert isinstance(esp, ESP) and esp.n_units == 3 and esp.popsize == 40 and esp.subpop_size == 4
    # spec.init seeded the subpopulations: forget-gate biases sit near +1
    assert abs(np.mean(esp.pop) - np.mean(spec.init(0, 4))) < 0.1
    cm = make_strategy("cmaes", spec.n_params, popsize=12, seed=0, units=spec.cell_slices, sigma0=0.1)
    assert isinstance(cm, CMAES) and cm.popsize == 12 and cm.sigma == 0.1
    x0 = np.linspace(-1, 1, spec.n_params)
    np.testing.assert_array_equal(make_strategy("cmaes", spec, x0=x0).x0, x0)
    np.testing.assert_array_equal(make_strategy("esp", spec, x0=x0).pop[0], x0)
    with pytest.raises(ValueError, match="did you mean 'cmaes'"):
        make_strategy("cmaess", 5)
    with pytest.raises(ValueError, match="popsize"):
        make_strategy("esp", 5, popsize=15)
    with pytest.raises(ValueError, match="x0"):
        make_strategy("cmaes", 5, x0=np.zeros(4))


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("units", [
    [slice(0, 3), slice(2, 6)],  # overlap
    [slice(0, 3), slice(4, 6)],  # gap
    [slice(0, 3), np.array([3, 4, 9])],  # outside
    [slice(0, 3), slice(3, 3), slice(3, 6)],  # empty unit
    [],
])
def test_units_must_partition(units):
    with pytest.raises(ValueError, match="units"):
        ESP(6, units=units)


@pytest.mark.parametrize("kw, exc, name", [
    (dict(subpop_size=1), ValueError, "subpop_size"),
    (dict(trials=0), ValueError, "trials"),
    (dict(trials=2.5), TypeError, "trials"),
    (dict(mutation_scale=0), ValueError, "mutation_scale"),
    (dict(patience=0), ValueError, "patience"),
    (dict(chromosome_fitness="avg"), ValueError, "chromosome_fitness"),
    (dict(init=np.zeros(5)), ValueError, "init"),
    (dict(init=lambda rng, size: np.zeros((size, 3))), ValueError, "init"),
    (dict(seed="x"), TypeError, "seed"),
])
def test_esp_bad_arguments(kw, exc, name):
    with pytest.raises(exc, match=name):
        ESP(6, **kw)


@pytest.mark.parametrize("kw, exc, name", [
    (dict(popsize=0), ValueError, "popsize"),
    (dict(sigma0=-1), ValueError, "sigma0"),
    (dict(restarts="ipopp"), ValueError, "did you mean 'ipop'"),
    (dict(tolfunn=1e-3), ValueError, "did you mean 'tolfun'"),
    (dict(randn=np.random.randn), ValueError, "randn"),
    (dict(seed=1.5), TypeError, "seed"),
])
def test_cmaes_bad_arguments(kw, exc, name):
    with pytest.raises(exc, match=name):
        CMAES(np.zeros(4), **kw)
    with pytest.raises(ValueError, match="x0"):
        CMAES(np.array([0.0, np.nan]))


@pytest.mark.parametrize("es", [ESP(4, subpop_size=4, trials=2), CMAES(np.zeros(4))], ids=["esp", "cmaes"])
def test_fitness_length_and_order_errors(es):
    with pytest.raises(RuntimeError, match="ask"):
        es.tell(np.zeros(es.popsize))
    es.ask()
    with pytest.raises(ValueError, match="fitness"):
        es.tell(np.zeros(es.popsize + 1))
    with pytest.raises(ValueError, match="fitness"):
        es.tell(np.zeros((es.popsize, 1)))
    es.tell(np.zeros(es.popsize))  # still usable after the errors


def test_load_state_dict_rejects_mismatch():
    a = ESP(6, subpop_size=4, trials=2, seed=0)
    with pytest.raises(ValueError, match="subpop_size"):
        ESP(6, subpop_size=6, trials=2).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="esp"):
        CMAES(np.zeros(6)).load_state_dict(a.state_dict())
    c = CMAES(np.zeros(6), seed=0)
    with pytest.raises(ValueError, match="x0"):
        CMAES(np.ones(6)).load_state_dict(c.state_dict())


def test_test_functions_at_known_points():
    n = 5
    assert sphere(np.zeros((1, n)))[0] == 0 and sphere(np.ones((1, n)))[0] == n
    assert ellipsoid(np.eye(n)[[0, -1]]).tolist() == [1.0, 1e6]
    assert rosenbrock(np.ones((1, n)))[0] == 0 and rosenbrock(np.zeros((1, n)))[0] == n - 1
