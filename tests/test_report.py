"""evolino report: reads run folders back, one table of final figures, one figure of fitness curves."""

from __future__ import annotations

import json

import pytest

from evolino.cli import main
from evolino.report import load_run, summary_table

TINY = ["--generations", "3", "--popsize", "8", "--cells", "4", "--trials", "2", "--no-progress", "--no-plot"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for seed in (0, 1):
        d = root / f"sines-seed{seed}"
        assert main(["sines", *TINY, "--seed", str(seed), "--out", str(d)]) == 0
        dirs.append(d)
    rl = root / "pole"  # a policy-search results.json carries its history itself
    rl.mkdir()
    history = {"generation": [1, 2], "evaluations": [10, 20], "best": [-50.0, -120.0], "gen_best": [-50.0, -120.0],
               "gen_median": [-5.0, -9.0], "time": [0.1, 0.2]}
    (rl / "results.json").write_text(json.dumps({"task": {"n_poles": 2, "fitness": "standard"}, "solved": False,
                                                 "evaluations": 20, "generations": 2, "best_fitness": -120.0,
                                                 "seconds": 0.2, "seed": 3, "history": history}))
    return dirs, rl


def test_history_comes_back_from_the_checkpoint(runs):
    dirs, _ = runs
    for d in dirs:
        run = load_run(d)
        results = json.loads((d / "results.json").read_text())
        h = run["history"]
        assert h is not None and len(h["best"]) == results["generations"] == 3
        assert h["evaluations"][-1] == results["evaluations"]
        assert h["best"][-1] == pytest.approx(results["best_validation"])
        assert h["best"] == sorted(h["best"], reverse=True)  # best so far never gets worse


def test_table_and_figure(runs, tmp_path, capsys):
    dirs, rl = runs
    fig = tmp_path / "cmp.png"
    assert main(["report", *map(str, dirs), str(rl), "--out", str(fig)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(lines) == 4  # header + 3 runs
    for d in dirs:
        results = json.loads((d / "results.json").read_text())
        row = next(line for line in lines if line.startswith(f"| {d.name} |")).split(" | ")
        assert row[1] == "sines" and row[2] == f"test NRMSE {results['test_nrmse']:.4g}"
        assert row[4] == str(results["evaluations"]) and row[7].rstrip(" |") == str(results["seed"])
    pole = next(line for line in lines if line.startswith("| pole |")).split(" | ")
    assert pole[2] == "solved False" and pole[3] == "-120"
    assert "3 fitness curves" in out and fig.stat().st_size > 5_000


def test_run_without_history_is_listed_not_drawn(runs, tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "results.json").write_text(json.dumps({"task": "anbncn", "generalization_N": 12, "evaluations": 5}))
    run = load_run(d)
    assert run["history"] is None
    assert "generalization N 12" in summary_table([run])


def test_bad_run_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no results.json" in err and str(tmp_path) in err
    (tmp_path / "results.json").write_text("{not json")
    assert main(["report", str(tmp_path), "--no-plot"]) == 2
    assert "not a readable results.json" in capsys.readouterr().err
