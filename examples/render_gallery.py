"""Render the gallery: run every example with its default arguments, keep figure and output.

Writes ``docs/_static/gallery/NAME.png`` and ``NAME.txt`` (what the script printed) for
each script in ``examples/``; ``docs/gallery.md`` shows them. Run from the repository root::

    python examples/render_gallery.py [NAME ...]
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "_static" / "gallery"
SCRIPTS = ["forecast_laser", "temporal_order", "anbncn", "pole_balancing", "gym_cartpole", "ray_parallel"]


def render(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        module.main(["--out", str(OUT / f"{name}.png")])
    text = buf.getvalue().replace(str(OUT.parent.parent.parent) + "/", "")  # paths relative to the repository
    (OUT / f"{name}.txt").write_text(text)
    print(f"{name}: {time.perf_counter() - t0:.1f} s\n{text}")


def main(argv=None):
    names = (sys.argv[1:] if argv is None else argv) or SCRIPTS
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        render(name)


if __name__ == "__main__":
    main()
