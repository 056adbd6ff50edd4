"""The T-maze, a deep-memory task (Bakker, NIPS 2002; Wierstra et al., ICANN 2007), vectorized.

A corridor of ``length`` cells leads east from the start (cell 0) to a T-junction (cell
``length``). At the start the agent sees a signal telling which arm of the T, north or
south, holds the goal; in the corridor and at the junction it sees no trace of it, so it
must carry the signal through ``length`` steps of memory. Observations (Bakker's
encoding, three inputs)::

    start, goal north   [0, 1, 1]        corridor            [1, 0, 1]
    start, goal south   [1, 1, 0]        junction            [0, 1, 0]

Actions: 0 north, 1 east, 2 south, 3 west. Moving east or west walks the corridor
(reward 0); a move into a wall (north or south in the corridor, west at the start, east
at the junction) leaves the agent in place with reward -0.1. North or south at the
junction ends the episode: +4 in the goal's arm (a success), -0.1 in the other. An
episode also ends after ``max_steps`` steps (default ``2 (length + 2)``, room for the
walk and a few detours), unsuccessful.

All episodes advance together: positions are arrays, never a loop over agents.
:class:`TMazeTask` is the search task: every candidate runs both signals; fitness is
minus the mean return; solved when a candidate succeeds on both.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_array, check_positive_int
from .policy import PolicyBatch, PolicySpec

__all__ = ["TMaze", "TMazeTask", "TMazeFitness", "run_tmaze", "NORTH", "EAST", "SOUTH", "WEST"]

NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3
GOAL_REWARD, WRONG_REWARD, WALL_REWARD = 4.0, -0.1, -0.1
_OBS = {
    "start_north": (0.0, 1.0, 1.0), "start_south": (1.0, 1.0, 0.0),
    "corridor": (1.0, 0.0, 1.0), "junction": (0.0, 1.0, 0.0),
}


class TMaze:
    """T-maze dynamics on arrays of episodes.

    Parameters
    ----------
    length : int
        Corridor length ``N >= 1`` (steps from the start to the junction).
    max_steps : int, optional
        Step limit of an episode; default ``2 (length + 2)``.
    """

    n_obs = 3
    n_actions = 4

    def __init__(self, length: int, *, max_steps: int | None = None):
        self.length = check_positive_int(length, "length")
        self.max_steps = check_positive_int(2 * (self.length + 2) if max_steps is None else max_steps, "max_steps")

    def __repr__(self):
        return f"TMaze(length={self.length}, max_steps={self.max_steps})"

    def to_dict(self) -> dict:
        """The maze's parameters (JSON-able), for results files."""
        return {"task": "tmaze", "length": self.length, "max_steps": self.max_steps}

    def observe(self, pos, goal_north) -> np.ndarray:
        """Observations ``(..., 3)`` at positions ``pos`` with goals ``goal_north`` (bool), same shapes."""
        pos = np.asarray(pos)
        north = np.asarray(goal_north, bool)
        obs = np.empty(pos.shape + (3,))
        obs[...] = _OBS["corridor"]
        at_start = pos == 0
        obs[at_start & north] = _OBS["start_north"]
        obs[at_start & ~north] = _OBS["start_south"]
        obs[pos == self.length] = _OBS["junction"]
        return obs

    def step(self, pos, goal_north, action):
        """One step of every episode: ``(new_pos, reward, done, success)``, arrays of ``pos``'s shape.

        ``action`` holds ints in 0..3 (north, east, south, west).
        """
        pos = np.asarray(pos, np.int64)
        a = np.asarray(action)
        if a.shape != pos.shape:
            raise ValueError(f"action must have shape {pos.shape}, got {a.shape}")
        if a.size and (a.min() < 0 or a.max() > 3):
            raise ValueError("actions must be in 0..3 (north, east, south, west)")
        at_junction = pos == self.length
        turn = at_junction & ((a == NORTH) | (a == SOUTH))
        success = turn & ((a == NORTH) == np.asarray(goal_north, bool))
        east = (a == EAST) & ~at_junction
        west = (a == WEST) & (pos > 0)
        new = pos + east - west
        reward = np.where(turn, np.where(success, GOAL_REWARD, WRONG_REWARD),
                          np.where(east | west, 0.0, WALL_REWARD))
        return new, reward, turn, success


