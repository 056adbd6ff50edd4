"""Evaluators: identical fitness on Serial, Pool (fork, spawn) and Ray; faults; task data sent once.

The reference for "same fitness" is each candidate evaluated alone in this process
(``fitness(genome[None])``), which involves no evaluator and no chunking at all.

The fitness classes live at module level so that spawned workers can unpickle them:
spawn children inherit the parent's ``sys.path`` (which conftest.py extends with
tests/), and Ray actors get tests/ through ``PYTHONPATH`` in the fixture below.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from evolino.evaluate import (
    EvaluationError,
    Pool,
    Ray,
    Serial,
    candidate_seeds,
    chunk_bounds,
    make_evaluator,
)
from evolino.loop import run_search
from evolino.lstm import LSTMSpec, forward
from evolino.readout import Linear
from evolino.trainer import Evolino

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- fitness functions
class LSTMFitness:
    """Evolino-style fitness: pseudo-inverse readout on a training part, MSE on a held-out part."""

    def __init__(self, spec, series, washout=20, n_train=150):
        self.spec, self.washout, self.n_train = spec, washout, n_train
        self.X = series[:-1]  # (T, 1) input
        self.Y = series[1:]  # (T, 1) next-step target

    def __call__(self, genomes):  # (m, n) -> (m,)
        S = forward(self.spec, genomes, self.X)[:, self.washout :]  # (m, T - washout, H)
        Y = self.Y[self.washout :]
        n = self.n_train
        pred = Linear().fit(S[:, :n], Y[:n]).predict(S[:, n:])  # (m, T_test, 1)
        return ((pred - Y[n:]) ** 2).mean(axis=(1, 2))


class SeededFitness:
    """A randomized fitness that draws only from per-candidate seeds."""

    def __call__(self, genomes, seeds):
        noise = np.array([np.random.default_rng(s).normal() for s in seeds])
        return (genomes**2).sum(axis=1) + noise


_LOADS = {}  # uid -> times a CountingFitness with that uid was unpickled in this process


class CountingFitness:
    """Returns how often this process has unpickled (received) this fitness object."""

    def __init__(self, uid):
        self.uid = uid

    def __setstate__(self, state):
        self.__dict__.update(state)
        _LOADS[self.uid] = _LOADS.get(self.uid, 0) + 1

    def __call__(self, genomes):
        return np.full(len(genomes), float(_LOADS.get(self.uid, 0)))


class RaisingFitness:
    """Raises on the chunk that holds a genome whose first gene is ``marker``."""

    def __init__(self, marker=-7.0):
        self.marker = marker

    def __call__(self, genomes):
        if np.any(genomes[:, 0] == self.marker):
            raise ArithmeticError("bad candidate in this chunk")
        return genomes.sum(axis=1)


class KillingFitness:
    """SIGKILLs the worker that gets the marked genome (never the test process itself)."""

    def __init__(self, marker=-9.0):
        self.marker, self.main_pid = marker, os.getpid()

    def __call__(self, genomes):
        if np.any(genomes[:, 0] == self.marker) and os.getpid() != self.main_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return genomes.sum(axis=1)


class SleepingFitness:
    def __init__(self, seconds):
        self.seconds = seconds

    def __call__(self, genomes):
        time.sleep(self.seconds)
        return genomes.sum(axis=1)


class StartedSleepingFitness:
    """Touches ``flag`` once its chunk has started, then sleeps: a test waits for the signal, not a timer."""

    def __init__(self, flag, seconds):
        self.flag, self.seconds = flag, seconds

    def __call__(self, genomes):
        with open(self.flag, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(self.seconds)
        return genomes.sum(axis=1)


class KillOnceFitness:
    """SIGKILLs its worker on a chunk holding a negative genome the first time only (``flag`` marks it)."""

    def __init__(self, flag):
        self.flag = flag

    def __call__(self, genomes):
        if (genomes[:, 0] < 0).any() and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return genomes.sum(axis=1)


def _wait_for(path, within=30.0):
    deadline = time.monotonic() + within
    while not os.path.exists(path) or not open(path).read():
        assert time.monotonic() < deadline, f"no chunk started within {within} s"
        time.sleep(0.01)


class BadShapeFitness:
    def __call__(self, genomes):
        return np.zeros(len(genomes) + 1)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(42)
    spec = LSTMSpec(1, 6)
    t = np.arange(301)
    series = (np.sin(0.2 * t) + np.sin(0.311 * t))[:, None]
    genomes = spec.init(rng, 23)  # odd size: uneven chunks
    fitness = LSTMFitness(spec, series)
    reference = np.array([fitness(g[None])[0] for g in genomes])
    return fitness, genomes, reference


def _evolino_run(evaluator):
    """History (without wall times) and best genome of a short Evolino run on two sines."""
    t = np.arange(300)
    Y = (np.sin(0.2 * t) + np.sin(0.311 * t))[:, None]
    est = Evolino(5, washout=50, popsize=20, max_generations=3, seed=3, evaluator=evaluator)
    net = est.fit(Y)
    history = {k: v for k, v in est.history_.items() if k != "time"}
    return history, est.strategy_.best[0].tobytes(), net


@pytest.fixture(scope="module")
def serial_run():
    return _evolino_run(Serial())


def _assert_same_run(run, reference):
    assert run[0] == reference[0]
    assert run[1] == reference[1]
    np.testing.assert_array_equal(run[2].coef, reference[2].coef)


def _pids_gone(pids, within=5.0, zombies_ok=False):
    """True once none of ``pids`` runs; ``zombies_ok`` counts exited-but-unreaped ones as gone
    (orphans of another interpreter are reaped by the machine's init, which we do not control)."""
    deadline = time.monotonic() + within
    while True:
        alive = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                continue
            if not (zombies_ok and state == "Z"):
                alive.append(pid)
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --------------------------------------------------------------------------- helpers and serial
def test_chunk_bounds_match_array_split():
    for n_items in (0, 1, 5, 23, 64):
        for n_chunks in (1, 2, 3, 7, 30):
            expected = [(int(c[0]), int(c[-1]) + 1) for c in np.array_split(np.arange(n_items), n_chunks) if len(c)]
            assert chunk_bounds(n_items, n_chunks) == expected


def test_candidate_seeds_depend_on_seed_generation_and_index_only():
    s = candidate_seeds(3, 5, 10)
    assert s.shape == (10,) and s.dtype == np.uint64
    np.testing.assert_array_equal(candidate_seeds(3, 5, 4), s[:4])
    assert len(set(s.tolist())) == 10
    assert not np.array_equal(candidate_seeds(3, 6, 10), s)
    assert not np.array_equal(candidate_seeds(4, 5, 10), s)


def test_serial_matches_per_candidate_reference(problem):
    fitness, genomes, reference = problem
    with Serial() as ev:
        out = ev.evaluate(fitness, genomes)
    assert out.dtype == np.float64 and out.shape == (len(genomes),)
    np.testing.assert_array_equal(out, reference)


def test_serial_wraps_exception_with_range():
    g = np.zeros((4, 3))
    g[2, 0] = -7.0
    with pytest.raises(EvaluationError, match=r"candidates 0\.\.3") as info:
        Serial().evaluate(RaisingFitness(), g)
    assert "ArithmeticError: bad candidate" in info.value.remote_traceback
    assert isinstance(info.value.__cause__, ArithmeticError)


@pytest.mark.parametrize("ev", [Serial(), Pool(2, start_method="fork")], ids=["serial", "pool"])
def test_bad_arguments(ev):
    with ev:
        with pytest.raises(TypeError, match="fitness_fn"):
            ev.evaluate(42, np.zeros((2, 2)))
        with pytest.raises(ValueError, match="genomes"):
            ev.evaluate(BadShapeFitness(), np.zeros(3))
        if isinstance(ev, Pool):
            with pytest.raises(TypeError, match="fitness_fn must be picklable"):
                ev.evaluate(lambda g: g.sum(axis=1), np.zeros((3, 2)))
        with pytest.raises(ValueError, match="seeds"):
            ev.evaluate(SeededFitness(), np.zeros((3, 2)), seeds=np.arange(2))
        with pytest.raises(ValueError, match=r"fitness_fn must return shape"):
            ev.evaluate(BadShapeFitness(), np.zeros((4, 2)))
        assert ev.evaluate(BadShapeFitness(), np.zeros((0, 2))).shape == (0,)


def test_constructor_and_factory_validation():
    with pytest.raises(ValueError, match="n_workers"):
        Pool(0)
    with pytest.raises(TypeError, match="n_workers"):
        Pool(1.5)
    with pytest.raises(ValueError, match="start_method"):
        Pool(2, start_method="frok")
    with pytest.raises(ValueError, match="timeout"):
        Pool(2, timeout=0)
    with pytest.raises(ValueError, match="evaluator"):
        make_evaluator("poool")
    with pytest.raises(ValueError, match="n_jobs"):
        make_evaluator("serial", n_jobs=4)
    with pytest.raises(TypeError, match="evaluator"):
        make_evaluator(object())
    assert isinstance(make_evaluator(), Serial)
    assert isinstance(make_evaluator(None, n_jobs=1), Serial)
    pool = make_evaluator(None, n_jobs=2, start_method="spawn", timeout=3)
    assert isinstance(pool, Pool) and (pool.n_workers, pool.start_method, pool.timeout) == (2, "spawn", 3.0)
    assert make_evaluator(pool) is pool
    with pytest.raises(ValueError, match="n_jobs"):
        make_evaluator(pool, n_jobs=2)
    assert Pool(-1).n_workers >= 1


# --------------------------------------------------------------------------- pool
@pytest.fixture(scope="module", params=["fork", "spawn"])
def pool(request):
    with Pool(2, start_method=request.param, timeout=60) as p:
        yield p


def test_pool_matches_reference(pool, problem):
    fitness, genomes, reference = problem
    np.testing.assert_array_equal(pool.evaluate(fitness, genomes), reference)
    # fewer candidates than workers, and a single one
    np.testing.assert_array_equal(pool.evaluate(fitness, genomes[:1]), reference[:1])


def test_evolino_run_is_identical_on_pool(pool, serial_run):
    _assert_same_run(_evolino_run(pool), serial_run)


def test_pool_seeds_are_split_with_the_genomes(pool):
    genomes = np.random.default_rng(0).normal(size=(9, 3))
    seeds = candidate_seeds(7, 2, 9)
    expected = np.array([SeededFitness()(g[None], s[None])[0] for g, s in zip(genomes, seeds)])
    np.testing.assert_array_equal(pool.evaluate(SeededFitness(), genomes, seeds=seeds), expected)


def test_pool_sends_task_data_once_per_worker(pool):
    genomes = np.zeros((10, 2))
    a, b = CountingFitness("a"), CountingFitness("b")
    for _ in range(4):
        np.testing.assert_array_equal(pool.evaluate(a, genomes), np.ones(10))  # loaded once, not per call
    np.testing.assert_array_equal(pool.evaluate(b, genomes), np.ones(10))
    np.testing.assert_array_equal(pool.evaluate(a, genomes), np.full(10, 2.0))  # a different object: re-sent


def test_pool_exception_names_chunk_and_carries_traceback(pool):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[7, 0] = -7.0
    with pytest.raises(EvaluationError, match=r"candidates 5\.\.9") as info:
        pool.evaluate(RaisingFitness(), genomes)
    assert (info.value.start, info.value.stop) == (5, 10)
    assert "ArithmeticError: bad candidate in this chunk" in str(info.value)
    assert 'raise ArithmeticError("bad candidate' in info.value.remote_traceback  # the worker's frames
    pids = pool.pids
    np.testing.assert_array_equal(pool.evaluate(RaisingFitness(), genomes[:5]), genomes[:5].sum(axis=1))
    assert pool.pids == pids  # a raising fitness does not cost the workers


def test_pool_killed_worker_is_reported_fast(pool):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[1, 0] = -9.0
    t0 = time.monotonic()
    with pytest.raises(EvaluationError, match=r"died \(killed by signal 9\).*candidates 0\.\.4.*retried once"):
        pool.evaluate(KillingFitness(), genomes)
    assert time.monotonic() - t0 < 5.0  # the pool's 60 s timeout would mean a hang
    assert pool.pids == []  # all workers replaced
    np.testing.assert_array_equal(pool.evaluate(KillingFitness(), genomes[2:]), genomes[2:].sum(axis=1))


def test_pool_retries_a_dead_workers_chunk_once_on_a_fresh_worker(tmp_path):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[7, 0] = -9.0
    with Pool(2, start_method="fork") as pool:
        pool.evaluate(SleepingFitness(0), genomes)
        pids = pool.pids
        out = pool.evaluate(KillOnceFitness(str(tmp_path / "killed")), genomes)
        np.testing.assert_array_equal(out, genomes.sum(axis=1))  # the same result as without the fault
        assert (tmp_path / "killed").exists()
        assert pool.pids[0] == pids[0] and pool.pids[1] != pids[1]  # only the dead one was replaced


def test_pool_timeout():
    genomes = np.ones((4, 2))
    with Pool(2, start_method="fork", timeout=0.5) as pool:
        pids = pool.evaluate(SleepingFitness(0), genomes) is not None and pool.pids
        t0 = time.monotonic()
        with pytest.raises(EvaluationError, match=r"timed out after 0.5 s with candidates 0\.\.3"):
            pool.evaluate(SleepingFitness(30), genomes)
        assert time.monotonic() - t0 < 3.0
        assert _pids_gone(pids)
        np.testing.assert_array_equal(pool.evaluate(SleepingFitness(0), genomes), np.full(4, 2.0))


@pytest.fixture
def sigint_raises():
    """Ctrl-C as in an interactive run: a process started in the background (``nohup``, ``&``) inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt (the pool rightly leaves SIG_IGN alone)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_pool_ctrl_c_kills_and_reaps_workers(tmp_path, sigint_raises):
    pool = Pool(2, start_method="fork", timeout=60)
    pool.evaluate(SleepingFitness(0), np.ones((2, 2)))
    pids = pool.pids
    flag = tmp_path / "started"

    def interrupt():  # once a worker says its chunk started: no race against the work under load
        _wait_for(flag)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt, daemon=True)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.evaluate(StartedSleepingFitness(str(flag), 30), np.ones((2, 2)))
    assert time.monotonic() - t0 < 20  # not the 30 s of the chunk
    t.join(5)
    assert pool.pids == [] and _pids_gone(pids)
    pool.close()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="pthread_kill")
def test_pool_ctrl_c_delivered_to_another_thread_interrupts_at_once(tmp_path, sigint_raises):
    """A SIGINT the OS hands to a non-main thread does not wake the main thread's wait; the
    wait's short slices do (an unbroken wait would last until the hung worker replies)."""
    flag = tmp_path / "started"
    bystander = threading.Thread(target=time.sleep, args=(60,), daemon=True)
    bystander.start()

    def interrupt():
        _wait_for(flag)
        signal.pthread_kill(bystander.ident, signal.SIGINT)

    with Pool(2, start_method="fork", timeout=120) as pool:
        pool.evaluate(SleepingFitness(0), np.ones((2, 2)))
        pids = pool.pids
        threading.Thread(target=interrupt, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            pool.evaluate(StartedSleepingFitness(str(flag), 60), np.ones((2, 2)))
        assert time.monotonic() - t0 < 30  # the hung chunk takes 60 s
        assert _pids_gone(pids)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pool_ctrl_c_swallowed_by_a_finalizer_still_interrupts(tmp_path, monkeypatch, sigint_raises):
    """Python discards a KeyboardInterrupt raised inside a finalizer (the garbage collector may run
    one in the middle of a call); the evaluation must stop all the same."""
    import weakref

    import evolino.evaluate.pool as pool_module

    flag = tmp_path / "started"

    class Garbage:
        pass

    def finalizer():  # Ctrl-C lands while this runs: its KeyboardInterrupt is "ignored" by Python
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)

    box = [Garbage()]
    weakref.finalize(box[0], finalizer)
    real_wait = pool_module.mpc.wait

    def wait(objects, timeout=None):  # the main thread drops the last reference mid-call
        if box and flag.exists() and flag.read_text():
            box.pop()
        return real_wait(objects, timeout)

    with Pool(2, start_method="fork", timeout=120) as pool:
        pool.evaluate(SleepingFitness(0), np.ones((2, 2)))
        monkeypatch.setattr(pool_module.mpc, "wait", wait)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            pool.evaluate(StartedSleepingFitness(str(flag), 60), np.ones((2, 2)))
        assert not box and time.monotonic() - t0 < 30


def test_pool_starts_no_more_workers_than_candidates():
    with Pool(64, start_method="fork") as pool:
        np.testing.assert_array_equal(pool.evaluate(SleepingFitness(0), np.ones((3, 2))), np.full(3, 2.0))
        assert len(pool.pids) == 3
        np.testing.assert_array_equal(pool.evaluate(SleepingFitness(0), np.ones((5, 2))), np.full(5, 2.0))
        assert len(pool.pids) == 5


def test_pool_orphaned_worker_stops_mid_chunk(tmp_path):
    """A worker whose parent is SIGKILLed exits within about a second, not at the end of its chunk."""
    flag = tmp_path / "started"
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        sys.path.insert(0, {TESTS_DIR!r})
        from test_evaluate import StartedSleepingFitness
        from evolino.evaluate import Pool
        Pool(1, start_method="fork").evaluate(StartedSleepingFitness({str(flag)!r}, 120), np.ones((1, 2)))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        _wait_for(flag, within=60)
        worker = int(open(flag).read().split()[0])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert _pids_gone([worker], within=10.0, zombies_ok=True)


def test_pool_close_and_exit_leave_no_processes():
    pool = Pool(2, start_method="fork")
    pool.evaluate(SleepingFitness(0), np.ones((3, 2)))
    pids = pool.pids
    assert len(pids) == 2
    pool.close()
    assert pool.pids == [] and _pids_gone(pids, within=0.5)
    # an interpreter that exits without close(), and one that is SIGKILLed, leave no workers behind
    for how in ("exit", "sigkill"):
        code = textwrap.dedent(
            f"""
            import os, signal, sys, numpy as np
            sys.path.insert(0, {TESTS_DIR!r})
            from test_evaluate import SleepingFitness
            from evolino.evaluate import Pool
            pool = Pool(2, start_method="spawn")
            pool.evaluate(SleepingFitness(0), np.ones((2, 2)))
            print(*pool.pids, flush=True)
            if {how!r} == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        child_pids = [int(p) for p in res.stdout.split()]
        assert len(child_pids) == 2, res.stderr
        assert _pids_gone(child_pids, within=5.0, zombies_ok=True), how


def test_run_search_gives_same_history_on_serial_and_pool(problem):
    fitness, genomes, _ = problem

    class TinyES:
        """A (1, lambda) evolution strategy, just enough of the strategy protocol for run_search."""

        def __init__(self, x0, seed):
            self.mean, self.rng, self.generation, self.evaluations = x0.copy(), np.random.default_rng(seed), 0, 0
            self.best = (x0, np.inf)

        def ask(self):
            self._x = self.mean + 0.1 * self.rng.standard_normal((12, len(self.mean)))
            return self._x

        def tell(self, f):
            k = int(np.argmin(f))
            self.mean = self._x[k]
            if f[k] < self.best[1]:
                self.best = (self._x[k].copy(), float(f[k]))
            self.generation += 1
            self.evaluations += len(f)

        def stop(self):
            return {}

    histories = []
    for ev in (Serial(), Pool(2, start_method="fork")):
        with ev:
            h = run_search(TinyES(genomes[0], seed=1), fitness, evaluator=ev, max_generations=4).history
        histories.append({k: v for k, v in h.items() if k != "time"})
    assert histories[0] == histories[1]
    assert histories[0]["best"][-1] < histories[0]["best"][0]


def test_fitness_is_chunk_invariant_with_a_singular_candidate(problem):
    fitness, genomes, _ = problem
    g = genomes.copy()
    spec = fitness.spec
    c0, c1 = spec.cell_slices[:2]
    g[5, c1] = g[5, c0]  # cell 1 a copy of cell 0: identical outputs, a singular state matrix
    alone = np.array([fitness(x[None])[0] for x in g])
    np.testing.assert_array_equal(fitness(g), alone)


# --------------------------------------------------------------------------- ray
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join([TESTS_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    ray.init(
        address="local",  # a fresh local instance, even if a `ray start` cluster runs on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_ev(ray_cluster):
    # the timeout only catches a hang: the first call starts the actors (imports, compiled kernels), which took
    # over 60 s on a loaded 2-core machine
    with Ray(n_workers=2, timeout=300) as ev:
        yield ev


def test_ray_matches_reference(ray_ev, problem):
    fitness, genomes, reference = problem
    np.testing.assert_array_equal(ray_ev.evaluate(fitness, genomes), reference)
    np.testing.assert_array_equal(ray_ev.evaluate(fitness, genomes[:1]), reference[:1])
    seeds = candidate_seeds(7, 2, 9)
    g = genomes[:9, :3]
    expected = np.array([SeededFitness()(x[None], s[None])[0] for x, s in zip(g, seeds)])
    np.testing.assert_array_equal(ray_ev.evaluate(SeededFitness(), g, seeds=seeds), expected)


def test_evolino_run_is_identical_on_ray(ray_ev, serial_run):
    _assert_same_run(_evolino_run(ray_ev), serial_run)


def test_ray_sends_task_data_once_per_actor(ray_ev):
    genomes = np.zeros((10, 2))
    a, b = CountingFitness("ray-a"), CountingFitness("ray-b")
    for _ in range(4):
        np.testing.assert_array_equal(ray_ev.evaluate(a, genomes), np.ones(10))
    np.testing.assert_array_equal(ray_ev.evaluate(b, genomes), np.ones(10))
    np.testing.assert_array_equal(ray_ev.evaluate(a, genomes), np.full(10, 2.0))


def test_ray_exception_names_chunk_and_carries_traceback(ray_ev):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[7, 0] = -7.0
    with pytest.raises(EvaluationError, match=r"candidates 5\.\.9") as info:
        ray_ev.evaluate(RaisingFitness(), genomes)
    assert "bad candidate in this chunk" in info.value.remote_traceback
    assert 'raise ArithmeticError("bad candidate' in info.value.remote_traceback
    np.testing.assert_array_equal(ray_ev.evaluate(RaisingFitness(), genomes[:5]), genomes[:5].sum(axis=1))


def test_ray_killed_actor_is_reported_fast(ray_ev):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[8, 0] = -9.0
    t0 = time.monotonic()
    with pytest.raises(EvaluationError, match=r"died while evaluating candidates 5\.\.9 \(retried once"):
        ray_ev.evaluate(KillingFitness(), genomes)
    assert time.monotonic() - t0 < 30.0  # two actors died (the chunk is retried once); 60 s would be a hang
    np.testing.assert_array_equal(ray_ev.evaluate(KillingFitness(), genomes[:5]), genomes[:5].sum(axis=1))


def test_ray_retries_a_dead_actors_chunk_once(ray_ev, tmp_path):
    genomes = np.arange(20.0).reshape(10, 2)
    genomes[8, 0] = -9.0
    out = ray_ev.evaluate(KillOnceFitness(str(tmp_path / "killed")), genomes)
    np.testing.assert_array_equal(out, genomes.sum(axis=1))  # the same result as without the fault
    assert (tmp_path / "killed").exists()


def test_ray_timeout(ray_ev):
    # the fixture's actors hold both CPUs of the test cluster, so reuse that evaluator
    ray_ev.evaluate(SleepingFitness(0), np.ones((4, 2)))
    ray_ev.timeout = 1.0
    try:
        t0 = time.monotonic()
        with pytest.raises(EvaluationError, match=r"timed out after 1.0 s with candidates 0\.\.3"):
            ray_ev.evaluate(SleepingFitness(30), np.ones((4, 2)))
        assert time.monotonic() - t0 < 5.0
    finally:
        ray_ev.timeout = 60.0
    np.testing.assert_array_equal(ray_ev.evaluate(SleepingFitness(0), np.ones((4, 2))), np.full(4, 2.0))


def test_ray_more_workers_than_cpus_warns(ray_cluster):
    ev = Ray(n_workers=64)
    with pytest.warns(UserWarning, match="64 actors but the Ray cluster has 2 CPUs"):
        ev._check_resources()
    ev.close()


class _FakeRay:
    """Stands in for the ray module: ``init`` hangs as it does on an address that never answers."""

    def __init__(self, hang):
        self.hang, self.calls = hang, []

    def is_initialized(self):
        return False

    def init(self, address=None, **kwargs):
        self.calls.append(address)
        time.sleep(self.hang)

    def shutdown(self):
        pass


def test_ray_unreachable_address_is_an_error_within_seconds(monkeypatch):
    import socket

    import evolino.evaluate.ray as ray_module
    from evolino import EvolinoError

    fake = _FakeRay(hang=300)
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(EvolinoError, match=f"cannot reach a Ray cluster at address='127.0.0.1:{port}'"):
        Ray(address=f"127.0.0.1:{port}").evaluate(SleepingFitness(0), np.ones((2, 2)))
    assert time.monotonic() - t0 < 10 and fake.calls == []  # refused before ray.init


def test_ray_address_that_never_answers_times_out(monkeypatch):
    import socket

    import evolino.evaluate.ray as ray_module
    from evolino import EvolinoError

    fake = _FakeRay(hang=300)
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    with socket.socket() as server:  # accepts connections, never speaks Ray
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(EvolinoError, match=r"did not connect to address='127.0.0.1:\d+' within 0.5 s"):
            Ray(address=address, connect_timeout=0.5).evaluate(SleepingFitness(0), np.ones((2, 2)))
        assert time.monotonic() - t0 < 10 and fake.calls == [address]


@pytest.mark.slow
def test_ray_two_nodes_on_this_machine_give_the_serial_result(tmp_path, problem):
    """A head and a second node on this machine (Ray's own multi-node test cluster); the evaluator joins
    by address and spreads its actors over both nodes. Slow (two Ray nodes start): run with -m slow."""
    pytest.importorskip("ray")
    import pickle

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS_DIR, os.environ.get("PYTHONPATH", "")]),
           "RAY_AUTH_MODE": "disabled"}
    fitness, genomes, reference = problem
    with open(tmp_path / "problem.pkl", "wb") as f:
        pickle.dump((fitness, genomes), f)
    code = textwrap.dedent(f"""
        import pickle, sys
        sys.path.insert(0, {TESTS_DIR!r})
        import ray
        from ray.cluster_utils import Cluster
        from evolino.evaluate import Ray
        with open({str(tmp_path / "problem.pkl")!r}, "rb") as f:
            fitness, genomes = pickle.load(f)
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            with Ray(address=cluster.address, n_workers=2, timeout=120,
                     runtime_env={{"env_vars": {{"PYTHONPATH": {env["PYTHONPATH"]!r}}}}}) as ev:
                out = ev.evaluate(fitness, genomes)
                hosts = {{n["NodeID"] for n in ray.nodes() if n["Alive"]}}
            with open({str(tmp_path / "out.pkl")!r}, "wb") as f:
                pickle.dump((len(hosts), out), f)
        finally:
            ray.shutdown()
            cluster.shutdown()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:  # only this test's processes: its own session
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    with open(tmp_path / "out.pkl", "rb") as f:
        n_nodes, out = pickle.load(f)
    assert n_nodes == 2
    np.testing.assert_array_equal(out, reference)
