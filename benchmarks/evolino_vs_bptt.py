"""Evolino versus gradient training (BPTT) of the same LSTM, at the same wall-clock budget.

Contenders, all with ``H`` memory cells and one linear output layer:

- ``evolino``: :class:`evolino.trainer.Evolino` (ESP search, pseudo-inverse readout);
- ``bptt``: :class:`evolino.bptt.BPTTTrainer` (Adam, gradient-norm clip 1, the same LSTM with
  peepholes and forget gates; teacher forcing for the generation tasks);
- ``torch``: PyTorch ``nn.LSTM`` + ``nn.Linear`` trained the same way (Adam, same learning
  rate, clip, batches and truncation), float32, as an outside reference. ``nn.LSTM`` has no
  peepholes; its weights are copied into a peephole-free :class:`~evolino.lstm.LSTMSpec`
  genome, so it is scored by exactly the same code as the other two.

Every run gets the same data and the same time budget (``--budget`` seconds), on one
thread (NumPy's BLAS through threadpoolctl, torch through ``torch.set_num_threads(1)``).
The budget is counted in CPU seconds of this process (see :class:`Deadline`): on an idle
core that is the wall-clock budget, and on a shared machine it stays fair when other
jobs take turns on the cores. A run stops before the step (generation / epoch) that
would overrun the budget, predicted from the previous step; the CPU and wall times in
the table are of the whole ``fit``, set-up and Evolino's final readout included.

Tasks (test error, lower is better):

- ``sines2`` .. ``sines4``: superimposed sines (:class:`evolino.tasks.SinesTask`,
  washout 100, train steps 101-400, closed-loop generation of steps 401-700); test NRMSE.
- ``mackey_glass``: :class:`evolino.tasks.MackeyGlassTask` with ``train=1000`` (smaller than
  the default 2000 for speed, the same for all); NRMSE84 over 50 test segments.
- ``adding``: a long-time-lag task, the adding problem of Hochreiter & Schmidhuber (1997)
  with a per-step target. Inputs ``(value ~ U(-1, 1), marker)``; one marker in steps 0-9,
  one in steps 10-59; sequences of 120 steps; the target at step ``t`` is the sum of the
  marked values seen so far, so the value marked in steps 0-9 must be held for 110+ steps.
  Input-driven (``Evolino(feedback=False).fit(Y, X=X)``, ``BPTTTrainer.fit(Y, X=X)``); 50 training
  sequences per seed, scored on 500 fresh sequences: NRMSE of the **final** step, and in
  the last column the fraction of test sequences with final error ``< 0.16`` (Hochreiter's
  "solved" criterion 0.04 on his target scale ``0.5 + sum / 4``).

Hyperparameters, tuned a little on seeds 0-1 with 8-10 s budgets (a few settings each, listed
in ``TASKS``): Evolino's library defaults on the sines; ``input_scale=1`` and 84 validation
steps on Mackey-Glass (the default ``1e-3`` diverged in closed loop on half the seeds);
``input_scale=1``, ``washout=0`` and ``popsize=50`` on the adding problem. BPTT and torch:
``lr=1e-2``; truncation 50 steps (sines) / 100 steps (Mackey-Glass), full BPTT on the
adding problem (a truncated gradient cannot bridge the lag).

Usage::

    python benchmarks/evolino_vs_bptt.py            # 10 seeds, 6 CPU s per run, ~18 CPU minutes
    python benchmarks/evolino_vs_bptt.py --quick    # 3 seeds, 3 s per run
    python benchmarks/evolino_vs_bptt.py --tasks sines2 adding --seeds 5 --budget 10 --no-torch
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from evolino.bptt import BPTTTrainer, teacher_forcing
from evolino.lstm import LSTMSpec
from evolino.model import EvolinoNetwork
from evolino.tasks import MackeyGlassTask, SinesTask
from evolino.trainer import Evolino

try:
    import torch
except ImportError:  # the NumPy contenders still run
    torch = None

N_CELLS = 10
METHODS = ("evolino", "bptt", "torch")


# --- budget ---------------------------------------------------------------------------
class Deadline:
    """Callback ``status -> bool``: stop before the next step would pass ``budget`` CPU seconds.

    The clock is this process's CPU time (``time.process_time``) from the creation of the
    callback, i.e. set-up included. Every contender runs on one thread, so on an idle core
    this is the wall-clock budget; on a shared, loaded machine it still gives every
    contender the same amount of computing. The next step (generation / epoch) is predicted
    to cost as much as the previous one.
    """

    def __init__(self, budget: float):
        self.budget, self.start, self.steps = budget, time.process_time(), 0
        self.last = self.start

    def __call__(self, status=None) -> bool:
        now = time.process_time()
        step, self.last = now - self.last, now
        self.steps += 1
        return now - self.start + step >= self.budget


# --- tasks ----------------------------------------------------------------------------
def adding_problem(rng: np.random.Generator, n_seq: int, T: int = 120):
    """Adding problem with a per-step target: ``X (n_seq, T, 2)``, ``Y (n_seq, T, 1)``.

    Channel 0 holds values ``U(-1, 1)``, channel 1 two markers (one in steps 0-9, one in
    ``[10, T // 2)``); ``Y[t]`` is the sum of the marked values up to step ``t``.
    """
    values = rng.uniform(-1.0, 1.0, (n_seq, T))
    marks = np.zeros((n_seq, T))
    rows = np.arange(n_seq)
    marks[rows, rng.integers(0, 10, n_seq)] = 1.0
    marks[rows, rng.integers(10, T // 2, n_seq)] = 1.0
    return np.stack([values, marks], axis=-1), np.cumsum(values * marks, axis=1)[..., None]


class GenerationProblem:
    """A feedback task: train on one series by teacher forcing, score in closed loop."""

    feedback = True

    def __init__(self, task, evolino_options, bptt_options):
        self.task, self.evolino_options, self.bptt_options = task, evolino_options, bptt_options
        self.series = task.train_series  # (T, 1)
        self.X, self.Y = teacher_forcing(self.series)

    def evolino_fit(self, est):
        return est.fit(self.series)

    def score(self, network) -> tuple[float, float]:
        return self.task.score(network)[0], np.nan


class AddingProblem:
    """The input-driven long-time-lag task; training data and fresh test data drawn from ``seed``."""

    feedback = False
    evolino_options = dict(washout=0, input_scale=1.0, popsize=50)
    bptt_options = dict(washout=0, truncate=None)

    def __init__(self, seed: int, n_train: int = 50, n_test: int = 500):
        train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.X, self.Y = adding_problem(train_rng, n_train)
        self.X_test, self.Y_test = adding_problem(test_rng, n_test)

    def evolino_fit(self, est):
        return est.fit(self.Y, X=self.X)

    def score(self, network) -> tuple[float, float]:
        err = network.predict(self.X_test)[:, -1, 0] - self.Y_test[:, -1, 0]
        target = self.Y_test[:, -1, 0]
        return float(np.sqrt(np.mean(err**2)) / np.std(target)), float(np.mean(np.abs(err) < 0.16))


_SINES_BPTT = dict(washout=100, truncate=50)
_MG_EVOLINO = dict(input_scale=1.0, validation=84)
_MG_BPTT = dict(washout=100, truncate=100)
_cache = {}


def _mackey_glass():
    if "mg" not in _cache:  # the series takes ~1.5 s to integrate; it is the same for every seed
        _cache["mg"] = MackeyGlassTask(train=1000)
    return _cache["mg"]


TASKS = {
    "sines2": ("test NRMSE", lambda seed: GenerationProblem(SinesTask(terms=2), {}, _SINES_BPTT)),
    "sines3": ("test NRMSE", lambda seed: GenerationProblem(SinesTask(terms=3), {}, _SINES_BPTT)),
    "sines4": ("test NRMSE", lambda seed: GenerationProblem(SinesTask(terms=4), {}, _SINES_BPTT)),
    "mackey_glass": ("NRMSE84", lambda seed: GenerationProblem(_mackey_glass(), _MG_EVOLINO, _MG_BPTT)),
    "adding": ("final-step NRMSE", AddingProblem),
}


# --- contenders -----------------------------------------------------------------------
def run_evolino(problem, seed, budget):
    deadline = Deadline(budget)
    est = Evolino(N_CELLS, feedback=problem.feedback, max_generations=10**9, callbacks=[deadline], seed=seed,
                  **{"search": "esp", **problem.evolino_options})  # ESP on the weights, as measured
    return problem.evolino_fit(est), deadline.steps


def run_bptt(problem, seed, budget):
    deadline = Deadline(budget)
    tr = BPTTTrainer(N_CELLS, lr=1e-2, epochs=10**9, patience=None, callbacks=[deadline], seed=seed,
                     **problem.bptt_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a diverged run keeps its best weights; it is scored
        tr.fit(problem.Y, X=problem.X)
    return tr.to_network(feedback=problem.feedback), deadline.steps


def run_torch(problem, seed, budget, *, lr=1e-2, clip=1.0, batch_size=16):
    """nn.LSTM + nn.Linear, trained like BPTTTrainer (Adam, clip, mini-batches, truncation, best epoch)."""
    deadline = Deadline(budget)
    X, Y = (torch.tensor(np.asarray(A), dtype=torch.float32) for A in (problem.X, problem.Y))
    if X.ndim == 2:
        X, Y = X[None], Y[None]
    B, T, I = X.shape
    H, O = N_CELLS, Y.shape[-1]
    washout = problem.bptt_options["washout"]
    k = problem.bptt_options["truncate"] or T
    rng = np.random.default_rng(seed)
    lstm, lin = torch.nn.LSTM(I, H, batch_first=True), torch.nn.Linear(H, O)
    params = list(lstm.parameters()) + list(lin.parameters())
    with torch.no_grad():  # PyTorch's default init U(-1/sqrt(H), 1/sqrt(H)), drawn from our seeded generator
        for p in params:
            p.copy_(torch.tensor(rng.uniform(-H**-0.5, H**-0.5, tuple(p.shape))))
    opt = torch.optim.Adam(params, lr=lr)
    best, best_loss = [p.detach().clone() for p in params], np.inf
    while True:
        order = rng.permutation(B)
        total = count = 0.0
        for s in range(0, B, batch_size):
            idx = torch.as_tensor(order[s : s + batch_size])
            state = None
            for c in range(0, T, k):
                out, state = lstm(X[idx, c : c + k], state)
                state = tuple(h.detach() for h in state)  # truncation: no gradient across chunks
                lo = max(0, washout - c)
                if lo >= out.shape[1]:
                    continue
                loss = torch.mean((lin(out[:, lo:]) - Y[idx, c + lo : c + k]) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, clip)
                opt.step()
                n = len(idx) * (out.shape[1] - lo)
                total, count = total + loss.item() * n, count + n
        epoch_loss = total / count
        if not np.isfinite(epoch_loss):
            break
        if epoch_loss < best_loss:
            best, best_loss = [p.detach().clone() for p in params], epoch_loss
        if deadline():
            break
    return torch_to_network(best, I, H, problem), deadline.steps


def torch_to_network(params, I, H, problem) -> EvolinoNetwork:
    """The weights of nn.LSTM (gate order i, f, g, o; two biases) as a peephole-free Evolino network."""
    W_ih, W_hh, b_ih, b_hh, W_lin, b_lin = (p.double().numpy() for p in params)
    spec = LSTMSpec(I, H, peepholes=False)
    weights = {}
    for u, rows in zip(("i", "f", "z", "o"), np.split(np.arange(4 * H), 4)):
        weights[f"W_{u}"], weights[f"R_{u}"], weights[f"b_{u}"] = W_ih[rows], W_hh[rows], b_ih[rows] + b_hh[rows]
    coef = np.concatenate([W_lin.T, b_lin[None]])
    return EvolinoNetwork(spec, spec.pack(weights), coef, feedback=problem.feedback,
                          washout=problem.bptt_options["washout"])


RUNNERS = {"evolino": run_evolino, "bptt": run_bptt, "torch": run_torch}


# --- main -----------------------------------------------------------------------------
def quartiles(values):
    return np.nanpercentile(values, [25, 50, 75])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, 3 s per run")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..n-1 (default 10, 3 with --quick)")
    ap.add_argument("--budget", type=float, default=None, help="CPU seconds per run (default 6, 3 with --quick)")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    n_seeds = args.seeds or (3 if args.quick else 10)
    budget = args.budget or (3.0 if args.quick else 6.0)
    methods = [m for m in METHODS if m != "torch" or (torch is not None and not args.no_torch)]
    if "torch" in methods:
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        # the first calls initialise torch's kernels and optimizer machinery: not part of any run's budget
        run_torch(GenerationProblem(SinesTask(train=20, test=5, washout=5), {}, dict(washout=5, truncate=10)), 0, 0.1)

    print(f"# H={N_CELLS} cells; {n_seeds} seeds; budget {budget:g} CPU s per run; 1 thread; methods {', '.join(methods)}")
    results = {}  # (task, method) -> list of (score, extra, wall, steps)
    t_start = time.perf_counter()
    with threadpool_limits(limits=1):
        for name in args.tasks:
            for seed in range(n_seeds):
                problem = TASKS[name][1](seed)
                for method in methods:
                    t0, c0 = time.perf_counter(), time.process_time()
                    network, steps = RUNNERS[method](problem, seed, budget)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    with np.errstate(all="ignore"):
                        score, extra = problem.score(network)
                    score = score if np.isfinite(score) else np.inf
                    results.setdefault((name, method), []).append((score, extra, cpu, wall, steps))
                    print(f"#   {name:12s} seed {seed} {method:8s} {score:10.3g}  cpu {cpu:5.1f} s  wall {wall:5.1f} s  "
                          f"{steps} steps",
                          flush=True)
    print(f"# total {time.perf_counter() - t_start:.0f} s\n")

    print("| task | metric | method | median | IQR (q25 - q75) | median / evolino | best on seeds "
          "| CPU s (median) | wall s (median) | generations / epochs (median) "
          "| adding: solved fraction (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.tasks:
        scores = np.array([[r[0] for r in results[(name, m)]] for m in methods])  # (M, seeds)
        winners = np.argmin(scores, axis=0)
        ref = np.median(scores[0])
        for j, method in enumerate(methods):
            rows = results[(name, method)]
            q25, q50, q75 = quartiles(scores[j])
            extra = np.median([r[1] for r in rows]) if name == "adding" else np.nan
            print(f"| {name} | {TASKS[name][0]} | {method} | {q50:.3g} | {q25:.3g} - {q75:.3g} | {q50 / ref:.3g} "
                  f"| {int(np.sum(winners == j))}/{n_seeds} | {np.median([r[2] for r in rows]):.1f} "
                  f"| {np.median([r[3] for r in rows]):.1f} | {np.median([r[4] for r in rows]):.0f} | {'' if np.isnan(extra) else f'{extra:.2f}'} |")


if __name__ == "__main__":
    main()
