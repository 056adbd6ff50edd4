"""The bad-input catalogue: every public entry point, fed what users feed by mistake.

Each case must raise ValueError/TypeError whose message names the argument (the
``match`` pattern), never a traceback from deep inside NumPy. CLI cases must exit
with status 2 and a one-line message. The number of cases is printed at the end
of the run (see ``pytest_terminal_summary`` in conftest.py) and recorded in
docs/reliability.md.
"""

import importlib.util
import json
import os
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolino import (CMAES, ESP, Evolino, EvolinoError, EvolinoNetwork, EvolinoRegressor, Linear, LSTMSpec, forward, initial_state,
                     make_strategy, step)
from evolino.cli import main as cli_main
from evolino.tasks import MackeyGlassTask, SinesTask, mackey_glass, superimposed_sines
from evolino.tasks.anbncn import AnbncnTask

SPEC = LSTMSpec(2, 3)
G = SPEC.init(0, 4)
X = np.zeros((10, 2))
SINES = SinesTask(terms=2).train_series


def _net():
    spec = LSTMSpec(1, 3)
    return EvolinoNetwork(spec, spec.init(0, 1)[0], np.zeros((4, 1)), feedback=True)


def _quick(**kw):
    return Evolino(**{**dict(n_cells=3, washout=100, popsize=8, max_generations=1, seed=0,
                             search="esp", search_options=dict(trials=2)), **kw})


