"""T-maze: dynamics and episodes against a plain scalar reference, the search task, bad input."""

import numpy as np
import pytest

from evolino.rl import PolicyBatch, PolicySpec, evolve_policy
from evolino.rl.tmaze import TMaze, TMazeTask, run_tmaze


def ref_observe(pos, north, N):
    if pos == 0:
        return [0.0, 1.0, 1.0] if north else [1.0, 1.0, 0.0]
    return [0.0, 1.0, 0.0] if pos == N else [1.0, 0.0, 1.0]


def ref_step(pos, north, a, N):
    """Bakker's T-maze written out: (pos, reward, done, success)."""
    if pos == N and a in (0, 2):
        ok = (a == 0) == north
        return pos, (4.0 if ok else -0.1), True, ok
    if a == 1 and pos < N:
        return pos + 1, 0.0, False, False
    if a == 3 and pos > 0:
        return pos - 1, 0.0, False, False
    return pos, -0.1, False, False  # a wall


def ref_episode(policy, north, N, max_steps):
    pos, total = 0, 0.0
    for t in range(max_steps):
        a = policy.act(ref_observe(pos, north, N))
        pos, r, done, ok = ref_step(pos, north, a, N)
        total += r
        if done:
            return total, ok, t + 1
    return total, False, max_steps


def test_step_and_observe_match_the_reference():
    N = 4
    maze = TMaze(N)
    assert maze.max_steps == 2 * (N + 2)
    pos = np.repeat(np.arange(N + 1), 8)
    north = np.tile(np.repeat([True, False], 4), N + 1)
    act = np.tile(np.arange(4), 2 * (N + 1))
    new, r, done, ok = maze.step(pos, north, act)
    obs = maze.observe(pos, north)
    for k in range(len(pos)):
        assert (new[k], r[k], done[k], ok[k]) == ref_step(pos[k], north[k], act[k], N)
        assert obs[k].tolist() == ref_observe(pos[k], north[k], N)


@pytest.mark.parametrize("N", [1, 3, 12])
def test_episodes_match_scalar_reference(N):
    task = TMazeTask(N)
    spec = task.default_spec(3)
    g = spec.init(N, 30, 3.0)
    batch = PolicyBatch(spec, g)
    ret, ok, steps = run_tmaze(task.maze, batch)
    for i in range(len(g)):
        for col, north in enumerate((True, False)):
            r, s, n = ref_episode(batch.scalar(i), north, N, task.maze.max_steps)
            assert np.isclose(ret[i, col], r) and ok[i, col] == s and steps[i, col] == n
    np.testing.assert_allclose(task.fitness_fn(spec)(g), -ret.mean(axis=1))
    assert (steps > 1).any()  # the random policies do walk


def test_search_solves_a_short_maze():
    task = TMazeTask(3)
    res = evolve_policy(task, n_cells=2, search="esp", seed=0, max_evaluations=3000)
    assert res.solved
    assert task.success(res.policy.spec, res.policy.genome).all()
    assert res.generalization is None


def test_bad_input():
    with pytest.raises(ValueError, match="length"):
        TMaze(0)
    with pytest.raises(ValueError, match="length"):
        TMazeTask(0)
    with pytest.raises(ValueError, match="max_steps"):
        TMaze(3, max_steps=0)
    maze = TMaze(3)
    with pytest.raises(ValueError, match="actions"):
        maze.step(np.zeros(2, int), np.ones(2, bool), np.array([0, 4]))
    with pytest.raises(ValueError, match="argmax"):
        run_tmaze(maze, PolicyBatch(PolicySpec(3, 1), PolicySpec(3, 1).init(0, 1)))
