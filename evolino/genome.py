"""Genome encodings: what the search evolves, and how it becomes the weights of an LSTM.

A search strategy evolves *genes*; an encoding decodes them into full genomes of an
:class:`~evolino.lstm.LSTMSpec` (``spec.n_params`` weights, cell by cell) once per
candidate, before the batched kernel runs. Every encoding offers the small surface a
strategy factory needs (:func:`evolino.search.make_strategy`): ``n_params`` (here:
the number of genes), ``cell_slices`` (ESP's units: groups of genes) and ``init``.

- :class:`Direct`: the genes are the weights (the Evolino paper; ESP's unit is a cell).
- :class:`DCT`: every weight matrix of every unit (``W_u`` inputs, ``R_u`` recurrent,
  ``b_u`` biases, the peepholes) is the inverse orthonormal DCT of its lowest-frequency
  coefficients (Koutnik, Gomez & Schmidhuber, "Evolving neural networks in compressed
  weight space", GECCO 2010). With a ``base`` genome the coefficients encode a smooth
  correction added to that network (the best random network of generation 0, a
  reservoir), so evolution starts where the reservoir is and searches a space of a few
  hundred numbers whatever the width.
- :class:`Gains`: multiplicative gains on the input and recurrent weights and shifts of
  the biases of every unit (per gate, or per cell and gate) of a fixed base network: the
  cheapest search space that changes the dynamics.

Genes of :class:`DCT` and :class:`Gains` are in *relative* units: a gene vector of unit
entries changes each matrix by about its own root-mean-square size (DCT) or by a factor
``e`` (gains), so one step size suits every width.
"""

from __future__ import annotations

import inspect

import numpy as np

from ._validate import EvolinoError, EvolinoTypeError, as_rng, check_array, check_positive_int

__all__ = ["ENCODINGS", "Encoding", "Direct", "DCT", "Gains", "EncodedFitness", "dct_matrix", "make_encoding"]

