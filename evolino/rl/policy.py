"""LSTM policies: memory cells plus an output layer, the whole network one genome.

There are no targets in reinforcement learning, so unlike Evolino's computed
readout the output weights are evolved too. The genome is laid out **cell by
cell**, as ESP's neurons are: cell ``j``'s block is its LSTM block (see
:class:`evolino.lstm.LSTMSpec`) followed by its ``O`` outgoing weights to the
outputs. One last block holds what belongs to no cell: the output biases
(and, with ``direct=True``, the input-to-output weights). ``PolicySpec.units``
lists these ``H + 1`` slices, the subpopulations of ESP::

    [ cell 0: LSTM block (params_per_cell), W_out[0, :] (O) ]
    ...
    [ cell H-1: ...                                         ]
    [ D (I*O, only if direct), b_out (O)                    ]

Output ``y = head(W_out^T h_t + D^T x_t + b_out)`` with ``head`` one of
``tanh`` (actions in [-1, 1]), ``logistic`` (in [0, 1]) or ``argmax``
(a discrete action: the index of the largest of ``O`` outputs).

Optional observation normalization (:mod:`evolino.rl.normalize`): with ``obs_norm =
(mean, std)`` every input is ``(x - mean) / std`` before it reaches the network; a
:class:`Policy` stores the pair and applies it again after loading.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._io import load_npz, meta_value, save_npz
from .._validate import EvolinoError, as_rng, check_array, check_choice, check_positive_int
from ..lstm import LSTMSpec, LSTMState, LSTMWeights, initial_state, prepare, step

__all__ = ["PolicySpec", "PolicyBatch", "ScalarPolicy", "Policy", "HEADS", "POLICY_VERSION"]

POLICY_VERSION = 1

HEADS = ("tanh", "logistic", "argmax")


@dataclass(frozen=True)
class PolicySpec:
    """Shape of an LSTM policy.

    Parameters
    ----------
    n_inputs : int
        Observation width ``I``.
    n_cells : int
        Memory cells ``H``.
    n_outputs : int, default=1
        Outputs ``O`` (for ``head="argmax"`` the number of discrete actions, >= 2).
    head : {"tanh", "logistic", "argmax"}, default="tanh"
    peepholes, forget_gate : bool, default=True
        LSTM options (see :class:`evolino.lstm.LSTMSpec`).
    direct : bool, default=False
        Also connect the inputs straight to the outputs.
    """

    n_inputs: int
    n_cells: int
    n_outputs: int = 1
    head: str = "tanh"
    peepholes: bool = True
    forget_gate: bool = True
    direct: bool = False

    def __post_init__(self):
        check_positive_int(self.n_inputs, "n_inputs")
        check_positive_int(self.n_cells, "n_cells")
        check_positive_int(self.n_outputs, "n_outputs", minimum=2 if self.head == "argmax" else 1)
        check_choice(self.head, "head", HEADS)
        for name in ("peepholes", "forget_gate", "direct"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def lstm(self) -> LSTMSpec:
        return LSTMSpec(self.n_inputs, self.n_cells, peepholes=self.peepholes, forget_gate=self.forget_gate)

    @property
    def block_size(self) -> int:
        """Genes per cell: its LSTM block and its outgoing weights."""
        return self.lstm.params_per_cell + self.n_outputs

    @property
    def tail_size(self) -> int:
        """Genes of the last unit: direct weights (if any) and output biases."""
        return (self.n_inputs * self.n_outputs if self.direct else 0) + self.n_outputs

    @property
    def n_params(self) -> int:
        return self.n_cells * self.block_size + self.tail_size

    @property
    def units(self) -> list[slice]:
        """``H + 1`` contiguous slices partitioning the genome: one per cell, then the output unit."""
        k, H = self.block_size, self.n_cells
        return [slice(j * k, (j + 1) * k) for j in range(H)] + [slice(H * k, self.n_params)]

    @property
    def cell_slices(self) -> list[slice]:
        """ESP's units (:func:`evolino.search.make_strategy`): the same slices as :attr:`units`."""
        return self.units

    def init(self, rng=None, size: int = 1, scale: float = 1.0) -> np.ndarray:
        """Random genomes ``(size, n_params)``: LSTM part as ``LSTMSpec.init``, output
        weights uniform in ``[-a, a]`` with ``a = scale / sqrt(fan-in)``."""
        rng = as_rng(rng)
        size = check_positive_int(size, "size")
        lstm = self.lstm.init(rng, size, scale)
        fan_in = self.n_cells + 1 + (self.n_inputs if self.direct else 0)
        a = float(scale) / np.sqrt(fan_in)
        out = rng.uniform(-a, a, size=(size, self.n_cells, self.n_outputs))
        tail = rng.uniform(-a, a, size=(size, self.tail_size))
        return self.join(lstm, out, tail)

    def join(self, lstm_genomes, w_out, tail) -> np.ndarray:
        """Genomes ``(P, n_params)`` from LSTM genomes ``(P, n_lstm)``, ``W_out`` ``(P, H, O)``
        and the tail ``(P, tail_size)``."""
        P, H = len(lstm_genomes), self.n_cells
        g = np.empty((P, self.n_params))
        cells = g[:, : H * self.block_size].reshape(P, H, self.block_size)
        cells[:, :, : self.lstm.params_per_cell] = np.reshape(lstm_genomes, (P, H, -1))
        cells[:, :, self.lstm.params_per_cell :] = w_out
        g[:, H * self.block_size :] = tail
        return g

    def split(self, genomes):
        """Parts of genomes ``(P, n_params)``.

        Returns
        -------
        lstm : ndarray (P, lstm.n_params)
        w_out : ndarray (P, H, O)
        d : ndarray (P, I, O) or None
        b_out : ndarray (P, O)
        """
        g = check_array(genomes, "genomes", ndims=(2,), dtype=np.float64)
        if g.shape[1] != self.n_params:
            raise ValueError(f"genomes must have shape (P, {self.n_params}) for this PolicySpec, got {g.shape}")
        P, H, k = g.shape[0], self.n_cells, self.lstm.params_per_cell
        cells = g[:, : H * self.block_size].reshape(P, H, self.block_size)
        lstm = cells[:, :, :k].reshape(P, H * k)
        w_out = cells[:, :, k:]
        tail = g[:, H * self.block_size :]
        d = tail[:, : -self.n_outputs].reshape(P, self.n_inputs, self.n_outputs) if self.direct else None
        return lstm, w_out, d, tail[:, -self.n_outputs :]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PolicySpec":
        if not isinstance(d, dict):
            raise TypeError(f"spec must be a dict, got {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown PolicySpec fields {sorted(unknown)}")
        return cls(**d)