CASES = {
    # --- LSTMSpec -------------------------------------------------------------
    "spec n_inputs zero": (lambda: LSTMSpec(0, 3), ValueError, "n_inputs"),
    "spec n_cells negative": (lambda: LSTMSpec(2, -2), ValueError, "n_cells"),
    "spec n_cells float": (lambda: LSTMSpec(2, 3.0), TypeError, "n_cells"),
    "spec n_cells string": (lambda: LSTMSpec(2, "3"), TypeError, "n_cells"),
    "spec dtype int": (lambda: LSTMSpec(2, 3, dtype=np.int64), TypeError, "dtype"),
    "spec dtype unknown": (lambda: LSTMSpec(2, 3, dtype="float128x"), TypeError, "dtype"),
    "spec peepholes not bool": (lambda: LSTMSpec(2, 3, peepholes=1), TypeError, "peepholes"),
    "spec recurrent_dtype int": (lambda: LSTMSpec(2, 3, recurrent_dtype=np.int32), TypeError, "recurrent_dtype"),
    "spec init size zero": (lambda: SPEC.init(0, 0), ValueError, "size"),
    "spec init bad seed": (lambda: SPEC.init("seed", 2), TypeError, "seed"),
    "spec init negative seed": (lambda: SPEC.init(-1, 2), ValueError, "seed"),
    "spec unpack wrong length": (lambda: SPEC.unpack(np.zeros(5)), ValueError, "genome"),
    # --- forward / step ----------------------------------------------------------
    "forward genome wrong length": (lambda: forward(SPEC, G[:, 1:], X), ValueError, "genomes"),
    "forward genome 3-D": (lambda: forward(SPEC, G[None], X), ValueError, "genomes"),
    "forward genome NaN": (lambda: forward(SPEC, np.full_like(G, np.nan), X), ValueError, "genomes"),
    "forward genome strings": (lambda: forward(SPEC, [["a"] * SPEC.n_params], X), TypeError, "genomes"),
    "forward X wrong width": (lambda: forward(SPEC, G, np.zeros((10, 3))), ValueError, "X"),
    "forward X 1-D": (lambda: forward(SPEC, G, np.zeros(10)), ValueError, "X"),
    "forward X 4-D": (lambda: forward(SPEC, G, np.zeros((1, 1, 10, 2))), ValueError, "X"),
    "forward X empty": (lambda: forward(SPEC, G, np.zeros((0, 2))), ValueError, "X"),
    "forward X inf": (lambda: forward(SPEC, G, np.full((10, 2), np.inf)), ValueError, "X"),
    "forward X complex": (lambda: forward(SPEC, G, np.zeros((10, 2), complex)), TypeError, "X"),
    "forward X ragged": (lambda: forward(SPEC, G, [[0.0, 1.0], [0.0]]), ValueError, "X"),
    "forward X None": (lambda: forward(SPEC, G, None), TypeError, "X"),
    "forward h0 wrong shape": (lambda: forward(SPEC, G, X, h0=initial_state(SPEC, 2)), ValueError, "h0"),
    "step x wrong width": (lambda: step(SPEC, G, initial_state(SPEC, 4), np.zeros((1, 5))), ValueError, "x"),
    "step state wrong P": (lambda: step(SPEC, G, initial_state(SPEC, 3), np.zeros((1, 2))), ValueError, "state"),
    "initial_state zero networks": (lambda: initial_state(SPEC, 0), ValueError, "n_networks"),
    # --- readout ----------------------------------------------------------------------
    "readout ridge negative": (lambda: Linear(ridge=-1.0).fit(np.zeros((2, 5, 3)), np.zeros((5, 1))), ValueError, "ridge"),
    "readout ridge string": (lambda: Linear(ridge="0").fit(np.zeros((2, 5, 3)), np.zeros((5, 1))), TypeError, "ridge"),
    "readout S 2-D": (lambda: Linear().fit(np.zeros((5, 3)), np.zeros((5, 1))), ValueError, "S"),
    "readout Y length": (lambda: Linear().fit(np.zeros((2, 5, 3)), np.zeros((6, 1))), ValueError, "Y"),
    "readout S NaN": (lambda: Linear().fit(np.full((2, 5, 3), np.nan), np.zeros((5, 1))), ValueError, "S"),
    "readout predict unfitted": (lambda: Linear().predict(np.zeros((2, 5, 3))), ValueError, "fit"),
    "readout predict wrong H": (lambda: Linear().fit(np.ones((2, 5, 3)).cumsum(1), np.zeros((5, 1))).predict(
        np.zeros((2, 5, 4))), ValueError, "S"),
    # --- strategies -----------------------------------------------------------------
    "esp subpop 1": (lambda: ESP(10, subpop_size=1), ValueError, "subpop_size"),
    "esp trials 0": (lambda: ESP(10, trials=0), ValueError, "trials"),
    "esp units overlap": (lambda: ESP(4, units=[slice(0, 3), slice(2, 4)]), ValueError, "units"),
    "esp units gap": (lambda: ESP(4, units=[slice(0, 2)]), ValueError, "units"),
    "esp mutation negative": (lambda: ESP(4, mutation_scale=-0.1), ValueError, "mutation_scale"),
    "esp unknown option": (lambda: ESP(4, subpopsize=3), TypeError, "subpopsize"),
    "esp fitness wrong length": (lambda: (lambda s: (s.ask(), s.tell(np.zeros(3))))(ESP(4, seed=0)), ValueError,
                                 "fitness"),
    "cmaes sigma0 zero": (lambda: CMAES(np.zeros(3), sigma0=0), ValueError, "sigma0"),
    "cmaes unknown option": (lambda: CMAES(np.zeros(3), tolfunn=1e-9), ValueError, "tolfun"),
    "cmaes restarts unknown": (lambda: CMAES(np.zeros(3), restarts="ipopp"), ValueError, "restarts"),
    "cmaes x0 2-D": (lambda: CMAES(np.zeros((3, 3))), ValueError, "x0"),
    "make_strategy unknown": (lambda: make_strategy("cma", 5), ValueError, "did you mean 'cmaes'"),
    "make_strategy popsize not multiple": (lambda: make_strategy("esp", 5, popsize=15), ValueError, "popsize"),
    # --- trainer --------------------------------------------------------------------
    "trainer too short for washout": (lambda: _quick().fit(np.zeros((50, 1))), ValueError, "washout"),
    "trainer NaN data": (lambda: _quick().fit(np.full((300, 1), np.nan)), ValueError, "Y"),
    "trainer 4-D data": (lambda: _quick().fit(np.zeros((1, 1, 300, 1))), ValueError, "Y"),
    "trainer swapped arguments": (lambda: _quick().fit(np.zeros((400, 1)), np.zeros((400, 1))), TypeError, "fit\\(Y, X=X\\)"),
    "trainer empty data": (lambda: _quick().fit(np.zeros((0, 1))), ValueError, "Y"),
    "trainer X length mismatch": (lambda: _quick().fit(SINES, X=np.zeros((399, 1))), ValueError, "X"),
    "trainer unknown search": (lambda: _quick(search="espp").fit(SINES), ValueError, "did you mean 'esp'"),
    "trainer unknown readout": (lambda: _quick(readout="pinv").fit(SINES), ValueError, "readout"),
    "trainer negative generations": (lambda: _quick(max_generations=-1).fit(SINES), ValueError, "max_generations"),
    "trainer zero evaluations": (lambda: _quick(max_evaluations=0).fit(SINES), ValueError, "max_evaluations"),
    "trainer validation too large": (lambda: _quick(validation=1.5).fit(SINES), ValueError, "validation"),
    "trainer validation eats all": (lambda: _quick(validation=300).fit(SINES), ValueError, "validation"),
    "trainer n_cells zero": (lambda: _quick(n_cells=0).fit(SINES), ValueError, "n_cells"),
    "trainer n_cells other string": (lambda: _quick(n_cells="wide").fit(SINES), TypeError, "n_cells .*'auto'"),
    "trainer generations other string": (lambda: _quick(max_generations="many").fit(SINES), TypeError,
                                         "max_generations .*'auto'"),
    "trainer popsize zero": (lambda: _quick(popsize=0).fit(SINES), ValueError, "popsize"),
    "trainer input_scale negative": (lambda: _quick(input_scale=-1).fit(SINES), ValueError, "input_scale"),
    "trainer lags negative": (lambda: _quick(lags=-2).fit(SINES), ValueError, "lags"),
    "trainer lags string": (lambda: _quick(lags="many").fit(SINES), TypeError, "lags"),
    "trainer horizon longer than the validation part": (lambda: _quick(horizon=500).fit(SINES), ValueError,
                                                        "horizon=500 must be between 1 and the validation part"),
    "regressor horizon longer than the validation part": (
        lambda: EvolinoRegressor(n_cells=3, popsize=4, max_generations=1, feedback=True, horizon=500).fit(None, SINES[:, 0]),
        ValueError, "horizon=500 must be between 1 and the validation part"),
    "trainer noise string": (lambda: _quick(noise="loud").fit(SINES), TypeError, "noise must be a float >= 0 or 'auto'"),
    "trainer lags with an SVM readout": (lambda: _quick(readout="svr", lags=4, feedback=False).fit(SINES, X=SINES),
                                         ValueError, "lags need the linear readout"),
    "network coef rows without the lag rows": (lambda: EvolinoNetwork(LSTMSpec(1, 3), LSTMSpec(1, 3).init(0, 1)[0],
                                                                      np.zeros((4, 1)), feedback=True, lags=2),
                                               ValueError, "coef must have shape"),
    "trainer resume without path": (lambda: _quick().fit(SINES, resume=True), ValueError, "checkpoint"),
    "trainer unknown evaluator": (lambda: _quick(evaluator="threads").fit(SINES), ValueError, "evaluator"),
    "trainer evaluator object": (lambda: _quick(evaluator=object()).fit(SINES), TypeError, "evaluator"),
    "trainer strategy object": (lambda: _quick(search=object()).fit(SINES), TypeError, "search"),
    "trainer no inputs without feedback": (lambda: _quick(feedback=False).fit(SINES), ValueError, "X"),
    # --- model ----------------------------------------------------------------------
    "network coef wrong rows": (lambda: EvolinoNetwork(LSTMSpec(1, 3), np.zeros(LSTMSpec(1, 3).n_params),
                                                       np.zeros((3, 1))), ValueError, "coef"),
    "network spec not a spec": (lambda: EvolinoNetwork("spec", np.zeros(3), np.zeros((4, 1))), TypeError, "spec"),
    "network generate n_steps zero": (lambda: _net().generate(0, Y_prefix=np.zeros((5, 1))), ValueError, "n_steps"),
    "network generate prefix width": (lambda: _net().generate(5, Y_prefix=np.zeros((5, 2))), ValueError, "Y_prefix"),
    "network generate prefix NaN": (lambda: _net().generate(5, Y_prefix=np.full((5, 1), np.nan)), ValueError,
                                    "Y_prefix"),
    "network predict without Y": (lambda: _net().predict(), ValueError, "Y"),
    # --- tasks ----------------------------------------------------------------------
    "sines terms too many": (lambda: superimposed_sines(10, terms=9), ValueError, "terms"),
    "sines n_steps zero": (lambda: superimposed_sines(0), ValueError, "n_steps"),
    "sines freqs NaN": (lambda: superimposed_sines(10, freqs=[np.nan]), ValueError, "freqs"),
    "sines task train zero": (lambda: SinesTask(train=0), ValueError, "train"),
    "mackey-glass tau negative": (lambda: mackey_glass(10, tau=-17), ValueError, "tau"),
    "mackey-glass dt zero": (lambda: mackey_glass(10, dt=0), ValueError, "dt"),
    "mackey-glass task runs zero": (lambda: MackeyGlassTask(n_runs=0), ValueError, "n_runs"),
    # --- degenerate data and sizes, refused up front ---------------------------------------
    "sines freqs zero": (lambda: superimposed_sines(10, freqs=[0.2, 0.0]), EvolinoError, "freqs must be > 0"),
    "anbncn test_max below train_max": (lambda: AnbncnTask(train_max=10, test_max=3), EvolinoError, "test_max"),
    "trainer svc on real-valued targets": (lambda: _quick(readout="svc", feedback=False, washout=0).fit(
        np.random.default_rng(0).normal(size=10), X=np.zeros((10, 5, 2)), per_sequence=True), EvolinoError, "0/1"),
    "trainer values whose variance overflows": (lambda: _quick().fit(_huge()), EvolinoError, "too large to standardize"),
    "trainer every candidate non-finite": (lambda: _quick(loss=_nan_loss, input_scale=1.0, init_scale=1.0, gates="lstm",
                                                          max_generations=50).fit(SINES), EvolinoError, "generation 1"),
    "trainer sigma0 overflows": (lambda: _quick(search="cmaes", search_options=dict(sigma0=1e300)).fit(SINES),
                                 EvolinoError, "sigma0"),
}