ENCODINGS = ("direct", "dct", "gains")


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``C`` ``(n, n)``: ``C @ x`` is the DCT of ``x``, ``C.T @ c`` its inverse.

    ``C[k, x] = s_k cos(pi (2x + 1) k / (2n))`` with ``s_0 = sqrt(1/n)``, ``s_k = sqrt(2/n)``
    (scipy.fft.dct(..., norm="ortho")).
    """
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    C = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    C[0] /= np.sqrt(2.0)
    return C


def _low_frequencies(m: int, n: int, k: int) -> np.ndarray:
    """The ``k`` lowest-frequency index pairs of an ``(m, n)`` coefficient matrix, ``(k, 2)``.

    Ordered by anti-diagonal ``a + b`` (Koutnik et al.), then by row, so the kept set
    grows from the constant term outwards.
    """
    a, b = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    pairs = np.stack([a.ravel(), b.ravel()], axis=1)
    order = np.lexsort((pairs[:, 0], pairs.sum(axis=1)))
    return pairs[order[:k]]


class Encoding:
    """Base of the encodings: the surface a strategy needs, and the matrices of a spec.

    Subclasses set ``n_params`` (genes), ``cell_slices`` (gene groups) and implement
    ``decode``, ``init`` and ``to_dict``.
    """

    name = "?"

    def __init__(self, spec):
        self.spec = spec

    def _matrices(self):
        """``(key, shape)`` of every weight array of the spec, in :meth:`LSTMSpec.unpack`'s names and order."""
        return [(k, v.shape) for k, v in self.spec.unpack(np.zeros(self.spec.n_params, self.spec.dtype)).items()]

    def _base(self, base):
        if base is None:
            return None
        g = check_array(base, "base", ndims=(1,), dtype=np.float64, finite=True)
        if g.shape != (self.spec.n_params,):
            raise EvolinoError(f"base must be one genome of shape ({self.spec.n_params},), got {g.shape}")
        return g

    def _genes(self, genes):
        g = check_array(genes, "genes", ndims=(1, 2), dtype=np.float64)
        if g.shape[-1] != self.n_params:
            raise EvolinoError(f"genes must have {self.n_params} entries per candidate ({self.name} encoding), "
                             f"got shape {g.shape}")
        return g

    def decode(self, genes) -> np.ndarray:  # pragma: no cover - abstract
        """Genomes ``(P, spec.n_params)`` (or ``(spec.n_params,)``) of genes ``(P, n_params)`` (or ``(n_params,)``)."""
        raise NotImplementedError

    def to_dict(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


class Direct(Encoding):
    """The genes are the weights: ``decode`` is the identity; ESP's unit is a memory cell."""

    name = "direct"

    def __init__(self, spec):
        super().__init__(spec)
        self.n_params = spec.n_params
        self.cell_slices = spec.cell_slices

    def init(self, rng=None, size=1, scale=1.0, **options):
        """Random genomes, :meth:`LSTMSpec.init`."""
        return self.spec.init(rng, size, scale, **options)

    def decode(self, genes):
        return self._genes(genes).astype(self.spec.dtype)

    def to_dict(self):
        return {"name": self.name}


class DCT(Encoding):
    """Weight matrices as inverse DCTs of their lowest-frequency coefficients (Koutnik et al. 2010).

    Each array of :meth:`LSTMSpec.unpack` of shape ``(m, n)`` (input and recurrent
    weights; biases and peepholes are ``(m,)``) keeps ``min(coefficients, m n)``
    coefficients ``Q`` at the lowest frequencies and decodes to ``scale * C_m^T Q C_n``
    (orthonormal DCT-II matrices :func:`dct_matrix`). ``scale`` makes genes relative:
    unit coefficients give entries of the matrix's own RMS size (the base's, or
    :meth:`LSTMSpec.init`'s at ``init_scale`` without a base). Keeping every coefficient
    is an orthonormal change of basis: :meth:`encode` then :meth:`decode` is exact.

    Parameters
    ----------
    spec : LSTMSpec
    coefficients : int or "all", default=16
        Coefficients kept per array (at most its size).
    base : array of shape (spec.n_params,), optional
        Genome the decoded weights are added to; None: the weights are the decoded ones.
    init_scale : float, default=1.0
        Without a base: the weight scale the genes are relative to.

    Attributes
    ----------
    n_params : int
        Genes, the sum of the coefficients kept.
    cell_slices : list of slices
        One group of genes per array (ESP's units).
    """

    name = "dct"

    def __init__(self, spec, coefficients=16, *, base=None, init_scale=1.0):
        super().__init__(spec)
        self.base = self._base(base)
        self.init_scale = float(init_scale)
        sizes = [int(np.prod(shape)) for _, shape in self._matrices()]
        if isinstance(coefficients, str):
            if coefficients != "all":
                raise EvolinoError(f"coefficients must be a positive int or 'all', got {coefficients!r}")
            k = max(sizes)
        else:
            k = check_positive_int(coefficients, "coefficients")
            if k > max(sizes):
                raise EvolinoError(f"coefficients={k} is more than the weights of the largest matrix ({max(sizes)}); "
                                 f"pass at most {max(sizes)} or 'all'")
        self.coefficients = coefficients
        base_w = None if self.base is None else spec.unpack(self.base)
        fan = spec.n_inputs + spec.n_cells + 1
        self._blocks, start = [], 0
        for key, shape in self._matrices():
            m, n = (shape[0], 1) if len(shape) == 1 else shape
            pairs = _low_frequencies(m, n, min(k, m * n))
            ka, kb = int(pairs[:, 0].max()) + 1, int(pairs[:, 1].max()) + 1
            if base_w is not None:
                rms = float(np.sqrt(np.mean(base_w[key] ** 2)))
            else:
                rms = self.init_scale / np.sqrt(3.0 * fan)  # spec.init: uniform in +-scale/sqrt(fan-in)
            scale = (rms if rms > 0 else 1.0 / np.sqrt(3.0 * fan)) * np.sqrt(m * n / len(pairs))
            self._blocks.append(dict(key=key, shape=shape, pairs=pairs, Cm=dct_matrix(m)[:ka], Cn=dct_matrix(n)[:kb],
                                     scale=scale, genes=slice(start, start + len(pairs))))
            start += len(pairs)
        self.n_params = start
        self.cell_slices = [b["genes"] for b in self._blocks]

    def decode(self, genes):
        g = self._genes(genes)
        one = g.ndim == 1
        g = np.atleast_2d(g)
        P = len(g)
        weights = {}
        for blk in self._blocks:
            ka, kb = len(blk["Cm"]), len(blk["Cn"])
            Q = np.zeros((P, ka, kb))
            Q[:, blk["pairs"][:, 0], blk["pairs"][:, 1]] = g[:, blk["genes"]] * blk["scale"]
            M = np.einsum("am,pab,bn->pmn", blk["Cm"], Q, blk["Cn"], optimize=True)
            weights[blk["key"]] = M.reshape(P, *blk["shape"])
        out = self.spec.pack(weights).astype(np.float64)
        if self.base is not None:
            out += self.base
        out = out.astype(self.spec.dtype)
        return out[0] if one else out

    def encode(self, genomes) -> np.ndarray:
        """Genes ``(P, n_params)`` of genomes ``(P, spec.n_params)``: the kept DCT coefficients of
        each array (of the difference to the base), the least-squares projection onto the encoding."""
        g = check_array(genomes, "genomes", ndims=(1, 2), dtype=np.float64)
        one = g.ndim == 1
        g = np.atleast_2d(g)
        if self.base is not None:
            g = g - self.base
        w = self.spec.unpack(g)
        out = np.empty((len(g), self.n_params))
        for blk in self._blocks:
            M = w[blk["key"]].reshape(len(g), len(blk["Cm"][0]), len(blk["Cn"][0]))
            Q = np.einsum("am,pmn,bn->pab", blk["Cm"], M, blk["Cn"], optimize=True)
            out[:, blk["genes"]] = Q[:, blk["pairs"][:, 0], blk["pairs"][:, 1]] / blk["scale"]
        return out[0] if one else out

    def init(self, rng=None, size=1, scale=1.0, **options):
        """Initial genes ``(size, n_params)``.

        With a base: zeros plus Gaussian noise of std ``0.1 * scale`` around it (small
        corrections of the base network). Without: the projection of random genomes of
        :meth:`LSTMSpec.init` (``scale``, gate regime in ``options``) onto the kept
        coefficients, the weight matrices rescaled to the energy they had.
        """
        rng = as_rng(rng)
        size = check_positive_int(size, "size")
        if self.base is not None:
            return 0.1 * float(scale) * rng.standard_normal((size, self.n_params))
        genes = self.encode(self.spec.init(rng, size, scale, **options))
        for blk in self._blocks:
            if len(blk["shape"]) == 2:  # a random matrix's energy is spread over all frequencies
                m, n = blk["shape"]
                genes[:, blk["genes"]] *= np.sqrt(m * n / len(blk["pairs"]))
        return genes

    def to_dict(self):
        return {"name": self.name, "coefficients": self.coefficients, "init_scale": self.init_scale,
                "base": self.base is not None}


class Gains(Encoding):
    """Gains and bias shifts of the units of a fixed base network.

    For every unit ``u`` (cell input and gates), ``W_u <- W_u exp(a_u)``,
    ``R_u <- R_u exp(r_u)``, ``b_u <- b_u + d_u``, with one ``(a, r, d)`` per unit
    (``per_cell=False``: ``3 U`` genes) or per unit and cell (``3 U H`` genes); the
    peepholes are kept. Zero genes decode to the base.

    Parameters
    ----------
    spec : LSTMSpec
    base : array of shape (spec.n_params,)
    per_cell : bool, default=False
    """

    name = "gains"

    def __init__(self, spec, base, *, per_cell=False):
        super().__init__(spec)
        if base is None:
            raise EvolinoError("the gains encoding needs a base network (base=<genome>)")
        self.base = self._base(base)
        if not isinstance(per_cell, (bool, np.bool_)):
            raise EvolinoTypeError(f"per_cell must be a bool, got {per_cell!r}")
        self.per_cell = bool(per_cell)
        self._weights = spec.unpack(self.base)
        width = spec.n_cells if self.per_cell else 1
        self._width = width
        self.n_params = 3 * spec.n_units * width
        self.cell_slices = ([slice(3 * u * width, 3 * (u + 1) * width) for u in range(spec.n_units)] if not
                            self.per_cell else [np.arange(j, self.n_params, width) for j in range(width)])

    def decode(self, genes):
        g = self._genes(genes)
        one = g.ndim == 1
        g = np.atleast_2d(g).reshape(-1, self.spec.n_units, 3, self._width)
        weights = {}
        for k, w in self._weights.items():
            weights[k] = np.broadcast_to(w, (len(g), *w.shape))
        for u, name in enumerate(self.spec.units):
            a, r, d = g[:, u, 0], g[:, u, 1], g[:, u, 2]  # (P, width): broadcast over the cells or per cell
            weights[f"W_{name}"] = weights[f"W_{name}"] * np.exp(a)[:, :, None]
            weights[f"R_{name}"] = weights[f"R_{name}"] * np.exp(r)[:, :, None]
            weights[f"b_{name}"] = weights[f"b_{name}"] + d
        out = self.spec.pack(weights).astype(self.spec.dtype)
        return out[0] if one else out

    def init(self, rng=None, size=1, scale=1.0, **options):
        """Initial genes: Gaussian noise of std ``0.1 * scale`` around zero (the base)."""
        return 0.1 * float(scale) * as_rng(rng).standard_normal((check_positive_int(size, "size"), self.n_params))

    def to_dict(self):
        return {"name": self.name, "per_cell": self.per_cell, "base": True}


def make_encoding(name, spec, *, base=None, **options) -> Encoding:
    """An encoding by name: ``"direct"``, ``"dct"`` (:class:`DCT` options) or ``"gains"`` (:class:`Gains` options)."""
    if name not in ENCODINGS:
        raise EvolinoError(f"encoding must be one of {list(ENCODINGS)}, got {name!r}")
    if name == "direct":
        if options:
            raise EvolinoTypeError(f"the direct encoding takes no options, got {sorted(options)}")
        return Direct(spec)
    cls = DCT if name == "dct" else Gains
    allowed = [k for k in inspect.signature(cls).parameters if k not in ("spec", "base")]  # the constructor's options
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise EvolinoTypeError(f"encoding_options {unknown} do not apply to encoding={name!r}; it takes {list(allowed)}")
    return cls(spec, base=base, **options)


class EncodedFitness:
    """A fitness of genes: decodes each chunk of candidates, then calls the weight-space fitness.

    Decoding chunk by chunk (``fitness.chunk_size()`` candidates) keeps the decoded
    genomes of a 500-cell population from being held all at once.

    Parameters
    ----------
    fitness : callable ``(P, spec.n_params) -> (P,)``, e.g. :class:`~evolino.fitness.EvolinoFitness`
    encoding : Encoding
    """

    def __init__(self, fitness, encoding):
        self.fitness = fitness
        self.encoding = encoding

    def __call__(self, genes) -> np.ndarray:
        """Loss ``(P,)`` of genes ``(P, encoding.n_params)``."""
        genes = np.atleast_2d(np.asarray(genes, dtype=np.float64))
        size = getattr(self.fitness, "chunk_size", None)
        n = max(1, size()) if callable(size) else len(genes)
        return np.concatenate([np.asarray(self.fitness(self.encoding.decode(genes[i : i + n])), dtype=np.float64)
                               for i in range(0, len(genes), n)])
