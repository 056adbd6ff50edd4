"""Compare finished runs: ``evolino report RUN_DIR [RUN_DIR ...]``.

Every ``evolino`` training command with ``--out DIR`` writes ``DIR/results.json`` (its final
figures) and, for the supervised tasks, ``DIR/checkpoint.npz`` (which holds the
per-generation history). This module reads them back, prints one table of the final
figures and draws one figure of the best-so-far fitness against evaluations, one line per
run (pycma's ``cma.plot`` is the model). The history is taken from ``results.json``'s
``history`` when present (``evolino pole``, ``evolino gym``), else from the checkpoint.
"""

from __future__ import annotations

import json
import math
import os

from ._io import load_npz
from ._validate import EvolinoError

__all__ = ["load_run", "summary_table", "plot_runs", "add_subcommand", "run_report"]

# the headline figure of each kind of run, first match wins: (results.json key, column label)
SCORES = (("test_nrmse", "test NRMSE"), ("generalization_N", "generalization N"), ("solved", "solved"))


def load_run(run_dir) -> dict:
    """Read one run folder.

    Parameters
    ----------
    run_dir : str or path
        A folder written by ``evolino ... --out RUN_DIR``.

    Returns
    -------
    dict
        ``name`` (the folder's name), ``results`` (the parsed ``results.json``) and
        ``history`` (dict of per-generation lists with ``evaluations`` and ``best``, or None
        when the run recorded none).

    Raises
    ------
    ValueError
        If the folder has no readable ``results.json``.
    """
    path = os.path.join(os.fspath(run_dir), "results.json")
    if not os.path.isfile(path):
        raise EvolinoError(f"run_dir {os.fspath(run_dir)!r} has no results.json: pass folders written by evolino ... --out")
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise EvolinoError(f"{path}: not a readable results.json ({exc})") from None
    if not isinstance(results, dict):
        raise EvolinoError(f"{path}: expected a JSON object, got {type(results).__name__}")
    history = results.get("history")
    checkpoint = os.path.join(os.fspath(run_dir), "checkpoint.npz")
    if history is None and os.path.isfile(checkpoint):
        from .trainer import CHECKPOINT_VERSION

        try:
            history = load_npz(checkpoint, "evolino.checkpoint", CHECKPOINT_VERSION)[1].get("history")
        except ValueError:  # another version or a damaged file: the table still has the final figures
            history = None
    if history is not None and not (len(history.get("evaluations", ())) == len(history.get("best", ())) > 0):
        history = None
    name = os.path.basename(os.path.normpath(os.fspath(run_dir)))
    return {"name": name, "results": results, "history": history}


def _task(results):
    task = results.get("task", "?")
    if isinstance(task, dict):  # policy search: the environment's description
        return str(task.get("env_id") or f"pole ({task.get('n_poles', '?')} poles, {task.get('fitness', '')})")
    return str(task)


def _fmt(value):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(runs) -> str:
    """A markdown table of the runs' final figures, one row per run.

    Parameters
    ----------
    runs : list of dict
        As returned by :func:`load_run`.

    Returns
    -------
    str
        Columns: run, task, score (the task's headline figure, named), best fitness,
        evaluations, generations, wall seconds, seed.
    """
    header = ["run", "task", "score", "best fitness", "evaluations", "generations", "wall s", "seed"]
    rows = []
    for run in runs:
        r = run["results"]
        score = next((f"{label} {_fmt(r[key])}" for key, label in SCORES if key in r), "-")
        best = r.get("best_validation", r.get("best_fitness"))
        wall = r.get("wall_time_s", r.get("seconds"))
        rows.append([run["name"], _task(r), score, _fmt(best), _fmt(r.get("evaluations")),
                     _fmt(r.get("generations")), "-" if wall is None else f"{wall:.1f}", _fmt(r.get("seed"))])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot_runs(runs, path) -> int:
    """Draw the runs' best-so-far fitness against evaluations into one figure at ``path``.

    Parameters
    ----------
    runs : list of dict
        As returned by :func:`load_run`; runs without a history are left out.
    path : str or path
        Image file to write (the format follows the extension).

    Returns
    -------
    int
        The number of curves drawn. The y axis is logarithmic when every value is positive.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(run["name"], run["history"]) for run in runs if run["history"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    values = [v for _, h in curves for v in h["best"] if math.isfinite(v)]
    for name, h in curves:
        ax.plot(h["evaluations"], h["best"], lw=1.5, label=name)
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best fitness so far (lower is better)")
    ax.set_title(f"{len(curves)} run{'s' * (len(curves) != 1)}")
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)
    return len(curves)


def run_report(args) -> int:
    """The ``evolino report`` command: print the table, write the figure; exit status 0."""
    runs = [load_run(d) for d in args.run_dirs]
    print(summary_table(runs))
    missing = [run["name"] for run in runs if run["history"] is None]
    if missing:
        print(f"(no fitness history recorded for: {', '.join(missing)})")
    if not args.no_plot:
        try:
            n = plot_runs(runs, args.out)
        except ImportError:
            print("(matplotlib not installed: no figure; pip install evolino[plot])")
        else:
            print(f"figure: {args.out} ({n} fitness curves)")
    return 0


def add_subcommand(sub) -> None:
    """Add ``report`` to the ``evolino`` command's subparsers ``sub``."""
    p = sub.add_parser("report", help="compare finished runs: a table of final figures and one fitness figure")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders written by evolino ... --out")
    p.add_argument("--out", default="report.png", help="figure path (default: report.png)")
    p.add_argument("--no-plot", action="store_true", help="print the table only")
    p.set_defaults(func=run_report)
