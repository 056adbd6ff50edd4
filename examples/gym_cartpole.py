"""A gymnasium task: CartPole-v1 with the cart's velocity hidden, solved by an LSTM policy.

:class:`evolino.rl.gym.GymTask` wraps any gymnasium environment (``pip install
evolino[gym]``). Here the policy does not see the cart's velocity (``--mask 1``), so the
LSTM cells must estimate it from successive positions. Hiding both velocities
(``--mask 1,3``) is harder: in this budget (3,000 evaluations, 2-4 cells, seeds 0-1)
it was not solved.
Fitness is minus the mean return over ``--episodes`` episodes; the environment's
``reward_threshold`` (475) counts as solved. The evolved policy is saved, loaded back and
run on a fresh episode.

Run::

    python examples/gym_cartpole.py [--search cmaes|esp] [--evaluations 3000] [--episodes 3] [--out cartpole.png]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from evolino.rl import Policy, evolve_policy
from evolino.rl.gym import GymTask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--mask", default="1", help="observation indices hidden from the policy")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--cells", type=int, default=2)
    ap.add_argument("--search", choices=["esp", "cmaes"], default="cmaes")
    ap.add_argument("--evaluations", type=int, default=3000, help="evaluation budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="cartpole.png", help="figure path")
    args = ap.parse_args(argv)

    mask = [int(i) for i in args.mask.split(",") if i]
    task = GymTask(args.env, mask=mask, episodes=args.episodes, seed=args.seed)
    t0 = time.perf_counter()
    res = evolve_policy(task, n_cells=args.cells, search=args.search, seed=args.seed,
                        max_evaluations=args.evaluations)
    wall = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # the file format round trip a user relies on
        path = os.path.join(tmp, "policy.npz")
        res.policy.save(path)
        policy = Policy.load(path)
    episode = policy.rollout(args.env, seed=10_000 + args.seed)
    print(f"{task}: {'solved' if res.solved else 'not solved'} after {res.evaluations} evaluations "
          f"({wall:.1f} s); the loaded policy's return on a new episode: {episode['return']:.0f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 5))
    obs = episode["observations"]
    a.plot(obs[:, 0], lw=1, label="cart position (seen)")
    a.plot(obs[:, 2], lw=1, label="pole angle (seen)")
    a.plot(obs[:, 1], lw=1, alpha=0.5, label="cart velocity (hidden)")
    a.set_xlabel("step")
    a.set_title(f"{args.env}, observations {mask} hidden: return {episode['return']:.0f}")
    a.legend(fontsize=8, loc="upper right")
    h = res.history
    b.plot(h["evaluations"], -np.asarray(h["best"]), label="best so far")
    b.plot(h["evaluations"], -np.asarray(h["gen_median"]), alpha=0.5, label="generation median")
    b.set_xlabel("evaluations")
    b.set_ylabel("mean return")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"figure: {args.out}")
    return {"solved": res.solved, "return": episode["return"]}


if __name__ == "__main__":
    main()
