"""Command-line subcommands ``evolino pole`` and ``evolino gym`` (registered by ``evolino.cli``).

Each run shows a progress bar (evaluations against the budget, the best return), prints
the best return with its natural sign (steps balanced, episode return), and writes into
``--out``: ``results.json`` (settings, outcome, per-generation history of returns),
``champion.npz`` (the policy; load it with ``evolino.rl.Policy.load``), ``plot.png``
(return curve, and the champion's episode) and ``checkpoint.npz`` (the search after its
last generation; ``--resume`` continues from it bit for bit).

``evolino gym`` counts a candidate that reaches the target on its training episodes only once
it also reaches it on ``--validation`` episodes of validation seeds (default 20; their mean less
``--validation-se`` standard errors, default 1), and scores the
champion on ``--eval-episodes`` held-out episodes (gymnasium's "solved": their mean reaches the
environment's ``reward_threshold``).

``evolino pole --search rpg`` trains the same policy by recurrent policy gradients
(:func:`evolino.rl.rpg.train_rpg`) instead of evolving it: ``--popsize`` is then the episodes per
gradient step, ``--evaluations`` / ``--generations`` count training episodes / gradient steps, and
the files (checkpoint and ``--resume`` included) are the same.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

import numpy as np

from .._io import json_safe, load_npz, save_npz, write_bytes, write_text
from .._validate import EvolinoError
from ..cli import int_at_least
from ..loop import progress_bar
from ..presets import GYM, POLE
from ..search import STRATEGIES

CHECKPOINT = "checkpoint.npz"
CHECKPOINT_VERSION = 1

__all__ = ["add_subcommands", "run_pole", "run_gym"]


_positive, _nonnegative = int_at_least(1), int_at_least(0)


def _mask(text):
    try:
        return tuple(int(t) for t in text.split(",") if t.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mask must be comma-separated integers, got {text!r}") from None


def _common(p, search="esp", lean=False, gradient=False):
    choices, extra = (STRATEGIES + ("rpg",), ", or rpg: recurrent policy gradients") if gradient else (STRATEGIES, "")
    p.add_argument("--search", choices=choices, default=search, help=f"search strategy{extra} (default {search})")
    p.add_argument("--cells", type=_positive, default=POLE.n_cells, help=f"LSTM memory cells (default {POLE.n_cells})")
    if lean:  # cells without peepholes and forget gate by default; flags to add them
        p.add_argument("--peepholes", dest="no_peepholes", action="store_false", help="cells with peepholes")
        p.add_argument("--forget-gate", dest="no_forget_gate", action="store_false", help="cells with forget gate")
        p.set_defaults(no_peepholes=True, no_forget_gate=True)
    else:
        p.add_argument("--no-peepholes", action="store_true", help="LSTM cells without peephole connections")
        p.add_argument("--no-forget-gate", action="store_true", help="LSTM cells without forget gate")
    direct = " (default: on when the velocities are observed)" if lean else " (default off)"
    p.add_argument("--direct", dest="direct", action="store_true", default=None,
                   help="also connect the inputs straight to the outputs" + direct)
    p.add_argument("--no-direct", dest="direct", action="store_false", help="no input-to-output weights")
    p.add_argument("--popsize", type=_positive, default=None,
                   help="networks per generation" + (" (rpg: episodes per gradient step)" if gradient else ""))
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="output directory (default: no files)")
    p.add_argument("--generations", type=_positive, default=None, help="generation budget")
    p.add_argument("--evaluations", type=_positive, default=None, help="evaluation budget (default 100000)")
    p.add_argument("--restarts", choices=("ipop", "bipop"), default=None,
                   help="CMA-ES restarts with growing populations (--search cmaes only)")
    p.add_argument("--evaluator", choices=("serial", "pool", "ray"), default="serial",
                   help="where candidates are evaluated (default serial: this process)")
    p.add_argument("--workers", type=_positive, default=None, help="worker processes for pool/ray")
    p.add_argument("--resume", action="store_true",
                   help=f"continue the search saved in --out/{CHECKPOINT} (same settings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="do not draw plot.png")


def add_subcommands(subparsers) -> None:
    """Register ``pole`` and ``gym`` on an ``argparse`` subparsers object.

    Each subparser sets ``func``: call ``args.func(args)``, which returns an exit code.
    """
    p = subparsers.add_parser("pole", help="evolve an LSTM policy for (double) pole balancing",
                              description="Evolve an LSTM policy for pole balancing. The defaults (SNES with "
                                          "restarts, cells without peepholes and forget gate) are the best measured setting "
                                          "of benchmarks/RESULTS.md.")
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
    p.add_argument("--backend", choices=("auto", "numpy", "numba"), default="auto",
                   help="episode backend (default: auto, compiled episodes when numba is installed)")
    _common(p, search=POLE.search, lean=True, gradient=True)
    p.set_defaults(func=run_pole, pole_options=True)

    g = subparsers.add_parser("gym", help="evolve an LSTM policy on a gymnasium environment",
                              description="Evolve an LSTM policy on a gymnasium environment (needs evolino[gym]). "
                                          "The default search is SNES restarted after 20 generations without a "
                                          "better sample (benchmarks/RESULTS.md).")
    g.add_argument("env_id", help="gymnasium environment id, e.g. CartPole-v1")
    g.add_argument("--mask", type=_mask, default=(), help="observation indices to hide, e.g. 1,3")
    g.add_argument("--episodes", type=_positive, default=3, help="episodes per evaluation (default 3)")
    g.add_argument("--target", type=float, default=None, help="mean return that counts as solved")
    g.add_argument("--seeding", choices=("fixed", "genome"), default="fixed", help="episode seeds (default fixed)")
    g.add_argument("--vectorization", choices=("sync", "vector"), default="sync")
    g.add_argument("--max-episode-steps", type=_positive, default=None,
                   help="cap on steps per episode (besides the environment's own time limit)")
    g.add_argument("--no-normalize", action="store_true",
                   help="feed raw observations (default: running mean/std normalization, saved with the policy)")
    g.add_argument("--validation", type=_nonnegative, default=20,
                   help="episodes on validation seeds a candidate must also reach the target on (default 20; 0: off)")
    g.add_argument("--margin", type=float, default=0.0,
                   help="the search demands the target + margin; the held-out score is judged at the target (default 0)")
    g.add_argument("--validation-se", type=float, default=1.0,
                   help="standard errors the validation mean must clear the target by (default 1)")
    g.add_argument("--gif", action="store_true",
                   help="also write champion.gif, one rendered episode of the champion (needs evolino[render])")
    g.add_argument("--eval-episodes", type=_positive, default=100,
                   help="held-out episodes the champion is scored on (default 100, as gymnasium's threshold)")
    _common(g, search=GYM.search)
    g.set_defaults(func=run_gym, gym_options=True)


def _progress(args):
    """Progress callback and its bar (None when disabled): evaluations of the budget, the best return."""
    if args.no_progress:
        return None, None
    total, _ = _budget(args)
    bar, update = progress_bar(total, by="evaluations")

    def show(status):
        update(status)
        bar.set_postfix_str(f"gen {status['generation']}  best return {-status['best_fitness']:.6g}")

    return show, bar


def _budget(args):
    evals = args.evaluations if args.evaluations or args.generations else POLE.max_evaluations
    return evals, args.generations


def _settings(task, args, spec):
    """What a checkpoint must agree on to be resumed."""
    return {"task": task.describe(), "search": args.search, "seed": args.seed, "popsize": args.popsize,
            "restarts": args.restarts, "policy": spec.to_dict(), "normalize": not getattr(args, "no_normalize", True)}


def _save_checkpoint(path, settings, status):
    state = status["strategy"].state_dict()
    arrays = {f"strategy.{k}": v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    norm, champ = status.get("normalizer"), status.get("champion_norm")
    if norm is not None:
        arrays.update({f"normalizer.{k}": np.asarray(v) for k, v in norm.state_dict().items()})
    if champ is not None:
        arrays.update({"champion_norm.mean": champ[0], "champion_norm.std": champ[1]})
    meta = {"format": "evolino.rl.checkpoint", "version": CHECKPOINT_VERSION, "settings": settings,
            "strategy": scalars, "history": dict(status["history"])}
    save_npz(path, arrays, meta)


def _load_checkpoint(path, settings) -> dict:
    arrays, meta = load_npz(path, "evolino.rl.checkpoint", CHECKPOINT_VERSION)
    if meta["settings"] != json.loads(json.dumps(settings)):
        raise EvolinoError(f"{path}: saved by a run with other settings ({meta['settings']}); run with the same "
                           "arguments to resume, or without --resume to start again")
    state = {k[len("strategy."):]: v for k, v in arrays.items() if k.startswith("strategy.")}
    state.update(meta["strategy"])
    norm = {k[len("normalizer."):]: v for k, v in arrays.items() if k.startswith("normalizer.")} or None
    champ = ((arrays["champion_norm.mean"], arrays["champion_norm.std"]) if "champion_norm.mean" in arrays
             else None)
    return {"strategy": state, "history": meta["history"], "normalizer": norm, "champion_norm": champ}


def _evaluator(args):
    from ..evaluate import make_evaluator

    if args.evaluator == "serial" and args.workers is not None:
        raise EvolinoError("--workers needs --evaluator pool or ray")
    return make_evaluator(args.evaluator, n_jobs=args.workers)


def _train(task, args, spec, callbacks, evaluator, resume):
    """The search (or, for ``--search rpg``, the gradient training) behind a subcommand."""
    evals, gens = _budget(args)
    if args.search == "rpg":
        from ..presets import RPG
        from .rpg import train_rpg

        return train_rpg(task, spec=spec, episodes=args.popsize or RPG.episodes, seed=args.seed,
                         max_evaluations=evals, max_generations=gens, callbacks=callbacks, resume=resume)
    from .search import evolve_policy

    options = {"restarts": args.restarts} if args.restarts else {}
    if getattr(args, "pole_options", False):
        options.update(POLE.command_options(args.search))
    elif getattr(args, "gym_options", False):
        options.update(GYM.command_options(args.search))
    return evolve_policy(task, spec=spec, search=args.search, popsize=args.popsize, seed=args.seed,
                         max_evaluations=evals, max_generations=gens, callbacks=callbacks, evaluator=evaluator,
                         search_options=options, normalize_obs=not getattr(args, "no_normalize", True),
                         resume=resume)


def _run(task, args, plot_episode, after=None):
    if args.restarts is not None and args.search != "cmaes":
        raise EvolinoError(f"--restarts applies to --search cmaes only, got --search {args.search}")
    if args.search == "rpg" and args.evaluator != "serial":
        raise EvolinoError("--evaluator applies to the evolutionary searches; --search rpg trains in this process")
    if args.resume and not args.out:
        raise EvolinoError(f"--resume needs --out (the folder holding {CHECKPOINT})")
    spec = task.default_spec(args.cells, peepholes=not args.no_peepholes, forget_gate=not args.no_forget_gate,
                             direct=args.direct)
    settings = _settings(task, args, spec)
    resume = None
    if args.resume:
        path = os.path.join(args.out, CHECKPOINT)
        if not os.path.isfile(path):
            raise EvolinoError(f"--resume: no checkpoint at {path}; run once without --resume first")
        resume = _load_checkpoint(path, settings)
    callbacks = []
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, CHECKPOINT)
        callbacks.append(lambda status: _save_checkpoint(path, settings, {**status, "history": history_ref[0]}))
    history_ref = [None]
    cb, bar = _progress(args)
    if cb:
        callbacks.append(cb)
    evaluator = _evaluator(args)
    t0 = time.perf_counter()
    try:
        from ..loop import History

        history_ref[0] = History(resume["history"]) if resume else History()

        def record(status):  # the loop appends to its own history; the checkpoint keeps a copy of it
            history_ref[0].append(status)

        res = _train(task, args, spec, (record, *callbacks), evaluator, resume)
    finally:
        if bar is not None:
            bar.close()
        evaluator.close()
    elapsed = time.perf_counter() - t0
    best_return = -float(res.strategy.best[1])
    h = res.history
    summary = {
        "task": task.describe(), "search": args.search, "policy": res.policy.spec.to_dict(),
        "popsize": res.strategy.popsize, "evaluator": args.evaluator, "workers": args.workers,
        "seed": args.seed, "solved": res.solved, "evaluations": res.evaluations, "generations": res.generations,
        "generalization": res.generalization, "best_return": best_return,
        "seconds": round(elapsed, 3),
        # returns with their natural sign (the search minimizes their negation)
        "history": {"generation": h["generation"], "evaluations": h["evaluations"],
                    "best_return": [-v for v in h["best"]], "gen_best_return": [-v for v in h["gen_best"]],
                    "gen_median_return": [-v for v in h["gen_median"]], "time": h["time"]},
    }
    if after is not None:
        summary.update(after(res))
    word = "solved" if res.solved else "not solved"
    extra = "" if res.generalization is None else f", generalization {res.generalization}/625"
    print(f"{word} after {res.evaluations} evaluations ({res.generations} generations, {elapsed:.1f} s), "
          f"best return {best_return:.6g}{extra}")
    if args.out:  # each file atomic, results.json first; a missing matplotlib costs only the plot
        summary["champion"] = "champion.npz"
        write_text(os.path.join(args.out, "results.json"), json.dumps(json_safe(summary), indent=1, allow_nan=False))
        res.policy.save(os.path.join(args.out, "champion.npz"))
        wrote = "results.json, champion.npz" + (", champion.gif" if "gif" in summary else "")
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

    if args.direct is None:  # a linear controller suffices once the velocities are observed
        args.direct = POLE.direct_with_velocities and not args.no_velocities
    task = PoleTask(args.poles, velocities=not args.no_velocities, fitness=args.fitness, max_steps=args.max_steps,
                    test_steps=args.test_steps, require_generalization=args.require_generalization,
                    backend=args.backend)

    def episode(policy):
        out = rollout(task.env, policy, max_steps=1000, backend=args.backend)
        traces = {f"pole {i + 1} angle (deg)": np.degrees(out["states"][:, 2 + 2 * i])
                  for i in range(task.env.n_poles)}
        traces["cart position (m)"] = out["states"][:, 0]
        return {"time": out["time"], "traces": traces, "title": f"champion: {out['steps']} steps balanced"}

    return _run(task, args, episode)


def run_gym(args) -> int:
    """``evolino gym ENV_ID``: returns 0 if solved, 1 otherwise."""
    from .gym import GymTask, rollout

    from .gym import evaluate_policy

    args.direct = bool(args.direct)
    if args.gif:  # checked before the search: a missing renderer costs no training
        if not args.out:
            raise EvolinoError("--gif needs --out (the folder champion.gif is written to)")
        from .render import check_render

        check_render(args.env_id)
    task = GymTask(args.env_id, mask=args.mask, episodes=args.episodes, seed=max(args.seed, 0),
                   seeding=args.seeding, target_return=args.target, vectorization=args.vectorization,
                   max_steps=args.max_episode_steps, validation=args.validation,
                   validation_se=args.validation_se, margin=args.margin)

    def episode(policy):
        out = rollout(args.env_id, policy, seed=args.seed)
        obs = out["observations"]
        traces = {f"obs[{j}]" + (" (hidden)" if j in task.mask else ""): obs[:, j] for j in range(obs.shape[1])}
        return {"time": np.arange(len(obs)), "traces": traces, "title": f"champion: return {out['return']:.1f}"}

    def heldout(res):
        score = evaluate_policy(res.policy, task, episodes=args.eval_episodes)
        verdict = ("" if score["solved"] is None else
                   f" >= {score['threshold']:g}: solved" if score["solved"] else f" < {score['threshold']:g}: not solved")
        print(f"held-out: mean return {score['mean']:.6g} +- {score['std']:.3g} over {args.eval_episodes} "
              f"episodes{verdict}")
        out = {"heldout": {k: score[k] for k in ("mean", "std", "min", "max", "threshold", "solved", "returns")}}
        if args.gif:
            from .render import episode_frames, save_gif

            frames, ret, fps = episode_frames(args.env_id, res.policy, seed=args.seed)
            n = save_gif(frames, os.path.join(args.out, "champion.gif"), fps=fps)
            print(f"champion.gif: {n} frames of one episode, return {ret:.6g}")
            out["gif"] = {"file": "champion.gif", "frames": n, "return": ret}
        return out

    return _run(task, args, episode, after=heldout)


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
    a.set_ylabel("return (higher is better)")
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
