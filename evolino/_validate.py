"""Argument checks shared by all modules: clear errors that name the argument; evolino's error and warning classes."""

from __future__ import annotations

import difflib
import numbers

import numpy as np


class EvolinoError(ValueError):
    """A user error (bad argument, unusable file or data, a size that cannot fit): the message names it and the fix.

    Subclasses ValueError, so ``except ValueError`` keeps working; the command line shows
    it as one line, while any other exception (a bug) keeps its traceback.
    """


class EvolinoTypeError(EvolinoError, TypeError):
    """An argument of the wrong type (also a TypeError)."""


class EvolinoWarning(UserWarning):
    """Something in a run is likely wrong (e.g. a closed loop left the training range); the message says the fix."""


def as_rng(seed) -> np.random.Generator:
    """The one way a ``seed`` (None, int, SeedSequence or Generator) becomes a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed < 0:
        raise EvolinoError(f"seed must be an int >= 0 (numpy's seed streams take no negative entropy), got {seed}")
    if seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise EvolinoTypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise EvolinoTypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise EvolinoError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_number(value, name: str, *, low=None, high=None, low_open=False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EvolinoTypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise EvolinoError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise EvolinoError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise EvolinoError(f"{name} must be <= {high}, got {value}")
    return value


def check_array(x, name: str, *, ndims=None, dtype=None, finite: bool = False) -> np.ndarray:
    """``x`` as an ndarray of a real dtype (cast to ``dtype`` if given) with ``ndim`` in ``ndims``."""
    if isinstance(x, (str, bytes)) or x is None:
        raise EvolinoTypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise EvolinoError(f"{name} must be a rectangular array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise EvolinoTypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise EvolinoTypeError(f"{name} must be real, got dtype {arr.dtype}")
    if ndims is not None and arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise EvolinoError(f"{name} must be {want}, got shape {arr.shape}")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    if finite and not np.all(np.isfinite(arr)):
        raise EvolinoError(f"{name} contains NaN or inf")
    return arr


def check_float_dtype(v, name: str, none_ok: bool = False) -> np.dtype:
    """``v`` as the numpy dtype float32 or float64, or an EvolinoTypeError naming ``name``."""
    choices = "float32, float64 or None" if none_ok else "float32 or float64"
    try:
        dt = np.dtype(v)
    except TypeError as exc:
        raise EvolinoTypeError(f"{name} must be {choices}, got {v!r}") from exc
    if dt not in (np.float32, np.float64):
        raise EvolinoTypeError(f"{name} must be {choices}, got {dt}")
    return dt


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of ``choices``; a ValueError with a 'did you mean' otherwise."""
    if value in choices:
        return value
    hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    raise EvolinoError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}{extra}")


def seed_from_random_state(rs) -> int:
    """An int seed from scikit-learn's ``random_state`` (None, int, RandomState or Generator)."""
    if rs is None:
        return int(np.random.default_rng().integers(2**32))
    if isinstance(rs, np.random.RandomState):
        return int(rs.randint(2**31))
    if isinstance(rs, np.random.Generator):
        return int(rs.integers(2**32))
    if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
        return check_positive_int(rs, "random_state", minimum=0)
    raise EvolinoTypeError(f"random_state must be None, an int or a random generator, got {rs!r}")
