import numpy as np
import pytest

from evolino import lstm
from evolino.bptt import BPTTTrainer, forward, loss_and_grad, teacher_forcing
from evolino.bptt.trainer import _Adam, _clip, _SGD
from evolino.lstm import LSTMSpec, LSTMState
from reference import lstm_reference

OPTIONS = [(p, f) for p in (True, False) for f in (True, False)]
I, H, O = 2, 3, 2


def make_problem(peepholes, forget_gate, B=3, T=9, seed=0):
    rng = np.random.default_rng(seed)
    spec = LSTMSpec(I, H, peepholes=peepholes, forget_gate=forget_gate)
    # weights of order 1 so that no gate saturates and every parameter group matters
    genome = rng.normal(0, 0.6, spec.n_params)
    coef = rng.normal(0, 1.0, (H + 1, O))
    X = rng.normal(size=(B, T, I))
    Y = rng.normal(size=(B, T, O))
    return spec, genome, coef, X, Y


def ref_sse(spec, genome, coef, x, y, start=0, h=None, c=None):
    """Squared error of one sequence from step ``start`` on, from the naive reference LSTM."""
    cells, h_end, c_end = lstm_reference(spec, genome, x, h, c)
    out = cells @ coef[:-1] + coef[-1]
    return float(np.sum((out[start:] - y[start:]) ** 2)), h_end, c_end


def ref_loss(spec, genome, coef, X, Y, washout):
    B, T, _ = X.shape
    return sum(ref_sse(spec, genome, coef, X[b], Y[b], washout)[0] for b in range(B)) / (B * (T - washout) * O)


def central_differences(fun, genome, coef, eps=1e-6):
    """Gradient of ``fun(genome, coef)`` by central differences, parameter by parameter."""
    dg = np.empty_like(genome)
    for k in range(genome.size):
        e = np.zeros_like(genome)
        e[k] = eps
        dg[k] = (fun(genome + e, coef) - fun(genome - e, coef)) / (2 * eps)
    dc = np.empty_like(coef)
    for k in np.ndindex(coef.shape):
        e = np.zeros_like(coef)
        e[k] = eps
        dc[k] = (fun(genome, coef + e) - fun(genome, coef - e)) / (2 * eps)
    return dg, dc


def assert_groups_close(spec, dg, dc, fd_g, fd_c, tol=1e-6):
    """Relative error below ``tol`` for every parameter group (W, R, b of each unit, peepholes, readout)."""
    analytic, numeric = spec.unpack(dg), spec.unpack(fd_g)
    groups = {k: (analytic[k], numeric[k]) for k in numeric}
    groups["coef weights"] = (dc[:-1], fd_c[:-1])
    groups["coef bias"] = (dc[-1], fd_c[-1])
    expected = 3 * spec.n_units + spec.n_peepholes + 2
    assert len(groups) == expected
    for name, (a, n) in groups.items():
        scale = np.linalg.norm(n)
        assert scale > 1e-6, f"{name}: gradient vanishes, the check would be empty"
        err = np.linalg.norm(a - n) / scale
        assert err < tol, f"{name}: relative error {err:.2e}"


# --- forward -------------------------------------------------------------------------
@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
def test_forward_matches_kernel_and_reference(peepholes, forget_gate):
    spec, genome, coef, X, _ = make_problem(peepholes, forget_gate)
    cells, out = forward(spec, genome, coef, X)
    np.testing.assert_allclose(cells, lstm.forward(spec, genome, X), atol=1e-13, rtol=0)
    for b in range(X.shape[0]):
        ref, _, _ = lstm_reference(spec, genome, X[b])
        np.testing.assert_allclose(cells[b], ref, atol=1e-13, rtol=0)
    np.testing.assert_allclose(out, np.einsum("bth,ho->bto", cells, coef[:-1]) + coef[-1], atol=1e-13)


