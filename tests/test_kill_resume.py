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


# --- nothing lost at the end of a run: the output folder is checked before the work -------------

TINY = ["sines", "--cells", "3", "--popsize", "8", "--trials", "2", "--generations", "2", "--no-progress", "--no-plot"]


def test_second_run_on_one_out_is_refused(tmp_path, capsys):
    from evolino._io import open_output
    from evolino.cli import main

    with open_output(tmp_path / "out"):  # a run holds the folder
        assert main([*TINY, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use by another evolino run" in err[0]
        assert not (tmp_path / "out" / "results.json").exists()
    assert main([*TINY, "--out", str(tmp_path / "out")]) == 0  # released: the folder is free again


def test_lock_is_dropped_by_a_killed_run(tmp_path):
    """flock belongs to the process: a SIGKILLed run leaves no stale lock for --resume."""
    proc = _cli(tmp_path / "out")
    lock = tmp_path / "out" / ".evolino.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    from evolino._io import open_output

    open_output(tmp_path / "out").release()


def test_too_little_free_space_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    import shutil

    import evolino._io as io_module
    from evolino.cli import main

    monkeypatch.setattr(io_module.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    t0 = time.monotonic()
    assert main([*TINY, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MiB free" in err[0] and time.monotonic() - t0 < 10


def test_results_are_written_first_and_a_write_failure_is_one_line(tmp_path, capsys):
    from evolino.cli import main

    out = tmp_path / "out"
    (out / "model.npz").mkdir(parents=True)  # model.npz cannot be written
    assert main([*TINY, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.npz" in err[0], err
    res = json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert res["generations"] == 2


def test_json_results_never_hold_nan():
    from evolino._io import json_safe

    text = json.dumps(json_safe({"a": float("nan"), "b": [1.0, np.float64("inf"), np.int64(3)]}), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.0, None, 3]}


def test_size_that_cannot_fit_is_refused_with_the_estimate(tmp_path):
    """`--cells 5000 --search cmaes` under `ulimit -v 3 GiB`: refused at once with the estimate, not a
    MemoryError after a minute."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "evolino.cli", "sines", "--cells", "5000", "--search", "cmaes",
                          "--generations", "1", "--no-progress"], capture_output=True, text=True, timeout=120,
                         preexec_fn=limit)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "GiB" in err[0] and "RLIMIT_AS" in err[0] and "fewer cells" in err[0]
    assert time.monotonic() - t0 < 60


def test_pole_without_matplotlib_still_writes_its_results(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["matplotlib"] = None  # a base install: importing it raises ImportError
        from evolino.cli import main
        sys.exit(main(["pole", "--poles", "1", "--max-steps", "200", "--evaluations", "300", "--no-progress",
                       "--out", {str(tmp_path / "out")!r}]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode in (0, 1), res.stderr
    assert "matplotlib not installed" in res.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())["task"]
    from evolino.rl import Policy

    Policy.load(tmp_path / "out" / "champion.npz")


def test_cli_bugs_keep_their_traceback_user_errors_do_not(tmp_path, capsys, monkeypatch):
    import evolino.cli as cli
    from evolino import EvolinoError
    from evolino.evaluate import EvaluationError

    def bug(args):
        raise TypeError("unsupported operand type(s)")  # a programming error, not bad input

    monkeypatch.setitem(cli.COMMANDS, "sines", bug)
    with pytest.raises(TypeError):
        cli.main(["sines"])

    def user_error(args):
        raise EvolinoError("cells must be >= 1")

    monkeypatch.setitem(cli.COMMANDS, "sines", user_error)
    assert cli.main(["sines"]) == 2
    assert capsys.readouterr().err.strip() == "evolino sines: error: cells must be >= 1"
    assert cli.main(["--debug", "sines"]) == 1
    assert "Traceback" in capsys.readouterr().err
    died = EvaluationError("worker pid 7 died (killed by signal 9) while evaluating candidates 0..3; the pool was "
                           "restarted", 0, 4)
    assert cli._fault(died).startswith("worker pid 7 died")
    assert cli._fault(EvaluationError("fitness_fn raised ...", 0, 4, "Traceback ...")) is None  # a bug in a worker
    assert cli._fault(MemoryError()).startswith("out of memory")
    assert cli._fault(OSError(28, "No space left on device", "/out/model.npz")) == \
        "No space left on device: /out/model.npz"
