"""Recurrent policy gradients, the estimator: sampled episodes -> the likelihood-ratio gradient through time.

Wierstra, Foerster, Peters & Schmidhuber, "Solving deep memory POMDPs with recurrent policy
gradients" (ICANN 2007): the LSTM's outputs ``y_t`` parameterize a stochastic policy, episodes are
sampled with it, and the gradient of the expected return is estimated by backpropagating the
return-weighted eligibilities ``d log pi(a_t | o_1..o_t) / d y_t`` through time. The backward pass
is the one of :mod:`evolino.bptt.grad`, which takes an output gradient per step.

Estimator, over ``B`` episodes (``m_bt`` = 1 while episode ``b`` runs)::

    g = 1/B  sum_b sum_t  m_bt (G_bt - b_bt) d/dtheta log pi(a_bt | o_b1..o_bt)
    G_bt = sum_{k >= t} gamma^(k-t) r_bk            (the return from step t on)

``g`` is the exact gradient of the surrogate ``S(theta) = 1/B sum m (G - b) log pi(a | ...)`` with the
sampled observations and actions held fixed (:func:`policy_gradient` returns both). Only rewards
after an action enter its weight (the earlier ones it cannot change), which lowers the variance and
keeps the estimate unbiased. An optional entropy bonus ``entropy / B sum_bt m_bt H[pi_bt]`` keeps
the policy exploring.

Heads (on the policy's own output layer, :class:`~evolino.rl.policy.PolicySpec`):

- ``"softmax"`` (``spec.head="argmax"``): ``pi(a) = softmax(y)_a``; ``d log pi / d y = onehot(a) - p``.
- ``"gaussian"`` (``spec.head`` ``"tanh"`` or ``"logistic"``): ``a ~ N(mu, sigma^2)`` per output with
  ``mu = head(y)`` and ``sigma = exp(log_std)``; ``d log pi / d mu = (a - mu) / sigma^2``,
  ``d log pi / d log_std = ((a - mu) / sigma)^2 - 1``.

Baselines (:func:`advantages`): ``"mean"`` subtracts, at each step, the mean return-to-go of the
*other* episodes still running then (leaving the episode itself out keeps the estimate unbiased);
``"none"`` uses the returns as they are.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import check_choice, check_positive_int
from ..bptt.grad import _backward, _run, _weights
from .policy import PolicySpec

__all__ = ["Episodes", "rollout", "advantages", "policy_gradient", "BASELINES"]

BASELINES = ("mean", "none")


class Episodes(NamedTuple):
    """``B`` sampled episodes, time-major, padded to the longest (``mask`` marks the real steps).

    obs : (T, B, I) observations the policy saw
    actions : (T, B) int (softmax) or (T, B, O) float (gaussian)
    rewards : (T, B), 0 after an episode ended
    mask : (T, B) bool, step ``t`` of episode ``b`` was taken
    success : (B,) bool, or None where the task has no notion of it
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    success: np.ndarray | None

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted return of each episode, ``(B,)``."""
        return self.rewards.sum(axis=0)


# --- the network on parameter vectors ---------------------------------------------------
def _with_forget_bias(spec: PolicySpec, genome, bias: float) -> np.ndarray:
    """``genome`` with every forget-gate bias set to ``bias`` (the cells' initial memory span)."""
    lstm, w_out, d, b = spec.split(genome[None])
    w = spec.lstm.unpack(lstm[0])
    w["b_f"] = np.full(spec.n_cells, bias)
    tail = b if d is None else np.concatenate([d.reshape(1, -1), b], axis=1)
    return spec.join(spec.lstm.pack(w)[None], w_out, tail)[0]


def _parts(spec: PolicySpec, genome):
    """Kernel weights, ``coef (H+1, O)`` (rows: W_out, then b_out) and ``D (I, O)`` or None of one genome."""
    lstm, w_out, d, b = spec.split(np.reshape(genome, (1, -1)))
    return _weights(spec.lstm, lstm[0]), np.vstack([w_out[0], b]), None if d is None else d[0]


def _head_terms(head, spec, y, actions, log_std):
    """``(log pi, d log pi / dy, d log pi / d log_std, Hpi, d Hpi / dy, d Hpi / d log_std)``.

    ``log pi`` of ``actions`` and the entropy ``Hpi`` are ``(T, B)``, the gradients ``(T, B, O)``;
    the softmax head has no ``log_std`` (None in those places).
    """
    if head == "softmax":
        z = y - y.max(axis=-1, keepdims=True)
        logp_all = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # log-softmax, no overflow
        p = np.exp(logp_all)
        a = actions[..., None]
        dlogp = -p
        np.put_along_axis(dlogp, a, np.take_along_axis(dlogp, a, -1) + 1.0, -1)
        ent = -(p * logp_all).sum(axis=-1)
        dent = -p * (logp_all + ent[..., None])
        return np.take_along_axis(logp_all, a, -1)[..., 0], dlogp, None, ent, dent, None
    mu = np.tanh(y) if spec.head == "tanh" else 0.5 * (1.0 + np.tanh(0.5 * y))
    dmu = 1.0 - mu * mu if spec.head == "tanh" else mu * (1.0 - mu)
    sigma = np.exp(log_std)
    u = (actions - mu) / sigma  # (T, B, O)
    logp = (-0.5 * u * u - log_std - 0.5 * np.log(2.0 * np.pi)).sum(axis=-1)
    ent = np.full(y.shape[:-1], float(np.sum(log_std)) + 0.5 * y.shape[-1] * np.log(2.0 * np.pi * np.e))
    return logp, (u / sigma) * dmu, u * u - 1.0, ent, np.zeros_like(y), np.ones_like(y)


def _step_outputs(spec, w, coef, D, x, state):
    """One step of ``B`` episodes: outputs ``y`` ``(B, O)`` before the head and the new ``(h, c)``."""
    tape = _run(spec.lstm, w, coef, x[None], state)
    y = tape.y[0]
    if D is not None:
        y = y + x @ D
    return y, (tape.h[-1], tape.c[-1])


def rollout(spec: PolicySpec, genome, env, n_episodes: int, rng, *, head: str = "softmax", log_std=None
            ) -> Episodes:
    """Sample ``n_episodes`` episodes of the stochastic policy in lockstep.

    Parameters
    ----------
    spec : PolicySpec
    genome : array of shape (n_params,)
    env : episode environment
        ``reset(B) -> obs (B, I)``, ``step(actions, alive) -> (obs, reward (B,), done (B,))``,
        ``max_steps``, ``success`` (the tasks' ones are built by :class:`evolino.rl.rpg.RecurrentPolicyGradient`).
    n_episodes : int
    rng : numpy.random.Generator
        The only source of randomness: one draw of ``B`` (softmax) or ``(B, O)`` (gaussian) per step.
    head : {"softmax", "gaussian"}
    log_std : array of shape (O,), gaussian head only

    Returns
    -------
    Episodes
    """
    B = check_positive_int(n_episodes, "n_episodes")
    w, coef, D = _parts(spec, genome)
    H, O = spec.n_cells, spec.n_outputs
    state = (np.zeros((B, H)), np.zeros((B, H)))
    x = env.reset(B)
    alive = np.ones(B, bool)
    obs, acts, rews, mask = [], [], [], []
    for _ in range(env.max_steps):
        y, state = _step_outputs(spec, w, coef, D, x, state)
        if head == "softmax":
            p = np.exp(y - y.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            a = np.minimum((cdf < rng.random(B)[:, None] * cdf[:, -1:]).sum(axis=1), O - 1)
        else:
            mu = np.tanh(y) if spec.head == "tanh" else 0.5 * (1.0 + np.tanh(0.5 * y))
            a = mu + np.exp(log_std) * rng.standard_normal((B, O))
        obs.append(x)
        acts.append(a)
        mask.append(alive.copy())
        x, r, done = env.step(a, alive)
        rews.append(np.where(alive, r, 0.0))
        alive &= ~np.asarray(done, bool)
        if not alive.any():
            break
    success = None if env.success is None else env.success.copy()
    return Episodes(np.stack(obs), np.stack(acts), np.stack(rews), np.stack(mask), success)


def advantages(episodes: Episodes, gamma: float = 1.0, baseline: str = "mean") -> np.ndarray:
    """Weights ``m_bt (G_bt - b_bt)`` of the eligibilities (see the module docstring).

    Parameters
    ----------
    episodes : Episodes
        ``rewards`` and ``mask`` of shape ``(T, B)`` are used.
    gamma : float, default=1.0
        Discount of the returns-to-go ``G``.
    baseline : {"mean", "none"}, default="mean"
        ``"mean"``: ``b_bt`` = mean of ``G_ct`` over the other episodes ``c`` still running at ``t``
        (0 when there are none).

    Returns
    -------
    ndarray of shape (T, B)
        Zero at padded steps.
    """
    check_choice(baseline, "baseline", BASELINES)
    r, m = episodes.rewards, episodes.mask.astype(np.float64)
    G = np.empty_like(r)
    acc = np.zeros(r.shape[1])
    for t in range(len(r) - 1, -1, -1):
        acc = r[t] + gamma * acc
        G[t] = acc
    if baseline == "mean":
        total, count = (G * m).sum(axis=1, keepdims=True), m.sum(axis=1, keepdims=True)
        others = count - m
        G = G - np.where(others > 0, (total - G * m) / np.maximum(others, 1.0), 0.0)
    return G * m


def policy_gradient(spec: PolicySpec, genome, episodes: Episodes, weights, *, head: str = "softmax",
                    log_std=None, entropy: float = 0.0):
    """The surrogate ``S = 1/B sum_bt (weights_bt log pi(a_bt | o_b1..o_bt) + entropy m_bt Hpi_bt)``
    and its exact gradient (``Hpi_bt`` the policy's entropy at step ``t``, ``m`` = ``episodes.mask``).

    The forward pass is re-run on ``episodes.obs`` (zero initial state); the output gradient of
    every step goes through the backward pass of :mod:`evolino.bptt.grad`.

    Parameters
    ----------
    spec : PolicySpec
    genome : array of shape (n_params,)
    episodes : Episodes
        ``T`` steps of ``B`` episodes; ``actions`` fixed.
    weights : array of shape (T, B)
        E.g. :func:`advantages`; zero at padded steps.
    head : {"softmax", "gaussian"}
    log_std : array of shape (O,), gaussian head only
    entropy : float, default=0.0
        Weight of the entropy bonus.

    Returns
    -------
    surrogate : float
    d_genome : ndarray of shape (n_params,)
        In the genome layout of ``spec``.
    d_log_std : ndarray of shape (O,) or None
    """
    w, coef, D = _parts(spec, genome)
    X = np.asarray(episodes.obs, np.float64)  # (T, B, I)
    T, B, _ = X.shape
    zeros = np.zeros((B, spec.n_cells))
    tape = _run(spec.lstm, w, coef, X, (zeros, zeros))
    y = tape.y if D is None else tape.y + X @ D  # (T, B, O)
    logp, dlogp, dstd, ent, dent, dent_std = _head_terms(head, spec, y, episodes.actions, log_std)
    W = np.asarray(weights, np.float64) / B
    E = (float(entropy) / B) * episodes.mask  # (T, B)
    dy = W[..., None] * dlogp + E[..., None] * dent
    d_lstm, d_coef = _backward(spec.lstm, w, coef, tape, dy)
    H = spec.n_cells
    tail = d_coef[H:]
    if D is not None:
        tail = np.concatenate([np.einsum("tbi,tbo->io", X, dy).ravel(), d_coef[H]])
    d_genome = spec.join(d_lstm[None], d_coef[None, :H], np.reshape(tail, (1, -1)))[0]
    d_log_std = None if dstd is None else np.einsum("tb,tbo->o", W, dstd) + np.einsum("tb,tbo->o", E, dent_std)
    return float(np.sum(W * logp) + np.sum(E * ent)), d_genome, d_log_std