def test_forward_single_sequence_and_state_continuation():
    spec, genome, coef, X, _ = make_problem(True, True, B=2, T=20)
    cells, out = forward(spec, genome, coef, X[0])
    assert cells.shape == (20, H) and out.shape == (20, O)
    whole_c, whole_y = forward(spec, genome, coef, X)
    c1, y1, state = forward(spec, genome, coef, X[:, :7], return_state=True)
    assert isinstance(state, LSTMState) and state.h.shape == (2, H)
    c2, y2 = forward(spec, genome, coef, X[:, 7:], state=state)
    np.testing.assert_allclose(np.concatenate([c1, c2], 1), whole_c, atol=1e-14)
    np.testing.assert_allclose(np.concatenate([y1, y2], 1), whole_y, atol=1e-14)


def test_float32_runs_in_float32_and_agrees_with_float64():
    spec, genome, coef, X, Y = make_problem(True, True)
    spec32 = LSTMSpec(I, H, dtype=np.float32)
    cells, out = forward(spec32, genome, coef, X)
    assert cells.dtype == np.float32 and out.dtype == np.float32
    loss32, dg32, dc32 = loss_and_grad(spec32, genome, coef, X, Y, 2)
    loss64, dg64, dc64 = loss_and_grad(spec, genome, coef, X, Y, 2)
    assert dg32.dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    np.testing.assert_allclose(dg32, dg64, rtol=0, atol=1e-4 * np.abs(dg64).max())


# --- gradients -----------------------------------------------------------------------
@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
def test_gradient_matches_finite_differences(peepholes, forget_gate):
    spec, genome, coef, X, Y = make_problem(peepholes, forget_gate)
    washout = 2
    loss, dg, dc = loss_and_grad(spec, genome, coef, X, Y, washout)
    assert dg.shape == (spec.n_params,) and dc.shape == (H + 1, O)
    np.testing.assert_allclose(loss, ref_loss(spec, genome, coef, X, Y, washout), rtol=1e-13)
    fd_g, fd_c = central_differences(lambda g, c: ref_loss(spec, g, c, X, Y, washout), genome, coef)
    assert_groups_close(spec, dg, dc, fd_g, fd_c)


