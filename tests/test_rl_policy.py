"""LSTM policies: genome layout, lockstep stepping against the scalar reference, files."""

import json

import numpy as np
import pytest

from evolino.rl import Policy, PolicyBatch, PolicySpec
from reference import lstm_reference, sigmoid


def ref_outputs(spec, genome, X):
    """Outputs ``(T, O)`` of one policy on one observation sequence, from the equations."""
    n_lstm, H, O, I = spec.lstm.n_params, spec.n_cells, spec.n_outputs, spec.n_inputs
    k = spec.lstm.params_per_cell
    # the layout written out by hand: per cell, its LSTM block then its O outgoing weights
    lstm = np.concatenate([genome[j * (k + O): j * (k + O) + k] for j in range(H)])
    w_out = np.stack([genome[j * (k + O) + k: (j + 1) * (k + O)] for j in range(H)])  # (H, O)
    tail = genome[H * (k + O):]
    d = tail[: I * O].reshape(I, O) if spec.direct else np.zeros((I, O))
    b = tail[-O:]
    assert len(lstm) == n_lstm
    hs, _, _ = lstm_reference(spec.lstm, lstm, X)
    a = hs @ w_out + X @ d + b
    return {"tanh": np.tanh(a), "logistic": sigmoid(a), "argmax": np.argmax(a, axis=-1)}[spec.head]


@pytest.mark.parametrize("head,direct", [("tanh", False), ("logistic", True), ("argmax", True)])
def test_lockstep_matches_reference(head, direct):
    spec = PolicySpec(3, 4, n_outputs=2 if head != "tanh" else 1, head=head, direct=direct)
    rng = np.random.default_rng(0)
    genomes = spec.init(rng, 5, scale=2.0)
    X = rng.normal(size=(5, 2, 7, 3))  # (P, B, T, I): each policy its own observations
    batch = PolicyBatch(spec, genomes)
    state = batch.initial_state(2)
    outs = []
    for t in range(7):
        state, y = batch.act(state, X[:, :, t])
        outs.append(y)
    got = np.stack(outs, axis=2)  # (P, B, T[, O])
    for p in range(5):
        for b in range(2):
            want = ref_outputs(spec, genomes[p], X[p, b])
            if head == "argmax":
                np.testing.assert_array_equal(got[p, b], want)
            else:
                np.testing.assert_allclose(got[p, b], want, rtol=1e-10, atol=1e-12)


def test_units_partition_genome_cell_by_cell():
    spec = PolicySpec(3, 4, n_outputs=2, direct=True)
    units = spec.units
    assert len(units) == 5
    covered = np.concatenate([np.arange(u.start, u.stop) for u in units])
    np.testing.assert_array_equal(covered, np.arange(spec.n_params))
    assert spec.n_params == 4 * (spec.lstm.params_per_cell + 2) + 3 * 2 + 2
    # a cell's unit holds exactly that cell's LSTM block and its outgoing weights
    g = np.zeros((1, spec.n_params))
    g[0, units[2]] = 1.0
    lstm, w_out, d, b = spec.split(g)
    assert np.all(lstm[0, spec.lstm.cell_slices[2]] == 1) and lstm.sum() == spec.lstm.params_per_cell
    assert np.all(w_out[0, 2] == 1) and w_out.sum() == 2 and d.sum() == 0 and b.sum() == 0


def test_join_split_round_trip():
    spec = PolicySpec(2, 3, n_outputs=2, direct=True)
    g = spec.init(1, 4)
    lstm, w_out, d, b = spec.split(g)
    np.testing.assert_array_equal(spec.join(lstm, w_out, np.concatenate([d.reshape(4, -1), b], 1)), g)


def test_take_selects_policies():
    spec = PolicySpec(2, 3)
    g = spec.init(2, 6)
    X = np.random.default_rng(3).normal(size=(1, 2))
    full = PolicyBatch(spec, g)
    _, y = full.act(full.initial_state(1), np.repeat(X[None], 6, 0))
    sub = full.take(np.array([4, 1]))
    _, ys = sub.act(sub.initial_state(1), np.repeat(X[None], 2, 0))
    np.testing.assert_allclose(ys, y[[4, 1]])


def test_policy_act_keeps_memory_and_save_load(tmp_path):
    spec = PolicySpec(3, 2, n_outputs=3, head="argmax")
    pol = Policy(spec, spec.init(5, 1)[0], info={"env": "test"})
    X = np.random.default_rng(4).normal(size=(6, 3))
    acts = [pol.act(x) for x in X]
    np.testing.assert_array_equal(acts, ref_outputs(spec, pol.genome, X))
    path = tmp_path / "champ.npz"
    pol.save(path)
    back = Policy.load(path)
    assert back.spec == spec and back.info == {"env": "test"}
    np.testing.assert_array_equal(back.genome, pol.genome)
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["metadata"]))["format"] == "evolino.rl.Policy"


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="head"):
        PolicySpec(3, 2, head="softmax")
    with pytest.raises(ValueError, match="n_outputs"):
        PolicySpec(3, 2, n_outputs=1, head="argmax")
    with pytest.raises(TypeError, match="n_cells"):
        PolicySpec(3, 2.5)
    spec = PolicySpec(3, 2)
    with pytest.raises(ValueError, match="genomes"):
        PolicyBatch(spec, np.zeros((2, spec.n_params + 1)))
    g = spec.init(0, 2)
    g[1, -1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PolicyBatch(spec, g)
    with pytest.raises(ValueError, match="genome"):
        Policy(spec, np.zeros(3))
    pol = Policy(spec, spec.init(0, 1)[0])
    with pytest.raises(ValueError, match="obs"):
        pol.act(np.zeros(4))
    bad = tmp_path / "bad.npz"
    np.savez(bad, genome=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved"):
        Policy.load(bad)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a saved"):
        Policy.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        Policy.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("head,direct,peepholes,forget", [("tanh", False, True, True), ("logistic", True, False, True),
                                                          ("argmax", True, True, False)])
def test_scalar_policy_continues_a_batch_row(head, direct, peepholes, forget):
    spec = PolicySpec(3, 3, n_outputs=1 if head == "tanh" else 3, head=head, direct=direct, peepholes=peepholes,
                      forget_gate=forget)
    g = spec.init(0, 2, scale=2.0)
    X = np.random.default_rng(1).normal(size=(12, 3))
    batch = PolicyBatch(spec, g)
    state = batch.initial_state(1)
    for t in range(12):
        if t == 4:
            sp = batch.scalar(1, state)
        state, y = batch.act(state, np.repeat(X[t][None, None], 2, 0))
        if t >= 4:
            ys = sp.act(X[t].tolist())
            if head == "argmax":
                assert ys == y[1, 0]
            else:
                np.testing.assert_allclose(ys, y[1, 0], rtol=1e-12, atol=1e-14)
