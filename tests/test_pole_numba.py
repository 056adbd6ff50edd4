"""Compiled pole-balancing episodes (backend="numba") against the NumPy episode loop, the reference.

Same steps survived exactly, states, actions and damping fitness to float rounding, for single and
double pole, with and without velocities, every policy option, several starts per policy, the
generalization test and the long champion test; one thread and the kernel threads bit for bit.
"""

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed (pip install evolino[fast])")

from evolino._validate import EvolinoError, EvolinoTypeError  # noqa: E402
from evolino.rl import PolicyBatch, PolicySpec, PoleBalancing, PoleTask, generalization_score, run_episodes  # noqa: E402
from evolino.rl._pole_numba import run_compiled  # noqa: E402
from evolino.rl.pole import rollout  # noqa: E402
from evolino.rl.search import PoleFitness  # noqa: E402

# linear state feedback on the scaled observations (an LQR design on the linearized double pole, gains
# x 1.2): balances 100,000 steps from the standard start and 545 of the 625 generalization starts. The
# design's own gains (x 0.6 to 1.0) settle into chattering around x' = 0 and u = 0, where the friction
# sign and the minimum force switch: there the trajectories of any two roundings part by 1e-2 within
# 1,000 steps (NumPy against itself with the LSTM step on the other backend too), so the comparisons
# use gains x 1.2 and more (one pole: x 1.5), which damp rounding differences instead.
DOUBLE_GAINS = 1.2 * np.array([-1.27, -1.08, -4.81, -4.89, 3.22, 1.15])
SINGLE_GAINS = np.array([1.5, 2.0])[:, None] * [8.39, 5.76, 8.22, 8.87]  # the same for one pole


def _genomes(spec, env, n, seed, controllers=()):
    """``n`` random policies (scale 2: most fail within tens of steps); the first ones, if
    ``controllers`` are given, a linear controller through the direct weights plus a small LSTM part."""
    rng = np.random.default_rng(seed)
    g = spec.init(rng, n, scale=2.0)
    if len(controllers):
        m = len(controllers)
        lstm, w_out, _, b_out = spec.split(g[:m])
        gain = 2.0 if spec.head == "logistic" else 1.0  # 2 sigma(y) - 1 = tanh(y / 2)
        d = np.asarray(controllers, float) * gain
        if spec.head == "argmax":  # push right when output 1 >= output 0
            d = np.stack([-d, d], axis=-1).reshape(m, -1)
        g[:m] = spec.join(0.1 * lstm, 0.1 * w_out, np.c_[d, 0.0 * b_out])
    return g


def _both(env, batch, starts=None, **kw):
    return (run_episodes(env, batch, starts, backend="numpy", **kw),
            run_episodes(env, batch, starts, backend="numba", **kw))


def _assert_same(ref, got, tol=1e-9):
    np.testing.assert_array_equal(got.steps, ref.steps)
    if ref.damping is not None:
        np.testing.assert_allclose(got.damping, ref.damping, rtol=1e-12, atol=0)
    if ref.states is not None:
        assert got.states.shape == ref.states.shape and got.actions.shape == ref.actions.shape
        np.testing.assert_allclose(got.states, ref.states, rtol=0, atol=tol)
        np.testing.assert_allclose(got.actions, ref.actions, rtol=0, atol=tol)


CASES = [  # n_poles, velocities, PolicySpec options, obs_norm
    (2, False, dict(), False),
    (2, False, dict(peepholes=False, forget_gate=False), False),
    (2, False, dict(peepholes=True, forget_gate=False, head="logistic"), True),
    (2, False, dict(peepholes=False, forget_gate=True, head="argmax", n_outputs=2), False),
    (2, True, dict(direct=True), False),
    (2, True, dict(direct=True, head="logistic", peepholes=False), True),
    (2, True, dict(direct=True, head="argmax", n_outputs=2, forget_gate=False), False),
    (1, True, dict(direct=True), False),
    (1, False, dict(n_cells=3), True),
]