def _huge():
    y = SINES.copy()
    y[50] = 1e308
    return y


def _nan_loss(out, Y):
    return np.full(len(out), np.nan)


def _rl_cases():
    from evolino.rl import PoleBalancing, PoleTask, PolicySpec

    return {
        "pole n_poles 3": (lambda: PoleBalancing(3), ValueError, "n_poles"),
        "pole velocities not bool": (lambda: PoleBalancing(2, velocities="no"), TypeError, "velocities"),
        "pole task unknown fitness": (lambda: PoleTask(fitness="dampingg"), ValueError, "fitness"),
        "pole task max_steps zero": (lambda: PoleTask(max_steps=0), ValueError, "max_steps"),
        "policy unknown head": (lambda: PolicySpec(3, 2, head="relu"), ValueError, "head"),
    }


CASES.update(_rl_cases())


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_raises_clear_error(name):
    fn, exc, match = CASES[name]
    with pytest.raises(exc, match=match):
        fn()


CLI_CASES = {
    "unknown command": ["sinez"],
    "unknown option": ["sines", "--cellz", "3"],
    "cells zero": ["sines", "--cells", "0"],
    "cells not a number": ["sines", "--cells", "ten"],
    "terms and freqs together": ["sines", "--terms", "2", "--freqs", "0.2"],
    "freqs not numbers": ["sines", "--freqs", "0.2,abc"],
    "unknown search": ["sines", "--search", "pso"],
    "unknown evaluator": ["sines", "--evaluator", "mpi"],
    "generations negative": ["mackey-glass", "--generations", "-5"],
    "seed negative": ["sines", "--seed", "-1"],
    "pole seed negative": ["pole", "--seed", "-3", "--no-progress"],
    "resume without out": ["sines", "--resume"],
    "resume with no checkpoint": ["sines", "--resume", "--out", "{tmp}/none"],
    "too many sines": ["sines", "--terms", "9", "--generations", "1", "--no-progress"],
    "pole poles 3": ["pole", "--poles", "3"],
    "freqs zero": ["sines", "--freqs", "0"],
    "noise negative": ["sines", "--noise", "-1", "--generations", "1", "--no-progress"],
    "noise not a number": ["sines", "--noise", "loud"],
    "anbncn test-max below train-max": ["anbncn", "--test-max", "3", "--train-max", "10"],
    "sigma0 overflows": ["sines", "--search", "cmaes", "--sigma0", "1e300", "--generations", "1", "--no-progress"],
    "out cannot be created": ["sines", "--out", "/proc/evolino-no-such/out", "--generations", "1"],
    "out is a file": ["sines", "--out", "{tmp}/afile", "--generations", "1"],
    "gym env dependency missing": ["gym", "LunarLander-v3", "--evaluations", "10", "--no-progress"],
    "gym validation negative": ["gym", "CartPole-v1", "--validation", "-1"],
    "gym gif without out": ["gym", "CartPole-v1", "--gif", "--evaluations", "10", "--no-progress"],
    "pole resume without out": ["pole", "--resume", "--generations", "1", "--no-progress"],
    "pole restarts with snes": ["pole", "--search", "snes", "--restarts", "ipop", "--generations", "1", "--no-progress"],
    "pole workers without pool": ["pole", "--workers", "2", "--generations", "1", "--no-progress"],
    "pole rpg on a pool": ["pole", "--search", "rpg", "--evaluator", "pool", "--generations", "1", "--no-progress"],
    "pole resume without checkpoint": ["pole", "--resume", "--out", "{tmp}", "--generations", "1", "--no-progress"],
    "gym validation-se negative": ["gym", "CartPole-v1", "--validation-se", "-1", "--evaluations", "10", "--no-progress"],
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_bad_input_exits_2_with_one_line(name, capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    if name == "gym env dependency missing":
        pytest.importorskip("gymnasium")
        if importlib.util.find_spec("Box2D") is not None:
            pytest.skip("Box2D is installed here")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in CLI_CASES[name]]
    with pytest.raises(SystemExit) as exc:
        status = cli_main(argv)
        raise SystemExit(status)
    code = exc.value.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 or (isinstance(code, str) and code.startswith("evolino")), code
    message = err[-1] if err else str(code)
    assert "error" in message and len(err) <= 2, err


# --- corrupt or foreign files ----------------------------------------------------------


def _saved(tmp_path):
    path = tmp_path / "m.npz"
    _net().save(path)
    return path


def test_truncated_model_file_is_a_clear_error(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        (tmp_path / "t.npz").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="t.npz"):
            EvolinoNetwork.load(tmp_path / "t.npz")


def test_model_file_of_another_kind_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        EvolinoNetwork.load(tmp_path / "other.npz")
    ck = tmp_path / "ck.npz"
    _quick(checkpoint=ck).fit(SINES)
    with pytest.raises(ValueError, match="not an evolino.EvolinoNetwork"):
        EvolinoNetwork.load(ck)


def test_model_file_with_inconsistent_arrays_is_refused(tmp_path):
    path = _saved(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["coef"] = np.zeros((7, 1))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="coef"):
        EvolinoNetwork.load(tmp_path / "bad.npz")


def test_loading_never_unpickles(tmp_path):
    """A crafted file whose array is a pickled object would run code if unpickled."""
    path = _saved(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["genome"] = np.array([{"evil": "payload"}], dtype=object)  # stored with pickle
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="evil.npz"):
        EvolinoNetwork.load(tmp_path / "evil.npz")
    ck = tmp_path / "ck.npz"
    _quick(checkpoint=ck).fit(SINES)
    with np.load(ck) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["metadata"]))
    arrays["strategy.pop"] = np.array([object()], dtype=object)
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "evil_ck.npz", **arrays)
    with pytest.raises(ValueError, match="evil_ck.npz"):
        _quick(checkpoint=tmp_path / "evil_ck.npz").fit(SINES, resume=True)


