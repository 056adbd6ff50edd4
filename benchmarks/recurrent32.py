"""Float32 recurrent weights in float64 networks: compiled-kernel speed per network-step against width.

``LSTMSpec(recurrent_dtype=np.float32)`` rounds the recurrent weights to float32 numbers; the
compiled kernels then read them as float32 (half the bytes) and compute in float64. Printed per
width ``H``: microseconds per network-step of the teacher-forced forward pass (``P`` networks, one
sequence of ``T`` steps) and of the closed loop (``B`` free runs of ``n`` steps, one output fed
back), for float64 weights, float32 recurrent weights, a float32 network, and NumPy's float64
kernel; the ratios beside them; and the recurrent weights' bytes against the L2 cache.

    python benchmarks/recurrent32.py            # H = 100, 150, 200, 300, 400
    python benchmarks/recurrent32.py --quick
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from evolino import _backend  # noqa: E402
from evolino.lstm import LSTMSpec, LSTMState, forward, prepare  # noqa: E402
from evolino.sequences import closed_loop  # noqa: E402


def best(fn, repeat):
    t = []
    for _ in range(repeat):
        c0 = time.thread_time()
        fn()
        t.append(time.thread_time() - c0)
    return min(t)


def l2_bytes() -> int | None:
    try:
        return int(pathlib.Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip().rstrip("K")) * 1024
    except (OSError, ValueError):
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="100,150,200,300,400")
    ap.add_argument("--quick", action="store_true", help="T=200, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    _backend.single_threaded()
    _backend._R32_FORCE = True  # the float32 copy at every width (the library measures which copy to read)
    P, T, B, n = 4, 200 if args.quick else 1000, 11, 84
    repeat = 1 if args.quick else args.repeat
    l2 = l2_bytes()
    print(f"L2 per core: {l2 / 2**20:.2f} MiB" if l2 else "L2 size unknown")
    print("| H | recurrent MB f64 | forward f64 us | f32 recurrent us | x f64 | float32 network us | numpy f64 us | "
          "closed loop f64 us | f32 recurrent us | x f64 | identical | the library reads |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    rng = np.random.default_rng(0)
    for H in (int(h) for h in args.widths.split(",")):
        specs = {"f64": LSTMSpec(1, H), "r32": LSTMSpec(1, H, recurrent_dtype=np.float32),
                 "f32": LSTMSpec(1, H, dtype=np.float32)}
        g = specs["f64"].init(rng, P, 1.0)
        X = rng.standard_normal((1, T, 1))
        w = {k: prepare(s, g.astype(s.dtype)) for k, s in specs.items()}
        fw, outs = {}, {}
        for k, s in specs.items():
            Xk = X.astype(s.dtype)
            forward(s, w[k], Xk[:, :5], backend="numba")  # compile / warm
            fw[k] = best(lambda: outs.__setitem__(k, forward(s, w[k], Xk, backend="numba")), repeat) / (P * T) * 1e6
        npy = best(lambda: forward(specs["f64"], w["f64"], X, backend="numpy"), repeat) / (P * T) * 1e6
        ident = np.array_equal(outs["r32"], forward(specs["f64"], w["r32"]._replace(spec=specs["f64"]), X, backend="numba"))
        coef = rng.normal(0, 0.1, (P, H + 1, 1))
        h0 = LSTMState(np.zeros((P, B, H)), np.zeros((P, B, H)))
        y0 = rng.normal(size=(P, B, 1))
        cl = {}
        for k in ("f64", "r32"):
            closed_loop(specs[k], w[k], coef, h0, y0, 3, backend="numba")
            cl[k] = best(lambda: closed_loop(specs[k], w[k], coef, h0, y0, n, backend="numba"), repeat) / (P * B * n) * 1e6
        mb = 4 * H * H * 8 / 1e6
        _backend._R32_FORCE = None  # what the library's own measurement picks at this width
        reads = "float32" if _backend.reads_narrow(specs["r32"]) else "float64"
        _backend._R32_FORCE = True
        print(f"| {H} | {mb:.2f} | {fw['f64']:.1f} | {fw['r32']:.1f} | {fw['f64'] / fw['r32']:.2f} | {fw['f32']:.1f} | "
              f"{npy:.1f} | {cl['f64']:.1f} | {cl['r32']:.1f} | {cl['f64'] / cl['r32']:.2f} | {ident} | {reads} |")


if __name__ == "__main__":
    main()
