"""Cart-pole balancing, single and double pole, vectorized over many carts.

Equations of motion of Wieland (1991) for ``n`` poles hinged on a cart, as
coded by Gomez for ESP / CoSyNE (Gomez, Schmidhuber & Miikkulainen, JMLR 2008,
appendix A) and in NEAT's ``experiments.cpp``, with ``g = -9.8`` (the sign
convention of those codes: ``g`` enters the equations negated)::

    x''    = (F - mu_c sgn(x') + sum_i Ft_i) / (M + sum_i mt_i)
    Ft_i   = m_i l_i w_i^2 sin(th_i) + 3/4 m_i cos(th_i) (mu_p w_i / (m_i l_i) + g sin(th_i))
    mt_i   = m_i (1 - 3/4 cos^2(th_i))
    th_i'' = -3 / (4 l_i) (x'' cos(th_i) + g sin(th_i) + mu_p w_i / (m_i l_i))

with ``w_i = th_i'``, ``l_i`` the half-length of pole ``i``. The state of a
cart is ``(x, x', th_1, th_1' [, th_2, th_2'])``. One control step holds the
force ``F = 10 u`` N (``u`` in [-1, 1], ``|F| >= 10/256`` N as in Gomez's code)
for two 4th-order Runge-Kutta steps of 0.01 s. Failure: ``|x| > 2.4`` m or a
pole beyond 36 degrees (double) / 12 degrees (single). The policy sees the
state scaled as in NEAT: ``x/4.8, x'/2, th/0.52, th'/2``, without the
velocities in the non-Markov task.

All carts advance together: states are arrays, never a Python loop over carts.
With ``backend="numba"`` (the default when numba is installed) whole episodes run
compiled instead, physics and policy fused (``evolino/rl/_pole_numba.py``); the
NumPy loop stays the reference and the fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._backend import resolve_backend
from .._validate import EvolinoTypeError, check_array, check_positive_int
from .policy import PolicyBatch

__all__ = [
    "PoleParams", "PoleBalancing", "EpisodeResult", "run_episodes", "generalization_score", "rollout",
    "GENERALIZATION_LEVELS",
]

#: Fractions of each start range used by the generalization test (Gruau et al. 1996).
GENERALIZATION_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Half-ranges of x (m), x' (m/s), th_1 (rad), th_1' (rad/s) of the generalization test.
GENERALIZATION_RANGES = (2.16, 1.35, np.deg2rad(3.6), np.deg2rad(8.6))
#: Steps summed by the damping fitness (Gruau et al. 1996).
DAMPING_WINDOW = 100


@dataclass(frozen=True)
class PoleParams:
    """Physical constants (SI units) of the cart-pole system; defaults are the literature's."""

    cart_mass: float = 1.0
    pole_masses: tuple = (0.1, 0.01)
    half_lengths: tuple = (0.5, 0.05)
    cart_friction: float = 5e-4
    hinge_friction: float = 2e-6
    gravity: float = -9.8
    max_force: float = 10.0
    min_force: float = 10.0 / 256
    dt: float = 0.01
    substeps: int = 2
    track: float = 2.4