# --- hostile files: every failure is one error naming the file ----------------------------


def _members(path):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(str(arrays.pop("metadata")))


def _rewrite(src, dst, meta=None, arrays=None):
    """A copy of ``src`` with its metadata / arrays replaced (as a user or an attacker might)."""
    a, m = _members(src)
    a.update(arrays or {})
    np.savez(dst, metadata=np.array(json.dumps({**m, **(meta or {})})), **a)
    return dst


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck") / "ck.npz"
    _quick(checkpoint=ck, max_generations=2).fit(SINES)
    return ck


def test_crafted_zip_members_are_never_expanded(tmp_path):
    """A small file whose members decompress to far more than the file: unused ones are not read,
    used ones are refused before their data is allocated (no 800 MB for a 0.8 MB file)."""
    path = _saved(tmp_path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        with dst.open("junk.npy", "w") as f:  # 100 MB of zeros, ~100 kB compressed
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (12_500_000,)})
            for _ in range(100):
                f.write(bytes(2**20))
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    net = EvolinoNetwork.load(bomb)  # the unused member is never read
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20 and net.n_outputs == 1
    a, m = _members(path)
    evil = tmp_path / "evil.npz"
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("metadata.npy", zipfile.ZipFile(path).read("metadata.npy"))
        dst.writestr("coef.npy", zipfile.ZipFile(path).read("coef.npy"))
        with dst.open("genome.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (12_500_000,)})
            for _ in range(100):
                f.write(bytes(2**20))
    with pytest.raises(EvolinoError, match="evil.npz.*more data than the file"):
        EvolinoNetwork.load(evil)


def test_npy_header_claiming_more_than_the_member_holds_is_refused(tmp_path):
    path = _saved(tmp_path)
    lie = tmp_path / "lie.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(lie, "w") as dst:
        for info in src.infolist():
            if info.filename == "genome.npy":
                buf = __import__("io").BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                                           "shape": (10**12,)})
                dst.writestr("genome.npy", buf.getvalue() + bytes(64))
            else:
                dst.writestr(info.filename, src.read(info))
    with pytest.raises(EvolinoError, match="lie.npz.*declares shape"):
        EvolinoNetwork.load(lie)


