"""Recurrent policy gradients: the gradient against finite differences, determinism, learning, files, bad input."""

import json

import numpy as np
import pytest

from evolino import EvolinoError
from evolino.lstm import forward
from evolino.rl import Policy, PoleTask, TMazeTask
from evolino.rl.cli import main
from evolino.rl.rpg import Episodes, RecurrentPolicyGradient, advantages, policy_gradient, train_rpg


def reference_surrogate(spec, genome, eps, weights, head, log_std, entropy):
    """``1/B sum (w log pi + entropy m H)`` written out with the supervised LSTM kernel (not the BPTT one)."""
    lstm, w_out, d, b = spec.split(genome[None])
    X = eps.obs.transpose(1, 0, 2)  # (B, T, I)
    y = forward(spec.lstm, lstm[0], X, backend="numpy") @ w_out[0] + b[0]
    if d is not None:
        y = y + X @ d[0]
    y = y.transpose(1, 0, 2)  # (T, B, O)
    if head == "softmax":
        logp_all = y - np.log(np.exp(y).sum(-1, keepdims=True))
        logp = np.take_along_axis(logp_all, eps.actions[..., None], -1)[..., 0]
        ent = -(np.exp(logp_all) * logp_all).sum(-1)
    else:
        mu = np.tanh(y) if spec.head == "tanh" else 1.0 / (1.0 + np.exp(-y))
        var = np.exp(2.0 * log_std)
        logp = (-0.5 * (eps.actions - mu) ** 2 / var - 0.5 * np.log(2.0 * np.pi * var)).sum(-1)
        ent = np.full(logp.shape, np.sum(0.5 * np.log(2.0 * np.pi * np.e * var)))
    B = weights.shape[1]
    return (np.sum(weights * logp) + entropy * np.sum(eps.mask * ent)) / B


