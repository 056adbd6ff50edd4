"""Observation normalization: running statistics, applied by every policy path, saved, used by the search."""

import numpy as np
import pytest

from evolino.rl import Policy, PolicyBatch, PolicySpec, PoleTask, evolve_policy, run_episodes
from evolino.rl.normalize import MIN_STD, RunningMeanStd


def test_running_statistics_match_numpy_for_any_split():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, [0.5, 2.0, 7.0], size=(101, 3))
    for cuts in ([101], [1, 50, 50], [10] * 10 + [1]):
        rms = RunningMeanStd(3)
        for part in np.split(x, np.cumsum(cuts)[:-1]):
            rms.update(part)
        np.testing.assert_allclose(rms.mean, x.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(rms.std, x.std(axis=0), rtol=1e-12)
        assert rms.count == 101
    const = RunningMeanStd(2)
    const.update(np.ones((5, 2)))
    assert np.all(const.std == MIN_STD)  # constant inputs stay finite
    assert np.all(RunningMeanStd(2).std == 1) and np.all(RunningMeanStd(2).mean == 0)
    back = RunningMeanStd(3)
    back.load_state_dict(rms.state_dict())
    np.testing.assert_array_equal(back.std, rms.std)
    with pytest.raises(ValueError, match="columns"):
        rms.update(np.ones((2, 4)))


def _spec():
    return PolicySpec(3, 2, n_outputs=2, head="tanh", direct=True)


def test_batch_and_scalar_policies_apply_the_normalization():
    spec = _spec()
    g = spec.init(1, 4, 2.0)
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 3.0])
    obs = np.random.default_rng(2).normal(size=(6, 4, 1, 3))  # T steps of (P, B, I)
    plain, normed = PolicyBatch(spec, g), PolicyBatch(spec, g, (mean, std))
    hp, hn = plain.initial_state(1), normed.initial_state(1)
    sub = normed.take(np.array([2]))
    hs = sub.initial_state(1)
    sp = normed.scalar(2)
    for x in obs:
        hp, yp = plain.act(hp, (x - mean) / std)  # the reference: normalized by hand
        hn, yn = normed.act(hn, x)
        hs, ys = sub.act(hs, x[[2]])
        np.testing.assert_allclose(yn, yp, rtol=1e-12)
        np.testing.assert_allclose(ys[0], yp[2], rtol=1e-12)
        np.testing.assert_allclose(sp.act(x[2, 0].tolist()), yp[2, 0], rtol=1e-10)


def test_policy_saves_and_applies_its_statistics(tmp_path):
    spec = _spec()
    g = spec.init(3, 1, 2.0)[0]
    norm = (np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 3.0]))
    pol = Policy(spec, g, {"task": "x"}, obs_norm=norm)
    pol.save(tmp_path / "p.npz")
    back = Policy.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.obs_norm[0], norm[0])
    np.testing.assert_array_equal(back.obs_norm[1], norm[1])
    ref = Policy(spec, g)
    x = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(back.act(x), ref.act((x - norm[0]) / norm[1]), rtol=1e-12)
    Policy(spec, g).save(tmp_path / "q.npz")
    assert Policy.load(tmp_path / "q.npz").obs_norm is None  # files without statistics still load
    with pytest.raises(ValueError, match="std"):
        Policy(spec, g, obs_norm=(norm[0], np.zeros(3)))
    with pytest.raises(ValueError, match="shape"):
        Policy(spec, g, obs_norm=(np.zeros(2), np.ones(2)))
    with pytest.raises(TypeError, match="obs_norm"):
        Policy(spec, g, obs_norm=np.ones(3))


def test_search_freezes_the_statistics_its_champion_was_scored_with():
    task = PoleTask(1, velocities=True, max_steps=300)
    res = evolve_policy(task, n_cells=2, search="snes", seed=1, max_evaluations=3000, generalization=False,
                        normalize_obs=True)
    assert res.solved and res.policy.obs_norm is not None
    assert res.normalizer.count > 0 and res.policy.info["normalize_obs"] is True
    mean, std = res.policy.obs_norm
    assert not np.allclose(std, 1.0)  # statistics were gathered
    # the saved policy balances with its own statistics
    assert run_episodes(task.env, res.policy.batch(), max_steps=300).steps[0, 0] == 300
    # and the statistics are part of the policy: with others it is a different controller
    other = PolicyBatch(res.policy.spec, res.policy.genome[None], (mean + 1.0, std))
    assert not np.array_equal(run_episodes(task.env, other, max_steps=300, record=True).actions[:5],
                              run_episodes(task.env, res.policy.batch(), max_steps=300, record=True).actions[:5])