def test_deeply_nested_metadata_is_a_clear_error(tmp_path):
    deep = tmp_path / "deep.npz"
    np.savez(deep, metadata=np.array("[" * 100_000 + "]" * 100_000), genome=np.zeros(3))
    with pytest.raises(EvolinoError, match="deep.npz.*nested too deep"):
        EvolinoNetwork.load(deep)


def test_metadata_of_the_wrong_json_type_is_refused(tmp_path):
    path = _saved(tmp_path)
    for key, value, match in (("feedback", "no", "feedback.*bool"), ("washout", -3, "washout.*>= 0"),
                              ("input_scale", "1", "input_scale.*number"), ("spec", [1, 3], "spec")):
        bad = _rewrite(path, tmp_path / f"bad_{key}.npz", meta={key: value})
        with pytest.raises(EvolinoError, match=f"bad_{key}.npz.*{match}"):
            EvolinoNetwork.load(bad)


def test_fifo_given_as_a_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            EvolinoNetwork.load(fifo)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "loading a named pipe hangs"
    assert isinstance(outcome[0], EvolinoError) and "pipe.npz" in str(outcome[0]) and "regular file" in str(outcome[0])
    with pytest.raises(EvolinoError, match="regular file"):
        _quick(checkpoint=fifo).fit(SINES, resume=True)


