"""Held-out evaluation of gymnasium policies: episodes against plain rollouts, seeds, "solved", bad input."""

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from evolino.rl import Policy, PoleTask, evaluate_policy  # noqa: E402
from evolino.rl.gym import GymTask, heldout_seeds, rollout, validation_seeds  # noqa: E402


def _policy(task, norm=None):
    spec = task.default_spec(2)
    return Policy(spec, spec.init(4, 1, 2.0)[0], info=task.describe(), obs_norm=norm)


@pytest.mark.parametrize("norm", [None, (np.array([0.1, -0.2]), np.array([0.5, 2.0]))])
def test_returns_match_plain_rollouts_on_the_given_seeds(norm):
    task = GymTask("CartPole-v1", mask=(1, 3), episodes=2, seed=3)
    pol = _policy(task, norm)
    out = evaluate_policy(pol, task, seeds=[5, 17, 99])
    ref = [rollout("CartPole-v1", pol, seed=s)["return"] for s in (5, 17, 99)]
    np.testing.assert_allclose(out["returns"], ref)
    assert out["mean"] == pytest.approx(np.mean(ref)) and out["seeds"] == [5, 17, 99]
    assert out["threshold"] == 475.0 and out["solved"] == (np.mean(ref) >= 475)


def test_default_seeds_are_held_out_and_solved_follows_the_threshold():
    task = GymTask("CartPole-v1", episodes=3, seed=0)
    train = task.fitness_fn(task.default_spec(1)).episode_seeds(np.zeros((1, 1)))[0]
    held = heldout_seeds(task, 100)
    assert len(held) == 100 and len(set(held.tolist())) == 100 and not set(held.tolist()) & set(train.tolist())
    pol = _policy(task)
    out = evaluate_policy(pol, task, episodes=20)
    assert len(out["returns"]) == 20 and out["seeds"] == held[:20].tolist()
    low = GymTask("CartPole-v1", episodes=3, seed=0, target_return=1.0)
    assert evaluate_policy(pol, low, episodes=5)["solved"] is True  # every episode lasts >= 1 step


def test_bad_input():
    task = GymTask("CartPole-v1")
    pol = _policy(task)
    with pytest.raises(ValueError, match="episodes"):
        evaluate_policy(pol, task, episodes=0)
    with pytest.raises(ValueError, match="seeds"):
        evaluate_policy(pol, task, seeds=[])
    with pytest.raises(TypeError, match="GymTask"):
        evaluate_policy(pol, PoleTask(1))


def short_cartpole(**kwargs):
    """A factory: CartPole cut to 20 steps and a reward of 2 per step (a wrapper and reward shaping)."""
    import gymnasium as gym

    env = gym.wrappers.TimeLimit(gym.make("CartPole-v1", **kwargs).unwrapped, max_episode_steps=20)
    return gym.wrappers.TransformReward(env, lambda r: 2.0 * r)


def test_task_accepts_an_env_factory():
    import pickle

    task = GymTask(short_cartpole, episodes=2, target_return=30.0)
    assert task.describe()["env_id"] == "short_cartpole"
    spec = task.default_spec(1)
    g = spec.init(0, 3, 2.0)
    fn = task.fitness_fn(spec)
    R = fn.returns(g)
    assert np.all(R <= 40) and np.all(R >= 2) and np.all(R % 2 == 0)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fn)).returns(g), R)
    pol = Policy(spec, g[0], info=task.describe())
    seed = int(fn.episode_seeds(g[:1])[0, 0])
    assert rollout(short_cartpole, pol, seed=seed)["return"] == R[0, 0]
    out = evaluate_policy(pol, task, episodes=4)
    assert out["threshold"] == 30.0 and all(r <= 40 for r in out["returns"])


