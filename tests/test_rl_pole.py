"""Pole-balancing physics and episodes against a scalar reference written from Wieland's equations."""

import math

import numpy as np
import pytest

from evolino.rl import PolicyBatch, PolicySpec, PoleBalancing, generalization_score, rollout, run_episodes
from reference import lstm_reference

# --- scalar reference: plain floats, one cart, straight from the equations -------
G, MC, MUC, MUP = -9.8, 1.0, 5e-4, 2e-6
MASS, HALF = (0.1, 0.01), (0.5, 0.05)


def ref_derivs(st, force, n_poles):
    """d/dt of [x, x', th1, th1', (th2, th2')] (Wieland 1991)."""
    v = st[1]
    num, den = force - MUC * (1.0 if v >= 0 else -1.0), MC
    terms = []
    for i in range(n_poles):
        th, w = st[2 + 2 * i], st[3 + 2 * i]
        m, l = MASS[i], HALF[i]
        fric = MUP * w / (m * l)
        num += m * l * w * w * math.sin(th) + 0.75 * m * math.cos(th) * (fric + G * math.sin(th))
        den += m * (1 - 0.75 * math.cos(th) ** 2)
        terms.append((th, w, l, fric))
    xacc = num / den
    out = [v, xacc]
    for th, w, l, fric in terms:
        out += [w, -0.75 / l * (xacc * math.cos(th) + G * math.sin(th) + fric)]
    return out


def ref_rk4(st, force, n_poles, h=0.01):
    k1 = ref_derivs(st, force, n_poles)
    k2 = ref_derivs([s + h / 2 * k for s, k in zip(st, k1)], force, n_poles)
    k3 = ref_derivs([s + h / 2 * k for s, k in zip(st, k2)], force, n_poles)
    k4 = ref_derivs([s + h * k for s, k in zip(st, k3)], force, n_poles)
    return [s + h / 6 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(st, k1, k2, k3, k4)]


def ref_control_step(st, u, n_poles):
    force = max(-10.0, min(10.0, 10.0 * u))
    if 0 <= force < 10 / 256:
        force = 10 / 256
    elif -10 / 256 < force < 0:
        force = -10 / 256
    for _ in range(2):
        st = ref_rk4(st, force, n_poles)
    return st


def ref_failed(st, n_poles):
    limit = math.radians(36 if n_poles == 2 else 12)
    return abs(st[0]) > 2.4 or any(abs(st[2 + 2 * i]) > limit for i in range(n_poles))


def ref_episode(spec, genome, start, n_poles, velocities, max_steps):
    """Scalar episode of one LSTM policy: (steps survived, damping fitness)."""
    lstm, w_out, d, b_out = spec.split(np.asarray(genome)[None])
    h = c = None
    st, steps, last = list(start), 0, []
    scale = [4.8, 2.0, 0.52, 2.0, 0.52, 2.0][: 2 + 2 * n_poles]
    for _ in range(max_steps):
        obs = [s / k for s, k in zip(st, scale)]
        if not velocities:
            obs = obs[::2]
        _, h, c = lstm_reference(spec.lstm, lstm[0], np.array([obs]), h, c)
        a = float(h @ w_out[0][:, 0] + b_out[0, 0])
        if d is not None:
            a += sum(o * k for o, k in zip(obs, d[0][:, 0]))
        u = math.tanh(a)
        st = ref_control_step(st, u, n_poles)
        if ref_failed(st, n_poles):
            break
        steps += 1
        last = (last + [abs(st[0]) + abs(st[1]) + abs(st[2]) + abs(st[3])])[-100:]
    f2 = 0.75 / sum(last) if steps >= 100 else 0.0
    return steps, 0.1 * steps / max_steps + 0.9 * f2