def run_tmaze(maze: TMaze, policy: PolicyBatch):
    """Both episodes (goal north, goal south) of ``P`` policies in lockstep.

    Parameters
    ----------
    maze : TMaze
    policy : PolicyBatch
        ``P`` argmax policies with 3 inputs and 4 outputs.

    Returns
    -------
    returns : ndarray (P, 2)
        Episode returns, column 0 goal north, column 1 goal south.
    success : ndarray (P, 2) of bool
    steps : ndarray (P, 2) of int
    """
    spec = policy.spec
    if spec.n_inputs != 3 or spec.head != "argmax" or spec.n_outputs != 4:
        raise ValueError("a T-maze policy needs 3 inputs and an argmax head with 4 outputs "
                         f"(north, east, south, west), got {spec.n_inputs} inputs, head {spec.head!r} "
                         f"with {spec.n_outputs} outputs")
    P = policy.size
    goal_north = np.broadcast_to(np.array([True, False]), (P, 2))
    pos = np.zeros((P, 2), np.int64)
    total = np.zeros((P, 2))
    success = np.zeros((P, 2), bool)
    steps = np.zeros((P, 2), np.int64)
    alive = np.ones((P, 2), bool)
    h = policy.initial_state(2)
    for _ in range(maze.max_steps):
        h, a = policy.act(h, maze.observe(pos, goal_north))
        new, r, done, ok = maze.step(pos, goal_north, a)
        pos = np.where(alive, new, pos)
        total += np.where(alive, r, 0.0)
        success |= alive & ok
        steps += alive
        alive &= ~done
        if not alive.any():
            break
    return total, success, steps


class TMazeFitness:
    """Picklable fitness: minus the mean return of the two episodes of each genome."""

    def __init__(self, spec: PolicySpec, length: int, max_steps: int):
        self.spec, self.length, self.max_steps = spec, length, max_steps
        self.obs_norm = None

    def __call__(self, genomes) -> np.ndarray:
        ret, _, _ = run_tmaze(TMaze(self.length, max_steps=self.max_steps),
                              PolicyBatch(self.spec, genomes, self.obs_norm))
        return -ret.mean(axis=1)


class TMazeTask:
    """The T-maze as a policy-search task (see :func:`evolino.rl.evolve_policy`).

    Parameters
    ----------
    length : int
        Corridor length ``N >= 1``.
    max_steps : int, optional
        Step limit; default ``2 (length + 2)``.
    """

    def __init__(self, length: int, *, max_steps: int | None = None):
        self.maze = TMaze(length, max_steps=max_steps)

    def __repr__(self):
        return f"TMazeTask(length={self.maze.length})"

    def describe(self) -> dict:
        """The task's parameters (JSON-able), for results files."""
        return self.maze.to_dict()

    def default_spec(self, n_cells: int = 2, **options) -> PolicySpec:
        """An LSTM policy for the maze: 3 observations in, 4 actions out (argmax head)."""
        return PolicySpec(3, n_cells, n_outputs=4, head="argmax", **options)

    def fitness_fn(self, spec: PolicySpec) -> TMazeFitness:
        """The picklable fitness of genomes of ``spec`` on this maze (both signals per candidate)."""
        return TMazeFitness(spec, self.maze.length, self.maze.max_steps)

    def success(self, spec: PolicySpec, genomes, obs_norm=None) -> np.ndarray:
        """Success ``(P, 2)`` of genomes ``(P, n)`` on the two signals."""
        g = check_array(genomes, "genomes", ndims=(1, 2), dtype=np.float64)
        return run_tmaze(self.maze, PolicyBatch(spec, np.atleast_2d(g), obs_norm))[1]

    def policy_inputs(self, policy, seed=None) -> np.ndarray:
        """Observations ``(T, 3)`` of one episode per signal (for normalization)."""
        batch = policy.batch()
        obs, pos = [], np.zeros((1, 2), np.int64)
        goal = np.array([[True, False]])
        h = batch.initial_state(2)
        alive = np.ones((1, 2), bool)
        for _ in range(self.maze.max_steps):
            x = self.maze.observe(pos, goal)
            obs.append(x[alive])
            h, a = batch.act(h, x)
            new, _, done, _ = self.maze.step(pos, goal, a)
            pos = np.where(alive, new, pos)
            alive &= ~done
            if not alive.any():
                break
        return np.concatenate(obs)

    def check(self, spec, status, genomes, obs_norm=None):
        """``(solved, champion, evaluations to solve)``: solved when a candidate succeeds on both signals.

        Only candidates whose return could be two successes are re-run.
        """
        f = status["fitness"]
        maybe = np.flatnonzero(-f >= GOAL_REWARD + WALL_REWARD * self.maze.max_steps)
        if maybe.size == 0:
            return False, None, None
        ok = self.success(spec, genomes[maybe], obs_norm).all(axis=1)
        if not ok.any():
            return False, None, None
        i = int(maybe[np.argmax(ok)])
        return True, genomes[i].copy(), int(status["evaluations"] - len(f) + i + 1)