@pytest.mark.parametrize("n_poles,velocities,options,norm", CASES)
def test_compiled_episodes_equal_numpy_step_for_step(n_poles, velocities, options, norm):
    env = PoleBalancing(n_poles, velocities=velocities)
    options = {"n_cells": 2, **options}
    spec = PolicySpec(env.n_obs, **options)
    controllers = ()
    if velocities and options.get("direct"):
        controllers = [DOUBLE_GAINS, 1.25 * DOUBLE_GAINS] if n_poles == 2 else SINGLE_GAINS
    genomes = _genomes(spec, env, 6, seed=n_poles + 7 * len(options), controllers=controllers)
    obs_norm = None
    if norm:
        rng = np.random.default_rng(3)
        obs_norm = (rng.normal(0, 0.1, env.n_obs), rng.uniform(0.5, 2.0, env.n_obs))
    batch = PolicyBatch(spec, genomes, obs_norm)
    more = (env.generalization_starts()[[0, 312, 624]] if n_poles == 2 else
            np.array([[0.1, 0.0, 0.05, 0.0], [-0.2, 0.1, -0.03, 0.05], [0.0, 0.0, 0.1, -0.1]]))
    starts = np.r_[env.initial_state(1), more]  # B = 4
    ref, got = _both(env, batch, starts, max_steps=400, damping=True, record=True)
    _assert_same(ref, got)
    if spec.head == "argmax":  # the same bang-bang actions: the physics is NumPy's bit for bit
        np.testing.assert_array_equal(got.actions, ref.actions)
        np.testing.assert_array_equal(got.states, ref.states)
        np.testing.assert_array_equal(got.damping, ref.damping)
    if len(controllers):  # the controllers balance to the end: the damping window is exercised
        assert np.sum(ref.steps == 400) >= 2
    # without recording: the same steps and fitness (each episode stops at its failure)
    ref, got = _both(env, batch, starts, max_steps=400, damping=True)
    _assert_same(ref, got)
    assert got.states is None and got.actions is None


def test_auto_is_the_compiled_backend_and_one_episode_per_start_is_independent():
    env = PoleBalancing(2, velocities=False)
    spec = PolicySpec(env.n_obs, 2)
    batch = PolicyBatch(spec, _genomes(spec, env, 5, seed=4))
    starts = env.generalization_starts()[::60]
    auto = run_episodes(env, batch, starts, max_steps=300, damping=True)
    numba = run_episodes(env, batch, starts, max_steps=300, damping=True, backend="numba")
    np.testing.assert_array_equal(auto.steps, numba.steps)
    np.testing.assert_array_equal(auto.damping, numba.damping)
    # one policy alone, or per-policy starts (P, B, n_state): the same episodes
    alone = run_episodes(env, batch.take(np.array([3])), starts, max_steps=300, damping=True, backend="numba")
    np.testing.assert_array_equal(alone.steps[0], numba.steps[3])
    np.testing.assert_array_equal(alone.damping[0], numba.damping[3])
    per = run_episodes(env, batch, np.broadcast_to(starts, (5, *starts.shape)), max_steps=300, backend="numba")
    np.testing.assert_array_equal(per.steps, numba.steps)


@pytest.mark.parametrize("record", [False, True])
def test_serial_and_parallel_builds_agree_bit_for_bit(record):
    env = PoleBalancing(2, velocities=True)
    spec = PolicySpec(env.n_obs, 3, direct=True)
    genomes = _genomes(spec, env, 7, seed=9, controllers=[DOUBLE_GAINS, 0.6 * DOUBLE_GAINS, 1.2 * DOUBLE_GAINS])
    rng = np.random.default_rng(0)
    batch = PolicyBatch(spec, genomes, (rng.normal(0, 1e-3, 6), rng.uniform(0.8, 1.0, 6)))
    starts = np.broadcast_to(env.generalization_starts()[::100], (7, 7, 6))
    n = 250 if record else 0
    serial = run_compiled(env, batch, starts, 2000, True, n_record=n, parallel=False)
    parallel = run_compiled(env, batch, starts, 2000, True, n_record=n, parallel=True)
    for a, b in zip(serial, parallel):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
    assert np.sum(serial[0] == (n or 2000)) >= 3  # some episodes long, others short: uneven threads


def test_read_only_arrays_use_the_same_compiled_episode():
    """A read-only start array (as the generalization test's) runs the version compiled for writeable
    ones: numba would otherwise compile, and cache, a second version of the episode loop (seconds cold)."""
    from evolino.rl import _pole_numba

    env = PoleBalancing(2, velocities=False)
    spec = PolicySpec(env.n_obs, 2)
    batch = PolicyBatch(spec, _genomes(spec, env, 2, seed=1))
    starts = np.ascontiguousarray(np.broadcast_to(env.generalization_starts()[:3], (2, 3, 6)))
    a = run_compiled(env, batch, starts.copy(), 50, False)
    starts.flags.writeable = False
    n = len(_pole_numba.episodes_serial.signatures)
    b = run_compiled(env, batch, starts, 50, False)
    assert len(_pole_numba.episodes_serial.signatures) == n
    np.testing.assert_array_equal(a[0], b[0])