# --- physics ----------------------------------------------------------------------
@pytest.mark.parametrize("n_poles", [1, 2])
def test_derivatives_match_scalar_reference(n_poles):
    rng = np.random.default_rng(0)
    env = PoleBalancing(n_poles)
    states = rng.uniform(-1, 1, size=(7, env.n_state))
    forces = rng.uniform(-10, 10, size=7)
    got = env.derivatives(states, forces)
    want = np.array([ref_derivs(list(s), f, n_poles) for s, f in zip(states, forces)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_poles", [1, 2])
def test_trajectory_matches_scalar_reference(n_poles):
    rng = np.random.default_rng(1)
    env = PoleBalancing(n_poles)
    actions = rng.uniform(-1.2, 1.2, size=(60, 3))
    actions[5] = 0.0  # exercises the minimum force
    s = env.initial_state(3) + rng.normal(0, 0.01, size=(3, env.n_state))
    refs = [list(r) for r in s]
    for u in actions:
        s = env.step(s, u)
        refs = [ref_control_step(r, a, n_poles) for r, a in zip(refs, u)]
    np.testing.assert_allclose(s, np.array(refs), rtol=1e-9, atol=1e-12)


def test_physics_directions():
    env = PoleBalancing(2)
    s = np.zeros((1, 6))
    s[0, 2] = 0.05
    d = env.derivatives(s, 0.0)[0]
    assert d[3] > 0, "an unpushed tilted pole must fall further"
    push = env.derivatives(np.zeros((1, 6)), 10.0)[0]
    assert push[1] > 0 and push[3] < 0 and push[5] < 0, "pushing right tips the poles left"


def test_failure_limits():
    env2, env1 = PoleBalancing(2), PoleBalancing(1)
    s = np.zeros((4, 6))
    s[0, 0] = 2.39
    s[1, 0] = -2.41
    s[2, 4] = math.radians(35.9)
    s[3, 2] = math.radians(36.1)
    assert env2.failed(s).tolist() == [False, True, False, True]
    one = np.zeros((2, 4))
    one[0, 2], one[1, 2] = math.radians(11.9), math.radians(12.1)
    assert env1.failed(one).tolist() == [False, True]


def test_observations_scaled_and_masked():
    s = np.array([[1.2, 0.5, 0.26, -1.0, 0.13, 2.0]])
    np.testing.assert_allclose(PoleBalancing(2).observe(s), [[0.25, 0.25, 0.5, -0.5, 0.25, 1.0]])
    np.testing.assert_allclose(PoleBalancing(2, velocities=False).observe(s), [[0.25, 0.5, 0.25]])
    np.testing.assert_allclose(PoleBalancing(1, velocities=False).observe(s[:, :4]), [[0.25, 0.5]])


def test_start_states():
    env = PoleBalancing(2)
    np.testing.assert_allclose(env.initial_state(2), [[0, 0, math.radians(4), 0, 0, 0]] * 2)
    g = env.generalization_starts()
    assert g.shape == (625, 6)
    assert np.all(g[:, 4:] == 0)
    np.testing.assert_allclose(g[0, :4], [-0.9 * 2.16, -0.9 * 1.35, -0.9 * math.radians(3.6), -0.9 * math.radians(8.6)])
    np.testing.assert_allclose(g[-1, :4], -g[0, :4])
    for j, r in enumerate([2.16, 1.35, math.radians(3.6), math.radians(8.6)]):
        np.testing.assert_allclose(np.unique(g[:, j]), np.array([0.05, 0.25, 0.5, 0.75, 0.95]) * 2 * r - r)


# --- episodes -------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "auto"])  # auto: the compiled episodes when numba is installed
@pytest.mark.parametrize("n_poles,velocities", [(2, False), (1, True)])
def test_episodes_match_scalar_reference(n_poles, velocities, backend):
    env = PoleBalancing(n_poles, velocities=velocities)
    spec = PolicySpec(env.n_obs, 2, direct=True)
    rng = np.random.default_rng(2)
    genomes = spec.init(rng, 12, scale=3.0)
    if velocities:
        # a few hand-made linear controllers (direct weights) that balance one pole,
        # so that some episodes run to the end and the damping term is exercised
        lstm, w_out, _, _ = spec.split(genomes)
        gains = np.array([[0.5, 1, 5, 1, 0], [1, 2, 10, 2, 0], [2, 2, 10, 3, 0.1]])
        genomes[[1, 6, 7]] = spec.join(0.1 * lstm[[1, 6, 7]], 0.1 * w_out[[1, 6, 7]], gains)
    res = run_episodes(env, PolicyBatch(spec, genomes), max_steps=150, damping=True, backend=backend)
    start = env.initial_state(1)[0]
    want = [ref_episode(spec, g, start, n_poles, velocities, 150) for g in genomes]
    if velocities:
        assert sum(w[0] == 150 for w in want) >= 2
    np.testing.assert_array_equal(res.steps[:, 0], [w[0] for w in want])
    np.testing.assert_allclose(res.damping[:, 0], [w[1] for w in want], rtol=1e-9)


def test_batched_starts_and_generalization_score():
    env = PoleBalancing(2, velocities=False)
    spec = PolicySpec(env.n_obs, 2)
    genomes = spec.init(3, 4)
    starts = env.generalization_starts()[::125]  # 5 starts
    res = run_episodes(env, PolicyBatch(spec, genomes), starts, max_steps=60)
    for p in range(4):
        for b in range(5):
            assert res.steps[p, b] == ref_episode(spec, genomes[p], starts[b], 2, False, 60)[0]
    score = generalization_score(env, PolicyBatch(spec, genomes), max_steps=5)
    assert score.shape == (4,) and np.all((0 <= score) & (score <= 625))


def test_rollout_records_trajectory():
    env = PoleBalancing(2, velocities=False)
    spec = PolicySpec(env.n_obs, 2)
    from evolino.rl import Policy

    pol = Policy(spec, spec.init(4, 1)[0])
    out = rollout(env, pol, max_steps=200)
    n = out["steps"]
    assert out["states"].shape == (min(n + 1, 200) + 1, 6)
    assert env.failed(out["states"][-1]) == (n < 200)
    assert not np.any(env.failed(out["states"][:-1]))
    np.testing.assert_allclose(out["states"][0], env.initial_state(1)[0])


def test_bad_input():
    with pytest.raises(ValueError, match="n_poles"):
        PoleBalancing(3)
    with pytest.raises(TypeError, match="velocities"):
        PoleBalancing(2, velocities="no")
    env = PoleBalancing(2)
    with pytest.raises(ValueError, match="state"):
        env.step(np.zeros((2, 4)), 0.0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros((1, 6)), np.nan)
    spec = PolicySpec(3, 2)
    with pytest.raises(ValueError, match="inputs"):
        run_episodes(env, PolicyBatch(spec, spec.init(0, 2)), max_steps=10)
    bad = np.zeros((1, 6))
    bad[0, 0] = 3.0
    env3 = PoleBalancing(2, velocities=False)
    with pytest.raises(ValueError, match="already failed"):
        run_episodes(env3, PolicyBatch(spec, spec.init(0, 2)), bad, max_steps=10)
    with pytest.raises(ValueError, match="max_steps"):
        run_episodes(env3, PolicyBatch(spec, spec.init(0, 2)), max_steps=0)


@pytest.mark.parametrize("n_poles", [1, 2])
def test_scalar_physics_matches_arrays(n_poles):
    rng = np.random.default_rng(5)
    env = PoleBalancing(n_poles)
    s = rng.uniform(-0.3, 0.3, size=(5, env.n_state))
    s[0, 1] = 0.0
    u = rng.uniform(-1.1, 1.1, size=5)
    u[1] = 0.0
    got = [env._scalar_advance(list(r), a) for r, a in zip(s, u)]
    np.testing.assert_allclose(got, env.step(s, u), rtol=1e-12, atol=1e-15)
    assert env._scalar_failed([0, 0, 0.0, 0, 0.0, 0][: env.n_state]) is False
    assert env._scalar_failed([2.5, 0, 0.0, 0, 0.0, 0][: env.n_state]) is True


def test_scalar_continuation_gives_the_same_episodes():
    env = PoleBalancing(1, velocities=True)
    spec = PolicySpec(env.n_obs, 2, direct=True)
    genomes = spec.init(np.random.default_rng(6), 6, scale=3.0)
    lstm, w_out, _, _ = spec.split(genomes)
    gains = np.array([[0.5, 1, 5, 1, 0], [1, 2, 10, 2, 0], [2, 2, 10, 3, 0.1], [0.2, 0.5, 4, 1, 0]])
    genomes[:4] = spec.join(0.2 * lstm[:4], 0.2 * w_out[:4], gains)
    batch = PolicyBatch(spec, genomes)
    # the switch to plain floats is the NumPy loop's
    arrays = run_episodes(env, batch, max_steps=3000, scalar_after=None, backend="numpy").steps
    mixed = run_episodes(env, batch, max_steps=3000, scalar_after=40, backend="numpy").steps
    np.testing.assert_array_equal(mixed, arrays)
    assert np.sum(arrays == 3000) >= 3
    # the switch depends only on a policy's own episode: alone or in the crowd, same result
    alone = [run_episodes(env, batch.take(np.array([i])), max_steps=3000, scalar_after=40, backend="numpy").steps[0, 0]
             for i in range(6)]
    np.testing.assert_array_equal(alone, mixed[:, 0])
