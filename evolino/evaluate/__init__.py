"""Evaluators: map a fitness function over a population, in this process, a local pool or a Ray cluster.

All evaluators share one protocol::

    fitness = evaluator.evaluate(fitness_fn, genomes)      # (P, n) -> (P,) float64
    evaluator.close()                                      # or: with evaluator: ...

``fitness_fn`` is a picklable callable object that holds the task data (sequences,
environment settings) and maps a block of genomes ``(m, n)`` to fitness ``(m,)``.
The population is split into **contiguous chunks, one per worker**
(``np.array_split``), so every worker still runs the population-batched kernel on its
chunk; splitting into more, smaller chunks than workers only adds overhead.

Task data travel once: a worker receives (unpickles) ``fitness_fn`` the first time it
sees that object and keeps it; it is sent again only when a *different* object is
passed. Treat a fitness function as immutable: to change its data, pass a new object.

Determinism: a candidate's fitness must not depend on which other candidates share
its chunk, so every evaluator gives bit-identical results (``evolino.lstm.forward`` is
chunk-invariant, and BLAS threads are pinned to one per worker). A fitness function
that needs randomness must not draw from a stream shared by the chunk; it takes
per-candidate seeds instead::

    class NoisyFitness:
        def __call__(self, genomes, seeds):              # (m, n), (m,)
            out = np.empty(len(genomes))
            for k, (g, s) in enumerate(zip(genomes, seeds)):
                rng = np.random.default_rng(s)           # depends on the candidate only
                out[k] = ...
            return out

    seeds = candidate_seeds(seed, generation, len(genomes))
    fitness = evaluator.evaluate(NoisyFitness(), genomes, seeds=seeds)

Faults: an exception raised by ``fitness_fn``, a worker that dies (killed, segfault) and
a call that exceeds ``timeout`` all raise :class:`EvaluationError` naming the candidate
range, with the worker's traceback text when there is one; never a hang. Workers are
shut down on :meth:`close`, on Ctrl-C during a call, when the evaluator is garbage
collected and at interpreter exit.
"""

from __future__ import annotations

from .._validate import EvolinoError, EvolinoTypeError, check_choice, check_positive_int
from .base import EvaluationError, Serial, candidate_seeds, chunk_bounds
from .pool import Pool
from .ray import Ray

__all__ = ["EvaluationError", "Serial", "Pool", "Ray", "make_evaluator", "candidate_seeds", "chunk_bounds"]


_NAMES = ("serial", "pool", "ray")


def make_evaluator(name_or_obj=None, n_jobs=None, **kw):
    """An evaluator from a name, or ``name_or_obj`` itself if it already is one.

    Parameters
    ----------
    name_or_obj : {'serial', 'pool', 'ray'}, evaluator or None
        ``None`` picks ``'serial'`` when ``n_jobs`` is None or 1, else ``'pool'``.
    n_jobs : int, optional
        Workers (``n_workers``); ``-1`` or None = all CPUs (all of the cluster's for Ray).
    **kw
        Other arguments of the evaluator: ``start_method``, ``timeout`` (Pool);
        ``address``, ``timeout``, ``ray.init`` arguments (Ray).

    Returns
    -------
    evaluator
        Close it when done (``with make_evaluator(...) as ev:``) if this call created it.
    """
    if name_or_obj is not None and not isinstance(name_or_obj, str):
        if not callable(getattr(name_or_obj, "evaluate", None)):
            raise EvolinoTypeError(f"evaluator must be one of {list(_NAMES)} or have an evaluate method, got {name_or_obj!r}")
        if n_jobs is not None or kw:
            raise EvolinoError("n_jobs and options apply only when the evaluator is given by name")
        return name_or_obj
    if n_jobs is not None and n_jobs != -1:
        n_jobs = check_positive_int(n_jobs, "n_jobs")
    name = name_or_obj if name_or_obj is not None else ("serial" if n_jobs in (None, 1) else "pool")
    check_choice(name, "evaluator", _NAMES)
    if name == "serial":
        if n_jobs not in (None, 1):
            raise EvolinoError(f"the serial evaluator uses one process; got n_jobs={n_jobs}")
        if kw:
            raise EvolinoTypeError(f"Serial takes no options, got {sorted(kw)}")
        return Serial()
    if name == "pool":
        return Pool(n_workers=n_jobs, **kw)
    return Ray(n_workers=n_jobs, **kw)
