"""Files: one ``.npz`` of plain arrays plus a JSON metadata string, written atomically; the output folder.

Every file evolino writes (models, checkpoints, RL policies) goes through
:func:`save_npz` and is read back by :func:`load_npz`, which checks the file's
``format`` and ``version`` before anything else is read from it. Never pickle:
loading a file cannot run code. Loading reads only the members a reader asks for,
each bounded by the file's own size, and turns every failure (a corrupt, truncated,
crafted or foreign file, a FIFO, a file too large for memory) into one
:class:`~evolino._validate.EvolinoError` naming the file.

:func:`open_output` checks an output folder before a run starts (writable, free
space, not in use by another run) and :func:`write_text` writes small text files
(``results.json``) atomically.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tempfile
import zipfile

import numpy as np

from ._validate import EvolinoError

__all__ = ["save_npz", "load_npz", "check_writable", "meta_value", "open_output", "write_bytes", "write_text",
           "json_safe", "OutputLock"]

# Slack allowed beyond the file's own size for the data of compressed members (a member
# of our own files is stored, never larger than the file): bounds a zip bomb's expansion.
MAX_EXPANSION = 64 * 2**20


def check_writable(path, name: str = "path") -> str:
    """``path`` as a string if its folder exists or can be created and is writable; EvolinoError otherwise.

    Called before long work starts, so that a run is not lost to a typo in an output path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise EvolinoError(f"{name}={path!r} is a folder; give a file path such as {os.path.join(path, 'file.npz')!r}")
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise EvolinoError(f"{name}={path!r}: cannot write in {probe!r}; choose a writable folder")
    return path


def _file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _target(path: str) -> str:
    """The file a write to ``path`` replaces: a symlink's target, so the link itself survives."""
    return os.path.realpath(path) if os.path.islink(path) else path


def _atomic_write(path, write) -> None:
    """``write(binary file)`` into a temporary file beside ``path``, fsync, rename over ``path``."""
    path = _target(os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), _file_mode())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npz(path, arrays: dict, meta: dict) -> None:
    """Write arrays + JSON metadata to ``path`` as ``.npz``: temporary file, fsync, rename.

    A crash mid-write leaves any previous file at ``path`` intact. The archive is
    byte-for-byte reproducible (fixed member order and timestamps), so two identical
    runs write identical files. ``meta`` must hold ``format`` and ``version``. The file
    gets the mode the umask gives new files; a symlink at ``path`` is kept and its
    target replaced.
    """
    if "format" not in meta or "version" not in meta:
        raise KeyError("meta must hold 'format' and 'version'")
    members = {"metadata": np.array(json.dumps(meta, sort_keys=True)), **arrays}

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, value in members.items():
                info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)

    _atomic_write(path, write)


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    _atomic_write(path, lambda f: f.write(data))


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def json_safe(value):
    """``value`` with every non-finite float replaced by None, so ``json.dumps(allow_nan=False)`` holds."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _read_member(zf, info, budget) -> np.ndarray:
    """One ``.npy`` member: its header checked against its size before any data is allocated."""
    if info.file_size > budget:
        raise ValueError(f"member {info.filename} declares {info.file_size} bytes, more than the file can hold")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
            raise ValueError(f"member {info.filename} holds Python objects (pickled data), refused")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise ValueError(f"member {info.filename} declares shape {shape} ({nbytes} bytes) but holds "
                             f"{info.file_size} bytes")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"member {info.filename} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _wanted(name, members) -> bool:
    return members is None or any(name == m or (m.endswith("*") and name.startswith(m[:-1])) for m in members)


def load_npz(path, kind: str, version, members=None) -> tuple[dict, dict]:
    """Arrays and metadata of an evolino ``.npz`` file of format ``kind`` and ``version``; never unpickles.

    Parameters
    ----------
    path : path of the file
    kind : str
        The expected ``format`` field of the metadata.
    version : int or tuple of int
        The versions this reader understands.
    members : iterable of str, optional
        The arrays to read (a name ending in ``*`` is a prefix); others are never
        read. Default: all.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    EvolinoError
        Naming the file, for anything else that is not such a file: not a regular file
        (a folder, a FIFO), corrupt, truncated, crafted (a member larger than the file,
        pickled objects, metadata nested too deep), too large for memory, foreign, or of
        another format or version.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise EvolinoError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block forever, a folder is no archive
        raise EvolinoError(f"{path}: not a regular file; give the path of a saved .npz file")
    budget = st.st_size + MAX_EXPANSION
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if "metadata" not in infos:
                raise KeyError("no metadata member")
            meta = json.loads(str(_read_member(zf, infos["metadata"], budget)))
            if not isinstance(meta, dict) or meta.get("format") != kind:
                found = meta.get("format") if isinstance(meta, dict) else None
                raise _Refused(f"{path}: not an {kind} file (format={found!r})")
            versions = version if isinstance(version, tuple) else (version,)
            if meta.get("version") not in versions:
                want = " or ".join(map(str, versions))
                raise _Refused(f"{path}: file format version {meta.get('version')} is not supported (expected {want})")
            wanted = [n for n in infos if n != "metadata" and _wanted(n, members)]
            if sum(infos[n].file_size for n in wanted) > budget:
                raise ValueError("its members declare more data than the file can hold")
            arrays = {n: _read_member(zf, infos[n], budget) for n in wanted}
    except _Refused as exc:
        raise EvolinoError(str(exc)) from None
    except MemoryError as exc:
        raise EvolinoError(f"{path}: too large to load in the memory available") from exc
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError, RecursionError,
            UnicodeDecodeError, NotImplementedError) as exc:
        what = "metadata nested too deep" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise EvolinoError(f"{path}: cannot read as an evolino .npz file ({what})") from None
    return arrays, meta


