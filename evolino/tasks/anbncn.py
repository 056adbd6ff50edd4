"""The context-sensitive language a^n b^n c^n as a next-symbol prediction task.

Protocol of Gers & Schmidhuber (IEEE TNN 12(6), 2001), also used by Evolino
(Schmidhuber et al. 2007), as far as it could be checked (benchmarks/REFERENCES.md
§1.3: only the abstracts were readable): a string ``S a^n b^n c^n T`` (``n >= 1``,
``S``/``T`` start and end markers) is presented one symbol per step; at every step
the network predicts the *set* of symbols that may come next (several output
units on at once where the language allows several continuations). A string is
accepted when every prediction is right, an output counting as "on" above 0.5.
Training uses n = 1..10; the generalization range is the largest N such that
all strings with n <= N are accepted.

Encoding: inputs are one-hot over ``INPUTS = (S, a, b, c)`` (``T`` ends the string
and is never an input), targets are 0/1 over ``OUTPUTS = (a, b, c, T)``. For
``S a a b b c c T`` the targets after each input are::

    S -> {a}   a -> {a, b}   a -> {a, b}   b -> {b}   b -> {c}   c -> {c}   c -> {T}

Each string is its own sequence (the network starts from the zero state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import EvolinoError, check_number, check_positive_int

__all__ = ["INPUTS", "OUTPUTS", "anbncn_string", "next_symbol_sets", "encode", "AnbncnTask"]

INPUTS = ("S", "a", "b", "c")
OUTPUTS = ("a", "b", "c", "T")

def anbncn_string(n: int) -> str:
    """``"S" + "a"*n + "b"*n + "c"*n + "T"`` for ``n >= 1``."""
    n = check_positive_int(n, "n")
    return "S" + "a" * n + "b" * n + "c" * n + "T"


def next_symbol_sets(n: int) -> list:
    """The set of possible next symbols after each input symbol of the string with ``n``.

    Returns a list of ``3n + 1`` frozensets (inputs ``S``, the a's, b's and c's).
    After an ``a`` the next symbol is ``a`` or ``b`` (the string may go on); once
    the first ``b`` has come, ``n`` is known and every later symbol is determined.
    """
    n = check_positive_int(n, "n")
    sets = [frozenset("a")]
    sets += [frozenset("ab")] * n
    sets += [frozenset("b")] * (n - 1) + [frozenset("c")]
    sets += [frozenset("c")] * (n - 1) + [frozenset("T")]
    return sets


def encode(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` ``(3n + 1, 4)``, one-hot over ``INPUTS``; targets ``Y`` ``(3n + 1, 4)``, 0/1 over ``OUTPUTS``."""
    s = anbncn_string(n)[:-1]  # T is never an input
    X = np.zeros((len(s), len(INPUTS)))
    X[np.arange(len(s)), [INPUTS.index(ch) for ch in s]] = 1.0
    Y = np.array([[sym in nxt for sym in OUTPUTS] for nxt in next_symbol_sets(n)], dtype=np.float64)
    return X, Y


@dataclass
class AnbncnTask:
    """Train on n = 1..``train_max``, test acceptance for n = 1..``test_max``.

    Attributes
    ----------
    train_max : int, default=10
    test_max : int, default=100
        Largest n tested; the generalization range is capped there.
    threshold : float, default=0.5
        An output above it means "this symbol may come next".
    """

    train_max: int = 10
    test_max: int = 100
    threshold: float = 0.5

    def __post_init__(self):
        check_positive_int(self.train_max, "train_max")
        check_positive_int(self.test_max, "test_max")
        if self.test_max < self.train_max:  # the score counts accepted training strings among the tested ones
            raise EvolinoError(f"test_max={self.test_max} must be >= train_max={self.train_max} (the test range "
                               "starts with the training strings); raise --test-max")
        check_number(self.threshold, "threshold")

    @property
    def train_n(self) -> np.ndarray:
        return np.arange(1, self.train_max + 1)

    @property
    def train_X(self) -> list:
        """Training inputs: a list of ``(3n + 1, 4)`` arrays, n = 1..train_max."""
        return [encode(n)[0] for n in self.train_n]

    @property
    def train_Y(self) -> list:
        """Training targets: a list of ``(3n + 1, 4)`` 0/1 arrays."""
        return [encode(n)[1] for n in self.train_n]

    def accepted(self, model, ns) -> np.ndarray:
        """Whether each string ``n`` in ``ns`` is accepted (every step's predicted set right).

        ``model`` has ``predict(list of X (T, 4)) -> list of outputs (T, 4)`` (the
        evolino estimators), or is a callable ``f(X (T, 4)) -> (T, 4)``.
        """
        ns = [check_positive_int(int(n), "n") for n in ns]
        data = [encode(n) for n in ns]
        Xs = [x for x, _ in data]
        outs = model.predict(Xs) if hasattr(model, "predict") else [model(x) for x in Xs]
        if len(outs) != len(ns):
            raise EvolinoError(f"model returned {len(outs)} outputs for {len(ns)} strings")
        ok = []
        for (_, Y), out in zip(data, outs):
            out = np.asarray(out)
            if out.shape != Y.shape:
                raise EvolinoError(f"model output must have shape {Y.shape}, got {out.shape}")
            ok.append(bool(np.all((out > self.threshold) == (Y > 0.5))))
        return np.array(ok)

    def generalization(self, model) -> int:
        """Largest N <= ``test_max`` such that all strings with n = 1..N are accepted (0 if n = 1 fails)."""
        ok = self.accepted(model, range(1, self.test_max + 1))
        return int(np.argmin(ok)) if not ok.all() else self.test_max

    def score(self, model) -> tuple[int, np.ndarray]:
        """``(generalization range N, accepted (test_max,) bool)``."""
        ok = self.accepted(model, range(1, self.test_max + 1))
        return (int(np.argmin(ok)) if not ok.all() else self.test_max), ok
