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

import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import pickle
import signal
import time
import traceback
import warnings
import weakref

import numpy as np

from ._validate import check_array, check_choice, check_number, check_positive_int

__all__ = ["EvaluationError", "Serial", "Pool", "Ray", "make_evaluator", "candidate_seeds", "chunk_bounds"]


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
        raise TypeError(f"fitness_fn must be callable, got {type(fitness_fn).__name__}")
    genomes = check_array(genomes, "genomes", ndims=(2,))
    if seeds is not None:
        seeds = check_array(seeds, "seeds", ndims=(1, 2))
        if len(seeds) != len(genomes):
            raise ValueError(f"seeds must have one row per genome ({len(genomes)}), got shape {seeds.shape}")
    return genomes, seeds


def _call(fitness_fn, chunk, seeds):
    """Fitness of one chunk as float64 ``(m,)``; the shape is checked by the caller."""
    out = fitness_fn(chunk) if seeds is None else fitness_fn(chunk, seeds)
    return np.asarray(out, dtype=np.float64)


def _check_result(out, start, stop):
    if out.shape != (stop - start,):
        raise ValueError(
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


# --------------------------------------------------------------------------- Pool
def _worker_main(conn):
    """Loop of a pool worker: receive chunks (and, when new, the pickled fitness_fn), send results."""
    from threadpoolctl import threadpool_limits

    # Ctrl-C reaches the whole process group; the parent decides, and kills us if needed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)  # one BLAS thread per worker: workers share the cores
    parent = os.getppid()
    fn, token = None, None
    while True:
        # Wake up regularly to notice an orphaning (parent killed with SIGKILL).
        if not conn.poll(1.0):
            if os.getppid() != parent:
                return
            continue
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        _, new_token, payload, chunk, seeds = msg
        try:
            if payload is not None:
                fn, token = None, None  # a failed load must not leave the previous fn in use
                fn, token = pickle.loads(payload), new_token
            if token != new_token:
                raise RuntimeError("this worker holds no fitness_fn (an earlier transfer failed)")
            reply = ("ok", _call(fn, chunk, seeds))
        except Exception:
            reply = ("err", traceback.format_exc())
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    __slots__ = ("process", "conn", "token")

    def __init__(self, process, conn):
        self.process, self.conn, self.token = process, conn, None


def _shutdown(workers, grace=1.0):
    """Stop worker processes: ask politely, then terminate, then kill; always reap (no zombies)."""
    for w in workers:
        try:
            w.conn.send(("stop",))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + grace
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.process.is_alive():
            w.process.terminate()
            w.process.join(0.5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()
    workers.clear()


def _kill(workers):
    """Stop workers at once (they may be mid-chunk): used on faults, timeouts and Ctrl-C."""
    for w in workers:
        if w.process.is_alive():
            w.process.kill()
    for w in workers:
        w.process.join()
        w.conn.close()
    workers.clear()


def _default_n_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class Pool(_Base):
    """Local worker processes, one contiguous chunk of the population each.

    Parameters
    ----------
    n_workers : int, optional
        Number of processes; default: the CPUs this process may use. ``-1`` means the same.
    start_method : {'fork', 'spawn', 'forkserver'}, optional
        ``multiprocessing`` start method; default: the platform's. With ``spawn`` and
        ``forkserver`` the class of ``fitness_fn`` must be importable by the workers.
    timeout : float, optional
        Seconds one :meth:`evaluate` call may take (including worker start-up on the
        first call and sending a new ``fitness_fn``); then the workers are killed and
        :class:`EvaluationError` is raised.

    Notes
    -----
    Workers start on the first :meth:`evaluate` (and again after a fault). Each holds
    the last ``fitness_fn`` it received and runs with one BLAS thread.
    """

    def __init__(self, n_workers=None, start_method=None, timeout=None):
        if n_workers is None or n_workers == -1:
            n_workers = _default_n_workers()
        self.n_workers = check_positive_int(n_workers, "n_workers")
        if start_method is not None:
            check_choice(start_method, "start_method", mp.get_all_start_methods())
        self.start_method = start_method
        self.timeout = None if timeout is None else check_number(timeout, "timeout", low=0.0, low_open=True)
        self._workers: list[_Worker] = []
        self._fn, self._token, self._payload = None, 0, None
        self._in_flight = False
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    def _start(self):
        ctx = mp.get_context(self.start_method)
        try:
            for _ in range(self.n_workers):
                parent_end, child_end = ctx.Pipe(duplex=True)
                p = ctx.Process(target=_worker_main, args=(child_end,), daemon=True, name="evolino-pool-worker")
                p.start()
                child_end.close()
                self._workers.append(_Worker(p, parent_end))
        except BaseException:
            _kill(self._workers)
            raise

    def evaluate(self, fitness_fn, genomes, seeds=None) -> np.ndarray:
        """Fitness ``(P,)`` float64 of ``genomes`` ``(P, n)``, one contiguous chunk per worker.

        Parameters
        ----------
        fitness_fn : picklable callable
            ``fitness_fn(chunk (m, n)) -> (m,)``, or ``fitness_fn(chunk, seeds_chunk)`` when ``seeds`` is given.
        genomes : array of shape (P, n)
        seeds : array of shape (P,) or (P, k), optional
            Per-candidate seeds, split like ``genomes`` (see :func:`candidate_seeds`).

        Raises
        ------
        EvaluationError
            ``fitness_fn`` raised, a worker died, or the call took longer than ``timeout``.
        """
        genomes, seeds = _check_call(fitness_fn, genomes, seeds)
        P = len(genomes)
        if P == 0:
            return np.empty(0)
        if fitness_fn is not self._fn:
            try:  # fail here, not in a worker
                payload = pickle.dumps(fitness_fn, protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise TypeError(
                    f"fitness_fn must be picklable to go to Pool workers (a module-level class or function, "
                    f"not a lambda or local object): {exc}"
                ) from exc
            self._fn, self._token, self._payload = fitness_fn, self._token + 1, payload
        if not self._workers:
            self._start()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            return self._run(genomes, seeds, deadline)
        except BaseException:
            # A dead worker, a timeout or Ctrl-C leaves chunks in flight: replace all workers
            # (the next call restarts them) rather than read stale replies later.
            if self._in_flight:
                _kill(self._workers)
            raise

    def _run(self, genomes, seeds, deadline):
        bounds = chunk_bounds(len(genomes), self.n_workers)
        pending = {}  # conn -> (worker, start, stop)
        self._in_flight = True
        for w, (a, b) in zip(self._workers, bounds):
            payload = self._payload if w.token != self._token else None
            try:
                w.conn.send(("eval", self._token, payload, genomes[a:b], None if seeds is None else seeds[a:b]))
            except (OSError, ValueError):
                raise self._died(w, a, b) from None
            w.token = self._token
            pending[w.conn] = (w, a, b)
        results, errors = {}, []
        while pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timed_out(pending)
            sentinels = {w.process.sentinel: conn for conn, (w, _, _) in pending.items()}
            for obj in mpc.wait(list(pending) + list(sentinels), remaining):
                if obj in sentinels:  # a worker exited
                    conn = sentinels[obj]
                    if conn in pending and not conn.poll():  # ... without replying
                        raise self._died(*pending[conn])
                    continue
                if obj not in pending:
                    continue
                w, a, b = pending.pop(obj)
                try:
                    status, value = obj.recv()
                except (EOFError, OSError):
                    raise self._died(w, a, b) from None
                if status == "ok":
                    results[a] = value
                else:
                    w.token = None  # it may have lost its fitness_fn: resend next time
                    errors.append(_failure(a, b, f"worker pid {w.process.pid}", value))
        self._in_flight = False
        if errors:
            raise errors[0]
        return np.concatenate([_check_result(results[a], a, b) for a, b in bounds])

    def _timed_out(self, pending):
        first = min(a for _, a, _ in pending.values())
        last = max(b for _, _, b in pending.values())
        return EvaluationError(
            f"evaluation timed out after {self.timeout} s with candidates {first}..{last - 1} unfinished; "
            "the workers were killed",
            first,
            last,
        )

    def _died(self, w, a, b):
        w.process.join(1.0)
        code = w.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return EvaluationError(
            f"worker pid {w.process.pid} died ({how}) while evaluating candidates {a}..{b - 1}; "
            "the pool was restarted",
            a,
            b,
        )

    def close(self):
        """Stop and reap the worker processes (they restart if :meth:`evaluate` is called again)."""
        _shutdown(self._workers)
        self._fn, self._payload = None, None

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first call and after close)."""
        return [w.process.pid for w in self._workers]


# --------------------------------------------------------------------------- Ray
class _RayWorker:
    """Ray actor body: holds one fitness_fn and evaluates chunks with it."""

    def __init__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(1)
        self._fn, self._token = None, None

    def load(self, token, fitness_fn):
        self._fn, self._token = fitness_fn, token
        return os.getpid()

    def evaluate(self, token, chunk, seeds):
        if token != self._token:
            raise RuntimeError("this actor holds no fitness_fn (an earlier transfer failed)")
        return _call(self._fn, chunk, seeds)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray evaluator needs ray: pip install evolino[ray]") from exc
    return ray


class Ray(_Base):
    """Ray actors, one contiguous chunk of the population each; runs on one machine or a cluster.

    Parameters
    ----------
    address : str, optional
        Passed to ``ray.init`` when Ray is not initialized yet: ``None`` starts a local
        Ray instance, ``"auto"`` joins the cluster started on this machine by
        ``ray start``, ``"ray://host:10001"`` connects a client. Ignored if the program
        already called ``ray.init``.
    n_workers : int, optional
        Number of actors (one CPU each); default: all CPUs of the cluster.
    timeout : float, optional
        Seconds one :meth:`evaluate` call may take (including starting the actors and
        loading a new ``fitness_fn``) before :class:`EvaluationError`.
    **init_kwargs
        More ``ray.init`` arguments, e.g. ``runtime_env={"working_dir": "."}`` so that
        the cluster's nodes can import the fitness function's module.

    Notes
    -----
    The fitness function is put in the object store once (``ray.put``) and loaded by
    every actor once; afterwards only the chunks travel. The Ray instance is shut down
    by :meth:`close` only if this evaluator started it.
    """

    def __init__(self, address=None, n_workers=None, *, timeout=None, **init_kwargs):
        self.address = address
        self.n_workers = None if n_workers is None or n_workers == -1 else check_positive_int(n_workers, "n_workers")
        self.timeout = None if timeout is None else check_number(timeout, "timeout", low=0.0, low_open=True)
        self.init_kwargs = init_kwargs
        self._ray = _import_ray()
        self._actors: list = []
        self._owns_ray = False
        self._fn, self._token = None, 0

    def _start(self):
        ray = self._ray
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._owns_ray = True
        self._check_resources()
        # SPREAD puts the actors on different nodes of a cluster before doubling up.
        cls = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_RayWorker)
        self._actors = [cls.remote() for _ in range(self.n_workers)]
        self._loaded = [None] * self.n_workers

    def _check_resources(self):
        cpus = int(self._ray.cluster_resources().get("CPU", 0))
        if self.n_workers is None:
            self.n_workers = max(1, cpus)
        elif self.n_workers > cpus:
            warnings.warn(
                f"Ray evaluator: {self.n_workers} actors but the Ray cluster has {cpus} CPUs; the extra actors "
                "wait until CPUs join (an autoscaler), so calls may not finish: set n_workers or timeout",
                stacklevel=3,
            )

    def _remaining(self, deadline):
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def evaluate(self, fitness_fn, genomes, seeds=None) -> np.ndarray:
        """Fitness ``(P,)`` float64 of ``genomes`` ``(P, n)``; same parameters as :meth:`Pool.evaluate`."""
        genomes, seeds = _check_call(fitness_fn, genomes, seeds)
        P = len(genomes)
        if P == 0:
            return np.empty(0)
        ray = self._ray
        if not self._actors:
            self._start()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            if fitness_fn is not self._fn:
                self._fn, self._token = fitness_fn, self._token + 1
                self._ref = ray.put(fitness_fn)
            bounds = chunk_bounds(P, self.n_workers)
            stale = [i for i in range(len(bounds)) if self._loaded[i] != self._token]
            if stale:
                loads = [self._actors[i].load.remote(self._token, self._ref) for i in stale]
                self._get(loads, [bounds[i] for i in stale], deadline, "loading fitness_fn")
                for i in stale:
                    self._loaded[i] = self._token
            refs = [
                self._actors[i].evaluate.remote(self._token, genomes[a:b], None if seeds is None else seeds[a:b])
                for i, (a, b) in enumerate(bounds)
            ]
            results = self._get(refs, bounds, deadline, "evaluating")
        except BaseException as exc:
            if not isinstance(exc, EvaluationError) or exc.remote_traceback is None:
                self._kill_actors()  # dead, timed out or interrupted: start afresh next call
            raise
        out = np.empty(P)
        for (a, b), r in zip(bounds, results):
            out[a:b] = _check_result(np.asarray(r, dtype=np.float64), a, b)
        return out

    def _get(self, refs, bounds, deadline, what):
        """Results of ``refs`` in order; the first failure becomes an EvaluationError at once."""
        ray = self._ray
        index = {ref: i for i, ref in enumerate(refs)}
        results = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=self._remaining(deadline))
            if not done:
                first, last = min(bounds[index[r]][0] for r in pending), max(bounds[index[r]][1] for r in pending)
                raise EvaluationError(
                    f"{what} timed out after {self.timeout} s with candidates {first}..{last - 1} unfinished; "
                    "the actors were killed",
                    first,
                    last,
                )
            i = index[done[0]]
            a, b = bounds[i]
            try:
                results[i] = ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                self._loaded[i] = None
                raise _failure(a, b, f"Ray actor {i}, {what}", str(exc)) from None
            except ray.exceptions.RayActorError as exc:
                raise EvaluationError(
                    f"Ray actor {i} died while {what} candidates {a}..{b - 1}; the actors were restarted:\n{exc}",
                    a,
                    b,
                ) from None
        return results

    def _kill_actors(self):
        for actor in self._actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already dead or Ray already shut down
                pass
        self._actors = []
        self._fn = None

    def close(self):
        """Kill the actors; shut Ray down if this evaluator started it."""
        if self._actors:
            self._kill_actors()
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_ray = False


# --------------------------------------------------------------------------- factory
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
            raise TypeError(f"evaluator must be one of {list(_NAMES)} or have an evaluate method, got {name_or_obj!r}")
        if n_jobs is not None or kw:
            raise ValueError("n_jobs and options apply only when the evaluator is given by name")
        return name_or_obj
    if n_jobs is not None and n_jobs != -1:
        n_jobs = check_positive_int(n_jobs, "n_jobs")
    name = name_or_obj if name_or_obj is not None else ("serial" if n_jobs in (None, 1) else "pool")
    check_choice(name, "evaluator", _NAMES)
    if name == "serial":
        if n_jobs not in (None, 1):
            raise ValueError(f"the serial evaluator uses one process; got n_jobs={n_jobs}")
        if kw:
            raise TypeError(f"Serial takes no options, got {sorted(kw)}")
        return Serial()
    if name == "pool":
        return Pool(n_workers=n_jobs, **kw)
    return Ray(n_workers=n_jobs, **kw)
