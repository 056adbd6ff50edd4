"""The ``pole`` and ``gym`` subcommands: files written, champion reloadable, bad arguments."""

import argparse
import json

import numpy as np
import pytest

from evolino.rl import Policy, PoleBalancing, run_episodes
from evolino.rl.cli import add_subcommands, main


def test_pole_writes_results_plot_and_champion(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["pole", "--poles", "1", "--search", "cmaes", "--max-steps", "500", "--evaluations", "3000",
                 "--seed", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["solved"] and res["task"]["n_poles"] == 1 and res["search"] == "cmaes"
    assert res["evaluations"] <= res["history"]["evaluations"][-1]
    assert (out / "plot.png").stat().st_size > 1000
    pol = Policy.load(out / "champion.npz")
    steps = run_episodes(PoleBalancing(1, velocities=True), pol.batch(), max_steps=500).steps[0, 0]
    assert steps == 500
    assert "solved after" in capsys.readouterr().out


def test_gym_cartpole_masked(tmp_path):
    pytest.importorskip("gymnasium")
    out = tmp_path / "gym"
    main(["gym", "CartPole-v1", "--mask", "1,3", "--search", "cmaes", "--evaluations", "40", "--episodes", "1",
          "--no-peepholes", "--no-forget-gate", "--out", str(out), "--no-progress", "--no-plot"])
    res = json.loads((out / "results.json").read_text())
    assert res["task"]["mask"] == [1, 3] and res["task"]["env_id"] == "CartPole-v1"
    pol = Policy.load(out / "champion.npz")
    assert pol.spec.n_inputs == 2 and pol.info["mask"] == [1, 3]
    assert not pol.spec.peepholes and not pol.spec.forget_gate and res["policy"]["n_cells"] == 2
    assert np.isfinite(res["best_fitness"])


def test_subcommands_register_and_reject_bad_arguments(capsys):
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["pole", "--poles", "2", "--no-velocities", "--fitness", "damping"])
    assert args.no_velocities and args.fitness == "damping" and callable(args.func)
    for bad in (["pole", "--poles", "3"], ["pole", "--search", "neat"], ["gym", "CartPole-v1", "--mask", "a,b"],
                ["pole", "--evaluations", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(ValueError, match="mask"):
        main(["gym", "CartPole-v1", "--mask", "7", "--evaluations", "10", "--no-progress"])