def test_gradient_matches_torch_autograd():
    """nn.LSTM is our cell without peepholes (gate order i, f, g, o; two bias vectors)."""
    torch = pytest.importorskip("torch")
    spec, genome, coef, X, Y = make_problem(False, True, B=4, T=15)
    w = spec.unpack(genome)
    order = ("i", "f", "z", "o")
    net = torch.nn.LSTM(I, H, batch_first=True).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.tensor(np.concatenate([w[f"W_{u}"] for u in order])))
        net.weight_hh_l0.copy_(torch.tensor(np.concatenate([w[f"R_{u}"] for u in order])))
        net.bias_ih_l0.copy_(torch.tensor(np.concatenate([w[f"b_{u}"] for u in order])))
        net.bias_hh_l0.zero_()
    W_out = torch.tensor(coef, requires_grad=True)
    out, _ = net(torch.tensor(X))
    y = out @ W_out[:-1] + W_out[-1]
    t_loss = torch.mean((y[:, 3:] - torch.tensor(Y[:, 3:])) ** 2)
    t_loss.backward()
    grads = {}
    for key, p in (("W", net.weight_ih_l0), ("R", net.weight_hh_l0), ("b", net.bias_ih_l0)):
        for u, part in zip(order, np.split(p.grad.numpy(), 4)):
            grads[f"{key}_{u}"] = part
    loss, dg, dc = loss_and_grad(spec, genome, coef, X, Y, 3)
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-13)
    np.testing.assert_allclose(dg, spec.pack(grads), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dc, W_out.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_gradient_from_a_given_state():
    spec, genome, coef, X, Y = make_problem(True, True, B=2, T=6)
    rng = np.random.default_rng(5)
    h0, c0 = rng.normal(0, 0.5, (2, 2, H))
    loss, dg, dc = loss_and_grad(spec, genome, coef, X, Y, 1, state=LSTMState(h0, c0))

    def fun(g, c):
        return sum(ref_sse(spec, g, c, X[b], Y[b], 1, h0[b], c0[b])[0] for b in range(2)) / (2 * 5 * O)

    np.testing.assert_allclose(loss, fun(genome, coef), rtol=1e-13)
    assert_groups_close(spec, dg, dc, *central_differences(fun, genome, coef))


@pytest.mark.parametrize("peepholes,forget_gate", OPTIONS)
@pytest.mark.parametrize("washout,k", [(2, 4), (5, 4), (0, 3)])
def test_truncated_gradient_is_that_of_the_truncated_objective(peepholes, forget_gate, washout, k):
    spec, genome, coef, X, Y = make_problem(peepholes, forget_gate, T=11)
    B, T, _ = X.shape
    # States at the chunk boundaries, from the unperturbed weights: constants of the truncated objective.
    starts = list(range(0, T, k))
    boundary = []
    for b in range(B):
        h = c = None
        row = []
        for s in starts:
            row.append((h, c))
            _, h, c = lstm_reference(spec, genome, X[b, s : s + k], h, c)
        boundary.append(row)

    def truncated(g, c):
        total = 0.0
        for b in range(B):
            for j, s in enumerate(starts):
                h0, c0 = boundary[b][j]
                total += ref_sse(spec, g, c, X[b, s : s + k], Y[b, s : s + k], max(0, washout - s), h0, c0)[0]
        return total / (B * (T - washout) * O)

    loss, dg, dc = loss_and_grad(spec, genome, coef, X, Y, washout, truncate=k)
    full_loss, full_g, _ = loss_and_grad(spec, genome, coef, X, Y, washout)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-13)  # truncation changes the gradient, not the loss
    fd_g, fd_c = central_differences(truncated, genome, coef)
    assert_groups_close(spec, dg, dc, fd_g, fd_c)
    # and truncation does bite: the full gradient is different
    assert np.linalg.norm(dg - full_g) > 1e-3 * np.linalg.norm(full_g)


def test_truncate_at_least_T_is_full_bptt():
    spec, genome, coef, X, Y = make_problem(True, True)
    full = loss_and_grad(spec, genome, coef, X, Y, 2)
    for k in (9, 50):
        trunc = loss_and_grad(spec, genome, coef, X, Y, 2, truncate=k)
        for a, b in zip(full, trunc):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)


# --- optimizers ----------------------------------------------------------------------
def test_adam_and_sgd_steps_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=6)
    grads = rng.normal(size=(5, 6))
    for ours, make_theirs in [
        (_Adam(6, np.float64, 0.01, (0.8, 0.99)),
         lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.99), eps=1e-8)),
        (_SGD(6, np.float64, 0.1, 0.7), lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.7)),
    ]:
        x = x0.copy()
        p = torch.tensor(x0.copy(), requires_grad=True)
        theirs = make_theirs(p)
        for g in grads:
            ours.step(x, g.copy())
            p.grad = torch.tensor(g)
            theirs.step()
        np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-12)


def test_clip_scales_to_the_norm_and_leaves_small_gradients():
    g = np.array([3.0, 4.0])
    assert _clip(g, 1.0) == 5.0
    np.testing.assert_allclose(g, [0.6, 0.8])
    g = np.array([0.3, 0.4])
    _clip(g, 1.0)
    np.testing.assert_array_equal(g, [0.3, 0.4])


