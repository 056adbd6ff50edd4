"""Gymnasium adapter: CartPole with and without velocities, seeding, masking, bad input."""

import pickle

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from evolino.rl import Policy, PolicySpec, evolve_policy  # noqa: E402
from evolino.rl.gym import GymFitness, GymTask, rollout  # noqa: E402


class _NaNEnv(gym.Env):
    """Observations turn NaN after 3 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(2, np.nan if self.t >= 3 else 0.0, np.float32)
        return obs, 1.0, False, self.t >= 10, {}


class _BoxEnv(gym.Env):
    """Reward = minus the distance of a 2-D action in [[-2, 2], [0, 1]] from (1, 0.25); 5 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32))
        self.t += 1
        r = -float(np.abs(np.asarray(action) - [1.0, 0.25]).sum())
        return np.zeros(1, np.float32), r, False, self.t >= 5, {}


gym.register("EvolinoTestNaN-v0", entry_point=_NaNEnv)
gym.register("EvolinoTestBox-v0", entry_point=_BoxEnv)


def manual_returns(spec, genome, env_id, mask, seeds):
    """Reference: each episode alone with a plain gymnasium loop and Policy.act."""
    pol = Policy(spec, genome, info={"mask": list(mask)})
    return [rollout(env_id, pol, seed=int(s))["return"] for s in seeds]


def test_returns_match_plain_episodes_and_chunking():
    task = GymTask("CartPole-v1", mask=(1, 3), episodes=2, seed=5)
    spec = task.default_spec(2)
    assert spec.n_inputs == 2 and spec.head == "argmax" and spec.n_outputs == 2
    fn = task.fitness_fn(spec)
    g = spec.init(0, 4, scale=3.0)
    R = fn.returns(g)
    seeds = fn.episode_seeds(g)
    for i in range(4):
        np.testing.assert_allclose(R[i], manual_returns(spec, g[i], "CartPole-v1", (1, 3), seeds[i]))
    np.testing.assert_allclose(fn(g), -R.mean(1))
    # a parallel evaluator hands over chunks, and a pickled copy: same values
    fn2 = pickle.loads(pickle.dumps(fn))
    np.testing.assert_allclose(np.concatenate([fn2(g[:1]), fn2(g[1:])]), fn(g))


def test_seeding_modes():
    spec = GymTask("CartPole-v1").default_spec(1)
    g = spec.init(1, 3)
    fixed = GymFitness(spec, "CartPole-v1", episodes=2, seed=3, seeding="fixed").episode_seeds(g)
    assert np.all(fixed == fixed[0])
    by_genome = GymFitness(spec, "CartPole-v1", episodes=2, seed=3, seeding="genome")
    s = by_genome.episode_seeds(g)
    assert len({tuple(r) for r in s}) == 3
    np.testing.assert_array_equal(by_genome.episode_seeds(g[[2, 0]]), s[[2, 0]])
    # per-candidate seeds handed in by an evaluator: a candidate's episodes follow its own seed
    given = by_genome.episode_seeds(g, seeds=np.array([7, 8, 7]))
    np.testing.assert_array_equal(given[0], given[2])
    assert not np.array_equal(given[0], given[1])
    fn = GymFitness(spec, "CartPole-v1", episodes=2, seed=3)
    np.testing.assert_allclose(fn(g[:2], np.array([7, 8])), [fn(g[:1], np.array([7]))[0], fn(g[1:2], np.array([8]))[0]])


def test_box_actions_scaled_to_bounds():
    task = GymTask("EvolinoTestBox-v0", episodes=1, target_return=-0.05)
    spec = task.default_spec(1)
    assert spec.head == "tanh" and spec.n_outputs == 2
    res = evolve_policy(task, spec=spec, search="cmaes", seed=0, max_evaluations=1500)
    assert res.solved, res.history["best"][-1]


