"""The ``evolino`` command: thin argument parsing over the public API.

    evolino sines [--terms 2 | --freqs 0.2,0.311] [--search esp|cmaes] [--cells N] [--seed S] [--out DIR]
    evolino mackey-glass [...]
    evolino anbncn [--readout linear|svr|svc] [--cells N] [--train-max 10] [--test-max 500] [--seed S] [--out DIR]

Each run shows a progress bar, prints a summary beside the paper's number and
writes ``results.json``, ``model.npz``, ``checkpoint.npz`` and ``plot.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import traceback

import numpy as np

from ._io import json_safe, open_output, write_bytes, write_text
from ._validate import EvolinoError
from .loop import progress_bar
from .presets import ANBNCN, MACKEY_GLASS, SINES

REFERENCE_SINES = {2: 4.15e-3, 3: 8.04e-3, 4: 0.110, 5: 0.166}  # see benchmarks/REFERENCES.md
REFERENCE_MG = 1.9e-3
REFERENCE_ANBNCN = 28  # gradient LSTM, train n = 1..10 (Gers & Schmidhuber 2001): recalled, NOT VERIFIED (REFERENCES.md)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2, as argparse does, without the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _freqs(text):
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--freqs must be comma-separated numbers, got {text!r}") from None
    if not values or not all(np.isfinite(values)) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"--freqs must be positive finite numbers (a frequency 0 is a constant "
                                         f"series, nothing to learn), got {text!r}")
    return values


def _auto_or(kind):
    """An argparse type: 'auto' or a value of ``kind``."""
    def parse(text):
        return text if text == "auto" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _ridge(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ridge must be 'auto' or a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"--ridge must be 'auto' or a number >= 0, got {text!r}")
    return value


def int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum``, or a one-line usage error."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its message
    return parse


_positive = int_at_least(1)


def _common(p, preset):
    """Options shared by the supervised tasks; defaults from the task's preset (:mod:`evolino.presets`)."""
    p.add_argument("--search", choices=["esp", "cmaes"], default="esp", help="search strategy (default: esp)")
    p.add_argument("--cells", type=_positive, default=preset.n_cells, help=f"memory cells (default: {preset.n_cells})")
    p.add_argument("--popsize", type=_positive, default=preset.popsize,
                   help=f"networks per generation (default: {preset.popsize}; ESP: subpopulations of popsize/trials)")
    p.add_argument("--generations", type=_positive, default=preset.generations,
                   help=f"generations (default: {preset.generations})")
    p.add_argument("--ridge", type=_ridge, default="auto",
                   help="readout ridge, relative to the state energy: auto (GCV per network, default), 0 (pseudo-inverse) "
                        "or a number")
    p.add_argument("--input-scale", type=_auto_or(float), default=preset.input_scale,
                   help=f"factor on every network input (default: {preset.input_scale}; see Evolino's input_scale)")
    p.add_argument("--init-scale", type=_auto_or(float), default=preset.init_scale,
                   help=f"scale of the random initial weights (default: {preset.init_scale})")
    p.add_argument("--gates", choices=["auto", "lstm", "reservoir"], default=preset.gates,
                   help=f"initial gate regime (default: {preset.gates})")
    p.add_argument("--lags", type=_auto_or(int), default=preset.lags,
                   help=f"the readout also reads the inputs of the last LAGS steps (default: {preset.lags}; auto: "
                        "chosen from the data)")
    p.add_argument("--noise", type=_auto_or(float), default=preset.noise,
                   help=f"std of the noise on the fed-back training targets, standardized (default: {preset.noise}; "
                        "auto: chosen from the data)")
    p.add_argument("--horizon", type=_auto_or(_positive), default=preset.horizon,
                   help=f"steps of the validation free runs (default: {preset.horizon}; auto: runs of a quarter, "
                        "all, a sixteenth and a sixty-fourth of the validation part)")
    p.add_argument("--trials", type=_positive, default=preset.trials,
                   help=f"ESP: networks per chromosome (default: {preset.trials})")
    p.add_argument("--mutation-scale", type=float, default=preset.mutation_scale,
                   help=f"ESP: Cauchy mutation scale (default: {preset.mutation_scale})")
    p.add_argument("--patience", type=_positive, default=preset.patience,
                   help=f"ESP: stale generations before burst mutation (default: {preset.patience})")
    p.add_argument("--sigma0", type=float, default=preset.sigma0,
                   help=f"CMA-ES: initial step size (default: {preset.sigma0})")
    p.add_argument("--encoding", choices=["direct", "dct", "gains"], default="direct",
                   help="what evolves: the weights (default), DCT coefficients of every weight matrix, or gains "
                        "and bias shifts, both on top of the best random network (use with --search cmaes)")
    p.add_argument("--coefficients", type=_positive, default=None,
                   help="DCT coefficients kept per weight matrix (default: 16)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=None, help="output folder for results.json, model.npz, plot.png")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--checkpoint-every", type=_positive, default=10, help="generations between checkpoints")
    p.add_argument("--evaluator", choices=["serial", "pool", "ray"], default="serial")
    p.add_argument("--workers", type=_positive, default=None, help="worker processes for pool/ray")
    p.add_argument("--backend", choices=["auto", "numpy", "numba"], default="auto",
                   help="kernel backend (default: auto, numba when installed)")
    p.add_argument("--address", default=None, help="Ray cluster address (e.g. auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="do not write plot.png")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _ArgumentParser(prog="evolino", description="Train LSTM networks by Evolino.")
    parser.add_argument("--version", action="version", version=f"evolino {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)
    p = sub.add_parser("sines", help="superimposed sine waves, closed-loop generation (MSO protocol)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--terms", type=_positive, default=None,
                   help="number of sines, frequencies 0.2, 0.311, ... (default: 2)")
    g.add_argument("--freqs", type=_freqs, default=None, help="comma-separated frequencies instead of --terms")
    _common(p, SINES)
    p = sub.add_parser("mackey-glass", help="Mackey-Glass tau=17, NRMSE84 (Jaeger's protocol)")
    p.add_argument("--train", type=_positive, default=2000, help="training steps after washout (default: 2000)")
    _common(p, MACKEY_GLASS)
    p = sub.add_parser("anbncn", help="context-sensitive language a^n b^n c^n, next-symbol sets (Gers & Schmidhuber 2001)")
    p.add_argument("--readout", choices=["linear", "svr", "svc"], default="linear",
                   help="linear (Evolino, pseudo-inverse) or an SVM (Evoke) (default: linear)")
    p.add_argument("--search", choices=["esp", "cmaes"], default="esp", help="search strategy (default: esp)")
    p.add_argument("--cells", type=_positive, default=ANBNCN.n_cells, help=f"memory cells (default: {ANBNCN.n_cells})")
    p.add_argument("--popsize", type=_positive, default=ANBNCN.popsize,
                   help=f"networks per generation (default: {ANBNCN.popsize})")
    p.add_argument("--generations", type=_positive, default=ANBNCN.generations,
                   help=f"generations (default: {ANBNCN.generations})")
    p.add_argument("--C", type=float, default=1.0, help="SVM regularization C (default: 1)")
    p.add_argument("--train-max", type=_positive, default=10, help="train on n = 1..TRAIN_MAX (default: 10)")
    p.add_argument("--test-max", type=_positive, default=500, help="test n = 1..TEST_MAX (default: 500)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=None, help="output folder for results.json, model.npz, plot.png")
    p.add_argument("--workers", type=_positive, default=None, help="worker processes (default: this process)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="do not write plot.png")
    try:
        from .rl.cli import add_subcommands
    except ImportError:  # RL policy search not installed in this build
        pass
    else:
        add_subcommands(sub)
    from .report import add_subcommand as add_report

    add_report(sub)
    return parser


def _train(args, task):
    from .trainer import Evolino

    out = args.out
    if args.resume and out is None:
        raise EvolinoError("--resume needs --out (the folder holding checkpoint.npz)")
    checkpoint = None if out is None else os.path.join(out, "checkpoint.npz")
    if args.resume and not os.path.exists(checkpoint):
        raise EvolinoError(f"--resume: no checkpoint at {checkpoint}; run once without --resume")
    bar, cb = progress_bar(args.generations, disable=args.no_progress)
    evaluator, owned = args.evaluator, False
    if args.evaluator == "ray" and args.address:  # joining a cluster: the trainer takes names only
        from .evaluate import Ray

        evaluator, owned = Ray(address=args.address, n_workers=args.workers), True
    if args.search == "esp":
        options = dict(trials=args.trials, mutation_scale=args.mutation_scale, patience=args.patience)
    else:
        options = dict(sigma0=args.sigma0)
    if args.coefficients is not None and args.encoding != "dct":
        raise SystemExit("evolino: error: --coefficients applies to --encoding dct")
    enc_options = None if args.coefficients is None else {"coefficients": args.coefficients}
    trainer = Evolino(args.cells, search=args.search, ridge=args.ridge, washout=task.washout,
                      input_scale=args.input_scale, init_scale=args.init_scale, gates=args.gates, horizon=args.horizon,
                      lags=args.lags, noise=args.noise,
                      search_options=options, encoding=args.encoding, encoding_options=enc_options,
                      popsize=args.popsize, max_generations=args.generations, evaluator=evaluator,
                      n_jobs=None if owned else args.workers,
                      checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, callbacks=[cb], seed=args.seed,
                      backend=args.backend)
    try:
        net = trainer.fit(task.train_series, resume=args.resume)
    finally:
        bar.close()
        if owned:
            evaluator.close()
    score, detail = task.score(net)
    return trainer, net, score, detail, trainer.history_


def _write(args, results, net, hist, draw_top, ylabel="validation NRMSE"):
    """results.json, model.npz and plot.png (``draw_top(ax)`` above the fitness curve) in ``--out``.

    Each file is written atomically, results.json first (the summary is the part never to lose);
    ``net`` None writes no model (a non-linear readout has no weight matrix to save).
    """
    if args.out is None:
        return
    write_text(os.path.join(args.out, "results.json"), json.dumps(json_safe(results), indent=2, allow_nan=False))
    if net is not None:
        net.save(os.path.join(args.out, "model.npz"))
    if not args.no_plot:
        try:
            _save_figure(os.path.join(args.out, "plot.png"), hist, draw_top, ylabel)
        except ImportError:
            print("(matplotlib not installed: no plot; pip install evolino[plot])", file=sys.stderr)


def _save_figure(path, hist, draw_top, ylabel="validation NRMSE"):
    """Two panels: ``draw_top(ax)`` (target vs generation) above the fitness curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6))
    draw_top(a)
    a.legend(loc="upper left")
    _fitness_axis(b, hist, ylabel)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format="png")
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def _results(args, trainer, hist, **fields):
    """results.json content shared by the supervised tasks."""
    return {**fields, "generation1_best_validation": hist["gen_best"][0], "best_validation": trainer.best_fitness_,
            "evaluations": hist["evaluations"][-1], "generations": hist["generation"][-1],
            "wall_time_s": hist["time"][-1], "seed": trainer.seed_,
            "config": {k: v for k, v in vars(args).items() if k != "func"}}


def _fitness_axis(ax, hist, ylabel):
    ax.semilogy(hist["evaluations"], hist["best"], label="best so far")
    ax.semilogy(hist["evaluations"], hist["gen_median"], alpha=0.5, label="generation median")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(ylabel)
    ax.legend()


def run_sines(args):
    from .tasks import SinesTask

    if args.terms is None and args.freqs is None:
        args.terms = 2
    task = SinesTask(terms=args.terms, freqs=args.freqs)
    trainer, net, score, generated, hist = _train(args, task)
    n_terms = len(args.freqs) if args.freqs else args.terms
    ref = REFERENCE_SINES.get(n_terms) if args.freqs is None else None
    results = _results(args, trainer, hist, task="sines", freqs=list(args.freqs or []), terms=n_terms,
                       test_nrmse=score, reference_nrmse_evolino_2007=ref)
    print(f"sines ({n_terms} terms, {args.search}, {args.cells} cells, seed {trainer.seed_}): "
          f"test NRMSE {score:.3g} over {task.test} closed-loop steps"
          + (f"  [Evolino 2007: {ref:.3g}, recalled, NOT VERIFIED]" if ref else ""))
    print(f"  generation-1 best (random networks + readout): {hist['gen_best'][0]:.3g} validation NRMSE; "
          f"final {trainer.best_fitness_:.3g}; {hist['evaluations'][-1]} evaluations in {hist['time'][-1]:.1f} s")

    def top(a):
        n0 = task.washout + task.train
        a.plot(np.arange(len(task.series)), task.series[:, 0], "k", lw=1, label="target")
        a.plot(np.arange(n0, n0 + task.test), generated[:, 0], "r--", lw=1, label="closed-loop generation")
        a.axvline(n0, color="gray", ls=":")
        a.set_title(f"{n_terms} superimposed sines: test NRMSE {score:.2e}")

    _write(args, results, net, hist, top)
    return 0


def run_mackey_glass(args):
    from .tasks import MackeyGlassTask

    task = MackeyGlassTask(train=args.train)
    trainer, net, score, errors, hist = _train(args, task)
    results = _results(args, trainer, hist, task="mackey-glass", nrmse84=score, test_nrmse=score,
                       reference_nrmse84_evolino_2007=REFERENCE_MG)
    print(f"mackey-glass ({args.search}, {args.cells} cells, seed {trainer.seed_}): NRMSE84 {score:.3g} "
          f"over {task.n_runs} runs  [Evolino 2007: {REFERENCE_MG:.3g}, recalled, NOT VERIFIED]")
    print(f"  generation-1 best: {hist['gen_best'][0]:.3g}; final {trainer.best_fitness_:.3g}; "
          f"{hist['evaluations'][-1]} evaluations in {hist['time'][-1]:.1f} s")

    def top(a):
        seg = task.segments()[0]
        gen = net.generate(task.horizon, Y_prefix=seg[: task.warm])
        t = np.arange(task.warm - 200, task.warm + task.horizon)
        a.plot(t, seg[t, 0], "k", lw=1, label="target")
        a.plot(np.arange(task.warm, task.warm + task.horizon), gen[:, 0], "r--", lw=1, label="free run")
        a.set_title(f"Mackey-Glass: NRMSE84 {score:.2e}")

    _write(args, results, net, hist, top)
    return 0


def run_anbncn(args):
    from .estimators import EvolinoRegressor
    from .tasks.anbncn import AnbncnTask

    task = AnbncnTask(train_max=args.train_max, test_max=args.test_max)
    bar, cb = progress_bar(args.generations, disable=args.no_progress)
    model = EvolinoRegressor(**{**ANBNCN.estimator_kwargs(), "n_cells": args.cells, "readout": args.readout, "C": args.C,
                                "search": args.search, "popsize": args.popsize, "max_generations": args.generations,
                                "n_jobs": args.workers, "callbacks": [cb], "random_state": args.seed})
    if args.search == "cmaes":
        model.set_params(search_options={"sigma0": 1.0})
    try:
        model.fit(task.train_X, task.train_Y)
    finally:
        bar.close()
    N, accepted = task.score(model)
    hist = model.history_
    train_ok = int(accepted[: args.train_max].sum())
    results = {
        "task": "anbncn", "generalization_N": N, "train_accepted": train_ok, "train_max": args.train_max,
        "test_max": args.test_max, "accepted": [int(n) for n in np.flatnonzero(accepted) + 1],
        "reference_N_gradient_lstm_gers_2001": REFERENCE_ANBNCN, "reference_status": "NOT VERIFIED",
        "best_fitness": model.best_fitness_, "evaluations": hist["evaluations"][-1],
        "generations": hist["generation"][-1], "wall_time_s": hist["time"][-1], "seed": model.seed_,
        "config": {k: v for k, v in vars(args).items() if k != "func"},
    }
    print(f"anbncn ({args.readout} readout, {args.search}, {args.cells} cells, seed {model.seed_}): "
          + (f"generalization n = 1..{N}" if N else "no generalization range (n = 1 rejected)")
          + f" (tested up to {args.test_max}); {train_ok}/{args.train_max} training strings "
          f"accepted  [gradient LSTM, Gers & Schmidhuber 2001: about 1..{REFERENCE_ANBNCN}, NOT VERIFIED]")
    print(f"  best fitness {model.best_fitness_:.3g}; {hist['evaluations'][-1]} evaluations in {hist['time'][-1]:.1f} s")

    def top(a):
        n = np.arange(1, args.test_max + 1)
        a.plot(n, accepted.astype(int), "k.", ms=3)
        a.axvspan(0.5, args.train_max + 0.5, color="gray", alpha=0.2, label="training n")
        a.set_xlabel("n")
        a.set_ylabel("accepted")
        a.set_title(f"a^n b^n c^n: all n <= {N} accepted")

    _write(args, results, model.network_ if model.network_.coef is not None else None, hist, top, ylabel="fitness")
    return 0


COMMANDS = {"sines": run_sines, "mackey-glass": run_mackey_glass, "anbncn": run_anbncn}


def _need_bytes(args) -> int:
    """Disk space the run's files need in ``--out``: the checkpoint (written beside its previous copy) and the model."""
    from .lstm import LSTMSpec

    cells, popsize = getattr(args, "cells", 1), getattr(args, "popsize", None) or 40
    n_params = LSTMSpec(1, cells).n_params
    return 8 * n_params * (popsize + 16) * 2 + 2**20


def _fault(exc) -> str | None:
    """One line for a user error or a fault of the machine; None for a bug (it keeps its traceback)."""
    from .evaluate import EvaluationError

    if isinstance(exc, EvolinoError):
        return str(exc)
    if isinstance(exc, EvaluationError) and exc.remote_traceback is None:  # a dead or hung worker, not a raise
        return str(exc).splitlines()[0]
    if isinstance(exc, ImportError) and "pip install" in str(exc):  # an optional extra is not installed
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer --cells, a smaller --popsize or fewer --workers"
    if isinstance(exc, OSError):
        name = exc.filename2 or exc.filename  # a failed rename names its destination second
        where = f": {name}" if name else ""
        return f"{exc.strerror or exc}{where}"
    return None


def main(argv=None) -> int:
    """Run the command line; status 0 on success, 2 for bad input, 1 for a fault, 130 on Ctrl-C.

    User errors and faults of the machine (full disk, memory, a dead worker) print one line;
    any other exception is a bug and keeps its traceback (``--debug``: tracebacks always).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    func = COMMANDS.get(args.command) or getattr(args, "func", None)
    lock = None
    try:
        # a training run's output folder is checked, and held, before any work (report's --out is a figure)
        if args.command != "report" and getattr(args, "out", None) is not None:
            lock = open_output(args.out, _need_bytes(args))
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("evolino: interrupted; resume with --resume", file=sys.stderr)
        return 130
    except Exception as exc:
        line = None if debug else _fault(exc)
        if line is None:
            if debug:
                traceback.print_exc()
                return 1
            raise
        print(f"evolino {args.command}: error: {line}", file=sys.stderr)
        return 2 if isinstance(exc, EvolinoError) else 1
    finally:
        if lock is not None:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