def sine_task(B=4, T=40, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T + 1)
    phase = rng.uniform(0, 2 * np.pi, (B, 1))
    series = np.sin(0.3 * t + phase)[..., None]  # (B, T+1, 1)
    return series[:, :-1], series[:, 1:]  # next-step prediction


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.03), ("sgd", 0.2)])
def test_short_run_lowers_the_loss(optimizer, lr):
    X, Y = sine_task()
    spec = LSTMSpec(1, 4)
    rng = np.random.default_rng(1)
    g0 = spec.init(rng)[0]
    c0 = rng.uniform(-0.5, 0.5, (5, 1))
    tr = BPTTTrainer(spec, optimizer=optimizer, lr=lr, epochs=40, batch_size=2, washout=5, patience=None, seed=0)
    tr.fit(Y, X=X, init_genome=g0, init_coef=c0)
    before = _kernel_mse(spec, g0, c0, X, Y, 5)
    after = _kernel_mse(spec, tr.genome_, tr.coef_, X, Y, 5)
    assert after < 0.2 * before, (before, after)
    assert len(tr.history_["train_loss"]) == 40 and tr.stop_reason_ == "epochs"


def _kernel_mse(spec, genome, coef, X, Y, washout):
    cells = lstm.forward(spec, genome, X)
    out = cells @ coef[:-1] + coef[-1]
    return float(np.mean((out[:, washout:] - Y[:, washout:]) ** 2))


def test_one_full_batch_sgd_epoch_is_one_gradient_step():
    X, Y = sine_task(B=3, T=12)
    spec = LSTMSpec(1, 3)
    g0 = spec.init(2)[0]
    c0 = np.full((4, 1), 0.1)
    tr = BPTTTrainer(spec, optimizer="sgd", lr=0.5, momentum=0.0, clip=None, epochs=1, batch_size=None, washout=2)
    tr.fit(Y, X=X, init_genome=g0, init_coef=c0)
    _, dg, dc = loss_and_grad(spec, g0, c0, X, Y, 2)
    np.testing.assert_allclose(tr.genome_, g0 - 0.5 * dg, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tr.coef_, c0 - 0.5 * dc, rtol=1e-12, atol=1e-15)


def test_truncated_training_steps_once_per_chunk_carrying_the_state():
    X, Y = sine_task(B=2, T=10)
    spec = LSTMSpec(1, 3, peepholes=False)
    g, c = spec.init(3)[0], np.full((4, 1), 0.2)
    tr = BPTTTrainer(spec, optimizer="sgd", lr=0.3, momentum=0.0, clip=None, epochs=1, batch_size=None,
                     truncate=4, washout=5)
    tr.fit(Y, X=X, init_genome=g, init_coef=c)
    # chunk [0, 4) lies in the washout: no step; [4, 8) and [8, 10) one step each
    _, state = lstm.forward(spec, g, X[:, :4], return_state=True)
    state = LSTMState(state.h[0], state.c[0])
    _, dg, dc = loss_and_grad(spec, g, c, X[:, 4:8], Y[:, 4:8], 1, state=state)
    _, state = lstm.forward(spec, g, X[:, :8], return_state=True)  # the forward pass used the old weights
    g1, c1 = g - 0.3 * dg, c - 0.3 * dc
    _, dg, dc = loss_and_grad(spec, g1, c1, X[:, 8:], Y[:, 8:], 0, state=LSTMState(state.h[0], state.c[0]))
    np.testing.assert_allclose(tr.genome_, g1 - 0.3 * dg, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tr.coef_, c1 - 0.3 * dc, rtol=1e-12, atol=1e-15)


def test_early_stopping_keeps_the_best_validation_weights():
    X, Y = sine_task(B=6, T=30)
    tr = BPTTTrainer(3, lr=0.05, epochs=200, batch_size=2, washout=3, patience=2, seed=4)
    tr.fit(Y[:4], X=X[:4], X_val=X[4:], Y_val=Y[4:])
    val = np.array(tr.history_["val_loss"])
    assert tr.stop_reason_ == "patience" and len(val) < 200
    assert tr.best_epoch_ == int(np.argmin(val)) + 1 and len(val) == tr.best_epoch_ + 2
    kept = _kernel_mse(tr.spec_, tr.genome_, tr.coef_, X[4:], Y[4:], 3)
    np.testing.assert_allclose(kept, val.min(), rtol=1e-12)
    assert np.all(np.diff(tr.history_["time"]) >= 0)