def check_obs_norm(obs_norm, n_inputs: int):
    """``None`` or ``(mean (I,), std (I,))`` as float64 arrays; ``std`` must be positive."""
    if obs_norm is None:
        return None
    try:
        mean, std = obs_norm
    except (TypeError, ValueError):
        raise TypeError("obs_norm must be None or a pair (mean, std)") from None
    mean = check_array(mean, "obs_norm mean", ndims=(1,), dtype=np.float64, finite=True)
    std = check_array(std, "obs_norm std", ndims=(1,), dtype=np.float64, finite=True)
    if mean.shape != (n_inputs,) or std.shape != (n_inputs,):
        raise ValueError(f"obs_norm mean and std must have shape ({n_inputs},), got {mean.shape}, {std.shape}")
    if np.any(std <= 0):
        raise ValueError("obs_norm std must be > 0")
    return mean.copy(), std.copy()


class PolicyBatch:
    """``P`` policies stepping in lockstep on ``B`` episodes each: one kernel step per time step.

    Parameters
    ----------
    spec : PolicySpec
    genomes : array of shape (P, n_params)
    obs_norm : (mean (I,), std (I,)), optional
        Observation normalization applied to every input.
    """

    def __init__(self, spec: PolicySpec, genomes, obs_norm=None):
        if not isinstance(spec, PolicySpec):
            raise TypeError(f"spec must be a PolicySpec, got {type(spec).__name__}")
        self.spec = spec
        lstm, w_out, d, b_out = spec.split(genomes)
        if not (np.all(np.isfinite(w_out)) and np.all(np.isfinite(b_out)) and (d is None or np.all(np.isfinite(d)))):
            raise ValueError("genomes contain NaN or inf")
        self.obs_norm = check_obs_norm(obs_norm, spec.n_inputs)
        self._set(prepare(spec.lstm, lstm), np.ascontiguousarray(w_out), None if d is None else d.copy(),
                  b_out[:, None, :].copy(), np.array(genomes, dtype=np.float64))

    def _set(self, weights, w_out, d, b_out, genomes):
        self.weights, self.w_out, self.d, self.b_out, self.genomes = weights, w_out, d, b_out, genomes

    @property
    def size(self) -> int:
        return self.w_out.shape[0]

    def initial_state(self, n_episodes: int = 1) -> LSTMState:
        """Zero LSTM state ``(P, B, H)``."""
        return initial_state(self.spec.lstm, self.size, n_episodes)

    def act(self, state: LSTMState, obs, *, backend: str = "auto"):
        """One step: observations ``(P, B, I)`` -> ``(new_state, output)``.

        ``output`` is ``(P, B, O)`` after the head, or ``(P, B)`` action indices for ``argmax``;
        ``backend`` is the LSTM step's (see :func:`evolino.lstm.step`).
        """
        if self.obs_norm is not None:
            obs = (obs - self.obs_norm[0]) / self.obs_norm[1]
        state = step(self.spec.lstm, self.weights, state, obs, backend=backend)
        y = np.matmul(state.h, self.w_out)  # (P, B, O)
        if self.d is not None:
            y += np.matmul(obs, self.d)
        y += self.b_out
        head = self.spec.head
        if head == "tanh":
            np.tanh(y, out=y)
        elif head == "logistic":
            # logistic via tanh: exact and never overflows
            np.tanh(0.5 * y, out=y)
            y += 1.0
            y *= 0.5
        else:
            y = np.argmax(y, axis=-1)
        return state, y

    def take(self, index) -> "PolicyBatch":
        """The sub-batch of policies ``index`` (an int array or boolean mask over ``P``)."""
        w = self.weights
        sub = object.__new__(PolicyBatch)
        sub.spec, sub.obs_norm = self.spec, self.obs_norm
        weights = LSTMWeights(w.W[index], w.R[index], w.b[index], w.p_in[index], w.p_out[index], w.spec)
        sub._set(weights, self.w_out[index], None if self.d is None else self.d[index], self.b_out[index],
                 self.genomes[index])
        return sub

    def scalar(self, i: int, state: LSTMState | None = None, episode: int = 0) -> "ScalarPolicy":
        """Policy ``i`` as a :class:`ScalarPolicy`, continuing from ``state`` (episode ``episode``)."""
        h = c = None
        if state is not None:
            h, c = state.h[i, episode].tolist(), state.c[i, episode].tolist()
        return ScalarPolicy(self.spec, self.genomes[i], h, c, obs_norm=self.obs_norm)


