"""Memory a run needs and memory the process may use: refuse up front what cannot fit.

The memory actually available to this process is the least of: the machine's
``MemAvailable``, the cgroup's ``memory.max`` minus its current use (containers,
systemd slices) and the address-space limit ``RLIMIT_AS`` (``ulimit -v``) minus
the address space already mapped. A run whose estimated peak exceeds it is
refused with the estimate and a suggestion, before any work starts, instead of
dying with a MemoryError (or being killed) hours later.
"""

from __future__ import annotations

import os

import numpy as np

from ._validate import EvolinoError

__all__ = ["available_memory", "estimate_run_bytes", "check_run_memory"]


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _cgroup_free():
    """Bytes the cgroup (v2 or v1) still allows, or None."""
    rel = ""
    text = _read("/proc/self/cgroup") or ""
    for line in text.splitlines():
        if line.startswith("0::"):
            rel = line[3:].strip()
    for folder in (os.path.join("/sys/fs/cgroup", rel.lstrip("/")), "/sys/fs/cgroup"):
        limit = _read(os.path.join(folder, "memory.max"))
        if limit is not None:
            if limit.strip() == "max":
                return None
            used = _read(os.path.join(folder, "memory.current")) or "0"
            return max(0, int(limit) - int(used))
    limit = _read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if limit is not None and int(limit) < 2**60:
        used = _read("/sys/fs/cgroup/memory/memory.usage_in_bytes") or "0"
        return max(0, int(limit) - int(used))
    return None


def _rlimit_free():
    """Bytes of address space ``RLIMIT_AS`` still allows, or None."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = 0
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmSize:"):
            mapped = int(line.split()[1]) * 1024
    return max(0, soft - mapped)


def _meminfo_available():
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def available_memory() -> tuple[int | None, str]:
    """``(bytes, where)``: the memory this process may still allocate and which limit sets it (None: unknown)."""
    found = [(v, name) for v, name in ((_meminfo_available(), "available RAM"), (_cgroup_free(), "cgroup memory.max"),
                                       (_rlimit_free(), "RLIMIT_AS (ulimit -v)")) if v is not None]
    if not found:
        return None, "unknown"
    return min(found)


def estimate_run_bytes(fitness, popsize: int, n_params: int) -> dict:
    """Estimated peak bytes of one run of ``fitness`` with ``popsize`` genomes of ``n_params`` weights.

    Returns the parts: ``kernel`` (a population chunk's activations: chunk x states x cells
    x gates), ``readout`` (the chunk's state matrices and their solve), ``genomes`` (the
    population, its prepared weights and the strategy's copies) and ``total``.
    """
    spec = fitness.spec
    B, T = fitness.inputs.shape[:2]
    item = np.dtype(spec.dtype).itemsize
    chunk = min(popsize, fitness.chunk_size())
    kernel = chunk * B * T * spec.n_cells * item * (spec.n_units + 3)
    n_fit = max(len(fitness.fit_idx), len(fitness.final_idx))
    readout = chunk * n_fit * (spec.n_cells + 1) * 8 * 4  # gathered states, centred copy, SVD factors
    genomes = 2 * popsize * n_params * 8 + chunk * n_params * 8  # the population and its pending copy
    return {"kernel": kernel, "readout": readout, "genomes": genomes, "chunk": chunk, "states": B * T,
            "total": kernel + readout + genomes}


def check_run_memory(fitness, popsize: int, n_params: int) -> None:
    """Shrink ``fitness.max_bytes`` to the memory available, then refuse a run that still cannot fit.

    Chunking does not change results (every candidate's fitness is independent of its
    chunk-mates), so a tight limit only makes a run slower, never different.

    Raises
    ------
    EvolinoError
        With the estimate, the limit that sets the available memory and what to change.
    """
    avail, where = available_memory()
    if avail is None:
        return
    fitness.max_bytes = int(max(1, min(fitness.max_bytes, avail // 3)))
    est = estimate_run_bytes(fitness, popsize, n_params)
    if est["total"] > 0.8 * avail:
        raise EvolinoError(
            f"this run needs about {_size(est['total'])} (population chunk {est['chunk']} x {est['states']} states "
            f"x {fitness.spec.n_cells} cells: {_size(est['kernel'])}; readout {_size(est['readout'])}; {popsize} "
            f"genomes of {n_params} weights: {_size(est['genomes'])}) but only {_size(avail)} are available to this "
            f"process ({where}); use fewer cells, a smaller population or shorter data")


def _size(n) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