def test_diverging_run_warns_and_keeps_the_best_weights():
    X, Y = sine_task(B=2, T=15)
    spec = LSTMSpec(1, 3)
    g0, c0 = spec.init(0)[0], np.zeros((4, 1))
    tr = BPTTTrainer(spec, optimizer="sgd", lr=1e200, clip=None, epochs=5, batch_size=1, seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr.fit(Y, X=X, init_genome=g0, init_coef=c0)
    assert tr.stop_reason_ == "diverged" and tr.best_epoch_ == 0
    np.testing.assert_array_equal(tr.genome_, g0)
    np.testing.assert_array_equal(tr.coef_, c0)


def test_seeded_runs_repeat_exactly():
    X, Y = sine_task(B=4, T=20)
    kw = dict(epochs=3, batch_size=2, washout=2, truncate=7)
    a = BPTTTrainer(3, seed=7, **kw).fit(Y, X=X)
    b = BPTTTrainer(3, seed=7, **kw).fit(Y, X=X)
    c = BPTTTrainer(3, seed=8, **kw).fit(Y, X=X)
    np.testing.assert_array_equal(a.genome_, b.genome_)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.history_["train_loss"] == b.history_["train_loss"]
    assert not np.array_equal(a.genome_, c.genome_)


def test_callback_stops_and_predict_matches_forward():
    X, Y = sine_task(B=2, T=20)
    seen = []
    tr = BPTTTrainer(3, epochs=10, callbacks=[lambda s: seen.append(s) or s["epoch"] == 3], seed=0).fit(Y, X=X)
    assert tr.stop_reason_ == "callback" and [s["epoch"] for s in seen] == [1, 2, 3]
    assert set(seen[0]) >= {"epoch", "train_loss", "val_loss", "best_loss", "elapsed"}
    np.testing.assert_allclose(tr.predict(X), _kernel_out(tr, X), atol=1e-13)
    assert tr.predict(X[0]).shape == (20, 1)


def _kernel_out(tr, X):
    return lstm.forward(tr.spec_, tr.genome_, X) @ tr.coef_[:-1] + tr.coef_[-1]


# --- teacher forcing and the model object ----------------------------------------------
def test_teacher_forcing_shifts_targets_into_inputs():
    Y = np.arange(12.0).reshape(2, 3, 2)
    X_ext = -np.ones((2, 3, 1))
    inputs, targets = teacher_forcing(Y)
    np.testing.assert_array_equal(targets, Y)
    np.testing.assert_array_equal(inputs[:, 0], 0.0)
    np.testing.assert_array_equal(inputs[:, 1:], Y[:, :-1])
    inputs, _ = teacher_forcing(Y, X_ext)
    assert inputs.shape == (2, 3, 3)
    np.testing.assert_array_equal(inputs[..., :1], X_ext)
    np.testing.assert_array_equal(inputs[:, 1:, 1:], Y[:, :-1])
    with pytest.raises(ValueError, match="X"):
        teacher_forcing(Y, X_ext[:, :2])


def test_to_network_predicts_like_the_trainer():
    model = pytest.importorskip("evolino.model")
    t = np.arange(60.0)
    Y = np.sin(0.3 * t)[:, None]
    inputs, targets = teacher_forcing(Y)
    tr = BPTTTrainer(3, epochs=3, washout=5, seed=0).fit(targets, X=inputs)
    net = tr.to_network(feedback=True)
    assert isinstance(net, model.EvolinoNetwork)
    np.testing.assert_allclose(net.predict(Y=Y), tr.predict(inputs), atol=1e-12)
    from evolino.sequences import teacher_inputs

    np.testing.assert_array_equal(inputs, teacher_inputs(Y[None])[0])
    with pytest.raises(ValueError, match="not fitted"):
        BPTTTrainer(3).to_network()


# --- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(lr=0.0), "lr"), (dict(lr=-1e-3), "lr"), (dict(clip=0.0), "clip"), (dict(clip=-1.0), "clip"),
        (dict(optimizer="adamw"), "optimizer"), (dict(momentum=1.0), "momentum"), (dict(truncate=0), "truncate"),
        (dict(batch_size=0), "batch_size"), (dict(epochs=0), "epochs"), (dict(washout=-1), "washout"),
        (dict(patience=0), "patience"), (dict(betas=(0.9, 1.0)), "betas"), (dict(n_outputs=0), "n_outputs"),
        (dict(washout=20), "washout"),
    ],
)
def test_bad_options_raise_naming_the_argument(kw, name):
    X, Y = sine_task(B=2, T=20)
    with pytest.raises(ValueError, match=name):
        BPTTTrainer(3, **kw).fit(Y, X=X)


