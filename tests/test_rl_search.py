"""Policy search on pole balancing: the protocols, and short learning runs."""

import pickle

import numpy as np
import pytest

from evolino.rl import PolicyBatch, PoleTask, evolve_policy, run_episodes
from evolino.rl.search import PoleFitness


def test_fitness_is_minus_steps_and_picklable():
    task = PoleTask(1, velocities=True, max_steps=300)
    spec = task.default_spec(2)
    fn = task.fitness_fn(spec)
    g = spec.init(0, 6)
    steps = run_episodes(task.env, PolicyBatch(spec, g), max_steps=300).steps[:, 0]
    np.testing.assert_array_equal(fn(g), -steps)
    fn2 = pickle.loads(pickle.dumps(fn))
    np.testing.assert_array_equal(fn2(g), fn(g))
    # chunking the population (as a parallel evaluator does) changes nothing
    np.testing.assert_array_equal(np.concatenate([fn(g[:2]), fn(g[2:])]), fn(g))


def test_damping_fitness_and_solve_check():
    task = PoleTask(1, velocities=True, fitness="damping", test_steps=2000)
    assert task.max_steps == 1000
    spec = task.default_spec(2, direct=True)
    lstm, w_out, _, _ = spec.split(spec.init(1, 2))
    gains = np.array([[1, 2, 10, 2, 0], [0, 0, 0, 0, 0.0]])  # a balancing controller, and one that falls
    g = spec.join(0.0 * lstm, 0.0 * w_out, gains)
    f = task.fitness_fn(spec)(g)
    res = run_episodes(task.env, PolicyBatch(spec, g), max_steps=1000, damping=True)
    np.testing.assert_allclose(f, -res.damping[:, 0])
    assert f[0] < -0.1 <= f[1]
    status = {"fitness": f, "evaluations": 12}
    solved, champ, evals = task.check(spec, status, g)
    assert solved and evals == 12
    np.testing.assert_array_equal(champ, g[0])


def test_standard_check_counts_evaluations_to_the_winner():
    task = PoleTask(2, velocities=False, max_steps=50)
    spec = task.default_spec(1)
    g = spec.init(0, 4)
    status = {"fitness": np.array([-3.0, -50.0, -7.0, -50.0]), "evaluations": 104}
    solved, champ, evals = task.check(spec, status, g)
    assert solved and evals == 102
    np.testing.assert_array_equal(champ, g[1])


@pytest.mark.parametrize("search", ["esp", "cmaes"])
def test_learns_single_pole_balancing(search):
    """A short run: one pole with velocities, 2,000 steps counts as balanced here."""
    task = PoleTask(1, velocities=True, max_steps=2000)
    esp = search == "esp"
    res = evolve_policy(task, n_cells=2, search=search, seed=1, popsize=40 if esp else None,
                        search_options={"trials": 5} if esp else None, max_evaluations=4000, generalization=False)
    assert res.solved, f"{search} did not balance a single pole in {res.evaluations} evaluations"
    assert res.evaluations <= 4000
    steps = run_episodes(task.env, res.policy.batch(), max_steps=2000).steps[0, 0]
    assert steps == 2000
    assert res.history["generation"][-1] == res.generations


def test_unsolved_run_returns_best_and_stops_on_budget():
    task = PoleTask(2, velocities=False, max_steps=100_000)
    res = evolve_policy(task, n_cells=1, search="cmaes", seed=0, max_evaluations=30, generalization=True)
    assert not res.solved and res.evaluations >= 30
    assert 0 <= res.generalization <= 625
    assert -res.strategy.best[1] == run_episodes(task.env, res.policy.batch(), max_steps=100_000).steps[0, 0]


def test_bad_input():
    with pytest.raises(ValueError, match="fitness"):
        PoleTask(2, fitness="gruau")
    with pytest.raises(ValueError, match="search"):
        evolve_policy(PoleTask(1, velocities=True), search="neat", max_evaluations=10)
    with pytest.raises(TypeError, match="spec"):
        evolve_policy(PoleTask(1, velocities=True), spec="lstm", max_evaluations=10)
    with pytest.raises(ValueError, match="inputs"):
        PoleFitness(PoleTask(2).default_spec(2), {"n_poles": 1}, "standard", 10)(PoleTask(2).default_spec(2).init(0, 1))