class PoleBalancing:
    """The cart-pole task: physics, observations, failure test and start states.

    Parameters
    ----------
    n_poles : {1, 2}, default=2
    velocities : bool, default=True
        Show the velocities to the policy (Markov task); without them the policy
        sees only ``x, th_1 [, th_2]``.
    params : PoleParams, optional
    initial_angle : float, default=4.0
        Start angle of the long pole, degrees (NEAT rounds it to 0.07 rad).
    failure_angle : float, optional
        Degrees; 36 for two poles and 12 for one by default.
    """

    def __init__(self, n_poles: int = 2, *, velocities: bool = True, params: PoleParams | None = None,
                 initial_angle: float = 4.0, failure_angle: float | None = None):
        n_poles = check_positive_int(n_poles, "n_poles")
        if n_poles not in (1, 2):
            raise ValueError(f"n_poles must be 1 or 2, got {n_poles}")
        if not isinstance(velocities, (bool, np.bool_)):
            raise TypeError(f"velocities must be a bool, got {velocities!r}")
        params = PoleParams() if params is None else params
        if not isinstance(params, PoleParams):
            raise TypeError(f"params must be a PoleParams, got {type(params).__name__}")
        self.n_poles, self.velocities, self.params = n_poles, bool(velocities), params
        self.initial_angle = float(initial_angle)
        self.failure_angle = float((36.0 if n_poles == 2 else 12.0) if failure_angle is None else failure_angle)
        n = n_poles
        m = np.asarray(params.pole_masses[:n], float)[:, None]  # (n, 1)
        l = np.asarray(params.half_lengths[:n], float)[:, None]
        self._m, self._l, self._ml = m, l, m * l
        self._mup_ml = params.hinge_friction / (m * l)
        self._m075, self._neg_m075, self._neg_075_l = 0.75 * m, -0.75 * m, -0.75 / l
        self._limits = np.array([params.track] + [np.deg2rad(self.failure_angle)] * n)
        self._limit_list = self._limits.tolist()
        scale = np.array([4.8, 2.0] + [0.52, 2.0] * n)
        keep = np.arange(self.n_state) if velocities else np.arange(0, self.n_state, 2)
        self._obs_index, self._obs_scale = keep, 1.0 / scale[keep]

    def __repr__(self):
        return f"PoleBalancing(n_poles={self.n_poles}, velocities={self.velocities})"

    def to_dict(self) -> dict:
        return {"task": "pole", "n_poles": self.n_poles, "velocities": self.velocities,
                "initial_angle": self.initial_angle, "failure_angle": self.failure_angle}

    @property
    def n_state(self) -> int:
        """State width ``2 + 2 n_poles``."""
        return 2 + 2 * self.n_poles

    @property
    def n_obs(self) -> int:
        return len(self._obs_index)

    # --- start states -------------------------------------------------------
    def initial_state(self, n: int = 1) -> np.ndarray:
        """The standard start, ``(n, n_state)``: long pole at ``initial_angle``, all else 0."""
        s = np.zeros((check_positive_int(n, "n"), self.n_state))
        s[:, 2] = np.deg2rad(self.initial_angle)
        return s

    def generalization_starts(self) -> np.ndarray:
        """The 625 starts of the generalization test, ``(625, n_state)``: 5 levels each of
        ``x, x', th_1, th_1'`` over ``+-2.16 m, +-1.35 m/s, +-3.6 deg, +-8.6 deg/s``."""
        levels = np.asarray(GENERALIZATION_LEVELS)
        axes = [levels * 2 * r - r for r in GENERALIZATION_RANGES]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 4)
        s = np.zeros((len(grid), self.n_state))
        s[:, :4] = grid
        return s

    # --- physics on public (..., n_state) arrays ----------------------------
    def _check_state(self, state, name="state"):
        s = check_array(state, name, dtype=np.float64, finite=True)
        if s.ndim == 0 or s.shape[-1] != self.n_state:
            raise ValueError(f"{name} must have shape (..., {self.n_state}), got {s.shape}")
        return s

    def derivatives(self, state, force) -> np.ndarray:
        """Time derivative of ``state`` ``(..., n_state)`` under ``force`` (N, broadcastable)."""
        s = self._check_state(state)
        cols = np.moveaxis(s, -1, 0).reshape(self.n_state, -1)
        f = np.broadcast_to(np.asarray(force, float), s.shape[:-1]).reshape(-1)
        return np.moveaxis(self._derivs(cols, f).reshape(self.n_state, *s.shape[:-1]), 0, -1)

    def force(self, action) -> np.ndarray:
        """Force (N) of actions ``u`` in [-1, 1]: ``10 u``, at least 10/256 N in magnitude."""
        p = self.params
        f = np.clip(np.asarray(action, float), -1.0, 1.0) * p.max_force
        return np.where(f >= 0, np.maximum(f, p.min_force), np.minimum(f, -p.min_force))

    def step(self, state, action) -> np.ndarray:
        """State after one control step (two RK4 steps) with actions ``(...)`` in [-1, 1]."""
        s = self._check_state(state)
        u = check_array(action, "action", dtype=np.float64, finite=True)
        cols = np.moveaxis(s, -1, 0).reshape(self.n_state, -1)
        u = np.broadcast_to(u, s.shape[:-1]).reshape(-1)
        return np.moveaxis(self._advance(cols, u).reshape(self.n_state, *s.shape[:-1]), 0, -1)

    def failed(self, state) -> np.ndarray:
        """True where the cart left the track or a pole fell past the failure angle, ``(...)``."""
        s = self._check_state(state)
        return np.any(np.abs(s[..., ::2]) > self._limits, axis=-1)

    def observe(self, state) -> np.ndarray:
        """Scaled observations ``(..., n_obs)`` of states ``(..., n_state)``."""
        s = self._check_state(state)
        return s[..., self._obs_index] * self._obs_scale

    # --- kernels on column layout (n_state, N): each variable contiguous ---------
    def _derivs(self, s, force):
        # written out in in-place steps: on small populations the cost is the number
        # of NumPy calls, and this runs 8 times per control step
        p = self.params
        v, th, w = s[1], s[2::2], s[3::2]  # (N,), (n, N), (n, N)
        c, sn = np.cos(th), np.sin(th)
        a = sn * p.gravity
        a += self._mup_ml * w  # g sin(th) + mu_p w / (m l), shared by both equations
        ft = self._ml * w
        ft *= w
        ft *= sn
        t = self._m075 * c
        t *= a
        ft += t
        mt = c * c
        mt *= self._neg_m075
        mt += self._m
        # copysign: Gomez's sgn() is +1 at zero velocity, as copysign is for +0.0
        num = force - np.copysign(p.cart_friction, v)
        den = p.cart_mass + mt[0]
        num += ft[0]
        for i in range(1, self.n_poles):
            num += ft[i]
            den += mt[i]
        xacc = num / den
        d = np.empty_like(s)
        d[0] = v
        d[1] = xacc
        d[2::2] = w
        wacc = c * xacc
        wacc += a
        wacc *= self._neg_075_l
        d[3::2] = wacc
        return d

    def _advance(self, s, action):
        f = self.force(action)
        h = self.params.dt
        for _ in range(self.params.substeps):
            k1 = self._derivs(s, f)
            k2 = self._derivs(s + 0.5 * h * k1, f)
            k3 = self._derivs(s + 0.5 * h * k2, f)
            k4 = self._derivs(s + h * k3, f)
            k2 += k3
            k2 *= 2.0
            k1 += k4
            k1 += k2
            s = s + (h / 6.0) * k1
        return s

    def _failed_cols(self, s):
        return np.any(np.abs(s[::2]) > self._limits[:, None], axis=0)

    def _observe_cols(self, s, shape):
        return (s[self._obs_index].T * self._obs_scale).reshape(*shape, self.n_obs)

    # --- the same equations on plain floats, for one long episode -------------------
    def _scalar_derivs(self, s, force):
        p = self.params
        num, den = force - math.copysign(p.cart_friction, s[1]), p.cart_mass
        parts = []
        for i in range(self.n_poles):
            th, w = s[2 + 2 * i], s[3 + 2 * i]
            m, l = float(self._m[i, 0]), float(self._l[i, 0])
            c, sn = math.cos(th), math.sin(th)
            a = sn * p.gravity + float(self._mup_ml[i, 0]) * w
            num += m * l * w * w * sn + 0.75 * m * c * a
            den += m - 0.75 * m * c * c
            parts.append((w, c, a, l))
        xacc = num / den
        out = [s[1], xacc]
        for w, c, a, l in parts:
            out += [w, -0.75 / l * (c * xacc + a)]
        return out

    def _scalar_advance(self, s, action):
        p = self.params
        f = max(-1.0, min(1.0, action)) * p.max_force
        f = max(f, p.min_force) if f >= 0 else min(f, -p.min_force)
        h = p.dt
        for _ in range(p.substeps):
            k1 = self._scalar_derivs(s, f)
            k2 = self._scalar_derivs([a + 0.5 * h * b for a, b in zip(s, k1)], f)
            k3 = self._scalar_derivs([a + 0.5 * h * b for a, b in zip(s, k2)], f)
            k4 = self._scalar_derivs([a + h * b for a, b in zip(s, k3)], f)
            s = [a + h / 6.0 * (q1 + q4 + 2.0 * (q2 + q3)) for a, q1, q2, q3, q4 in zip(s, k1, k2, k3, k4)]
        return s

    def _scalar_failed(self, s):
        return any(abs(s[2 * i]) > lim for i, lim in enumerate(self._limit_list))

    def _scalar_episode(self, policy, s, n_steps):
        """Continue one episode of a :class:`~evolino.rl.policy.ScalarPolicy` from state ``s``
        (list) for at most ``n_steps`` steps; returns the steps survived."""
        index, scale = self._obs_index.tolist(), self._obs_scale.tolist()
        head = policy.spec.head
        for t in range(n_steps):
            out = policy.act([s[i] * k for i, k in zip(index, scale)])
            if head == "tanh":
                u = out[0]
            elif head == "logistic":
                u = 2.0 * out[0] - 1.0
            else:
                u = 1.0 if out >= 1 else -1.0
            s = self._scalar_advance(s, u)
            if self._scalar_failed(s):
                return t
        return n_steps


