"""Plain reference implementations written from the equations, for the tests.

Deliberately naive: one network, one sequence, one step at a time, scalar-sigmoid,
using only ``LSTMSpec.unpack`` (never the kernel's weight re-arrangement).
"""

import numpy as np
import pytest

from evolino._backend import numba_available

# kernel backends to parametrize tests over; numba is optional (the ``fast`` extra, installed in CI)
BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not numba_available(), reason="numba is not installed (pip install evolino[fast])"))]


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rounded_recurrent(w, dtype):
    """Named weights (``spec.unpack``) with every recurrent matrix ``R_*`` rounded to ``dtype`` numbers."""
    return {k: v.astype(dtype).astype(np.float64) if k.startswith("R_") else v for k, v in w.items()}


def lstm_reference(spec, genome, x_seq, h=None, c=None):
    """Cell outputs ``(T, H)`` of one network on one sequence ``(T, I)``."""
    w = spec.unpack(np.asarray(genome, dtype=np.float64))
    if spec.rounds_recurrent:  # the spec's recurrent weights are float32 numbers (LSTMSpec.recurrent_dtype)
        w = rounded_recurrent(w, spec.recurrent_dtype)
    H = spec.n_cells
    h = np.zeros(H) if h is None else np.array(h, dtype=np.float64)
    c = np.zeros(H) if c is None else np.array(c, dtype=np.float64)
    zero = np.zeros(H)
    p_i = w.get("p_i", zero)
    p_f = w.get("p_f", zero)
    p_o = w.get("p_o", zero)
    out = []
    for x in np.asarray(x_seq, dtype=np.float64):
        z = np.tanh(w["W_z"] @ x + w["R_z"] @ h + w["b_z"])
        i = sigmoid(w["W_i"] @ x + w["R_i"] @ h + p_i * c + w["b_i"])
        if spec.forget_gate:
            f = sigmoid(w["W_f"] @ x + w["R_f"] @ h + p_f * c + w["b_f"])
        else:
            f = np.ones(H)
        c = f * c + i * z
        o = sigmoid(w["W_o"] @ x + w["R_o"] @ h + p_o * c + w["b_o"])
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out), h, c


def with_version(path, out, version):
    """Copy the evolino ``.npz`` file ``path`` to ``out`` with its metadata's ``version`` replaced."""
    import json

    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("metadata")))
    meta["version"] = version
    np.savez(out, metadata=np.array(json.dumps(meta)), **arrays)
    return out
