"""Genome encodings: DCT decoding against scipy's inverse DCT, exact round trips, gains, resume, bad input."""

import numpy as np
import pytest
import scipy.fft

from evolino import Evolino, LSTMSpec
from evolino.genome import DCT, Direct, EncodedFitness, Gains, dct_matrix, make_encoding
from evolino.search import make_strategy
from evolino.tasks import MackeyGlassTask

SPEC = LSTMSpec(2, 6)


def test_dct_matrix_is_scipys_orthonormal_dct():
    x = np.random.default_rng(0).standard_normal(9)
    assert np.allclose(dct_matrix(9) @ x, scipy.fft.dct(x, norm="ortho"), atol=1e-13)
    assert np.allclose(dct_matrix(9) @ dct_matrix(9).T, np.eye(9), atol=1e-13)


def test_dct_decoding_equals_scipys_inverse_dct_of_the_kept_coefficients():
    k = 5
    enc = DCT(SPEC, k)
    rng = np.random.default_rng(1)
    genes = rng.standard_normal((3, enc.n_params))
    got = SPEC.unpack(enc.decode(genes))
    fan = SPEC.n_inputs + SPEC.n_cells + 1
    start = 0
    for key, shape in enc._matrices():
        m, n = (shape[0], 1) if len(shape) == 1 else shape
        # the k lowest frequencies, by anti-diagonal then row, written out independently
        pairs = sorted(((a, b) for a in range(m) for b in range(n)), key=lambda p: (p[0] + p[1], p[0]))[:k]
        scale = np.sqrt(m * n / len(pairs)) / np.sqrt(3.0 * fan)
        for p in range(3):
            Q = np.zeros((m, n))
            for j, (a, b) in enumerate(pairs):
                Q[a, b] = genes[p, start + j] * scale
            expected = scipy.fft.idctn(Q, norm="ortho").reshape(shape)
            np.testing.assert_allclose(got[key][p], expected, atol=1e-12)
        start += len(pairs)
    assert start == enc.n_params


def test_all_coefficients_reproduce_the_direct_weights_exactly():
    g = SPEC.init(2, 4, gates="reservoir")
    enc = DCT(SPEC, "all")
    assert enc.n_params == SPEC.n_params
    np.testing.assert_allclose(enc.decode(enc.encode(g)), g, atol=1e-12)
    based = DCT(SPEC, "all", base=g[0])
    np.testing.assert_allclose(based.decode(based.encode(g)), g, atol=1e-12)


def test_few_coefficients_give_smooth_low_rank_matrices_and_zero_genes_the_base():
    base = SPEC.init(3)[0]
    enc = DCT(SPEC, 3, base=base)
    np.testing.assert_array_equal(enc.decode(np.zeros(enc.n_params)), base)
    delta = SPEC.unpack(enc.decode(np.ones(enc.n_params)) - base)
    assert np.linalg.matrix_rank(delta["R_z"]) <= 2  # pairs (0,0), (0,1), (1,0)


def test_gains_scale_and_shift_each_unit():
    base = SPEC.init(4)[0]
    w0 = SPEC.unpack(base)
    enc = Gains(SPEC, base)
    assert enc.n_params == 3 * SPEC.n_units
    genes = np.zeros(enc.n_params)
    genes[3 * 1 + 0] = np.log(2.0)  # unit i: input gain 2
    genes[3 * 2 + 1] = np.log(0.5)  # unit f: recurrent gain 0.5
    genes[3 * 3 + 2] = 0.7  # unit o: bias + 0.7
    w = SPEC.unpack(enc.decode(genes))
    np.testing.assert_allclose(w["W_i"], 2 * w0["W_i"])
    np.testing.assert_allclose(w["R_f"], 0.5 * w0["R_f"])
    np.testing.assert_allclose(w["b_o"], w0["b_o"] + 0.7)
    for key in ("W_z", "R_z", "b_z", "R_i", "W_f", "p_i", "p_o"):
        np.testing.assert_array_equal(w[key], w0[key])
    per = Gains(SPEC, base, per_cell=True)
    genes = np.zeros(per.n_params)
    genes[per.cell_slices[4]] = 0.3  # everything of cell 4 only
    w = SPEC.unpack(per.decode(genes))
    np.testing.assert_allclose(w["W_z"][4], np.exp(0.3) * w0["W_z"][4])
    np.testing.assert_array_equal(np.delete(w["W_z"], 4, axis=0), np.delete(w0["W_z"], 4, axis=0))