CASES = {
    "softmax, T-maze": (TMazeTask(2), dict(direct=True)),
    "softmax, lean cells": (TMazeTask(1), dict(peepholes=False, forget_gate=False)),
    "gaussian tanh, pole": (PoleTask(1, velocities=False, max_steps=25), dict(direct=True)),
    "gaussian logistic, pole": (PoleTask(1, velocities=True, max_steps=25), dict(head="logistic", peepholes=False)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("entropy", [0.0, 0.3])
def test_gradient_matches_central_differences(case, entropy):
    """Actions and observations of sampled episodes held fixed: the surrogate is a function of the weights."""
    task, options = CASES[case]
    spec = task.default_spec(2, **options)
    learner = RecurrentPolicyGradient(task, spec=spec, episodes=5, seed=1, init_scale=2.0, forget_bias=None)
    eps = learner.rollout()
    assert eps.mask[0].all() and eps.obs.shape[0] > 2  # episodes of several steps
    w = advantages(eps, gamma=0.9)
    g, ls = learner.genome, learner.log_std
    S, dg, dls = policy_gradient(spec, g, eps, w, head=learner.head, log_std=ls, entropy=entropy)
    assert S == pytest.approx(reference_surrogate(spec, g, eps, w, learner.head, ls, entropy), rel=1e-10)
    h = 1e-6
    fd = np.array([(reference_surrogate(spec, g + h * e, eps, w, learner.head, ls, entropy)
                    - reference_surrogate(spec, g - h * e, eps, w, learner.head, ls, entropy)) / (2 * h)
                   for e in np.eye(len(g))])
    np.testing.assert_allclose(dg, fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
    assert np.abs(dg).max() > 1e-3  # not a vacuous match
    if learner.head == "gaussian":
        fd_ls = np.array([(reference_surrogate(spec, g, eps, w, learner.head, ls + h * e, entropy)
                           - reference_surrogate(spec, g, eps, w, learner.head, ls - h * e, entropy)) / (2 * h)
                          for e in np.eye(len(ls))])
        np.testing.assert_allclose(dls, fd_ls, rtol=1e-6)
    else:
        assert dls is None


def test_advantages_leave_the_episode_out_of_its_baseline():
    rewards = np.array([[0.0, 1.0, 2.0], [4.0, 0.0, 0.0]])  # (T=2, B=3); episode 2 ended after step 0
    mask = np.array([[True, True, True], [True, True, False]])
    eps = Episodes(np.zeros((2, 3, 1)), np.zeros((2, 3), int), rewards, mask, None)
    G = np.array([[4.0, 1.0, 2.0], [4.0, 0.0, 0.0]])
    np.testing.assert_array_equal(advantages(eps, baseline="none"), G * mask)
    want = np.array([[4.0 - 1.5, 1.0 - 3.0, 2.0 - 2.5], [4.0 - 0.0, 0.0 - 4.0, 0.0]])
    np.testing.assert_allclose(advantages(eps), want)
    np.testing.assert_allclose(advantages(eps, gamma=0.5, baseline="none")[0], [2.0, 1.0, 2.0])


def test_one_seed_reproduces_a_run_exactly():
    task = TMazeTask(4)
    a, b = (train_rpg(task, seed=7, max_evaluations=640) for _ in range(2))
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    assert {k: v for k, v in a.history.items() if k != "time"} == {k: v for k, v in b.history.items() if k != "time"}
    c = train_rpg(task, seed=8, max_evaluations=640)
    assert not np.array_equal(a.strategy.theta, c.strategy.theta)


def test_resume_from_state_dict_continues_bit_for_bit():
    task = PoleTask(1, velocities=True, max_steps=200)
    full = train_rpg(task, seed=3, episodes=8, max_generations=6, generalization=False)
    part = train_rpg(task, seed=3, episodes=8, max_generations=3, generalization=False)
    rest = train_rpg(task, seed=3, episodes=8, max_generations=6, generalization=False,
                     resume={"strategy": part.strategy.state_dict(), "history": part.history})
    np.testing.assert_array_equal(full.strategy.theta, rest.strategy.theta)
    assert full.history["gen_best"] == rest.history["gen_best"] and rest.evaluations == full.evaluations


def test_learns_a_short_tmaze(tmp_path):
    """Ten seeds, corridor of 4, 8,000 episodes each: at least 9 solve (the deterministic policy succeeds for both
    signals); measured 10/10 with 1,152-6,048 episodes."""
    task = TMazeTask(4)
    results = [train_rpg(task, seed=seed, max_evaluations=8000) for seed in range(10)]
    solved = [r for r in results if r.solved]
    assert len(solved) >= 9, [r.evaluations for r in results]
    for r in solved:
        assert task.success(r.policy.spec, r.policy.genome).all() and r.evaluations <= 8000
    path = tmp_path / "rpg.npz"
    solved[0].policy.save(path)
    loaded = Policy.load(path)  # the same file as an evolved policy's
    np.testing.assert_array_equal(loaded.genome, solved[0].policy.genome)
    assert loaded.spec == solved[0].policy.spec and loaded.info["search"] == "rpg"
    assert task.success(loaded.spec, loaded.genome).all()


def test_pole_command_trains_by_rpg_and_resumes_bit_for_bit(tmp_path):
    common = ["pole", "--poles", "1", "--search", "rpg", "--max-steps", "300", "--cells", "3", "--direct",
              "--popsize", "8", "--seed", "2", "--no-progress", "--no-plot"]
    code = main(common + ["--generations", "6", "--out", str(tmp_path / "full")])
    main(common + ["--generations", "3", "--out", str(tmp_path / "part")])
    main(common + ["--generations", "6", "--out", str(tmp_path / "part"), "--resume"])
    full, part = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("full", "part"))
    assert full["search"] == "rpg" and full["popsize"] == 8 and code == (0 if full["solved"] else 1)
    assert full["history"]["evaluations"] == part["history"]["evaluations"] == [8, 16, 24, 32, 40, 48]
    assert full["history"]["gen_best_return"] == part["history"]["gen_best_return"]
    assert full["best_return"] == part["best_return"] == max(full["history"]["best_return"]) >= 1
    pol = Policy.load(tmp_path / "full" / "champion.npz")
    assert pol.info["search"] == "rpg" and pol.info["head"] == "gaussian" and pol.spec.n_cells == 3
    np.testing.assert_array_equal(pol.genome, Policy.load(tmp_path / "part" / "champion.npz").genome)
    with pytest.raises(ValueError, match="--evaluator"):
        main(common + ["--generations", "1", "--evaluator", "pool"])


def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_bad_input_raises_one_clear_line():
    task = TMazeTask(3)
    for kwargs, words in [({"episodes": 0}, ("episodes", ">= 1")), ({"lr": 0.0}, ("lr", "> 0")),
                          ({"lr": -1e-3}, ("lr",)), ({"head": "beta"}, ("head", "softmax")),
                          ({"head": "gaussian"}, ("head", "softmax")), ({"baseline": "learned"}, ("baseline",)),
                          ({"gamma": 0.0}, ("gamma",)), ({"optimizer": "rmsprop"}, ("optimizer", "adam")),
                          ({"max_evaluations": 0}, ("max_evaluations",)), ({"entropy": -1.0}, ("entropy",))]:
        with pytest.raises(EvolinoError) as exc:
            train_rpg(task, **kwargs)
        _one_line(exc, *words)
    with pytest.raises(EvolinoError) as exc:
        RecurrentPolicyGradient(PoleTask(1), head="softmax")
    _one_line(exc, "head", "gaussian")
    with pytest.raises(EvolinoError) as exc:
        RecurrentPolicyGradient(object())
    _one_line(exc, "TMazeTask", "PoleTask")
    with pytest.raises(EvolinoError) as exc:
        RecurrentPolicyGradient(task, spec=PoleTask(1).default_spec(2))
    _one_line(exc, "T-maze", "default_spec")