def test_bad_types_raise_type_error():
    X, Y = sine_task(B=2, T=20)
    with pytest.raises(TypeError, match="spec_or_n_cells"):
        BPTTTrainer("ten").fit(Y, X=X)
    with pytest.raises(TypeError, match="lr"):
        BPTTTrainer(3, lr="fast").fit(Y, X=X)
    with pytest.raises(TypeError, match="callbacks"):
        BPTTTrainer(3, callbacks=print).fit(Y, X=X)


def test_bad_data_raise_naming_the_argument():
    X, Y = sine_task(B=3, T=20)
    tr = BPTTTrainer(LSTMSpec(1, 3), epochs=1)
    cases = [
        ((X[:2], Y), "Y"),  # different numbers of sequences
        ((X[:, :10], Y), "Y"),  # different lengths
        ((X, np.concatenate([Y, Y], -1)), "n_outputs"),
        ((np.concatenate([X, X], -1), Y), "n_inputs"),
        ((X[0], Y), "X"),  # 2-D X with 3-D Y
    ]
    for (Xc, Yc), name in cases:
        with pytest.raises(ValueError, match=name):
            tr.fit(Yc, X=Xc)
    with pytest.raises(TypeError, match=r"fit\(Y, X=X\)"):
        tr.fit(X, Y)  # scikit-learn's order is refused, never silently swapped
    Xn = X.copy()
    Xn[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        tr.fit(Y, X=Xn)
    with pytest.raises(ValueError, match="Y_val contains NaN"):
        tr.fit(Y, X=X, X_val=X[:1], Y_val=np.full_like(Y[:1], np.nan))
    with pytest.raises(ValueError, match="X_val and Y_val"):
        tr.fit(Y, X=X, X_val=X[:1])
    with pytest.raises(ValueError, match="X_val"):
        tr.fit(Y, X=X, X_val=X[:1, :, :0], Y_val=Y[:1])
    with pytest.raises(ValueError, match="init_genome"):
        tr.fit(Y, X=X, init_genome=np.zeros(5))
    with pytest.raises(ValueError, match="init_coef"):
        tr.fit(Y, X=X, init_coef=np.zeros((4, 2)))


def test_loss_and_grad_rejects_bad_arguments():
    spec, genome, coef, X, Y = make_problem(True, True)
    with pytest.raises(ValueError, match="genome"):
        loss_and_grad(spec, genome[:-1], coef, X, Y)
    with pytest.raises(ValueError, match="genome"):
        loss_and_grad(spec, np.full_like(genome, np.nan), coef, X, Y)
    with pytest.raises(ValueError, match="coef"):
        loss_and_grad(spec, genome, coef[:-1], X, Y)
    with pytest.raises(ValueError, match="Y"):
        loss_and_grad(spec, genome, coef, X, Y[..., :1])
    with pytest.raises(ValueError, match="washout"):
        loss_and_grad(spec, genome, coef, X, Y, washout=9)
    with pytest.raises(ValueError, match="state"):
        loss_and_grad(spec, genome, coef, X, Y, state=LSTMState(np.zeros((1, H)), np.zeros((1, H))))
    with pytest.raises(TypeError, match="spec"):
        loss_and_grad("spec", genome, coef, X, Y)