@pytest.mark.parametrize("edit,match", [
    (dict(meta={"history": None}), "history"),
    (dict(drop="history"), "lacks 'history'"),
    (dict(drop="seed"), "lacks 'seed'"),
    (dict(meta={"seed": "0"}), "seed.*int"),
    (dict(generation=-5), "generation.*>= 0"),
    (dict(nan="strategy.pop"), "NaN"),
    (dict(meta={"elapsed": float("nan")}), "elapsed"),
    (dict(meta={"chosen": {"input_scale": "big", "init_scale": 1.0, "gates": "lstm"}}), "input_scale"),
])
def test_corrupt_checkpoint_is_one_error_naming_the_file(checkpoint, tmp_path, edit, match):
    a, m = _members(checkpoint)
    m.update(edit.get("meta", {}))
    if "drop" in edit:
        del m[edit["drop"]]
    if "generation" in edit:
        m["strategy"]["generation"] = edit["generation"]
        m["history"]["generation"] = [edit["generation"]] * len(m["history"]["generation"])
    if "nan" in edit:
        a[edit["nan"]] = np.full_like(a[edit["nan"]], np.nan)
    bad = tmp_path / "bad_ck.npz"
    np.savez(bad, metadata=np.array(json.dumps(m)), **a)
    with pytest.raises(EvolinoError, match=f"bad_ck.npz.*{match}|{match}.*bad_ck.npz"):
        _quick(checkpoint=bad, max_generations=3).fit(SINES, resume=True)


def test_resume_refuses_a_checkpoint_of_another_seed(checkpoint, tmp_path):
    ck = tmp_path / "ck.npz"
    ck.write_bytes(checkpoint.read_bytes())
    with pytest.raises(EvolinoError, match="seed=0, not seed=3"):
        _quick(checkpoint=ck, max_generations=3, seed=3).fit(SINES, resume=True)
    _quick(checkpoint=ck, max_generations=3, seed=None).fit(SINES, resume=True)  # None takes the checkpoint's


