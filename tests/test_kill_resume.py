"""Kill-and-resume: a SIGKILLed run resumes from its checkpoint to the same result,
bit for bit, and a kill during a checkpoint write leaves the previous one valid."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from evolino._io import load_npz
from evolino.trainer import CHECKPOINT_VERSION

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

ARGS = ["sines", "--cells", "8", "--popsize", "40", "--generations", "150", "--checkpoint-every", "5",
        "--seed", "7", "--no-progress", "--no-plot"]


def _cli(out, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "evolino.cli", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _generation(checkpoint):
    try:
        _, meta = load_npz(checkpoint, "evolino.checkpoint", CHECKPOINT_VERSION)
    except (ValueError, FileNotFoundError):
        return 0
    return meta["history"]["generation"][-1]


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    full = _cli(tmp_path / "full")
    killed = _cli(tmp_path / "killed")
    ck = tmp_path / "killed" / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while _generation(ck) < 20 and time.monotonic() < deadline:
        assert killed.poll() is None, killed.stderr.read().decode()
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed: raise --generations"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    at_kill = _generation(ck)
    assert 20 <= at_kill < 150
    resumed = _cli(tmp_path / "killed", "--resume")
    assert resumed.wait(300) == 0, resumed.stderr.read().decode()
    assert full.wait(300) == 0, full.stderr.read().decode()
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "killed" / "results.json").read_text())
    for key in ("test_nrmse", "best_validation", "generation1_best_validation", "evaluations", "generations"):
        assert a[key] == b[key], key
    # the saved models are byte-identical
    assert (tmp_path / "full" / "model.npz").read_bytes() == (tmp_path / "killed" / "model.npz").read_bytes()


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from evolino._io import save_npz
    path = sys.argv[1]
    i = 0
    while True:
        i += 1
        big = np.full(3_000_000, float(i))          # 24 MB: a write takes a while
        save_npz(path, {"big": big}, {"format": "evolino.checkpoint", "version": 1, "i": i})
        print(i, flush=True)
""")


def test_kill_during_checkpoint_write_keeps_previous_valid(tmp_path):
    path = tmp_path / "ck.npz"
    rng = np.random.default_rng(0)
    for trial in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        proc.stdout.readline()  # at least one complete write
        time.sleep(rng.uniform(0.0, 0.15))  # then kill at a random point, often mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        arrays, meta = load_npz(path, "evolino.checkpoint", 1)  # never a torn file
        assert np.all(arrays["big"] == meta["i"])
