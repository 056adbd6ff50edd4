"""The gallery: every script in examples/ runs with a tiny budget and writes its figure.

The budgets here only exercise the code paths (a few generations); the figures in the docs
come from the default arguments (``python examples/render_gallery.py``).
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

TINY = {
    "forecast_laser": ["--cells", "4", "--generations", "1", "--popsize", "8", "--train", "600"],
    "temporal_order": ["--cells", "2", "--generations", "1", "--train", "40", "--test", "40"],
    "anbncn": ["--generations", "2", "--popsize", "8", "--test-max", "20"],
    "pole_balancing": ["--poles", "1", "--evaluations", "100", "--max-steps", "100"],
    "gym_cartpole": ["--evaluations", "20", "--episodes", "1"],
    "ray_parallel": ["--cells", "4", "--generations", "1", "--workers", "1"],
}
NEEDS = {"forecast_laser": "reservoirpy", "gym_cartpole": "gymnasium", "ray_parallel": "ray"}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"render_gallery"}
    assert set(_load("render_gallery").SCRIPTS) == scripts
    assert scripts == set(TINY), "add the new example to TINY (and to docs/gallery.md)"


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_runs(name, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    out = tmp_path / f"{name}.png"
    result = _load(name).main([*TINY[name], "--out", str(out)])
    assert out.stat().st_size > 5_000, "no figure written"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure: {out}" in capsys.readouterr().out
    assert isinstance(result, dict) and result
    if name == "ray_parallel":  # the point of the example: Ray reproduces the serial run exactly
        assert result["identical"] is True
