"""Compiled (numba) pole-balancing episodes behind ``run_episodes(..., backend="numba")``.

Imported only when that backend is used (numba is the optional ``fast`` extra).
The NumPy episode loop of :mod:`evolino.rl.pole` is the reference; this module
runs the same episodes with the physics and the LSTM policy fused into one
compiled loop per episode:

- physics: the equations of :meth:`PoleBalancing._derivs` in the same order of
  operations (two RK4 substeps per control step, force clipping and minimum
  force, the failure test, the scaled observations), without fused multiply-adds,
  so that the trajectory under the same actions is bit-for-bit NumPy's;
- policy: observation normalization, the LSTM step of the compiled supervised
  kernels (:func:`evolino._numba_kernels._net_step`, on the same prepared
  weights), the output layer and head of :meth:`PolicyBatch.act`.

The policy's results agree with NumPy to float rounding (the LSTM kernel's own
exp and the library ``tanh`` instead of NumPy's SIMD ``tanh``), so steps survived
agree exactly unless an episode ends within rounding of the failure limits.

Why it is fast: a NumPy control step costs about two hundred array calls whatever
the population size, and the populations of policy search are small (15 networks,
one episode each); here one control step of one episode is a few hundred
nanoseconds, and an episode stops as soon as it fails.

Every episode is computed by the same function (:func:`_episode`) whatever range
of episodes a call covers, so spreading them over threads
(:func:`evolino._backend.spread`, one episode at a time) gives bit-for-bit the
results of one thread. All functions live at module
level with ``cache=True`` (numba's disk cache works only for those). numba's cache
does not notice changes in other files: after editing
:func:`evolino._numba_kernels._net_step`, touch this file so that its kernels are
compiled again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._backend import _flat_weights, as_arg, spread
from .._numba_kernels import _copy, _net_step, _scratch
from .policy import HEADS

__all__ = ["run_compiled"]

# no fastmath at all (unlike the LSTM kernels): the physics must round exactly as NumPy does
_JIT = dict(cache=True, nogil=True, error_model="numpy")
MAX_PIECES = 1024  # episodes handed to the kernel threads one at a time, up to this many per call
_WINDOW = 100  # evolino.rl.pole.DAMPING_WINDOW (that module imports this one, not the other way round)


@njit(**_JIT)
def _derivs(s, force, out, n_poles, poles, phys, cos_th, acc):
    """Time derivative of one state ``s`` ``(k,)`` into ``out`` ``(k,)``; ``cos_th``, ``acc`` ``(n,)`` scratch.

    ``poles`` ``(6, n)``: rows ``m l``, ``mu_p / (m l)``, ``3/4 m``, ``-3/4 m``, ``m``, ``-3 / (4 l)``;
    ``phys``: cart mass, cart friction, gravity, max force, min force, dt. Each line rounds as the
    corresponding in-place step of the NumPy kernel.
    """
    num = force - math.copysign(phys[1], s[1])
    den = phys[0]
    for i in range(n_poles):
        th, w = s[2 + 2 * i], s[3 + 2 * i]
        c, sn = math.cos(th), math.sin(th)
        a = sn * phys[2] + poles[1, i] * w
        num += poles[0, i] * w * w * sn + poles[2, i] * c * a
        den += c * c * poles[3, i] + poles[4, i]
        cos_th[i] = c
        acc[i] = a
    xacc = num / den
    out[0] = s[1]
    out[1] = xacc
    for i in range(n_poles):
        out[2 + 2 * i] = s[3 + 2 * i]
        out[3 + 2 * i] = (cos_th[i] * xacc + acc[i]) * poles[5, i]


@njit(**_JIT)
def _advance(s, u, n_poles, poles, phys, substeps, k1, k2, k3, k4, tmp, cos_th, acc):
    """One control step of state ``s`` ``(k,)`` (in place) under action ``u`` (``substeps`` RK4 steps)."""
    f = min(max(u, -1.0), 1.0) * phys[3]
    f = max(f, phys[4]) if f >= 0 else min(f, -phys[4])
    h = phys[5]
    half, sixth = 0.5 * h, h / 6.0
    k = s.shape[0]
    for _ in range(substeps):
        _derivs(s, f, k1, n_poles, poles, phys, cos_th, acc)
        for j in range(k):
            tmp[j] = s[j] + half * k1[j]
        _derivs(tmp, f, k2, n_poles, poles, phys, cos_th, acc)
        for j in range(k):
            tmp[j] = s[j] + half * k2[j]
        _derivs(tmp, f, k3, n_poles, poles, phys, cos_th, acc)
        for j in range(k):
            tmp[j] = s[j] + h * k3[j]
        _derivs(tmp, f, k4, n_poles, poles, phys, cos_th, acc)
        for j in range(k):
            s[j] = s[j] + sixth * ((k1[j] + k4[j]) + (k2[j] + k3[j]) * 2.0)


@njit(**_JIT)
def _failed(s, limits):
    """Cart off the track or a pole past the failure angle: ``|s[0]|``, ``|s[2]|``, ... against ``limits``."""
    for i in range(limits.shape[0]):
        if abs(s[2 * i]) > limits[i]:
            return True
    return False


@njit(**_JIT)
def _episode(W, R, b, p_in, p_out, w_out, d, b_out, mean, std, start, n_poles, poles, phys, substeps, limits,
             obs_index, obs_scale, peep, forget, direct, norm, head, damping, max_steps, n_record, states, actions):
    """One episode of one policy from ``start`` ``(k,)``: ``(steps survived, damping window total)``.

    Weights of one network as :func:`evolino._numba_kernels._net_step` takes them, ``w_out`` ``(H, O)``,
    ``d`` ``(I, O)`` (used if ``direct``), ``b_out`` ``(O,)``, ``mean``, ``std`` ``(I,)`` (used if ``norm``),
    ``head`` the index in :data:`evolino.rl.policy.HEADS`. With ``n_record = T > 0`` the episode runs
    exactly ``T`` steps, as the NumPy loop does when recording: after a failure the state stays frozen and
    the policy keeps acting on it; ``states`` ``(T + 1, k)`` and ``actions`` ``(T,)`` are filled.
    """
    I, H, O = W.shape[0], R.shape[0], w_out.shape[1]
    k = start.shape[0]
    a, e = _scratch(R, b)
    h = np.zeros(H)
    h_new = np.empty(H)
    c = np.zeros(H)
    x = np.empty(I)
    y = np.empty(O)
    s = start.copy()
    k1, k2, k3, k4, tmp = np.empty(k), np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    cos_th, acc = np.empty(n_poles), np.empty(n_poles)
    window = np.zeros(_WINDOW if damping else 0)
    record = n_record > 0
    if record:
        _copy(states[0], s)
    steps = 0
    alive = True
    for t in range(n_record if record else max_steps):
        for i in range(I):
            x[i] = s[obs_index[i]] * obs_scale[i]
            if norm:
                x[i] = (x[i] - mean[i]) / std[i]
        _net_step(W, R, b, p_in, p_out, x, h, c, a, e, h_new, peep, forget)
        _copy(h, h_new)
        for o in range(O):
            v = 0.0
            for j in range(H):
                v += h[j] * w_out[j, o]
            if direct:  # NumPy adds the two products, then the bias
                dx = 0.0
                for i in range(I):
                    dx += x[i] * d[i, o]
                v += dx
            y[o] = v + b_out[o]
        if head == 0:
            u = math.tanh(y[0])
        elif head == 1:
            u = 2.0 * ((math.tanh(0.5 * y[0]) + 1.0) * 0.5) - 1.0
        else:  # np.argmax: the first largest, a NaN counts as the largest
            best = 0
            for o in range(1, O):
                if y[best] != y[best]:
                    break
                if y[o] > y[best] or y[o] != y[o]:
                    best = o
            u = 1.0 if best >= 1 else -1.0
        if record:
            actions[t] = u
        if alive:
            _advance(s, u, n_poles, poles, phys, substeps, k1, k2, k3, k4, tmp, cos_th, acc)
            if _failed(s, limits):
                alive = False
            else:
                steps += 1
                if damping:
                    window[t % _WINDOW] = ((abs(s[0]) + abs(s[1])) + abs(s[2])) + abs(s[3])
        if record:
            _copy(states[t + 1], s)
        elif not alive:
            break
    total = 0.0
    for i in range(window.shape[0]):  # slot order, as NumPy's sum over the window's first axis
        total += window[i]
    return steps, total


@njit(**_JIT)
def episodes_serial(W, R, b, p_in, p_out, w_out, d, b_out, mean, std, starts, n_poles, poles, phys, substeps,
                    limits, obs_index, obs_scale, peep, forget, direct, norm, head, damping, max_steps, n_record,
                    steps, totals, states, actions, q0, q1):
    """Episodes ``q0 <= q < q1`` of the ``P x B`` (episode ``q`` is start ``q % B`` of policy ``q // B``), one
    after the other: weights as :func:`_backend._flat_weights` gives them (``(P, ...)``), ``w_out``
    ``(P, H, O)``, ``d`` ``(P, I, O)``, ``b_out`` ``(P, O)``, ``starts`` ``(P, B, k)``; fills ``steps``,
    ``totals`` ``(P, B)``, ``states`` ``(P, B, T + 1, k)``, ``actions`` ``(P, B, T)``."""
    B = starts.shape[1]
    for q in range(q0, q1):
        p, j = q // B, q % B
        steps[p, j], totals[p, j] = _episode(
            W[p], R[p], b[p], p_in[p], p_out[p], w_out[p], d[p], b_out[p], mean, std, starts[p, j], n_poles, poles,
            phys, substeps, limits, obs_index, obs_scale, peep, forget, direct, norm, head, damping, max_steps,
            n_record, states[p, j], actions[p, j])


def run_compiled(env, policy, starts, max_steps: int, damping: bool, n_record: int = 0, parallel=None):
    """Episodes of a :class:`~evolino.rl.policy.PolicyBatch` on a :class:`~evolino.rl.pole.PoleBalancing`.

    Parameters
    ----------
    env : PoleBalancing
    policy : PolicyBatch
        ``P`` policies.
    starts : ndarray of shape (P, B, n_state)
        Checked start states (none failed).
    max_steps : int
    damping : bool
        Also sum the damping window (Gruau's ``f2``).
    n_record : int, default=0
        Record exactly this many steps (0: do not record).
    parallel : bool, optional
        Force one thread (False) or the kernel threads (True, :func:`evolino._backend.spread`); by
        default the threads when :func:`evolino._backend._parallel` allows them for the ``P x B`` episodes.

    Returns
    -------
    steps : ndarray (P, B) int64
    totals : ndarray (P, B) float
        Sum of ``|x| + |x'| + |th_1| + |th_1'|`` over the last 100 steps survived (0 without damping).
    states : ndarray (P, B, n_record + 1, n_state) or None
    actions : ndarray (P, B, n_record) or None
    """
    P, B, k = starts.shape
    spec, p = policy.spec, env.params
    W, R, b, p_in, p_out = _flat_weights(policy.weights)
    I, O = spec.n_inputs, spec.n_outputs
    d = np.zeros((P, I, O)) if policy.d is None else as_arg(policy.d)
    mean, std = (np.zeros(I), np.ones(I)) if policy.obs_norm is None else policy.obs_norm
    poles = as_arg(np.concatenate([env._ml, env._mup_ml, env._m075, env._neg_m075, env._m, env._neg_075_l],
                                  axis=1).T)  # (6, n)
    phys = np.array([p.cart_mass, p.cart_friction, p.gravity, p.max_force, p.min_force, p.dt])
    steps, totals = np.zeros((P, B), np.int64), np.zeros((P, B))
    T = int(n_record)
    # without recording, one-slot buffers keep the kernels' argument types (one compiled version, one cache entry)
    states, actions = np.zeros((P, B, T + 1, k)), np.zeros((P, B, max(T, 1)))
    args = (W, R, b, p_in, p_out, as_arg(policy.w_out), d, as_arg(policy.b_out[:, 0]),
            as_arg(mean, np.float64), as_arg(std, np.float64),
            as_arg(starts, np.float64), env.n_poles, poles, phys, int(p.substeps),
            as_arg(env._limits, np.float64), as_arg(env._obs_index, np.int64),
            as_arg(env._obs_scale, np.float64), spec.peepholes, spec.forget_gate,
            policy.d is not None, policy.obs_norm is not None, HEADS.index(spec.head), bool(damping),
            int(max_steps), T, steps, totals, states, actions)
    # episode lengths differ by orders of magnitude: the threads take one episode at a time
    spread(lambda q0, q1: episodes_serial(*args, q0, q1), P * B, pieces=min(P * B, MAX_PIECES), parallel=parallel)
    return steps, totals, (states if T else None), (actions if T else None)