def test_validation_seeds_are_their_own_and_the_score_is_their_mean_less_one_standard_error():
    task = GymTask("CartPole-v1", mask=(1, 3), episodes=3, seed=2, validation=6)
    val = validation_seeds(task)
    train = task.fitness_fn(task.default_spec(1)).episode_seeds(np.zeros((1, 1)))[0]
    assert len(val) == 6 and np.array_equal(val, validation_seeds(task))
    assert not set(val.tolist()) & (set(train.tolist()) | set(heldout_seeds(task, 1000).tolist()))
    pol = _policy(task)
    ref = np.array([rollout("CartPole-v1", pol, seed=int(s))["return"] for s in val])
    np.testing.assert_allclose(task.validation_returns(pol.spec, pol.genome), ref)
    bound = ref.mean() - np.sqrt(np.sum((ref - ref.mean()) ** 2) / 5) / np.sqrt(6)  # one standard error
    assert task.validation_score(pol.spec, pol.genome) == pytest.approx(bound)
    plain = GymTask("CartPole-v1", mask=(1, 3), episodes=3, seed=2, validation=6, validation_se=0)
    assert plain.validation_score(pol.spec, pol.genome) == pytest.approx(ref.mean())
    assert task.describe()["validation"] == 6 and task.describe()["validation_se"] == 1.0
    with pytest.raises(ValueError, match="validation"):
        GymTask("CartPole-v1", validation=-1)
    with pytest.raises(ValueError, match="validation_se"):
        GymTask("CartPole-v1", validation_se=-0.5)


def test_check_with_validation_takes_the_best_three_and_the_first_that_passes(monkeypatch):
    task = GymTask("CartPole-v1", episodes=3, validation=5, target_return=100.0)
    spec = task.default_spec(1)
    genomes = np.arange(6.0)[:, None] * np.ones((6, spec.n_params))
    # training means 150, 90, 120, 300, 200, 110: winners 0, 2, 3, 4, 5; best three by training: 3, 4, 0
    status = {"fitness": -np.array([150.0, 90.0, 120.0, 300.0, 200.0, 110.0]), "evaluations": 16}
    tried = []
    valid = {3: 50.0, 4: 100.0, 0: 400.0, 2: 500.0, 5: 500.0}

    def fake(spec_, genome, obs_norm=None):
        tried.append(int(genome[0]))
        return valid[int(genome[0])]

    monkeypatch.setattr(task, "validation_score", fake)
    solved, champion, evals = task.check(spec, status, genomes)
    assert tried == [3, 4, 0] and solved and champion[0] == 4.0 and evals == 16 - 6 + 4 + 1
    valid.update({4: 99.0, 0: 99.0})
    tried.clear()
    assert task.check(spec, status, genomes) == (False, None, None) and tried == [3, 4, 0]
    monkeypatch.setattr(task, "validation", 0)  # no validation: the first winner, as before
    assert task.check(spec, status, genomes)[0] and task.check(spec, status, genomes)[1][0] == 0.0


def test_margin_raises_what_the_search_demands_but_not_the_held_out_threshold(monkeypatch):
    task = GymTask("CartPole-v1", episodes=3, validation=5, target_return=100.0, margin=25.0)
    spec = task.default_spec(1)
    genomes = np.arange(3.0)[:, None] * np.ones((3, spec.n_params))
    status = {"fitness": -np.array([110.0, 130.0, 124.0]), "evaluations": 3}  # only candidate 1 reaches 125
    monkeypatch.setattr(task, "validation_score", lambda s, g, o=None: {1: 124.0, 2: 500.0}[int(g[0])])
    assert task.check(spec, status, genomes) == (False, None, None)  # 124 on validation: below 125
    monkeypatch.setattr(task, "validation_score", lambda s, g, o=None: 125.0)
    assert task.check(spec, status, genomes)[1][0] == 1.0
    pol = _policy(task)
    assert evaluate_policy(pol, task, episodes=3)["threshold"] == 100.0 and task.describe()["margin"] == 25.0
    with pytest.raises(ValueError, match="margin"):
        GymTask("CartPole-v1", margin=-1)
