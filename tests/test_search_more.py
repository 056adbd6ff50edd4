"""SNES, xNES, CoSyNE, PGPE: updates against the papers' equations, convergence, exact resume, bad input."""

import numpy as np
import pytest

from evolino.lstm import LSTMSpec
from evolino.search import PGPE, SNES, XNES, CoSyNE, make_strategy
from evolino.search.cosyne import permutation_probability
from evolino.search.functions import ellipsoid, rosenbrock, sphere
from evolino.search.nes import expm_sym, nes_popsize, utilities

from test_search import _trajectory, check_resume, run


# --- the papers' formulas, written out here ---------------------------------------------------
def test_utilities_hand_worked():
    # lambda = 4: raw = max(0, ln 3 - ln k) = [ln 3, ln 1.5, 0, 0]
    raw = np.array([np.log(3), np.log(1.5), 0, 0])
    np.testing.assert_allclose(utilities(4), raw / raw.sum() - 0.25)
    for lam in (5, 10, 17):
        u = utilities(lam)
        assert abs(u.sum()) < 1e-12 and np.all(np.diff(u) <= 0)
    assert nes_popsize(10) == 4 + 6 and nes_popsize(39) == 4 + 10  # 3 ln 39 = 10.99


def test_expm_sym_matches_taylor_series():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 5))
    M = 0.3 * (M + M.T)
    ref, term = np.eye(5), np.eye(5)
    for k in range(1, 40):
        term = term @ M / k
        ref = ref + term
    np.testing.assert_allclose(expm_sym(M), ref, rtol=1e-12, atol=1e-12)


def test_snes_update_matches_equations():
    n = 6
    es = SNES(np.linspace(-1, 1, n), np.linspace(0.5, 1.0, n), seed=3)
    mu, sigma = es.mu.copy(), es.sigma.copy()
    X = es.ask()
    f = sphere(X)
    s = (X - mu) / sigma
    lam = len(f)
    u = utilities(lam)
    gmu, gsig = np.zeros(n), np.zeros(n)
    for rank, k in enumerate(np.argsort(f)):
        gmu += u[rank] * s[k]
        gsig += u[rank] * (s[k] ** 2 - 1)
    eta = (3 + np.log(n)) / (5 * np.sqrt(n))
    es.tell(f)
    np.testing.assert_allclose(es.mu, mu + sigma * gmu, rtol=1e-12)
    np.testing.assert_allclose(es.sigma, sigma * np.exp(0.5 * eta * gsig), rtol=1e-12)


def test_xnes_update_matches_equations():
    n = 5
    es = XNES(np.ones(n), 0.7, seed=4)
    for _ in range(3):  # move B away from the identity first
        es.tell(ellipsoid(es.ask()))
    mu, sigma, B = es.mu.copy(), es.sigma, es.B.copy()
    X = es.ask()
    f = ellipsoid(X)
    s = np.linalg.solve(sigma * B, (X - mu).T).T
    u = utilities(len(f))
    gd, gM = np.zeros(n), np.zeros((n, n))
    for rank, k in enumerate(np.argsort(f)):
        gd += u[rank] * s[k]
        gM += u[rank] * (np.outer(s[k], s[k]) - np.eye(n))
    eta = (9 + 3 * np.log(n)) / (5 * n * np.sqrt(n))
    gs = np.trace(gM) / n
    es.tell(f)
    np.testing.assert_allclose(es.mu, mu + sigma * B @ gd, rtol=1e-10)
    assert np.isclose(es.sigma, sigma * np.exp(0.5 * eta * gs), rtol=1e-12)
    w, V = np.linalg.eigh(0.5 * eta * (gM - gs * np.eye(n)))
    np.testing.assert_allclose(es.B, B @ V @ np.diag(np.exp(w)) @ V.T, rtol=1e-10, atol=1e-12)
    assert np.isclose(np.linalg.det(es.B), 1.0, rtol=1e-9)  # tr(G_B) = 0 keeps det B = 1


def test_pgpe_symmetric_pairs_and_update():
    n = 4
    es = PGPE(np.zeros(n), 0.5, popsize=6, seed=1)
    X = es.ask()
    np.testing.assert_allclose(X[0::2] + X[1::2], 0.0, atol=1e-15)  # mu +- eps with mu = 0
    es.tell(sphere(X))  # first generation: baseline only
    assert np.array_equal(es.mu, np.zeros(n)) and es.baseline == -sphere(X).mean()
    mu, sigma, b, best = es.mu.copy(), es.sigma.copy(), es.baseline, es.best_reward
    X = es.ask()
    r = -sphere(X)
    best = max(best, r.max())
    dmu, dsig = np.zeros(n), np.zeros(n)
    for i in range(3):
        eps, rp, rm = X[2 * i] - mu, r[2 * i], r[2 * i + 1]
        dmu += eps * (rp - rm) / (2 * best - rp - rm)
        dsig += max(0.0, (rp + rm) / 2 - b) / (best - b) * (eps**2 - sigma**2) / sigma
    es.tell(-r)
    np.testing.assert_allclose(es.mu, mu + 0.2 * dmu / 3, rtol=1e-12)
    np.testing.assert_allclose(es.sigma, sigma + 0.1 * dsig / 3, rtol=1e-12)
    assert np.isclose(es.baseline, 0.9 * b + 0.1 * r.mean())


