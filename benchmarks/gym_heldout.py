"""Gymnasium tasks with hidden observations: held-out 100-episode means against ``reward_threshold``.

For every environment and seed it evolves an LSTM policy with
:func:`evolino.rl.evolve_policy` (SNES, observation normalization) until a candidate
solves the task (its training mean reaches the threshold, plus ``--margin``, and, with
``--validation N``, so does its mean over ``N`` validation episodes) or the budget runs out, then scores the
returned policy on 100 held-out episodes (:func:`evolino.rl.evaluate_policy`, seeds that
neither training nor validation used). Gymnasium's "solved" is that held-out mean
reaching the environment's ``reward_threshold``.

Usage::

    python benchmarks/gym_heldout.py --envs cartpole --seeds 10 --validation 20
    python benchmarks/gym_heldout.py --envs cartpole,acrobot --seeds 3 --validation 0 --json a.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from evolino.rl import evaluate_policy, evolve_policy
from evolino.rl.gym import GymTask

# name -> (gymnasium id, hidden observation indices: the velocities)
ENVS = {
    "cartpole": ("CartPole-v1", (1, 3)),
    "acrobot": ("Acrobot-v1", (4, 5)),
    "mountaincar": ("MountainCar-v0", (1,)),
}


def run_one(name, seed, args):
    env_id, mask = ENVS[name]
    task = GymTask(env_id, mask=mask, episodes=args.episodes, validation=args.validation,
                   validation_se=args.validation_se, margin=args.margin)
    t = time.process_time()
    options = {k: v for k, v in (("sigma0", args.sigma0), ("patience", args.patience)) if v is not None}
    res = evolve_policy(task, search="snes", seed=seed, max_evaluations=args.max_evaluations, normalize_obs=True,
                        search_options=options)
    held = evaluate_policy(res.policy, task, episodes=100)
    return {"env": env_id, "mask": list(mask), "seed": seed, "validation": args.validation, "validation_se": args.validation_se,
            "episodes": args.episodes, "margin": args.margin, "sigma0": args.sigma0, "patience": args.patience,
            "solved_in_training": bool(res.solved), "evaluations": int(res.evaluations),
            "heldout_mean": held["mean"], "threshold": held["threshold"], "heldout_solved": held["solved"],
            "cpu_s": time.process_time() - t}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", default="cartpole", help=f"comma-separated, of {sorted(ENVS)}")
    ap.add_argument("--seeds", type=int, default=10, help="runs per environment (seeds first-seed .. first-seed + N - 1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=3, help="training episodes per evaluation")
    ap.add_argument("--validation", type=int, default=20, help="validation episodes before 'solved' (0: off)")
    ap.add_argument("--validation-se", type=float, default=1.0,
                    help="standard errors the validation mean must clear the target by (GymTask.validation_se)")
    ap.add_argument("--margin", type=float, default=0.0,
                    help="the search demands reward_threshold + margin (GymTask.margin; held out, the threshold decides)")
    ap.add_argument("--max-evaluations", type=int, default=6000)
    ap.add_argument("--sigma0", type=float, default=None, help="SNES initial step (default: the strategy's, 1)")
    ap.add_argument("--patience", type=int, default=None,
                    help="SNES restarts after this many generations without a better sample (default: none)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.envs.split(",")]
    print("command: python benchmarks/gym_heldout.py " + " ".join(sys.argv[1:] if argv is None else argv))
    rows = []
    for name in names:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.append(run_one(name, seed, args))
            r = rows[-1]
            print(f"  {r['env']} seed {seed}: {'solved' if r['solved_in_training'] else 'unsolved'} after "
                  f"{r['evaluations']} evaluations, held-out mean {r['heldout_mean']:.1f} "
                  f"(threshold {r['threshold']}), {r['cpu_s']:.0f} s CPU", flush=True)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=1)
    print(f"\nmargin {args.margin:g}, validation_se {args.validation_se:g}, sigma0 {args.sigma0}, patience {args.patience}")
    print("\n| environment (hidden) | validation | runs | held-out mean, median (min) | held-out >= threshold "
          "| median evaluations | median CPU s |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: |")
    for name in names:
        env_id, mask = ENVS[name]
        rs = [r for r in rows if r["env"] == env_id]
        held = np.array([r["heldout_mean"] for r in rs])
        ok = sum(bool(r["heldout_solved"]) for r in rs)
        print(f"| {env_id} {tuple(mask)} | {args.validation} | {len(rs)} | {np.median(held):.1f} ({held.min():.1f}) "
              f"| {ok}/{len(rs)} | {np.median([r['evaluations'] for r in rs]):,.0f} "
              f"| {np.median([r['cpu_s'] for r in rs]):.0f} |")


if __name__ == "__main__":
    main()