class ScalarPolicy:
    """One policy on one episode in plain Python floats.

    For long single episodes (one candidate left balancing for 100,000 steps) a
    NumPy step costs hundreds of small-array calls; the same equations on floats
    are several times faster. Agrees with :class:`PolicyBatch` to rounding.
    """

    def __init__(self, spec: PolicySpec, genome, h=None, c=None, obs_norm=None):
        self.spec = spec
        norm = check_obs_norm(obs_norm, spec.n_inputs)
        self._norm = None if norm is None else (norm[0].tolist(), norm[1].tolist())
        lstm, w_out, d, b_out = spec.split(np.reshape(genome, (1, -1)))
        w = spec.lstm.unpack(lstm[0])
        H = spec.n_cells
        # per cell, per unit: weights on [x, h, 1]
        self._rows = [[w[f"W_{u}"][j].tolist() + w[f"R_{u}"][j].tolist() + [float(w[f"b_{u}"][j])]
                       for u in spec.lstm.units] for j in range(H)]
        zero = [0.0] * H
        self._peep = [w[f"p_{u}"].tolist() if spec.peepholes and f"p_{u}" in w else zero for u in ("i", "f", "o")]
        self._w_out = w_out[0].T.tolist()  # (O, H)
        self._d = None if d is None else d[0].T.tolist()  # (O, I)
        self._b = b_out[0].tolist()
        self.h = list(zero) if h is None else list(h)
        self.c = list(zero) if c is None else list(c)

    def act(self, x):
        """Outputs (list of ``O`` floats, or the argmax index) for one observation ``x`` (list)."""
        if self._norm is not None:
            x = [(a - m) / sd for a, m, sd in zip(x, *self._norm)]
        v = list(x) + self.h + [1.0]
        c_old = self.c
        p_i, p_f, p_o = self._peep
        forget = self.spec.forget_gate
        h_new, c_new = [], []
        for j, rows in enumerate(self._rows):
            cj = c_old[j]
            az = sum(a * b for a, b in zip(rows[0], v))
            ai = sum(a * b for a, b in zip(rows[1], v)) + p_i[j] * cj
            gate_i = 0.5 * (1.0 + math.tanh(0.5 * ai))
            if forget:
                af = sum(a * b for a, b in zip(rows[2], v)) + p_f[j] * cj
                c = 0.5 * (1.0 + math.tanh(0.5 * af)) * cj + gate_i * math.tanh(az)
            else:
                c = cj + gate_i * math.tanh(az)
            ao = sum(a * b for a, b in zip(rows[-1], v)) + p_o[j] * c
            h_new.append(0.5 * (1.0 + math.tanh(0.5 * ao)) * math.tanh(c))
            c_new.append(c)
        self.h, self.c = h_new, c_new
        y = [sum(a * b for a, b in zip(w, h_new)) + bias for w, bias in zip(self._w_out, self._b)]
        if self._d is not None:
            y = [yo + sum(a * b for a, b in zip(w, x)) for yo, w in zip(y, self._d)]
        head = self.spec.head
        if head == "tanh":
            return [math.tanh(a) for a in y]
        if head == "logistic":
            return [0.5 * (1.0 + math.tanh(0.5 * a)) for a in y]
        return max(range(len(y)), key=y.__getitem__)


