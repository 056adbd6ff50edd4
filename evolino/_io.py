"""Files: one ``.npz`` of plain arrays plus a JSON metadata string, written atomically.

Every file evolino writes (models, checkpoints, RL policies) goes through
:func:`save_npz` and is read back by :func:`load_npz`, which checks the file's
``format`` and ``version`` before anything else is read from it. Never pickle:
loading a file cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save_npz", "load_npz", "check_writable"]


def check_writable(path, name: str = "path") -> str:
    """``path`` as a string if its folder exists or can be created and is writable; ValueError otherwise.

    Called before long work starts, so that a run is not lost to a typo in an output path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{name}={path!r} is a folder; give a file path such as {os.path.join(path, 'file.npz')!r}")
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise ValueError(f"{name}={path!r}: cannot write in {probe!r}; choose a writable folder")
    return path


def save_npz(path, arrays: dict, meta: dict) -> None:
    """Write arrays + JSON metadata to ``path`` as ``.npz``: temporary file, fsync, rename.

    A crash mid-write leaves any previous file at ``path`` intact. The archive is
    byte-for-byte reproducible (fixed member order and timestamps), so two identical
    runs write identical files. ``meta`` must hold ``format`` and ``version``.
    """
    if "format" not in meta or "version" not in meta:
        raise KeyError("meta must hold 'format' and 'version'")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    members = {"metadata": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, value in members.items():
                    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with zf.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path, kind: str, version) -> tuple[dict, dict]:
    """Arrays and metadata of an evolino ``.npz`` file of format ``kind`` and ``version``; never unpickles.

    ``version`` is an int or a tuple of the versions this reader understands.

    Raises FileNotFoundError for a missing file and ValueError, naming the file, for
    anything else that is not such a file (corrupt, foreign, other format or version).
    """
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("metadata")))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as an evolino .npz file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ValueError(f"{path}: not an {kind} file (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    versions = version if isinstance(version, tuple) else (version,)
    if meta.get("version") not in versions:
        want = " or ".join(map(str, versions))
        raise ValueError(f"{path}: file format version {meta.get('version')} is not supported (expected {want})")
    return arrays, meta