def test_learns_cartpole():
    task = GymTask("CartPole-v1", episodes=2, seed=0)
    res = evolve_policy(task, n_cells=2, search="cmaes", seed=0, max_evaluations=800)
    assert res.solved, f"best mean return {-res.history['best'][-1]}"
    assert rollout("CartPole-v1", res.policy, seed=int(task.fitness_fn(res.policy.spec).episode_seeds(
        res.policy.genome[None])[0, 0]))["return"] >= 475


def test_bad_input():
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        GymTask("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="mask"):
        GymTask("CartPole-v1", mask=(4,))
    with pytest.raises(ValueError, match="hides all"):
        GymTask("CartPole-v1", mask=(0, 1, 2, 3))
    with pytest.raises(ValueError, match="seeding"):
        GymTask("CartPole-v1", seeding="random")
    spec = GymTask("CartPole-v1").default_spec(2)
    with pytest.raises(ValueError, match="action space"):
        GymFitness(PolicySpec(1, 2, n_outputs=2, head="argmax"), "EvolinoTestBox-v0")
    with pytest.raises(ValueError, match="inputs"):
        GymFitness(spec, "CartPole-v1", mask=(1,))
    nan_task = GymTask("EvolinoTestNaN-v0", episodes=1)
    fn = nan_task.fitness_fn(nan_task.default_spec(1))
    with pytest.raises(ValueError, match="non-finite"):
        fn(nan_task.default_spec(1).init(0, 2))


def test_native_vector_env_mode():
    task = GymTask("CartPole-v1", episodes=2, vectorization="vector")
    spec = task.default_spec(1)
    fn = task.fitness_fn(spec)
    R = fn.returns(spec.init(0, 3))
    assert R.shape == (3, 2) and np.all((R >= 1) & (R <= 500))
    fn.close()


# --- a GIF of the champion ---------------------------------------------------------------------
def test_gif_of_an_episode_shows_the_rollout_and_round_trips(tmp_path):
    pytest.importorskip("pygame")
    Image = pytest.importorskip("PIL.Image")
    from evolino.rl.render import episode_frames, save_gif

    spec = PolicySpec(2, 2, n_outputs=2, head="argmax")
    pol = Policy(spec, np.random.default_rng(3).normal(size=spec.n_params), info={"mask": [1, 3]})
    ref = rollout("CartPole-v1", pol, seed=5)
    frames, ret, fps = episode_frames("CartPole-v1", pol, seed=5)
    assert ret == ref["return"] and len(frames) == ref["steps"] + 1  # rendering does not change the episode
    assert frames.dtype == np.uint8 and frames.shape[-1] == 3 and fps == 50
    assert np.any(frames[0] != frames[-1])  # the cart or the pole moved
    n = save_gif(frames, tmp_path / "a.gif", fps=fps, max_frames=4)
    k = -(-len(frames) // 4)
    assert n == len(frames[::k]) <= 4
    with Image.open(tmp_path / "a.gif") as im:
        assert im.size == (frames.shape[2], frames.shape[1]) and im.info["loop"] == 0
        assert im.info["duration"] == round(1000 * k / fps)
        im.seek(0)
        first = np.asarray(im.convert("RGB"), dtype=float)
    assert np.abs(first - frames[0]).mean() < 8  # a palette image of the first frame


def test_gif_flag_needs_out_and_a_renderer(tmp_path, monkeypatch):
    from evolino import EvolinoError
    from evolino.rl import render
    from evolino.rl.cli import main

    with pytest.raises(ValueError, match="--gif needs --out"):
        main(["gym", "CartPole-v1", "--gif", "--generations", "1", "--no-progress"])

    def no_pygame(*a, **k):
        raise ImportError("pygame is not installed")

    class Env:
        def reset(self, seed=None):
            return None

        render = staticmethod(no_pygame)

        def close(self):
            pass

    monkeypatch.setattr("evolino.rl.gym.make_env", lambda *a, **k: Env())
    with pytest.raises(EvolinoError, match=r"evolino\[render\]"):
        render.check_render("CartPole-v1")
