"""Speed of BPTT (forward + backward of the MSE loss): evolino.bptt (NumPy) vs PyTorch nn.LSTM on CPU.

Both compute the same thing: an LSTM layer of H cells over B sequences of T steps,
a linear output layer, the mean squared error, and the gradient of every weight.
PyTorch's nn.LSTM has no peepholes, so the like-for-like rows use
``LSTMSpec(..., peepholes=False)``; our default (with peepholes) is shown beside it.
Before timing, the script checks that both give the same loss and gradients on
the same weights (float64), so the timed computations are the same.

Threads are pinned: NumPy's BLAS through ``threadpoolctl.threadpool_limits`` and
PyTorch through ``torch.set_num_threads`` / ``torch.set_num_interop_threads``.

Throughput = B * T / seconds (sequence-steps per second), from the median over
``--repeats`` timed runs after one warm-up run; all contenders of a shape are
timed round-robin so that load from other processes hits them alike.

Usage::

    python benchmarks/bptt_speed.py [--threads 1] [--repeats 7] [--T 500] [--shapes 10x16 32x16 64x16 32x128]

A shape ``HxB`` is H cells and B sequences per batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from evolino.bptt import forward, loss_and_grad
from evolino.lstm import LSTMSpec

try:
    import torch
except ImportError:  # the NumPy columns still run
    torch = None


def median_seconds(fns: dict, repeats: int) -> dict:
    """Median wall time of each function, timed round-robin (A B C A B C ...).

    Interleaving spreads any load from other processes on a shared machine over
    all contenders alike, so the ratios stay fair even when absolute numbers drift.
    """
    for fn in fns.values():
        fn()  # warm-up: allocations, BLAS and torch kernels initialised
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def torch_model(spec, genome, coef, dtype):
    """nn.LSTM + nn.Linear holding the weights of ``genome`` / ``coef`` (no peepholes)."""
    w = spec.unpack(genome.astype(np.float64))
    H, I = spec.n_cells, spec.n_inputs
    lstm = torch.nn.LSTM(I, H, batch_first=True).to(dtype)
    lin = torch.nn.Linear(H, coef.shape[1]).to(dtype)
    order = ("i", "f", "z", "o")  # PyTorch's gate order i, f, g, o
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.concatenate([w[f"W_{u}"] for u in order])))
        lstm.weight_hh_l0.copy_(torch.tensor(np.concatenate([w[f"R_{u}"] for u in order])))
        lstm.bias_ih_l0.copy_(torch.tensor(np.concatenate([w[f"b_{u}"] for u in order])))
        lstm.bias_hh_l0.zero_()
        lin.weight.copy_(torch.tensor(coef[:-1].T))
        lin.bias.copy_(torch.tensor(coef[-1]))
    return lstm, lin


def torch_step(lstm, lin, X, Y):
    lstm.zero_grad(set_to_none=True)
    lin.zero_grad(set_to_none=True)
    out, _ = lstm(X)
    loss = torch.mean((lin(out) - Y) ** 2)
    loss.backward()
    return loss


def check_same_computation(H, B, T, rng):
    """Our loss and gradients equal PyTorch's on the same weights (float64)."""
    spec = LSTMSpec(1, H, peepholes=False)
    genome, coef = spec.init(rng)[0], rng.uniform(-0.3, 0.3, (H + 1, 1))
    X, Y = rng.normal(size=(B, T, 1)), rng.normal(size=(B, T, 1))
    loss, dg, dc = loss_and_grad(spec, genome, coef, X, Y)
    lstm, lin = torch_model(spec, genome, coef, torch.float64)
    t_loss = torch_step(lstm, lin, torch.tensor(X), torch.tensor(Y)).item()
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss), (loss, t_loss)
    grads = {}
    for key, tensor in (("W", lstm.weight_ih_l0), ("R", lstm.weight_hh_l0), ("b", lstm.bias_ih_l0)):
        for u, part in zip(("i", "f", "z", "o"), np.split(tensor.grad.numpy(), 4)):
            grads[f"{key}_{u}"] = part
    t_dg = spec.pack(grads)
    t_dc = np.concatenate([lin.weight.grad.numpy().T, lin.bias.grad.numpy()[None]])
    assert np.allclose(dg, t_dg, rtol=1e-9, atol=1e-13), "hidden-weight gradients differ from PyTorch's"
    assert np.allclose(dc, t_dc, rtol=1e-9, atol=1e-13), "output-weight gradients differ from PyTorch's"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--shapes", nargs="+", default=["10x16", "32x16", "64x16", "32x128"], help="HxB pairs")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    T, I, O = args.T, 1, 1
    rng = np.random.default_rng(0)

    if torch is not None:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        blas = ", ".join(f"{d['internal_api']} {d['version']} ({d['num_threads']} thr)" for d in threadpool_info())
        print(f"# T={T} I={I} O={O}; threads={args.threads} (threadpoolctl for NumPy BLAS: {blas}; "
              f"torch.set_num_threads={args.threads}); median of {args.repeats} runs")
        if torch is not None:
            check_same_computation(5, 3, 20, rng)
            print(f"# torch {torch.__version__}: same loss and gradients as evolino.bptt on the same weights (checked)")
        rows = []
        for H, B in shapes:
            X, Y = rng.normal(size=(B, T, I)), rng.normal(size=(B, T, O))
            fns = {}
            for peep in (True, False):
                for dt in (np.float64, np.float32):
                    spec = LSTMSpec(I, H, peepholes=peep, dtype=dt)
                    g = spec.init(rng)[0]
                    c = rng.uniform(-0.3, 0.3, (H + 1, O)).astype(dt)
                    Xd, Yd = X.astype(dt), Y.astype(dt)
                    key = f"np{'_peep' if peep else ''}_{np.dtype(dt).name}"
                    fns[key] = lambda spec=spec, g=g, c=c, Xd=Xd, Yd=Yd: loss_and_grad(spec, g, c, Xd, Yd)
                    if not peep:
                        fns[key + "_fwd"] = lambda spec=spec, g=g, c=c, Xd=Xd: forward(spec, g, c, Xd)
            if torch is not None:
                spec = LSTMSpec(I, H, peepholes=False)
                g, c = spec.init(rng)[0], rng.uniform(-0.3, 0.3, (H + 1, O))
                for tdt, name in ((torch.float64, "float64"), (torch.float32, "float32")):
                    lstm, lin = torch_model(spec, g, c, tdt)
                    Xt, Yt = torch.tensor(X, dtype=tdt), torch.tensor(Y, dtype=tdt)
                    fns[f"torch_{name}"] = lambda lstm=lstm, lin=lin, Xt=Xt, Yt=Yt: torch_step(lstm, lin, Xt, Yt)

                    def fwd(lstm=lstm, lin=lin, Xt=Xt):
                        with torch.no_grad():
                            lin(lstm(Xt)[0])

                    fns[f"torch_{name}_fwd"] = fwd
            row = {key: B * T / sec for key, sec in median_seconds(fns, args.repeats).items()}
            row.update(H=H, B=B)
            rows.append(row)

    def k(v):
        return f"{v / 1e3:8.0f}k" if v == v else "     n/a"

    nan = float("nan")
    print("\nForward + backward (loss and all gradients), sequence-steps per second")
    print("| H | B | ours f64 peep | ours f64 | torch f64 | ratio f64 | ours f32 | torch f32 | ratio f32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t64, t32 = r.get("torch_float64", nan), r.get("torch_float32", nan)
        print(f"| {r['H']} | {r['B']} | {k(r['np_peep_float64'])} | {k(r['np_float64'])} | {k(t64)} | "
              f"{r['np_float64'] / t64:.2f} | {k(r['np_float32'])} | {k(t32)} | {r['np_float32'] / t32:.2f} |")
    print("\nForward only (outputs, no gradient), sequence-steps per second, no peepholes")
    print("| H | B | ours f64 | torch f64 | ratio f64 | ours f32 | torch f32 | ratio f32 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t64, t32 = r.get("torch_float64_fwd", nan), r.get("torch_float32_fwd", nan)
        print(f"| {r['H']} | {r['B']} | {k(r['np_float64_fwd'])} | {k(t64)} | {r['np_float64_fwd'] / t64:.2f} | "
              f"{k(r['np_float32_fwd'])} | {k(t32)} | {r['np_float32_fwd'] / t32:.2f} |")
    print("\nratio = ours / torch (> 1: ours faster). 'peep' = with peepholes (torch has none).")


if __name__ == "__main__":
    main()
