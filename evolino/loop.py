"""The one ask -> evaluate -> tell driver loop, shared by the trainer, RL and the CLI.

A callback is any callable ``callback(status: dict) -> bool | None``; returning
``True`` stops the run. The status dict holds ``generation``, ``evaluations``,
``best_fitness`` (best ever), ``gen_best``, ``gen_median``, ``elapsed`` (seconds of
this run), ``strategy`` and ``fitness`` (this generation's values, ``(P,)``).
:func:`progress_bar` is such a callback (the bar the CLI shows).

:func:`run_search` returns a :class:`Result`, the one result type of a search
(as pycma's ``CMAEvolutionStrategyResult``): the trainers and RL carry it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._validate import EvolinoError, check_number, check_positive_int
from .evaluate import Serial

__all__ = ["run_search", "History", "Result", "progress_bar"]


class History(dict):
    """Per-generation record: lists ``generation``, ``evaluations``, ``best``, ``gen_best``,
    ``gen_median``, ``time`` (wall seconds since the start, summed over resumed runs)."""

    keys_ = ("generation", "evaluations", "best", "gen_best", "gen_median", "time")

    def __init__(self, data=None):
        super().__init__({k: [] for k in self.keys_})
        if data:
            for k in self.keys_:
                self[k] = [float(v) if k not in ("generation", "evaluations") else int(v) for v in data[k]]

    def append(self, status):
        self["generation"].append(int(status["generation"]))
        self["evaluations"].append(int(status["evaluations"]))
        self["best"].append(float(status["best_fitness"]))
        self["gen_best"].append(float(status["gen_best"]))
        self["gen_median"].append(float(status["gen_median"]))
        self["time"].append(float(status["elapsed"]))


@dataclass
class Result:
    """Outcome of :func:`run_search`.

    Attributes
    ----------
    best_genome : ndarray of shape (n_params,)
        Best genome ever evaluated (lowest fitness).
    best_fitness : float
    evaluations : int
        Fitness evaluations over the strategy's whole life (resumed runs included).
    generations : int
    stop_reason : str
        ``"max_generations"``, ``"max_evaluations"``, ``"target_fitness"``, ``"callback"``
        or the strategy's own reason (e.g. pycma's ``"tolfun"``).
    history : History
    """

    best_genome: np.ndarray
    best_fitness: float
    evaluations: int
    generations: int
    stop_reason: str
    history: "History" = field(repr=False)


def progress_bar(total=None, *, disable=False, by="generation"):
    """A tqdm progress bar and a :func:`run_search` callback that advances it.

    ``by`` is the status field the bar counts (``"generation"`` or ``"evaluations"``).
    Returns ``(bar, callback)``; close the bar when the run ends. The library prints
    nothing unless such a callback is attached (``verbose=1`` on the trainers does it).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="gen" if by == "generation" else "eval", disable=disable, dynamic_ncols=True)

    def callback(status):
        bar.update(status[by] - bar.n)
        bar.set_postfix_str(f"gen {status['generation']}  best {status['best_fitness']:.4g}  "
                            f"evals {status['evaluations']}")

    return bar, callback


def run_search(
    strategy,
    fitness_fn,
    *,
    evaluator=None,
    max_generations=None,
    max_evaluations=None,
    target_fitness=None,
    callbacks=(),
    history: History | None = None,
    time_offset: float = 0.0,
) -> History:
    """Run ``strategy`` on ``fitness_fn`` until a budget, the target or a callback stops it.

    Parameters
    ----------
    strategy : search strategy
        Has ``ask() -> (P, n)``, ``tell(fitness (P,))``, ``best``, ``generation``,
        ``evaluations``, ``stop() -> dict``.
    fitness_fn : callable
        ``fitness_fn(genomes (n, d)) -> (n,)``, lower is better; evaluated through ``evaluator``.
    evaluator : object with ``evaluate(fitness_fn, genomes)``, default SerialEvaluator()
    max_generations, max_evaluations : int, optional
        Budgets counted over the strategy's whole life (so a resumed run stops
        where the uninterrupted one would).
    target_fitness : float, optional
        Stop once the best fitness is <= this.
    callbacks : sequence of callables
        Called with the status dict after every generation; ``True`` stops.
    history : History, optional
        Continue this record (resume).
    time_offset : float
        Wall time already spent (resume), added to ``elapsed``.

    Returns
    -------
    Result
    """
    if max_generations is None and max_evaluations is None and target_fitness is None:
        raise EvolinoError("give at least one of max_generations, max_evaluations, target_fitness")
    if max_generations is not None:
        max_generations = check_positive_int(max_generations, "max_generations")
    if max_evaluations is not None:
        max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
    if target_fitness is not None:
        target_fitness = check_number(target_fitness, "target_fitness")
    evaluator = Serial() if evaluator is None else evaluator
    history = History() if history is None else history
    start = time.perf_counter() - time_offset

    def reason():
        if max_generations is not None and strategy.generation >= max_generations:
            return "max_generations"
        if max_evaluations is not None and strategy.evaluations >= max_evaluations:
            return "max_evaluations"
        if target_fitness is not None and strategy.generation > 0 and strategy.best[1] <= target_fitness:
            return "target_fitness"
        stop = strategy.stop()
        return ", ".join(sorted(map(str, stop))) if stop else ""

    why = reason()
    while not why:
        genomes = strategy.ask()
        fitness = np.asarray(evaluator.evaluate(fitness_fn, genomes), dtype=np.float64)
        if fitness.shape != (len(genomes),):
            raise EvolinoError(f"fitness_fn must return shape ({len(genomes)},), got {fitness.shape}")
        strategy.tell(fitness)
        finite = fitness[np.isfinite(fitness)]
        status = {
            "generation": strategy.generation,
            "evaluations": strategy.evaluations,
            "best_fitness": float(strategy.best[1]),
            "gen_best": float(finite.min()) if finite.size else float("inf"),
            "gen_median": float(np.median(finite)) if finite.size else float("inf"),
            "elapsed": time.perf_counter() - start,
            "strategy": strategy,
            "fitness": fitness,
        }
        history.append(status)
        stop = False
        for cb in callbacks:
            stop = bool(cb(status)) or stop
        why = "callback" if stop else reason()
    genome, best = strategy.best
    return Result(None if genome is None else np.array(genome), float(best), int(strategy.evaluations),
                  int(strategy.generation), why, history)