class _Refused(Exception):
    """A readable file of the wrong kind or version (its message is final)."""


_KINDS = {bool: "a bool", int: "an int", float: "a number", str: "a string", dict: "an object", list: "a list"}


def meta_value(meta: dict, key: str, kind, path, *, minimum=None):
    """``meta[key]`` checked to be of ``kind`` (bool, int, float, str, dict, list); EvolinoError naming the file.

    JSON has no schema: a ``"no"`` string must not pass as a true bool, nor ``-5`` as a generation.
    """
    if key not in meta:
        raise EvolinoError(f"{path}: metadata lacks {key!r}; the file is incomplete or not written by evolino")
    v = meta[key]
    ok = {bool: isinstance(v, bool), int: isinstance(v, int) and not isinstance(v, bool),
          float: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          str: isinstance(v, str), dict: isinstance(v, dict), list: isinstance(v, list)}[kind]
    if not ok:
        raise EvolinoError(f"{path}: metadata {key!r} must be {_KINDS[kind]}" + (" (finite)" if kind is float else "")
                           + f", got {v!r}")
    if minimum is not None and v < minimum:
        raise EvolinoError(f"{path}: metadata {key!r} must be >= {minimum}, got {v!r}")
    return float(v) if kind is float else v


# --- the output folder --------------------------------------------------------------------


class OutputLock:
    """An output folder checked and held for one run (see :func:`open_output`); ``release()`` frees it."""

    def __init__(self, folder, fh):
        self.folder, self._fh = folder, fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock; a killed process drops it too
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def open_output(folder, need_bytes: int = 0, name: str = "--out") -> OutputLock:
    """Check an output folder before a run: created, writable, ``need_bytes`` free, used by no other run.

    A lock file (``.evolino.lock``, holding the owner's pid) is taken with ``flock``; a
    second run on the same folder is refused while the first lives. Returns the
    :class:`OutputLock` (release it when the run's files are written).

    Raises
    ------
    EvolinoError
        Naming the folder and the fix.
    """
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise EvolinoError(f"{name} {folder}: cannot create the folder ({exc.strerror or exc}); "
                           "choose another") from exc
    if not os.path.isdir(folder):
        raise EvolinoError(f"{name} {folder}: not a folder; choose a folder path")
    try:  # a real write: os.access says yes to root on a read-only mount
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise EvolinoError(f"{name} {folder}: cannot write there ({exc.strerror or exc}); choose a writable "
                           "folder") from exc
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise EvolinoError(f"{name} {folder}: {free / 2**20:.1f} MiB free, the run's files need about "
                           f"{need_bytes / 2**20:.1f} MiB; free space or choose another folder")
    fh = open(os.path.join(folder, ".evolino.lock"), "a+")
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no lock
        return OutputLock(folder, fh)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        owner = fh.read().strip() or "unknown"
        fh.close()
        raise EvolinoError(f"{name} {folder} is in use by another evolino run (pid {owner}); wait for it or "
                           "choose another folder") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return OutputLock(folder, fh)