def test_encoded_fitness_decodes_chunk_by_chunk():
    enc = DCT(SPEC, 4)
    seen = []

    def fitness(genomes):
        seen.append(len(genomes))
        return genomes.sum(axis=1)

    fitness.chunk_size = lambda: 2
    genes = np.random.default_rng(5).standard_normal((5, enc.n_params))
    got = EncodedFitness(fitness, enc)(genes)
    np.testing.assert_allclose(got, enc.decode(genes).sum(axis=1))
    assert seen == [2, 2, 1]


@pytest.mark.parametrize("search", ["esp", "cmaes"])
def test_an_encoding_drives_the_strategy_factory(search):
    enc = DCT(SPEC, 4, base=SPEC.init(6)[0])
    s = make_strategy(search, enc, popsize=8, seed=1, **({"trials": 2} if search == "esp" else {}))
    assert s.ask().shape == (8, enc.n_params)


def _train(encoding, tmp_path=None, resume=False, generations=3, **options):
    Y = MackeyGlassTask(train=300).train_series
    tr = Evolino(8, search="cmaes", popsize=6, max_generations=generations, washout=50, input_scale=1.0,
                 init_scale=1.0, gates="lstm", encoding=encoding, encoding_options=options or None, seed=3,
                 checkpoint=None if tmp_path is None else tmp_path / "ck.npz", checkpoint_every=1)
    return tr, tr.fit(Y, resume=resume)


@pytest.mark.parametrize("encoding,options", [("dct", {"coefficients": 3}), ("gains", {})])
def test_training_with_an_encoding_resumes_bit_identically(tmp_path, encoding, options):
    full, net = _train(encoding, **options)
    assert full.encoding_.n_params < SPEC.n_params
    # the base network (the best of a population of random ones) and lags="auto"'s probes: one zero network per
    # order, then four random networks without and with the best order; noise="auto"'s four per level
    zero_probes = sum(r["network"] == "zero" for r in full.lag_table_)
    assert full.chosen_["scale_evaluations"] == 6 + zero_probes + 2 * 4 + 4 * len(full.noise_table_)
    _train(encoding, tmp_path, generations=2, **options)
    resumed, net2 = _train(encoding, tmp_path, resume=True, **options)
    assert resumed.history_["best"] == full.history_["best"]
    np.testing.assert_array_equal(net2.genome, net.genome)
    # the network is the decoded best genes
    np.testing.assert_array_equal(net.genome, full.encoding_.decode(full.result_.best_genome))


def test_direct_encoding_is_the_identity():
    g = SPEC.init(7, 2)
    enc = make_encoding("direct", SPEC)
    assert isinstance(enc, Direct) and enc.cell_slices == SPEC.cell_slices
    np.testing.assert_array_equal(enc.decode(g), g)


@pytest.mark.parametrize("call,match", [
    (lambda: DCT(SPEC, 0), "coefficients"),
    (lambda: DCT(SPEC, 10**6), "more than the weights"),
    (lambda: DCT(SPEC, "some"), "coefficients"),
    (lambda: Gains(SPEC, None), "base"),
    (lambda: DCT(SPEC, 3, base=np.zeros(5)), "base must be one genome"),
    (lambda: DCT(SPEC, 3).decode(np.zeros(4)), "genes must have"),
    (lambda: make_encoding("wavelet", SPEC), "encoding must be one of"),
    (lambda: Evolino(encoding="wavelet").fit(np.sin(np.arange(300.0))), "encoding must be one of"),
    (lambda: Evolino(encoding_options={"coefficients": 3}).fit(np.sin(np.arange(300.0))), "encoding_options"),
])
def test_bad_encodings_get_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
