"""The evaluator protocol's shared parts: errors, chunking, per-candidate seeds, the serial evaluator."""

from __future__ import annotations

import traceback

import numpy as np

from .._validate import EvolinoError, EvolinoTypeError, check_array, check_positive_int

__all__ = ["EvaluationError", "Serial", "candidate_seeds", "chunk_bounds"]


class EvaluationError(RuntimeError):
    """A fitness evaluation failed: an exception in ``fitness_fn``, a dead worker or a timeout.

    Attributes
    ----------
    start, stop : int
        The failed chunk holds candidates ``start .. stop - 1`` of the population.
    remote_traceback : str or None
        Traceback text of the exception in the worker, if it raised one.
    """

    def __init__(self, message, start=None, stop=None, remote_traceback=None):
        super().__init__(message)
        self.start, self.stop, self.remote_traceback = start, stop, remote_traceback


def chunk_bounds(n_items: int, n_chunks: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the non-empty contiguous chunks of ``np.array_split(range(n_items), n_chunks)``."""
    base, extra = divmod(n_items, n_chunks)
    bounds, start = [], 0
    for i in range(n_chunks):
        stop = start + base + (i < extra)
        if stop > start:
            bounds.append((start, stop))
        start = stop
    return bounds


def candidate_seeds(seed: int, generation: int, size: int) -> np.ndarray:
    """Per-candidate seeds ``(size,)`` uint64, a function of ``(seed, generation, index)`` only.

    Candidate ``k`` of a generation gets the same seed whatever the population is split
    into, so a randomized fitness function stays identical on every evaluator.
    """
    seed = check_positive_int(seed, "seed", minimum=0)
    generation = check_positive_int(generation, "generation", minimum=0)
    size = check_positive_int(size, "size", minimum=0)
    return np.array(
        [np.random.SeedSequence(seed, spawn_key=(generation, k)).generate_state(1, np.uint64)[0] for k in range(size)],
        dtype=np.uint64,
    )


def _check_call(fitness_fn, genomes, seeds):
    if not callable(fitness_fn):
        raise EvolinoTypeError(f"fitness_fn must be callable, got {type(fitness_fn).__name__}")
    genomes = check_array(genomes, "genomes", ndims=(2,))
    if seeds is not None:
        seeds = check_array(seeds, "seeds", ndims=(1, 2))
        if len(seeds) != len(genomes):
            raise EvolinoError(f"seeds must have one row per genome ({len(genomes)}), got shape {seeds.shape}")
    return genomes, seeds


def _call(fitness_fn, chunk, seeds):
    """Fitness of one chunk as float64 ``(m,)``; the shape is checked by the caller."""
    out = fitness_fn(chunk) if seeds is None else fitness_fn(chunk, seeds)
    return np.asarray(out, dtype=np.float64)


def _check_result(out, start, stop):
    if out.shape != (stop - start,):
        raise EvolinoError(
            f"fitness_fn must return shape ({stop - start},) for a chunk of {stop - start} genomes "
            f"(candidates {start}..{stop - 1}), got {out.shape}"
        )
    return out


def _failure(start, stop, where, tb):
    msg = f"fitness_fn raised on candidates {start}..{stop - 1} ({where}):\n{tb}"
    return EvaluationError(msg, start, stop, tb)


class _Base:
    """Context-manager plumbing shared by the evaluators."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release workers; the evaluator can still be used afterwards (they restart)."""


class Serial(_Base):
    """Evaluates the whole population in this process with one call of ``fitness_fn``.

    BLAS is limited to one thread during the call, as in every pool worker: the
    kernel's products are small, and a second BLAS thread made small LAPACK calls
    (the readout's least-squares fallback) up to 40x slower on a loaded 2-core
    machine, while it never made them measurably faster.

    Examples
    --------
    >>> import numpy as np
    >>> Serial().evaluate(lambda g: (g ** 2).sum(axis=1), np.ones((3, 2)))
    array([2., 2., 2.])
    """

    n_workers = 1

    def evaluate(self, fitness_fn, genomes, seeds=None) -> np.ndarray:
        """Fitness ``(P,)`` float64 of ``genomes`` ``(P, n)``; ``seeds`` ``(P, ...)`` are passed along if given."""
        genomes, seeds = _check_call(fitness_fn, genomes, seeds)
        P = len(genomes)
        if P == 0:
            return np.empty(0)
        try:
            with _one_blas_thread():
                out = _call(fitness_fn, genomes, seeds)
        except Exception as exc:
            raise _failure(0, P, "in this process", traceback.format_exc()) from exc
        return _check_result(out, 0, P)


_CONTROLLER = None


def _one_blas_thread():
    """Context manager limiting BLAS/OpenMP to one thread (the controller is built once: it is slow)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)
