"""Command-line subcommands ``evolino pole`` and ``evolino gym`` (registered by ``evolino.cli``).

Each run shows a progress bar, and writes into ``--out``: ``results.json`` (settings,
outcome, per-generation history), ``champion.npz`` (the policy; load it with
``evolino.rl.Policy.load``) and ``plot.png`` (fitness curve, and the champion's
episode: pole angles, or the observations of a gymnasium episode).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

import numpy as np

from .._io import json_safe, write_bytes, write_text
from ..loop import progress_bar
from ..presets import POLE

__all__ = ["add_subcommands", "run_pole", "run_gym"]


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _mask(text):
    try:
        return tuple(int(t) for t in text.split(",") if t.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mask must be comma-separated integers, got {text!r}") from None


def _common(p):
    p.add_argument("--search", choices=("esp", "cmaes"), default="esp", help="search strategy (default esp)")
    p.add_argument("--cells", type=_positive, default=POLE.n_cells, help=f"LSTM memory cells (default {POLE.n_cells})")
    p.add_argument("--no-peepholes", action="store_true", help="LSTM cells without peephole connections")
    p.add_argument("--no-forget-gate", action="store_true", help="LSTM cells without forget gate")
    p.add_argument("--direct", action="store_true", help="also connect the inputs straight to the outputs")
    p.add_argument("--popsize", type=_positive, default=None, help="networks per generation")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="output directory (default: no files)")
    p.add_argument("--generations", type=_positive, default=None, help="generation budget")
    p.add_argument("--evaluations", type=_positive, default=None, help="evaluation budget (default 100000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="do not draw plot.png")


def add_subcommands(subparsers) -> None:
    """Register ``pole`` and ``gym`` on an ``argparse`` subparsers object.

    Each subparser sets ``func``: call ``args.func(args)``, which returns an exit code.
    """
    p = subparsers.add_parser("pole", help="evolve an LSTM policy for (double) pole balancing",
                              description="Evolve an LSTM policy (ESP or CMA-ES) for pole balancing.")
    p.add_argument("--poles", type=int, choices=(1, 2), default=2, help="number of poles (default 2)")
    p.add_argument("--no-velocities", action="store_true", help="hide the velocities (non-Markov task)")
    p.add_argument("--fitness", choices=("standard", "damping"), default="standard",
                   help="steps balanced, or Gruau's damping fitness (default standard)")
    p.add_argument("--max-steps", type=_positive, default=None,
                   help="steps of a fitness episode (default 100000 standard, 1000 damping)")
    p.add_argument("--test-steps", type=_positive, default=100_000,
                   help="damping fitness: steps the generation's best must balance (default 100000)")
    p.add_argument("--require-generalization", action="store_true",
                   help="damping fitness: a solution must also balance >= 200 of the 625 test starts")
    _common(p)
    p.set_defaults(func=run_pole)

    g = subparsers.add_parser("gym", help="evolve an LSTM policy on a gymnasium environment",
                              description="Evolve an LSTM policy on a gymnasium environment (needs evolino[gym]).")
    g.add_argument("env_id", help="gymnasium environment id, e.g. CartPole-v1")
    g.add_argument("--mask", type=_mask, default=(), help="observation indices to hide, e.g. 1,3")
    g.add_argument("--episodes", type=_positive, default=3, help="episodes per evaluation (default 3)")
    g.add_argument("--target", type=float, default=None, help="mean return that counts as solved")
    g.add_argument("--seeding", choices=("fixed", "genome"), default="fixed", help="episode seeds (default fixed)")
    g.add_argument("--vectorization", choices=("sync", "vector"), default="sync")
    _common(g)
    g.set_defaults(func=run_gym)


def _progress(args):
    """Progress callback and its bar (None when disabled)."""
    if args.no_progress:
        return None, None
    bar, update = progress_bar(args.evaluations if args.evaluations else None, by="evaluations")
    return update, bar


def _budget(args):
    evals = args.evaluations if args.evaluations or args.generations else POLE.max_evaluations
    return evals, args.generations


def _run(task, args, plot_episode):
    from .search import evolve_policy

    cb, bar = _progress(args)
    evals, gens = _budget(args)
    t0 = time.perf_counter()
    try:
        spec = task.default_spec(args.cells, peepholes=not args.no_peepholes, forget_gate=not args.no_forget_gate,
                                 direct=args.direct)
        res = evolve_policy(task, spec=spec, search=args.search, popsize=args.popsize, seed=args.seed,
                            max_evaluations=evals, max_generations=gens, callbacks=(cb,) if cb else ())
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    summary = {
        "task": task.describe(), "search": args.search, "policy": res.policy.spec.to_dict(),
        "popsize": res.strategy.popsize,
        "seed": args.seed, "solved": res.solved, "evaluations": res.evaluations, "generations": res.generations,
        "generalization": res.generalization, "best_fitness": float(res.strategy.best[1]),
        "seconds": round(elapsed, 3), "history": dict(res.history),
    }
    word = "solved" if res.solved else "not solved"
    extra = "" if res.generalization is None else f", generalization {res.generalization}/625"
    print(f"{word} after {res.evaluations} evaluations ({res.generations} generations, {elapsed:.1f} s){extra}")
    if args.out:  # each file atomic, results.json first; a missing matplotlib costs only the plot
        summary["champion"] = "champion.npz"
        write_text(os.path.join(args.out, "results.json"), json.dumps(json_safe(summary), indent=1, allow_nan=False))
        res.policy.save(os.path.join(args.out, "champion.npz"))
        wrote = "results.json, champion.npz"
        if not args.no_plot:
            try:
                _plot(res.history, plot_episode(res.policy), os.path.join(args.out, "plot.png"))
                wrote += ", plot.png"
            except ImportError:
                print("(matplotlib not installed: no plot; pip install evolino[plot])", file=sys.stderr)
        print(f"wrote {args.out}/{wrote}")
    return 0 if res.solved else 1


def run_pole(args) -> int:
    """``evolino pole``: returns 0 if solved, 1 if the budget ran out."""
    from .pole import rollout
    from .search import PoleTask

    task = PoleTask(args.poles, velocities=not args.no_velocities, fitness=args.fitness, max_steps=args.max_steps,
                    test_steps=args.test_steps, require_generalization=args.require_generalization)

    def episode(policy):
        out = rollout(task.env, policy, max_steps=1000)
        traces = {f"pole {i + 1} angle (deg)": np.degrees(out["states"][:, 2 + 2 * i])
                  for i in range(task.env.n_poles)}
        traces["cart position (m)"] = out["states"][:, 0]
        return {"time": out["time"], "traces": traces, "title": f"champion: {out['steps']} steps balanced"}

    return _run(task, args, episode)


def run_gym(args) -> int:
    """``evolino gym ENV_ID``: returns 0 if solved, 1 otherwise."""
    from .gym import GymTask, rollout

    task = GymTask(args.env_id, mask=args.mask, episodes=args.episodes, seed=max(args.seed, 0),
                   seeding=args.seeding, target_return=args.target, vectorization=args.vectorization)

    def episode(policy):
        out = rollout(args.env_id, policy, seed=args.seed)
        obs = out["observations"]
        traces = {f"obs[{j}]" + (" (hidden)" if j in task.mask else ""): obs[:, j] for j in range(obs.shape[1])}
        return {"time": np.arange(len(obs)), "traces": traces, "title": f"champion: return {out['return']:.1f}"}

    return _run(task, args, episode)


def _plot(history, episode, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    ev = np.asarray(history["evaluations"])
    a.plot(ev, -np.asarray(history["best"]), label="best so far")
    a.plot(ev, -np.asarray(history["gen_best"]), alpha=0.6, label="generation best")
    if np.nanmax(np.abs(-np.asarray(history["best"]))) > 100:
        a.set_yscale("symlog")  # steps balanced span orders of magnitude
    a.set_xlabel("evaluations")
    a.set_ylabel("fitness (higher is better)")
    a.set_title("search")
    a.legend()
    for name, y in episode["traces"].items():
        b.plot(episode["time"][: len(y)], y, label=name)
    b.set_xlabel("time (s)" if "pole 1 angle (deg)" in episode["traces"] else "step")
    b.set_title(episode["title"])
    b.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format="png")
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    """Stand-alone entry for these two subcommands (``python -m evolino.rl.cli pole ...``)."""
    parser = argparse.ArgumentParser(prog="evolino-rl")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