# --- CoSyNE: the hand-worked generation -----------------------------------------------------
def test_cosyne_permutation_probability_hand_worked():
    f = np.array([5.0, 0.0, 7.0, 1.0, 3.0, 9.0, 2.0, 4.0])
    p = permutation_probability(f, 3)
    # normalized goodness (f_max - f) / (f_max - f_min) = (9 - f) / 9; p = 1 - goodness^(1/3)
    np.testing.assert_allclose(p, [1 - (4 / 9) ** (1 / 3), 0.0, 1 - (2 / 9) ** (1 / 3), 1 - (8 / 9) ** (1 / 3),
                                   1 - (6 / 9) ** (1 / 3), 1.0, 1 - (7 / 9) ** (1 / 3), 1 - (5 / 9) ** (1 / 3)])
    # a network survives whole with probability (1 - p)^n = its normalized fitness
    np.testing.assert_allclose((1 - p) ** 3, (9 - f) / 9, atol=1e-12)
    assert np.all(permutation_probability(np.full(4, 2.0), 3) == 1)  # no ranking: permute all
    np.testing.assert_array_equal(permutation_probability(np.array([1.0, np.inf, 2.0]), 2)[1:], [1.0, 1.0])


def test_cosyne_generation_sorts_replaces_and_permutes():
    m, n = 8, 3
    init = np.arange(m * n, dtype=float).reshape(m, n)  # every weight distinct
    es = CoSyNE(n, popsize=m, n_offspring=2, mutation_rate=0.0, seed=0, init=init)
    assert es.n_parents == 2 and es.popsize == m
    X = es.ask()
    np.testing.assert_array_equal(X, init)
    f = np.array([5.0, 0.0, 7.0, 1.0, 3.0, 9.0, 2.0, 4.0])
    es.tell(f)
    order = [1, 3, 6, 4, 7, 0, 2, 5]  # rows by fitness, best first
    survivors, parents = init[order[:6]], init[order[:2]]  # the two worst (rows 2, 5) are replaced
    # the best network (p = 0) is never broken up
    np.testing.assert_array_equal(es.pop[0], init[1])
    # permutation only moves weights within a subpopulation, among the survivors
    for i in range(n):
        assert sorted(es.pop[:6, i]) == sorted(survivors[:, i])
    # offspring: one-point crossovers of the two parents (no mutation), complementary pairs
    c1, c2 = es.pop[6], es.pop[7]
    from_a = c1 == parents[0]
    assert np.all(from_a | (c1 == parents[1]))
    assert np.sum(np.diff(from_a.astype(int)) != 0) == 1  # head of one parent, tail of the other
    np.testing.assert_array_equal(np.where(from_a, parents[1], parents[0]), c2)
    assert not np.isin(init[[2, 5]], es.pop).any()  # the worst two are gone


def test_cosyne_marks_with_the_paper_probability():
    # fitness 0 (p = 0) for half the survivors, the worst value (p = 1) for the rest
    m, n = 40, 5
    hits = 0
    for seed in range(20):
        init = np.random.default_rng(seed).normal(size=(m, n))
        es = CoSyNE(n, popsize=m, n_offspring=10, mutation_rate=0.0, seed=seed, init=init)
        f = np.r_[np.zeros(15), np.ones(25)]
        es.ask()
        es.tell(f)
        np.testing.assert_array_equal(es.pop[:15], init[:15])  # p = 0: untouched
        hits += np.sum(es.pop[15:30] != init[15:30])  # p = 1: all shuffled (a few land in place)
    assert hits > 0.85 * 20 * 15 * n


def test_cosyne_mutation_is_cauchy_at_the_given_rate():
    m, n = 40, 200
    es = CoSyNE(n, popsize=m, n_offspring=10, mutation_rate=0.3, mutation_scale=0.01, seed=2,
                init=np.zeros((m, n)))
    es.ask()
    es.tell(np.arange(m, dtype=float))
    child = es.pop[30:]
    frac = np.mean(child != 0)
    assert 0.27 < frac < 0.33
    med = np.median(np.abs(child[child != 0]))
    assert 0.007 < med < 0.014  # |Cauchy(0.01)| has median 0.01