class EpisodeResult(NamedTuple):
    """Outcome of ``P x B`` episodes.

    steps : (P, B) int
        Control steps survived (``max_steps`` = balanced throughout).
    damping : (P, B) float or None
        Gruau's fitness ``0.1 f1 + 0.9 f2`` (``f1 = steps / max_steps``,
        ``f2 = 0.75 / sum over the last 100 steps of |x| + |x'| + |th_1| + |th_1'|``,
        0 if fewer than 100 steps), when asked for.
    states : (T + 1, P, B, n_state) or None
        The trajectory (frozen after a failure), when recorded.
    actions : (T, P, B) or None
        Actions in [-1, 1], when recorded.
    """

    steps: np.ndarray
    damping: np.ndarray | None = None
    states: np.ndarray | None = None
    actions: np.ndarray | None = None


def _unit_action(head, out):
    """Policy outputs -> actions in [-1, 1]: tanh as is, logistic ``2a - 1`` (ESP's
    ``(a - 0.5) 20`` N), argmax over 2 outputs bang-bang ``-1 | +1``."""
    if head == "tanh":
        return out[..., 0]
    if head == "logistic":
        return 2.0 * out[..., 0] - 1.0
    return np.where(out >= 1, 1.0, -1.0)


def run_episodes(env: PoleBalancing, policy, starts=None, *, max_steps: int = 100_000, damping: bool = False,
                 record: bool = False, scalar_after: int | None = 1000, backend: str = "auto") -> EpisodeResult:
    """Run ``P`` policies on ``B`` episodes each, all in lockstep.

    Parameters
    ----------
    env : PoleBalancing
    policy : PolicyBatch
        ``P`` policies (``act``, ``take``, ``initial_state``, ``size``, ``spec``).
    starts : array of shape (B, n_state) or (P, B, n_state), optional
        Start states; the standard start by default (``B = 1``).
    max_steps : int, default=100000
    damping : bool, default=False
        Also compute Gruau's damping fitness.
    record : bool, default=False
        Keep the whole trajectory (for plots; memory grows with ``max_steps``).
    scalar_after : int or None, default=1000
        With one episode per policy (``B = 1``, no damping, no recording), a policy
        that has balanced this many steps finishes its episode in plain Python floats
        (:class:`~evolino.rl.policy.ScalarPolicy`), several times faster than NumPy
        calls on a handful of carts. The switch depends only on the policy's own
        episode, so its result does not depend on the rest of the population;
        the two paths agree to rounding. None: never switch. NumPy backend only.
    backend : {"auto", "numpy", "numba"}, default="auto"
        "numba": every episode in one compiled loop (a :class:`~evolino.rl.policy.PolicyBatch`
        only), the same equations rounded alike except in the policy's non-linearities; "auto":
        numba when installed and ``policy`` is a PolicyBatch, else NumPy (LSTM step included).
        Steps survived agree except for policies that balance long in a rounding-sensitive
        regime (chattering where the friction sign and the minimum force switch): there any
        change of rounding, NumPy's own ``scalar_after`` included, moves the step of failure.

    Returns
    -------
    EpisodeResult
    """
    if not isinstance(env, PoleBalancing):
        raise TypeError(f"env must be a PoleBalancing, got {type(env).__name__}")
    max_steps = check_positive_int(max_steps, "max_steps")
    if policy.spec.n_inputs != env.n_obs:
        raise ValueError(f"policy expects {policy.spec.n_inputs} inputs but {env!r} gives {env.n_obs}")
    if policy.spec.head == "argmax" and policy.spec.n_outputs != 2:
        raise ValueError("an argmax policy for pole balancing needs n_outputs=2 (push left / push right)")
    if policy.spec.head != "argmax" and policy.spec.n_outputs != 1:
        raise ValueError(f"a {policy.spec.head} policy for pole balancing needs n_outputs=1")
    compiled = resolve_backend(backend) == "numba" and (backend == "numba" or isinstance(policy, PolicyBatch))
    if compiled and not isinstance(policy, PolicyBatch):
        raise EvolinoTypeError(f"backend='numba' runs PolicyBatch policies only, got {type(policy).__name__}; "
                               "use backend='numpy'")
    P, k = policy.size, env.n_state
    starts = env.initial_state(1) if starts is None else env._check_state(starts, "starts")
    if starts.ndim == 2:
        starts = np.broadcast_to(starts, (P, *starts.shape))
    if starts.ndim != 3 or starts.shape[0] != P:
        raise ValueError(f"starts must have shape (B, {k}) or ({P}, B, {k}), got {starts.shape}")
    B = starts.shape[1]
    if np.any(env._failed_cols(starts.reshape(-1, k).T)):
        raise ValueError("starts contain states that have already failed")
    if compiled:
        return _compiled_episodes(env, policy, starts, max_steps, damping, record)
    # the reference: NumPy throughout, the policy's LSTM step too
    step_options = {"backend": "numpy"} if isinstance(policy, PolicyBatch) else {}

    steps = np.zeros((P, B), np.int64)
    window = np.zeros((DAMPING_WINDOW, P, B)) if damping else None
    idx = np.arange(P)  # global index of each active policy
    s = np.ascontiguousarray(np.moveaxis(starts, -1, 0).reshape(k, P * B))
    alive = np.ones((P, B), bool)
    h = policy.initial_state(B)
    traj, acts = ([starts.copy()], []) if record else (None, None)
    head = policy.spec.head
    if B != 1 or damping or record or scalar_after is None:
        scalar_after = None
    else:
        scalar_after = check_positive_int(scalar_after, "scalar_after")
    for t in range(max_steps):
        p = len(idx)
        h, out = policy.act(h, env._observe_cols(s, (p, B)), **step_options)
        u = _unit_action(head, out)  # (p, B)
        s_new = env._advance(s, u.reshape(-1))
        live = alive.reshape(-1)
        s = np.where(live, s_new, s) if not live.all() else s_new
        alive &= ~env._failed_cols(s).reshape(p, B)
        steps[idx] += alive
        if damping:
            slot = window[t % DAMPING_WINDOW]
            jiggle = np.abs(s[:4]).sum(0).reshape(p, B)
            slot[idx] = np.where(alive, jiggle, slot[idx])
        if record:
            traj.append(np.moveaxis(s.reshape(k, p, B), 0, -1).copy())
            acts.append(np.array(u, float))
        if scalar_after is not None and t + 1 == scalar_after and t + 1 < max_steps:
            for r in np.flatnonzero(alive[:, 0]):
                sp = policy.scalar(int(r), h)
                col = s.reshape(k, p)[:, r].tolist()
                steps[idx[r], 0] += env._scalar_episode(sp, col, max_steps - t - 1)
            alive[:] = False
        going = alive.any(axis=1)
        if not going.any():
            break
        if not record and going.sum() <= p // 2:
            # drop finished policies so later steps cost only what is still running
            idx, alive, h = idx[going], alive[going], type(h)(h.h[going], h.c[going])
            s = np.ascontiguousarray(s.reshape(k, p, B)[:, going].reshape(k, -1))
            policy = policy.take(going)
    fit = _damping_fitness(steps, window.sum(0), max_steps) if damping else None
    if record:
        return EpisodeResult(steps, fit, np.stack(traj), np.stack(acts))
    return EpisodeResult(steps, fit)


