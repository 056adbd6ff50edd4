"""The ask/tell protocol every search strategy follows, and the helpers they share.

Protocol (lower fitness is better)::

    genomes = strategy.ask()        # (P, n) with P = strategy.popsize
    strategy.tell(fitness)          # (P,); NaN / inf count as the worst values
    genome, f = strategy.best       # best ever told (copies)
    strategy.generation, strategy.evaluations, strategy.stop()
    d = strategy.state_dict(); other.load_state_dict(d)   # exact resume

``state_dict()`` holds only numpy arrays, python scalars and strings, so it can be
written with ``np.savez`` (arrays) plus JSON (scalars); ``load_state_dict`` also
accepts the 0-d arrays that ``np.load`` returns for scalars.
"""

from __future__ import annotations

import json

import numpy as np

from .._validate import as_rng, check_array

__all__ = ["SearchStrategy", "clean_fitness", "rng_to_str", "rng_from_str"]


def clean_fitness(fitness, popsize: int) -> np.ndarray:
    """``fitness`` as float64 ``(popsize,)`` with NaN and +-inf replaced by ``+inf`` (the worst).

    ``-inf`` is a legitimate "infinitely good" value in principle, but in practice it
    comes from an overflow, so it is treated as broken, like NaN.
    """
    f = check_array(fitness, "fitness", ndims=(1,), dtype=np.float64)
    if f.shape[0] != popsize:
        raise ValueError(f"fitness must have shape ({popsize},) (one value per asked genome), got {f.shape}")
    return np.where(np.isfinite(f), f, np.inf)


def check_mean(x0) -> np.ndarray:
    """The initial mean ``x0`` as a finite float64 vector ``(n,)``, ``n >= 1`` (ValueError otherwise)."""
    x0 = check_array(x0, "x0", ndims=(1,), dtype=np.float64, finite=True)
    if x0.size < 1:
        raise ValueError("x0 must not be empty")
    return x0


def check_sigmas(sigma0, n: int) -> np.ndarray:
    """Per-gene step sizes ``(n,)`` from a scalar or an array ``sigma0``; every entry finite and > 0."""
    s = check_array(np.broadcast_to(np.asarray(sigma0, dtype=np.float64), (n,)), "sigma0", dtype=np.float64,
                    finite=True)
    if np.any(s <= 0):
        raise ValueError("sigma0 must be > 0 (every entry)")
    return s.copy()


def rng_to_str(rng: np.random.Generator) -> str:
    """The full state of ``rng`` as a JSON string (its 128-bit integers do not fit an array)."""
    return json.dumps(rng.bit_generator.state)


def rng_from_str(rng: np.random.Generator, state: str) -> None:
    """Restore ``rng`` in place from :func:`rng_to_str`'s output."""
    state = json.loads(str(state))
    name = type(rng.bit_generator).__name__
    if state.get("bit_generator") != name:
        raise ValueError(f"state_dict holds a {state.get('bit_generator')} generator state, this strategy uses {name}")
    rng.bit_generator.state = state


def scalar(d: dict, key: str, kind=float):
    """``d[key]`` as a python scalar of ``kind``; unwraps the 0-d arrays ``np.load`` returns."""
    if key not in d:
        raise ValueError(f"state_dict is missing {key!r}")
    v = d[key]
    if isinstance(v, np.ndarray):
        if v.ndim != 0:
            raise ValueError(f"state_dict[{key!r}] must be a scalar, got shape {v.shape}")
        v = v.item()
    if kind is str:
        return str(v)
    if v is None:
        return None
    return kind(v)


def array(d: dict, key: str, dtype=np.float64) -> np.ndarray:
    if key not in d:
        raise ValueError(f"state_dict is missing {key!r}")
    return np.array(d[key], dtype=dtype)


class SearchStrategy:
    """Bookkeeping shared by all strategies: counters, best ever, the pending population.

    Subclasses implement ``_sample() -> (P, n)`` (draw the next population) and
    ``_update(genomes, fitness, improved)`` (learn from a told generation: fitness
    cleaned, ``improved`` whether it beat the best ever).

    ``ask()`` called twice without ``tell`` returns the same population again (it is
    drawn once and kept until told), so a crashed evaluation can simply be retried.
    """

    def __init__(self, n_params: int, seed):
        self.seed = seed
        self.rng = as_rng(seed)
        self.n_params = int(n_params)
        self.generation = 0
        self.evaluations = 0
        self._best_x = None
        self._best_f = float("inf")
        self._pending = None  # (P, n) genomes asked but not yet told

    # --- protocol ---------------------------------------------------------
    @property
    def popsize(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def best(self):
        """``(genome (n,), fitness)``: the best genome ever told and its fitness.

        Before the first ``tell`` it is ``(None, inf)``.
        """
        return (None if self._best_x is None else self._best_x.copy()), self._best_f

    def ask(self) -> np.ndarray:
        """The next population, ``(popsize, n_params)`` float64 (a copy)."""
        if self._pending is None:
            self._pending = self._sample()
        return self._pending.copy()

    def tell(self, fitness) -> None:
        """Report the fitness ``(popsize,)`` of the last asked population (lower is better)."""
        if self._pending is None:
            raise RuntimeError("tell() called without a preceding ask()")
        f = clean_fitness(fitness, len(self._pending))
        genomes = self._pending
        i = int(np.argmin(f))
        # a population of only broken values leaves best at its initial (None, inf)
        improved = bool(f[i] < self._best_f)
        if improved:
            self._best_f = float(f[i])
            self._best_x = genomes[i].copy()
        self._pending = None
        self.generation += 1
        self.evaluations += len(f)
        self._update(genomes, f, improved)

    def stop(self) -> dict:
        """Termination reasons; empty means go on."""
        return {}

    # --- state shared by all strategies ------------------------------------
    def _base_state(self) -> dict:
        d = {
            "generation": int(self.generation),
            "evaluations": int(self.evaluations),
            "best_f": float(self._best_f),
            "best_x": np.full(self.n_params, np.nan) if self._best_x is None else self._best_x.copy(),
            "rng": rng_to_str(self.rng),
            "pending": np.zeros((0, self.n_params)) if self._pending is None else self._pending.copy(),
        }
        return d

    def _load_base_state(self, d: dict) -> None:
        best_x = array(d, "best_x")
        pending = array(d, "pending")
        if best_x.shape != (self.n_params,) or pending.ndim != 2 or pending.shape[1] != self.n_params:
            raise ValueError("state_dict was saved by a strategy with a different number of parameters")
        self.generation = scalar(d, "generation", int)
        self.evaluations = scalar(d, "evaluations", int)
        self._best_f = scalar(d, "best_f", float)
        self._best_x = None if np.isinf(self._best_f) else best_x
        rng_from_str(self.rng, scalar(d, "rng", str))
        self._pending = pending if len(pending) else None

    def __repr__(self):
        return (f"{type(self).__name__}(n_params={self.n_params}, popsize={self.popsize}, "
                f"generation={self.generation}, best={self._best_f:.6g})")