# --- convergence ------------------------------------------------------------------------------
CASES = [
    # (name, factory, function, n, budget, threshold): thresholds a few times above what 3 seeds reached
    ("snes", lambda x0, s: SNES(x0, 0.5, seed=s), sphere, 10, 3000, 1e-8),
    ("snes", lambda x0, s: SNES(x0, 0.5, seed=s), ellipsoid, 10, 4000, 1e-8),
    ("snes", lambda x0, s: SNES(x0, 0.5, seed=s), rosenbrock, 10, 20000, 5.0),
    ("xnes", lambda x0, s: XNES(x0, 0.5, seed=s), sphere, 10, 8000, 1e-8),
    ("xnes", lambda x0, s: XNES(x0, 0.5, seed=s), ellipsoid, 10, 12000, 1e-8),
    ("xnes", lambda x0, s: XNES(x0, 0.5, seed=s), rosenbrock, 10, 15000, 1e-8),
    ("snes-mirrored", lambda x0, s: SNES(x0, 0.5, mirrored=True, seed=s), sphere, 10, 3000, 1e-8),
    ("snes-mirrored", lambda x0, s: SNES(x0, 0.5, mirrored=True, seed=s), rosenbrock, 10, 20000, 5.0),
    ("xnes-mirrored", lambda x0, s: XNES(x0, 0.5, mirrored=True, seed=s), ellipsoid, 10, 12000, 1e-8),
    ("pgpe", lambda x0, s: PGPE(x0, 0.5, seed=s), sphere, 10, 5000, 1e-4),
    ("pgpe", lambda x0, s: PGPE(x0, 0.5, seed=s), ellipsoid, 10, 15000, 1e-6),
    ("pgpe", lambda x0, s: PGPE(x0, 0.5, seed=s), rosenbrock, 10, 20000, 9.0),
    ("cosyne", lambda x0, s: CoSyNE(10, seed=s, init=x0[None] + np.random.default_rng(s).uniform(-1, 1, (40, 10))),
     sphere, 10, 5000, 0.3),
    ("cosyne", lambda x0, s: CoSyNE(10, seed=s, init=x0[None] + np.random.default_rng(s).uniform(-1, 1, (40, 10))),
     ellipsoid, 10, 20000, 100.0),
    ("cosyne", lambda x0, s: CoSyNE(10, seed=s, init=x0[None] + np.random.default_rng(s).uniform(-1, 1, (40, 10))),
     rosenbrock, 10, 20000, 9.0),
]
START = {sphere: 3.4, ellipsoid: 5e5, rosenbrock: 480}


