"""Trainer checkpoints: ``.npz`` + JSON, written atomically, every field checked when read back.

A checkpoint holds what :meth:`evolino.Evolino.fit` needs to continue a run bit-identically:
the configuration it must match, the seed, the scales chosen by generation 0, the strategy's
``state_dict``, the history, the elapsed time and (compressed encodings) the base network.
"""

from __future__ import annotations

import json

import numpy as np

from ._io import load_npz, meta_value, save_npz
from ._validate import EvolinoError
from .loop import History

__all__ = ["CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint", "run_config"]

CHECKPOINT_VERSION = 5  # 5: the encoding and its base network; 4: the chosen scales and gate regime


def save_checkpoint(path, config, seed, chosen, strategy, history, elapsed, base=None) -> None:
    """Write a trainer checkpoint to ``path`` atomically (strategy arrays in the ``.npz``, the rest as JSON).

    ``base`` is the genome encoding's base network ``(n_params,)``, drawn once before evolution.
    """
    arrays, plain = {}, {}
    if base is not None:
        arrays["encoding.base"] = base
    for k, v in strategy.state_dict().items():
        if isinstance(v, np.ndarray):
            arrays[f"strategy.{k}"] = v
        else:
            plain[k] = v.item() if isinstance(v, np.generic) else v
    meta = {"format": "evolino.checkpoint", "version": CHECKPOINT_VERSION, "config": config, "seed": seed,
            "chosen": chosen, "strategy": plain, "history": dict(history), "elapsed": float(elapsed)}
    save_npz(path, arrays, meta)


def load_checkpoint(path, config, seed_given=None):
    """Seed, strategy state, history, elapsed time, scales and encoding base of the checkpoint at ``path``.

    Every field is checked; a checkpoint of another ``config`` (or, when ``seed_given`` is an int,
    of another seed) is refused with an :class:`~evolino.EvolinoError` naming the difference.
    """
    arrays, meta = load_npz(path, "evolino.checkpoint", CHECKPOINT_VERSION)
    saved = json.loads(json.dumps(meta_value(meta, "config", dict, path)))
    if saved != json.loads(json.dumps(config)):
        diff = sorted(k for k in config if saved.get(k) != json.loads(json.dumps(config[k])))
        raise EvolinoError(f"checkpoint {path} was written by a different configuration or data "
                           f"(differs in: {', '.join(diff)})")
    seed = meta_value(meta, "seed", int, path, minimum=0)
    if seed_given is not None and not isinstance(seed_given, np.random.Generator) and seed != seed_given:
        raise EvolinoError(f"checkpoint {path} was written by a run with seed={seed}, not seed={seed_given}; "
                           f"resume with seed={seed} (or None), or start afresh in another folder")
    state = dict(meta_value(meta, "strategy", dict, path))
    meta_value(state, "generation", int, path, minimum=0)
    meta_value(state, "evaluations", int, path, minimum=0)
    state.update({k[len("strategy."):]: v for k, v in arrays.items() if k.startswith("strategy.")})
    for k, v in state.items():  # NaN marks "no best yet" in best_x only
        floating = isinstance(v, (float, np.ndarray)) and np.issubdtype(np.asarray(v).dtype, np.floating)
        if k != "best_x" and floating and np.isnan(v).any():
            raise EvolinoError(f"{path}: the strategy state {k!r} holds NaN; the checkpoint is corrupt")
    try:
        history = History(meta_value(meta, "history", dict, path))
    except (KeyError, TypeError, ValueError) as exc:
        raise EvolinoError(f"{path}: the history is incomplete or malformed ({type(exc).__name__}: {exc})") \
            from None
    if any(g < 0 for g in history["generation"]):
        raise EvolinoError(f"{path}: the history holds a negative generation; the checkpoint is corrupt")
    chosen = meta_value(meta, "chosen", dict, path)
    for k in ("input_scale", "init_scale") + (("noise",) if "noise" in chosen else ()):
        meta_value(chosen, k, float, path, minimum=0.0)
    meta_value(chosen, "gates", str, path)
    base = arrays.get("encoding.base")
    return seed, state, history, meta_value(meta, "elapsed", float, path, minimum=0.0), chosen, base


def run_config(tr, spec, data, scales) -> dict:
    """What must match for a checkpoint of trainer ``tr`` to be resumed (JSON-able)."""
    return {
        "spec": [spec.n_inputs, spec.n_cells, spec.peepholes, spec.forget_gate, np.dtype(spec.dtype).name,
                 *([np.dtype(spec.recurrent_dtype).name] if spec.rounds_recurrent else [])],
        "evolution_dtype": None if tr.evolution_dtype is None else np.dtype(tr.evolution_dtype).name,
        "search": tr.search if isinstance(tr.search, str) else type(tr.search).__name__,
        "readout": tr.readout if isinstance(tr.readout, str) else type(tr.readout).__name__,
        "ridge": tr.ridge if isinstance(tr.ridge, str) else float(tr.ridge), "washout": int(tr.washout),
        "validation": tr.validation,
        "feedback": bool(tr.feedback), "popsize": tr.popsize, **scales,
        "loss": tr.loss if isinstance(tr.loss, str) else "callable",
        "standardize": bool(tr.standardize), "horizon": tr.horizon, "stride": tr.stride,
        "noise": tr.noise if isinstance(tr.noise, str) else float(tr.noise), "encoding": tr._encoding_name(),
        "encoding_options": {k: v for k, v in (tr.encoding_options or {}).items()
                             if isinstance(v, (int, float, str, bool))},
        "search_options": {k: v for k, v in (tr.search_options or {}).items()
                           if isinstance(v, (int, float, str, bool))},
        **({"lags": tr.lags} if tr.lags else {}), "data": data.digest(),  # without lags: as before lags existed
    }
