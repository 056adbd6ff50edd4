"""A local process pool that keeps each worker's copy of the task data (see :mod:`evolino.evaluate`)."""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import pickle
import signal
import threading
import time
import traceback
import weakref

import numpy as np

from .._backend import single_threaded
from .._validate import EvolinoTypeError, check_choice, check_number, check_positive_int
from .base import EvaluationError, _Base, _call, _check_call, _check_result, _failure, chunk_bounds

__all__ = ["Pool"]

_SLICE = 0.1  # seconds of one wait for worker replies (see Pool._run)


def _worker_main(conn):
    """Loop of a pool worker: receive chunks (and, when new, the pickled fitness_fn), send results."""
    from threadpoolctl import threadpool_limits

    # Ctrl-C reaches the whole process group; the parent decides, and kills us if needed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)  # one BLAS thread per worker: workers share the cores
    single_threaded()  # and the serial compiled kernels
    parent = os.getppid()
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True, name="evolino-orphan-watch").start()
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


def _orphan_watch(parent, every=0.5):
    """Exit a worker whose parent died (SIGKILL), even in the middle of a chunk: nobody will read the result."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


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
    Workers start on the first :meth:`evaluate` (and again after a fault), never more
    than the population has candidates. Each holds the last ``fitness_fn`` it received,
    runs with one BLAS thread and exits, even mid-chunk, once its parent is gone. Ctrl-C
    always interrupts a call: replies are awaited in short slices and a KeyboardInterrupt
    lost in a finalizer is re-raised from a flag. A chunk whose worker dies is sent once
    more, to a fresh worker; if that one dies too, :class:`EvaluationError` stops the call.
    The result is the same either way (a candidate's fitness depends only on its genome
    and seed).
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
        self._interrupted = False
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    def _start(self, n):
        ctx = mp.get_context(self.start_method)
        try:
            for _ in range(n):
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
                raise EvolinoTypeError(
                    f"fitness_fn must be picklable to go to Pool workers (a module-level class or function, "
                    f"not a lambda or local object): {exc}"
                ) from exc
            self._fn, self._token, self._payload = fitness_fn, self._token + 1, payload
        n = min(self.n_workers, P)  # never more processes than candidates
        if len(self._workers) < n:
            self._start(n - len(self._workers))
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        restore = self._catch_sigint()
        try:
            return self._run(genomes, seeds, deadline, n)
        except BaseException:
            # A dead worker, a timeout or Ctrl-C leaves chunks in flight: replace all workers
            # (the next call restarts them) rather than read stale replies later.
            if self._in_flight:
                _kill(self._workers)
            raise
        finally:
            restore()
            self._interrupted = False

    def _catch_sigint(self):
        """Record Ctrl-C in a flag besides raising: a KeyboardInterrupt raised inside a finalizer (the
        garbage collector can run one mid-call) is discarded by Python, the flag is not. Returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:  # the caller's own handler (or SIG_IGN) stays in charge
            return lambda: None

        def handler(signum, frame):
            self._interrupted = True
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _run(self, genomes, seeds, deadline, n_workers):
        bounds = chunk_bounds(len(genomes), n_workers)
        pending = {}  # conn -> (worker, start, stop)
        retried = set()  # chunks (start) already sent to a second worker
        self._in_flight = True

        def send(w, a, b):
            payload = self._payload if w.token != self._token else None
            w.conn.send(("eval", self._token, payload, genomes[a:b], None if seeds is None else seeds[a:b]))
            w.token = self._token
            pending[w.conn] = (w, a, b)

        def died(w, a, b):
            """A worker died on chunk a..b: retry it once on a fresh worker (deterministic: a candidate's
            fitness depends on its genome and seed only), stop with EvaluationError the second time."""
            pending.pop(w.conn, None)
            if a in retried:
                raise self._died(w, a, b, retried=True)
            retried.add(a)
            w.process.join(1.0)
            w.conn.close()
            self._workers.remove(w)
            self._start(1)
            try:
                send(self._workers[-1], a, b)
            except (OSError, ValueError):
                raise self._died(self._workers[-1], a, b, retried=True) from None

        for w, (a, b) in zip(list(self._workers), bounds):
            try:
                send(w, a, b)
            except (OSError, ValueError):
                died(w, a, b)
        results, errors = {}, []
        while pending:
            if self._interrupted:  # a Ctrl-C whose KeyboardInterrupt was swallowed on the way
                raise KeyboardInterrupt
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timed_out(pending)
            sentinels = {w.process.sentinel: conn for conn, (w, _, _) in pending.items()}
            # short slices: a signal delivered to another thread does not interrupt this wait,
            # so the main thread must come back to run the Python handler
            wait = _SLICE if remaining is None else min(_SLICE, remaining)
            for obj in mpc.wait(list(pending) + list(sentinels), wait):
                if obj in sentinels:  # a worker exited
                    conn = sentinels[obj]
                    if conn in pending and not conn.poll():  # ... without replying
                        died(*pending[conn])
                    continue
                if obj not in pending:
                    continue
                w, a, b = pending.pop(obj)
                try:
                    status, value = obj.recv()
                except (EOFError, OSError):
                    pending[obj] = (w, a, b)
                    died(w, a, b)
                    continue
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

    def _died(self, w, a, b, retried=False):
        w.process.join(1.0)
        code = w.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        again = " (the chunk's second worker: it was retried once)" if retried else ""
        return EvaluationError(
            f"worker pid {w.process.pid} died ({how}) while evaluating candidates {a}..{b - 1}{again}; "
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