class Policy:
    """One evolved policy (e.g. a search's champion): spec, genome and a description of its task.

    Parameters
    ----------
    spec : PolicySpec
    genome : array of shape (n_params,)
    info : dict, optional
        JSON-serialisable description of the task (environment, observation mask, ...).
    obs_norm : (mean (I,), std (I,)), optional
        Observation normalization the policy was evolved with (saved and loaded with it).
    """

    def __init__(self, spec: PolicySpec, genome, info: dict | None = None, obs_norm=None):
        if not isinstance(spec, PolicySpec):
            raise TypeError(f"spec must be a PolicySpec, got {type(spec).__name__}")
        g = check_array(genome, "genome", ndims=(1,), dtype=np.float64, finite=True)
        if g.shape != (spec.n_params,):
            raise ValueError(f"genome must have shape ({spec.n_params},), got {g.shape}")
        self.spec, self.genome, self.info = spec, g.copy(), dict(info or {})
        self.obs_norm = check_obs_norm(obs_norm, spec.n_inputs)
        self._batch = PolicyBatch(spec, g[None], self.obs_norm)
        self._state = None

    def batch(self) -> PolicyBatch:
        """This policy as a batch of one (for the episode runners)."""
        return self._batch

    def reset(self, n_episodes: int = 1) -> None:
        """Start ``n_episodes`` parallel episodes from a zero memory."""
        self._state = self._batch.initial_state(n_episodes)

    def act(self, obs):
        """Action(s) for observation(s) ``(I,)`` or ``(B, I)``; keeps the memory between calls.

        Returns ``(O,)`` / ``(B, O)`` outputs, or an int / ``(B,)`` ints for ``argmax``.
        """
        x = check_array(obs, "obs", ndims=(1, 2), dtype=np.float64, finite=True)
        single = x.ndim == 1
        x2 = x[None] if single else x
        if x2.shape[1] != self.spec.n_inputs:
            raise ValueError(f"obs must have {self.spec.n_inputs} features, got shape {x.shape}")
        if self._state is None or self._state.h.shape[1] != len(x2):
            self.reset(len(x2))
        self._state, y = self._batch.act(self._state, x2[None])
        y = y[0]
        if single:
            return int(y[0]) if self.spec.head == "argmax" else y[0]
        return y

    def rollout(self, env, **kwargs):
        """Run episodes on ``env``: a :class:`evolino.rl.pole.PoleBalancing` (see
        :func:`evolino.rl.pole.rollout`) or a gymnasium environment id / env (see
        :func:`evolino.rl.gym.rollout`)."""
        from .pole import PoleBalancing, rollout as pole_rollout

        if isinstance(env, PoleBalancing):
            return pole_rollout(env, self, **kwargs)
        from .gym import rollout as gym_rollout

        return gym_rollout(env, self, **kwargs)

    # --- files: .npz arrays + JSON metadata, never pickle -----------------------
    def save(self, path) -> None:
        """Write ``path`` (.npz, atomically): the genome and a JSON string with spec and info."""
        meta = {"format": "evolino.rl.Policy", "version": POLICY_VERSION, "spec": self.spec.to_dict(),
                "info": self.info}
        arrays = {"genome": self.genome}
        if self.obs_norm is not None:
            arrays.update(obs_mean=self.obs_norm[0], obs_std=self.obs_norm[1])
        save_npz(path, arrays, meta)

    @classmethod
    def load(cls, path) -> "Policy":
        """Read a policy written by :meth:`save`; EvolinoError naming the file if it is not one (or another version)."""
        try:
            arrays, meta = load_npz(path, "evolino.rl.Policy", POLICY_VERSION, members=("genome", "obs_mean", "obs_std"))
        except EvolinoError as exc:
            raise EvolinoError(f"not a saved evolino policy of this version: {exc}") from None
        try:
            norm = (np.array(arrays["obs_mean"]), np.array(arrays["obs_std"])) if "obs_mean" in arrays else None
            return cls(PolicySpec.from_dict(meta_value(meta, "spec", dict, path)), np.array(arrays["genome"]),
                       meta.get("info"), norm)
        except (KeyError, TypeError, ValueError) as exc:
            raise EvolinoError(f"{path!s} is not a saved evolino policy: {type(exc).__name__}: {exc}") from exc
