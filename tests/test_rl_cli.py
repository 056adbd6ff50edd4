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
    assert np.isfinite(res["best_return"]) and res["best_return"] >= 1  # an episode lasts >= 1 step
    assert res["heldout"]["threshold"] == 475 and len(res["heldout"]["returns"]) == 100
    assert pol.obs_norm is not None  # normalization is the gym default


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


def _results(out):
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("search", ["snes", "cosyne"])
def test_resume_continues_bit_for_bit(tmp_path, search, capsys):
    # without direct weights the task outlasts six generations
    common = ["pole", "--poles", "1", "--search", search, "--no-direct", "--max-steps", "300", "--seed", "2",
              "--no-progress", "--no-plot"]
    main(common + ["--generations", "6", "--out", str(tmp_path / "full")])
    main(common + ["--generations", "3", "--out", str(tmp_path / "part")])
    main(common + ["--generations", "6", "--out", str(tmp_path / "part"), "--resume"])
    full, part = _results(tmp_path / "full"), _results(tmp_path / "part")
    assert full["history"]["gen_best_return"] == part["history"]["gen_best_return"]
    assert full["history"]["evaluations"] == part["history"]["evaluations"] and len(full["history"]["evaluations"]) == 6
    assert full["best_return"] == part["best_return"] > 0  # steps balanced: natural sign
    np.testing.assert_array_equal(Policy.load(tmp_path / "full" / "champion.npz").genome,
                                  Policy.load(tmp_path / "part" / "champion.npz").genome)
    assert f"best return {full['best_return']:.6g}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="other settings"):
        main(common[:-4] + ["--seed", "3", "--no-progress", "--generations", "7", "--out", str(tmp_path / "part"),
                            "--resume"])


def test_pool_evaluator_gives_the_serial_run(tmp_path):
    common = ["pole", "--poles", "1", "--max-steps", "300", "--seed", "4", "--generations", "3", "--no-progress",
              "--no-plot"]
    main(common + ["--out", str(tmp_path / "a")])
    main(common + ["--out", str(tmp_path / "b"), "--evaluator", "pool", "--workers", "2"])
    assert _results(tmp_path / "a")["history"] == {**_results(tmp_path / "b")["history"],
                                                   "time": _results(tmp_path / "a")["history"]["time"]}


def test_pole_defaults_are_the_measured_setting():
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["pole"])
    assert args.search == "snes" and args.no_peepholes and args.no_forget_gate and args.pole_options
    args = parser.parse_args(["pole", "--peepholes", "--forget-gate"])
    assert not args.no_peepholes and not args.no_forget_gate


def test_flag_errors(tmp_path):
    with pytest.raises(ValueError, match="--restarts"):
        main(["pole", "--search", "snes", "--restarts", "ipop", "--generations", "1", "--no-progress"])
    with pytest.raises(ValueError, match="--resume needs --out"):
        main(["pole", "--resume", "--generations", "1", "--no-progress"])
    with pytest.raises(ValueError, match="no checkpoint"):
        main(["pole", "--resume", "--generations", "1", "--no-progress", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--workers"):
        main(["pole", "--workers", "2", "--generations", "1", "--no-progress"])


def test_pole_command_runs_snes_with_the_presets_step_and_restarts(tmp_path, monkeypatch):
    import evolino.rl.search as search

    seen = []
    real = search.evolve_policy

    def spy(task, **kw):
        res = real(task, **kw)
        seen.append((kw["search"], kw["search_options"], res.strategy))
        return res

    monkeypatch.setattr(search, "evolve_policy", spy)
    base = ["pole", "--poles", "1", "--max-steps", "300", "--generations", "2", "--no-progress", "--no-plot"]
    main(base)
    name, options, strategy = seen[-1]
    assert name == "snes" and options == {"sigma0": 2.0, "patience": 60}
    assert strategy.patience == 60 and np.all(strategy.sigma0 == 2.0)
    main(base + ["--search", "xnes"])  # other strategies keep the presets' search_options
    assert seen[-1][0] == "xnes" and seen[-1][1] == {}


@pytest.mark.parametrize("flags,direct", [((), True), (("--no-velocities",), False), (("--no-direct",), False),
                                          (("--no-velocities", "--direct"), True)])
def test_pole_connects_inputs_to_outputs_by_default_when_velocities_are_observed(flags, direct, monkeypatch):
    import evolino.rl.search as search

    specs = []
    real = search.evolve_policy

    def spy(task, **kw):
        specs.append(kw["spec"])
        return real(task, **kw)

    monkeypatch.setattr(search, "evolve_policy", spy)
    main(["pole", "--poles", "1", "--max-steps", "200", "--generations", "1", "--no-progress", "--no-plot", *flags])
    assert specs[-1].direct is direct


def test_gym_command_runs_snes_with_restarts_by_default(monkeypatch):
    pytest.importorskip("gymnasium")
    import evolino.rl.search as search

    seen = []
    real = search.evolve_policy

    def spy(task, **kw):
        seen.append((kw["search"], kw["search_options"]))
        return real(task, **kw)

    monkeypatch.setattr(search, "evolve_policy", spy)
    base = ["gym", "CartPole-v1", "--generations", "1", "--episodes", "1", "--eval-episodes", "2", "--no-progress"]
    main(base)
    assert seen[-1] == ("snes", {"patience": 20})
    main(base + ["--search", "cmaes"])  # other strategies: their own defaults
    assert seen[-1] == ("cmaes", {})


def test_gym_gif_is_written_with_the_other_files(tmp_path, capsys):
    pytest.importorskip("pygame")
    pytest.importorskip("PIL")
    out = tmp_path / "g"
    main(["gym", "CartPole-v1", "--mask", "1,3", "--generations", "1", "--episodes", "1", "--eval-episodes", "2",
          "--gif", "--out", str(out), "--no-progress", "--no-plot"])
    res = _results(out)
    assert res["gif"]["file"] == "champion.gif" and res["gif"]["frames"] >= 2
    assert (out / "champion.gif").read_bytes()[:6] == b"GIF89a"
    assert "champion.gif" in capsys.readouterr().out