def _damping_fitness(steps, total, max_steps):
    """Gruau's ``0.1 f1 + 0.9 f2`` from steps ``(P, B)`` and the window sums ``(P, B)`` (both backends)."""
    f1 = steps / max_steps
    f2 = np.where(steps >= DAMPING_WINDOW, 0.75 / np.where(total > 0, total, np.inf), 0.0)
    return 0.1 * f1 + 0.9 * f2


def _compiled_episodes(env, policy, starts, max_steps, damping, record):
    """:func:`run_episodes` on the compiled backend (starts ``(P, B, n_state)``, checked)."""
    from ._pole_numba import run_compiled

    steps, total, _, _ = run_compiled(env, policy, starts, max_steps, damping)
    fit = _damping_fitness(steps, total, max_steps) if damping else None
    if not record:
        return EpisodeResult(steps, fit)
    # as long as the NumPy loop runs when recording: until every episode has failed, or max_steps
    T = int(min(steps.max(initial=0) + 1, max_steps))
    _, _, states, actions = run_compiled(env, policy, starts, max_steps, damping, n_record=T)
    return EpisodeResult(steps, fit, np.ascontiguousarray(np.moveaxis(states, 2, 0)),
                         np.ascontiguousarray(np.moveaxis(actions, 2, 0)))