@pytest.mark.parametrize("name, make, fn, n, budget, tol", CASES,
                         ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_minimizes(name, make, fn, n, budget, tol):
    x0 = np.random.default_rng(0).uniform(-1, 1, n)
    es = run(make(x0, 1), fn, max_evals=budget, target=1e-9)
    genome, f = es.best
    assert f < tol
    assert np.isclose(fn(genome[None])[0], f)


# --- resume, determinism ----------------------------------------------------------------------
MAKERS = {
    "snes": lambda s: SNES(np.full(8, 0.5), 0.3, seed=s),
    "xnes": lambda s: XNES(np.full(8, 0.5), 0.3, seed=s),
    "pgpe": lambda s: PGPE(np.full(8, 0.5), 0.3, seed=s),
    "snes-mirrored": lambda s: SNES(np.full(8, 0.5), 0.3, mirrored=True, popsize=9, seed=s),
    "cosyne": lambda s: CoSyNE(8, popsize=12, seed=s),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize("pending", [False, True])
def test_resume_is_bit_identical(kind, pending):
    make = MAKERS[kind]
    check_resume(make, pending)
    a, b, c = _trajectory(make(5), 5), _trajectory(make(5), 5), _trajectory(make(6), 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_nan_and_inf_never_crash(kind):
    es = MAKERS[kind](0)
    es.ask()
    es.tell(np.full(es.popsize, np.nan))
    rng = np.random.default_rng(0)
    for _ in range(30):
        X = es.ask()
        f = sphere(X)
        f[rng.random(len(f)) < 0.3] = np.nan
        es.tell(f)
    assert np.isfinite(es.best[1]) and np.all(np.isfinite(es.ask()))


# --- the factory and bad input ----------------------------------------------------------------
def test_make_strategy_builds_every_new_strategy():
    spec = LSTMSpec(1, 3)
    for name, cls in [("snes", SNES), ("xnes", XNES), ("pgpe", PGPE), ("cosyne", CoSyNE)]:
        es = make_strategy(name, spec, seed=0, popsize=12)
        assert isinstance(es, cls) and es.popsize == 12 and es.n_params == spec.n_params
    x0 = np.linspace(-1, 1, spec.n_params)
    np.testing.assert_array_equal(make_strategy("snes", spec, x0=x0).mu, x0)
    np.testing.assert_array_equal(make_strategy("cosyne", spec, x0=x0).pop[0], x0)
    # the mean comes from spec.init (forget-gate biases near +1), not zeros
    assert np.any(make_strategy("xnes", spec, seed=0).mu != 0)
    with pytest.raises(ValueError, match="did you mean 'snes'"):
        make_strategy("snnes", 5)
    with pytest.raises(ValueError, match="name"):
        make_strategy("neat", 5)


@pytest.mark.parametrize("make, name", [
    (lambda: PGPE(np.zeros(4), popsize=7), "popsize"),
    (lambda: PGPE(np.zeros(4), sigma0=-1), "sigma0"),
    (lambda: PGPE(np.zeros(4), alpha_sigma=2), "alpha_sigma"),
    (lambda: SNES(np.zeros(4), sigma0=np.array([1, 0, 1, 1])), "sigma0"),
    (lambda: SNES(np.zeros(0)), "x0"),
    (lambda: XNES(np.array([0.0, np.nan])), "x0"),
    (lambda: XNES(np.zeros(3), popsize=1), "popsize"),
    (lambda: SNES(np.zeros(3), patience=0), "patience"),
    (lambda: XNES(np.zeros(3), mirrored="yes"), "mirrored"),
    (lambda: CoSyNE(4, popsize=3), "popsize"),
    (lambda: CoSyNE(4, popsize=8, n_offspring=8), "n_offspring"),
    (lambda: CoSyNE(4, mutation_rate=1.5), "mutation_rate"),
    (lambda: CoSyNE(4, popsize=8, init=np.zeros((7, 4))), "init"),
    (lambda: CoSyNE(0), "n_params"),
])
def test_bad_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_load_state_dict_rejects_other_kinds_and_sizes():
    s = SNES(np.zeros(4), seed=0)
    with pytest.raises(ValueError, match="snes"):
        XNES(np.zeros(4)).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="popsize"):
        SNES(np.zeros(4), popsize=9).load_state_dict(s.state_dict())
    c = CoSyNE(4, popsize=8)
    with pytest.raises(ValueError, match="popsize"):
        CoSyNE(4, popsize=12).load_state_dict(c.state_dict())
    with pytest.raises(ValueError, match="pgpe"):
        c.load_state_dict(PGPE(np.zeros(4)).state_dict())


# --- restarts of the NES ---------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SNES, XNES])
def test_nes_restarts_from_x0_after_patience_generations_without_a_better_sample(cls):
    x0 = np.full(4, 0.5)
    es = cls(x0, 0.3, patience=3, seed=0)
    es.ask()
    es.tell(np.zeros(es.popsize))  # the run's best: 0
    for _ in range(3):
        assert es.restarts == 0
        es.ask()
        es.tell(np.ones(es.popsize))  # never better
    assert es.restarts == 1
    np.testing.assert_array_equal(es.mu, x0)
    assert np.all(es.sigma == 0.3)
    if cls is XNES:
        np.testing.assert_array_equal(es.B, np.eye(4))
    rng = np.random.default_rng()
    rng.bit_generator.state = es.rng.bit_generator.state
    np.testing.assert_allclose(es.ask(), x0 + 0.3 * rng.standard_normal((es.popsize, 4)), rtol=0, atol=1e-15)
    es.tell(np.ones(es.popsize))  # the new run's first generation is its best so far
    assert (es.restarts, es._stale) == (1, 0) and es.best[1] == 0.0


@pytest.mark.parametrize("cls", [SNES, XNES])
def test_nes_with_restarts_resumes_bit_identically(cls):
    full, resumed = check_resume(lambda s: cls(np.full(8, 0.5), 0.3, patience=1, seed=s), pending=True)
    assert full.restarts >= 1 and resumed.restarts == full.restarts


# --- mirrored sampling -----------------------------------------------------------------------
@pytest.mark.parametrize("cls, popsize", [(SNES, 8), (SNES, 7), (XNES, 6)])
def test_mirrored_samples_come_in_opposite_pairs(cls, popsize):
    x0 = np.linspace(-1, 1, 5)
    es = cls(x0, 0.4, popsize=popsize, mirrored=True, seed=2)
    for _ in range(3):  # also once the shape has adapted
        X = es.ask()
        m = (popsize + 1) // 2
        d = X - es.mu
        np.testing.assert_allclose(d[m:], -d[: popsize - m], rtol=0, atol=1e-12)
        es.tell(sphere(X))
    # the first half: the generator's draws without mirroring
    plain = cls(x0, 0.4, popsize=popsize, seed=2).ask()
    mirrored = cls(x0, 0.4, popsize=popsize, mirrored=True, seed=2).ask()
    np.testing.assert_array_equal(mirrored[:m], plain[:m])
