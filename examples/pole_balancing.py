"""Pole balancing: an LSTM policy evolved by ESP balances two poles on a cart.

Double pole balancing (Wieland's equations, the protocol of Gomez, Schmidhuber &
Miikkulainen, JMLR 2008; :class:`evolino.rl.PoleTask`): the whole network is one genome,
evolved until a policy balances both poles for ``--max-steps`` steps (10,000 here, 200 s of
simulated time, so that the script runs in under a minute; the literature's 100,000 with
``--max-steps 100000``). Without ``--no-velocities`` the policy sees positions and velocities;
with it, only positions, so it must estimate the velocities in its memory cells.

Run::

    python examples/pole_balancing.py [--no-velocities] [--search esp|cmaes] [--evaluations 20000] [--max-steps 10000]
        [--out pole.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evolino.rl import PoleTask, evolve_policy


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--poles", type=int, choices=[1, 2], default=2)
    ap.add_argument("--no-velocities", action="store_true", help="show only positions (memory needed)")
    ap.add_argument("--search", choices=["esp", "cmaes"], default="esp")
    ap.add_argument("--cells", type=int, default=2)
    ap.add_argument("--evaluations", type=int, default=20_000, help="evaluation budget")
    ap.add_argument("--max-steps", type=int, default=10_000, help="steps a policy must balance (default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="pole.png", help="figure path")
    args = ap.parse_args(argv)

    task = PoleTask(args.poles, velocities=not args.no_velocities, max_steps=args.max_steps)
    t0 = time.perf_counter()
    res = evolve_policy(task, n_cells=args.cells, search=args.search, seed=args.seed,
                        max_evaluations=args.evaluations)
    wall = time.perf_counter() - t0
    print(f"{task}: {'solved' if res.solved else 'not solved'} after {res.evaluations} evaluations "
          f"({res.generations} generations, {wall:.1f} s); generalization {res.generalization} / 625")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episode = res.policy.rollout(task.env, max_steps=1000)
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 5))
    for i, name in [(0, "cart position (m)"), (2, "long pole (rad)"), (4, "short pole (rad)")][: 1 + args.poles]:
        a.plot(episode["time"], episode["states"][:, i], lw=1, label=name)
    a.set_xlabel("time (s)")
    a.set_title(f"the evolved policy: a {episode['time'][-1]:.0f} s episode ({episode['steps']} steps)")
    a.legend(fontsize=8, loc="upper right")
    h = res.history
    b.plot(h["evaluations"], -np.asarray(h["best"]), label="best so far")
    b.plot(h["evaluations"], -np.asarray(h["gen_median"]), alpha=0.5, label="generation median")
    b.set_xlabel("evaluations")
    b.set_ylabel("steps balanced")
    b.set_yscale("log")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"figure: {args.out}")
    return {"solved": res.solved, "evaluations": res.evaluations}


if __name__ == "__main__":
    main()