def generalization_score(env: PoleBalancing, policy, *, max_steps: int = 1000, backend: str = "auto") -> np.ndarray:
    """Number of the 625 generalization starts each of ``P`` policies balances for
    ``max_steps`` steps, ``(P,)`` ints (a solution needs at least 200); ``backend`` as in :func:`run_episodes`."""
    res = run_episodes(env, policy, env.generalization_starts(), max_steps=max_steps, backend=backend)
    return (res.steps >= max_steps).sum(axis=1)


def rollout(env: PoleBalancing, policy, *, start=None, max_steps: int = 1000, backend: str = "auto") -> dict:
    """One recorded episode of one policy (a :class:`~evolino.rl.policy.Policy`); ``backend`` as in
    :func:`run_episodes`.

    Returns
    -------
    dict
        ``steps`` (int), ``states`` ``(T + 1, n_state)``, ``actions`` ``(T,)``,
        ``time`` ``(T + 1,)`` seconds.
    """
    batch = policy.batch() if hasattr(policy, "batch") else policy
    start = env.initial_state(1) if start is None else np.reshape(env._check_state(start, "start"), (1, -1))
    res = run_episodes(env, batch, start, max_steps=max_steps, record=True, backend=backend)
    n = int(res.steps[0, 0])
    T = min(n + 1, max_steps)
    dt = env.params.dt * env.params.substeps
    return {"steps": n, "states": res.states[: T + 1, 0, 0], "actions": res.actions[:T, 0, 0],
            "time": np.arange(T + 1) * dt}