def test_generalization_score_equals_numpy():
    env = PoleBalancing(2, velocities=True)
    spec = PolicySpec(env.n_obs, 2, direct=True)
    batch = PolicyBatch(spec, _genomes(spec, env, 2, seed=5, controllers=[DOUBLE_GAINS]))
    ref = generalization_score(env, batch, backend="numpy")
    got = generalization_score(env, batch, backend="numba")
    np.testing.assert_array_equal(got, ref)
    assert ref[0] >= 200 and ref[1] < 200  # a controller that generalizes, and a random network
    # the 625 episodes themselves, not only the count
    starts = env.generalization_starts()
    _assert_same(run_episodes(env, batch, starts, max_steps=300, damping=True, backend="numpy"),
                 run_episodes(env, batch, starts, max_steps=300, damping=True, backend="numba"))


def test_long_champion_test_equals_numpy():
    # a slowly drifting cart (a small positive position gain): balanced for thousands of steps,
    # then off the track; NumPy finishes this lone episode in plain floats (ScalarPolicy)
    env = PoleBalancing(2, velocities=True)
    spec = PolicySpec(env.n_obs, 2, direct=True)
    drift = DOUBLE_GAINS.copy()
    drift[0] = 0.04
    g = _genomes(spec, env, 2, seed=6, controllers=[drift, DOUBLE_GAINS])
    one = PolicyBatch(spec, g[:1])
    ref, got = _both(env, one, max_steps=100_000)
    _assert_same(ref, got)
    assert 5000 < ref.steps[0, 0] < 100_000
    # the full champion test: PoleTask.passes_test of the balancing controller (compiled only: in NumPy
    # it is seconds of plain floats), and the failing one on both backends
    for backend in ("numpy", "numba"):
        task = PoleTask(2, velocities=True, fitness="damping", require_generalization=True, backend=backend)
        assert not task.passes_test(spec, g[0])
    assert PoleTask(2, velocities=True, fitness="damping", require_generalization=True,
                    backend="numba").passes_test(spec, g[1])


@pytest.mark.parametrize("fitness", ["standard", "damping"])
def test_pole_fitness_equals_numpy(fitness):
    task = PoleTask(2, velocities=False, fitness=fitness, max_steps=2000)
    spec = task.default_spec(2, peepholes=False, forget_gate=False)
    genomes = spec.init(np.random.default_rng(8), 15, scale=2.0)
    fn = task.fitness_fn(spec)
    assert fn.backend == "auto"
    ref = PoleFitness(spec, fn.env_kwargs, fitness, 2000, backend="numpy")(genomes)
    np.testing.assert_allclose(fn(genomes), ref, rtol=1e-12, atol=0)
    assert np.all(ref < 0)


def test_rollout_equals_numpy():
    from evolino.rl import Policy

    env = PoleBalancing(2, velocities=True)
    spec = PolicySpec(env.n_obs, 2, direct=True)
    pol = Policy(spec, _genomes(spec, env, 1, seed=2, controllers=[DOUBLE_GAINS])[0])
    ref = rollout(env, pol, max_steps=500, backend="numpy")
    got = rollout(env, pol, max_steps=500, backend="numba")
    assert ref["steps"] == got["steps"] == 500
    np.testing.assert_allclose(got["states"], ref["states"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["actions"], ref["actions"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got["time"], ref["time"])


def test_bad_backend():
    env = PoleBalancing(2, velocities=False)
    spec = PolicySpec(env.n_obs, 2)
    batch = PolicyBatch(spec, spec.init(0, 2))
    with pytest.raises(EvolinoError, match="backend must be one of"):
        run_episodes(env, batch, max_steps=10, backend="fast")
    with pytest.raises(EvolinoError, match="backend must be one of"):
        PoleTask(2, backend="gpu")

    class Wrapped:  # a policy that is not a PolicyBatch runs on NumPy only
        def __init__(self, inner):
            self.inner, self.spec, self.size = inner, inner.spec, inner.size

        def initial_state(self, n):
            return self.inner.initial_state(n)

        def act(self, h, obs):
            return self.inner.act(h, obs)

        def take(self, index):
            return Wrapped(self.inner.take(index))

    with pytest.raises(EvolinoTypeError, match="PolicyBatch"):
        run_episodes(env, Wrapped(batch), max_steps=10, backend="numba")
    # "auto" falls back to the NumPy loop for it
    np.testing.assert_array_equal(run_episodes(env, Wrapped(batch), max_steps=50).steps,
                                  run_episodes(env, batch, max_steps=50, backend="numpy").steps)
