"""Ray actors, on one machine or a cluster (optional extra ``evolino[ray]``; see :mod:`evolino.evaluate`)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import warnings

import numpy as np

from .._backend import single_threaded
from .._validate import EvolinoError, check_number, check_positive_int
from .base import EvaluationError, _Base, _call, _check_call, _check_result, _failure, chunk_bounds

__all__ = ["Ray"]


class _RayWorker:
    """Ray actor body: holds one fitness_fn and evaluates chunks with it."""

    def __init__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(1)
        single_threaded()  # the serial compiled kernels, as BLAS: actors share the cores
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
    connect_timeout : float, default=60
        Seconds joining the cluster at ``address`` may take before an
        :class:`~evolino.EvolinoError` naming the address (an unreachable host or port
        fails at once).
    **init_kwargs
        More ``ray.init`` arguments, e.g. ``runtime_env={"working_dir": "."}`` so that
        the cluster's nodes can import the fitness function's module.

    Notes
    -----
    The fitness function is put in the object store once (``ray.put``) and loaded by
    every actor once; afterwards only the chunks travel. A chunk whose actor dies is sent
    once more to a fresh actor (same result: a candidate's fitness depends only on its
    genome and seed); a second death stops the call with :class:`EvaluationError`. The Ray instance is shut down
    by :meth:`close` only if this evaluator started it.
    """

    def __init__(self, address=None, n_workers=None, *, timeout=None, connect_timeout=60.0, **init_kwargs):
        self.address = address
        self.connect_timeout = check_number(connect_timeout, "connect_timeout", low=0.0, low_open=True)
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
            self._init()
            self._owns_ray = True
        self._check_resources()
        # SPREAD puts the actors on different nodes of a cluster before doubling up.
        self._cls = cls = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_RayWorker)
        self._actors = [cls.remote() for _ in range(self.n_workers)]
        self._loaded = [None] * self.n_workers

    def _init(self):
        """``ray.init``, bounded by ``connect_timeout`` when joining a cluster: a wrong address is an error
        naming it within seconds, not a wait of minutes."""
        ray, address, limit = self._ray, self.address, self.connect_timeout
        hint = ("check the address (`ray status` on the head node prints it) or start a cluster there with "
                "`ray start --head`")
        if isinstance(address, str) and address not in ("auto", "local"):
            host, _, port = address.split("://", 1)[-1].rpartition(":")
            if host and port.isdigit():  # nothing listening, or no route: known at once
                try:
                    socket.create_connection((host, int(port)), timeout=limit).close()
                except OSError as exc:
                    raise EvolinoError(f"cannot reach a Ray cluster at address={address!r} ({exc}); {hint}") from None
        alarm = address is not None and hasattr(signal, "setitimer") \
            and threading.current_thread() is threading.main_thread()
        if alarm:  # something listens but may not answer as Ray does: bound the handshake too
            def expired(signum, frame):
                raise TimeoutError

            previous = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            ray.init(address=address, **self.init_kwargs)
        except TimeoutError:
            try:
                ray.shutdown()
            except Exception:  # a half-made connection: nothing more to release
                pass
            raise EvolinoError(f"Ray did not connect to address={address!r} within {limit} s "
                               f"(connect_timeout); {hint}") from None
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

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
            def submit(i):
                a, b = bounds[i]
                return self._actors[i].evaluate.remote(self._token, genomes[a:b], None if seeds is None else seeds[a:b])

            def resubmit(i):  # a fresh actor for a dead one's chunk: loads fitness_fn, then evaluates (in order)
                try:
                    ray.kill(self._actors[i])
                except Exception:  # already gone
                    pass
                self._actors[i] = self._cls.remote()
                self._actors[i].load.remote(self._token, self._ref)
                self._loaded[i] = self._token
                return submit(i)

            refs = [submit(i) for i in range(len(bounds))]
            results = self._get(refs, bounds, deadline, "evaluating", resubmit)
        except BaseException as exc:
            if not isinstance(exc, EvaluationError) or exc.remote_traceback is None:
                self._kill_actors()  # dead, timed out or interrupted: start afresh next call
            raise
        out = np.empty(P)
        for (a, b), r in zip(bounds, results):
            out[a:b] = _check_result(np.asarray(r, dtype=np.float64), a, b)
        return out

    def _get(self, refs, bounds, deadline, what, resubmit=None):
        """Results of ``refs`` in order; the first failure becomes an EvaluationError at once, except a dead
        actor's chunk, sent once more to a fresh actor by ``resubmit(i) -> ref`` when given."""
        ray = self._ray
        index = {ref: i for i, ref in enumerate(refs)}
        results = [None] * len(refs)
        pending = list(refs)
        retried = set()
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
                if resubmit is not None and i not in retried:
                    retried.add(i)
                    ref = resubmit(i)
                    index[ref] = i
                    pending.append(ref)
                    continue
                again = " (retried once on a fresh actor)" if i in retried else ""
                raise EvaluationError(
                    f"Ray actor {i} died while {what} candidates {a}..{b - 1}{again}; the actors were restarted:"
                    f"\n{exc}",
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