def test_truncated_or_foreign_policy_file_is_one_error(tmp_path):
    from evolino.rl import Policy, PolicySpec

    spec = PolicySpec(3, 2)
    path = tmp_path / "champion.npz"
    Policy(spec, spec.init(0, 1)[0]).save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EvolinoError, match="cut.npz"):
        Policy.load(tmp_path / "cut.npz")
    _rewrite(path, tmp_path / "v99.npz", meta={"version": 99})
    with pytest.raises(EvolinoError, match="v99.npz.*version 99"):
        Policy.load(tmp_path / "v99.npz")


def test_saved_files_follow_the_umask_and_keep_a_symlink(tmp_path):
    net = _net()
    old = os.umask(0o022)
    try:
        net.save(tmp_path / "a.npz")
        os.umask(0o077)
        net.save(tmp_path / "b.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o600
    target = tmp_path / "store" / "real.npz"
    target.parent.mkdir()
    target.write_bytes(b"old")
    (tmp_path / "link.npz").symlink_to(target)
    net.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink()  # the link survives, its target holds the new file
    assert EvolinoNetwork.load(target).n_outputs == 1


# --- property-based shape contracts ---------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(P=st.integers(1, 4), B=st.integers(1, 3), T=st.integers(1, 6), I=st.integers(1, 3), H=st.integers(1, 4),
       peep=st.booleans(), forget=st.booleans())
def test_forward_shape_contract(P, B, T, I, H, peep, forget):
    spec = LSTMSpec(I, H, peepholes=peep, forget_gate=forget)
    g = spec.init(0, P)
    X = np.random.default_rng(0).normal(size=(B, T, I))
    out, state = forward(spec, g, X, return_state=True)
    assert out.shape == (P, B, T, H) and state.h.shape == (P, B, H) and state.c.shape == (P, B, H)
    assert np.all(np.abs(out) < 1)  # h = o * tanh(c) with o in (0, 1)
    np.testing.assert_array_equal(out[:, :, -1], state.h)
    assert forward(spec, g, X[0]).shape == (P, T, H)


@settings(max_examples=25, deadline=None)
@given(P=st.integers(1, 4), N=st.integers(2, 40), H=st.integers(1, 6), O=st.integers(1, 3), seed=st.integers(0, 99))
def test_readout_shape_contract_and_optimality(P, N, H, O, seed):
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(P, N, H))
    Y = rng.normal(size=(N, O))
    r = Linear().fit(S, Y)
    assert r.coef_.shape == (P, H + 1, O)
    pred = r.predict(S)
    assert pred.shape == (P, N, O)
    for p in range(P):  # no least-squares solution fits better
        A = np.c_[S[p], np.ones(N)]
        best = A @ np.linalg.lstsq(A, Y, rcond=None)[0]
        assert np.sum((pred[p] - Y) ** 2) <= np.sum((best - Y) ** 2) * (1 + 1e-9) + 1e-12


def test_memory_guard_refuses_huge_full_covariance():
    with pytest.raises(ValueError, match="diagonal=True"):
        CMAES(np.zeros(40_000), diagonal=False)
    with pytest.raises(ValueError, match="max_memory_fraction"):
        CMAES(np.zeros(1000), diagonal=False, max_memory_fraction=1e-6)
    assert CMAES(np.zeros(40_000)).diagonal  # the default picks separable CMA-ES instead


def test_run_memory_is_checked_against_the_memory_available(monkeypatch):
    """The chunk budget shrinks to what the process may use (same fitness), and a run that cannot fit
    at all is refused with the estimate."""
    import evolino._resources as res
    from evolino.fitness import EvolinoFitness

    spec = LSTMSpec(1, 6)
    fitness = EvolinoFitness.from_data(spec, SINES, washout=100, validation=0.25, feedback=True, readout=Linear())
    genomes = spec.init(0, 12)
    reference = fitness(genomes)
    per = res.estimate_run_bytes(fitness, 1, spec.n_params)["kernel"]  # one candidate's activations
    monkeypatch.setattr(res, "available_memory", lambda: (int(3 * 3.5 * per) + 2**20, "test limit"))
    res.check_run_memory(fitness, 12, spec.n_params)
    assert fitness.chunk_size() < 12  # now evaluated in chunks ...
    np.testing.assert_array_equal(fitness(genomes), reference)  # ... with identical results
    monkeypatch.setattr(res, "available_memory", lambda: (10_000, "test limit"))
    with pytest.raises(EvolinoError, match=r"needs about .* MiB \(population chunk .*test limit.*fewer cells"):
        res.check_run_memory(fitness, 12, spec.n_params)

