import math

import numpy as np
import pytest
import torch

from spikede import FractionalLIF, fdeint
from spikede.solvers import weights as wts
from spikede.solvers.soe import compress
from spikede.special import diethelm_problem

from .reference import scheme_variants

F64 = torch.float64
ALPHAS = [0.1, 0.3, 0.5, 0.7, 0.9, 0.99]
EXACT = {
    "gl": wts.grunwald_letnikov,
    "l1": wts.l1_weights,
    "rect": wts.rectangle_weights,
    "trap": wts.trapezoid_weights,
}


def measured_error(soe, sequence, alpha, horizon):
    """Max relative error of the modes over every lag first_lag .. horizon, recomputed here."""
    exact = EXACT[sequence](alpha, horizon).numpy()
    worst = 0.0
    for start in range(soe.first_lag, horizon + 1, 50000):
        j = np.arange(start, min(start + 50000, horizon + 1), dtype=np.float64)
        approx = (soe.coefficients[None, :] * soe.rates[None, :] ** j[:, None]).sum(1)
        worst = max(worst, np.max(np.abs(approx / exact[start : start + len(j)] - 1.0)))
    return worst


@pytest.mark.slow
@pytest.mark.parametrize("alpha", ALPHAS)
def test_gl_compression_over_a_million_lags(alpha):
    soe = compress("gl", alpha, 10**6, 1e-8, 32)
    assert soe.n_modes <= 64
    error = measured_error(soe, "gl", alpha, 10**6)
    assert error <= 1e-8 and error == pytest.approx(soe.max_rel_error, rel=1e-3, abs=1e-13)


@pytest.mark.parametrize("sequence", ["l1", "rect", "trap"])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_other_sequences_compress(sequence, alpha):
    soe = compress(sequence, alpha, 2**17, 1e-8, 32)
    assert soe.n_modes <= 64
    assert measured_error(soe, sequence, alpha, 2**17) <= 1e-8


def test_alpha_one_is_exact():
    assert compress("gl", 1.0, 1000, 1e-8).n_modes == 0
    rect = compress("rect", 1.0, 1000, 1e-8)
    assert rect.rates.tolist() == [1.0] and rect.coefficients.tolist() == [1.0]


def relaxation(t, y):
    return -y


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7, 0.9])
def test_end_to_end_against_full_history(alpha):
    t = torch.linspace(0.0, 10.0, 10001, dtype=F64)
    func, _ = diethelm_problem(alpha)
    t1 = torch.linspace(0.0, 1.0, 10001, dtype=F64)
    cases = [(relaxation, torch.ones(1, dtype=F64), t, m) for m in ("gl", "l1", "pred", "trap")]
    cases.append((func, torch.zeros(1, dtype=F64), t1, "gl"))
    cases.append((func, torch.zeros(1, dtype=F64), t1, "trap"))
    for f, y0, grid, method in cases:
        full = fdeint(f, y0, grid, alpha, method=method)
        soe = fdeint(f, y0, grid, alpha, method=method, memory="soe")
        with torch.no_grad():  # the blocked kernel
            blocked = fdeint(f, y0, grid, alpha, method=method, memory="soe")
        assert (soe - full).abs().max() <= 10 * 1e-8 * full.abs().max(), (method, alpha)
        assert (blocked - soe).abs().max() <= 1e-12 * full.abs().max(), (method, alpha)


@pytest.mark.parametrize("method", sorted({m for m, _ in scheme_variants(soe=True)}))
@pytest.mark.parametrize("block", [1, 5, 64])
def test_blocked_soe_kernel_gives_the_sums_of_the_stepwise_kernel(method, block):
    from spikede.solvers.fdeint import Problem
    from spikede.solvers.memory import make_kernel
    from spikede.solvers.schemes import SCHEMES
    from spikede.solvers.soe import BlockedSOEKernel, SOEKernel

    steps = 700
    problem = Problem(func=None, y0=torch.zeros(3, dtype=F64), t=(), h=0.01, n_steps=steps, window=None,
                      corrector_iters=1, newton_tol=0.0, newton_max_iters=1)
    scheme = SCHEMES[method](problem, [0.4], [1.0], False)
    rows = torch.randn(steps, 3, dtype=F64, generator=torch.Generator().manual_seed(0)).cumsum(0)
    stepwise = make_kernel(scheme, steps, rows[0], "soe", soe_first_lag=8)
    with torch.no_grad():
        blocked = make_kernel(scheme, steps, rows[0], "soe", soe_first_lag=8, block=block)
    assert isinstance(stepwise, SOEKernel) and isinstance(blocked, BlockedSOEKernel)
    reads = []
    for n in range(1, steps):
        stepwise.append(rows[n - 1])
        blocked.append(rows[n - 1])
        if n == 333:
            snapshot = blocked.snapshot()
        a, b = stepwise.read(n), blocked.read(n)
        assert (a - b).abs().max() <= 1e-12 * a.abs().max(), n
        reads.append(b)
    blocked.restore(snapshot)  # replaying from a mid-block snapshot gives the same bits
    for n in range(333, steps):
        assert torch.equal(blocked.read(n), reads[n - 1])
        blocked.append(rows[n])


def test_blocked_soe_kernel_refuses_gradients():
    with torch.no_grad():
        y = fdeint(relaxation, torch.ones(2, dtype=F64), torch.linspace(0, 1, 50, dtype=F64), 0.5, memory="soe")
    from spikede.solvers.soe import BlockedSOEKernel

    kernel = BlockedSOEKernel(torch.ones(1, 8, dtype=F64), [[]], y[0], 10)
    with pytest.raises(RuntimeError, match="built with grad mode off"):
        kernel.append(torch.ones(2, dtype=F64, requires_grad=True))


def test_multi_term_and_implicit_with_soe():
    t = torch.linspace(0.0, 5.0, 2001, dtype=F64)
    y0 = torch.ones(3, dtype=F64)
    kw = dict(alpha=[0.9, 0.4], coefficients=[1.0, 0.5])
    full = fdeint(relaxation, y0, t, **kw)
    soe = fdeint(relaxation, y0, t, memory="soe", **kw)
    assert (soe - full).abs().max() <= 1e-7
    full = fdeint(lambda t, y: -50 * y, y0, t, 0.6, method="l1", implicit=True)
    soe = fdeint(lambda t, y: -50 * y, y0, t, 0.6, method="l1", implicit=True, memory="soe")
    assert (soe - full).abs().max() <= 1e-7


def test_float32():
    t = torch.linspace(0.0, 10.0, 5001, dtype=torch.float32)
    y32 = fdeint(relaxation, torch.ones(4), t, 0.6, memory="soe")
    y64 = fdeint(relaxation, torch.ones(4, dtype=F64), torch.linspace(0.0, 10.0, 5001, dtype=F64), 0.6)
    assert y32.dtype == torch.float32
    assert (y32.double() - y64).abs().max() < 2e-5


@pytest.mark.parametrize("method,implicit", scheme_variants(soe=True))
def test_gradients_through_soe_match_full(method, implicit):
    """The hand-written transposed sweep of the soe kernel against autograd through the full history."""
    torch.manual_seed(0)
    weight = torch.randn(4, 4, dtype=F64, requires_grad=True)
    y0 = torch.randn(4, dtype=F64, requires_grad=True)
    t = torch.linspace(0, 3, 301, dtype=F64)
    cotangent = torch.randn(301, 4, dtype=F64)

    def loss(memory):
        y = fdeint(lambda t, y: torch.tanh(weight @ y) - y, y0, t, 0.7, method=method, implicit=implicit,
                   memory=memory)
        return (y * cotangent).sum()

    g_full = torch.autograd.grad(loss(None), (weight, y0))
    l_soe = loss("soe")
    g_soe = torch.autograd.grad(l_soe, (weight, y0), retain_graph=True)
    g_again = torch.autograd.grad(l_soe, (weight, y0))  # a second pass over the same graph
    for a, b, c in zip(g_full, g_soe, g_again):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-9)
        assert torch.equal(b, c)


def test_neuron_gradients_through_soe_match_full():
    torch.manual_seed(0)
    x = torch.rand(200, 3, 6, dtype=F64)
    for method in ("gl", "l1"):
        grads = []
        for memory in (None, "soe"):
            torch.manual_seed(1)
            linear = torch.nn.Linear(6, 5).double()
            torch.nn.init.normal_(linear.weight, std=0.8)
            neuron = FractionalLIF(alpha=0.7, method=method, memory=memory, surrogate="gaussian",
                                   learn_tau=True, learn_threshold=True).double()
            spikes = neuron(linear(x))
            grads.append(torch.autograd.grad(spikes.sum(), [linear.weight, neuron.log_tau, neuron.threshold]))
        for a, b in zip(*grads):  # the soe history differs from the exact one by ~1e-10
            assert (a - b).abs().max() <= 1e-8 * a.abs().max(), method


def test_save_every_returns_a_subsampled_trajectory():
    t = torch.linspace(0, 1, 101, dtype=F64)
    full = fdeint(relaxation, torch.ones(2, dtype=F64), t, 0.5)
    every = fdeint(relaxation, torch.ones(2, dtype=F64), t, 0.5, save_every=30, memory="soe")
    assert every.shape == (5, 2)  # steps 0, 30, 60, 90 and the last, 100
    assert torch.allclose(every, full[[0, 30, 60, 90, 100]], rtol=0, atol=1e-9)


def test_neurons_with_soe_match_full_history():
    x = torch.rand(300, 4, 16, dtype=F64, generator=torch.Generator().manual_seed(1)) * 1.5
    full = FractionalLIF(alpha=0.6, record=True)
    soe = FractionalLIF(alpha=0.6, memory="soe", record=True)
    single = FractionalLIF(alpha=0.6, memory="soe", record=True, step_mode="single")
    s_full, s_soe = full(x), soe(x)
    s_single = torch.stack([single(xt) for xt in x.unbind(0)])
    assert torch.equal(s_full, s_soe) and torch.equal(s_soe, s_single)
    assert (full.membrane - soe.membrane).abs().max() < 1e-9


def test_soe_refuses_learnable_alpha():
    with pytest.raises(ValueError, match="fixed alpha"):
        FractionalLIF(memory="soe", learn_alpha=True)
    alpha = torch.tensor(0.5, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match="alpha requires grad"):
        fdeint(relaxation, torch.ones(1, dtype=F64), torch.linspace(0, 1, 50, dtype=F64), alpha, memory="soe")


def test_bad_soe_options():
    t = torch.linspace(0, 1, 50, dtype=F64)
    with pytest.raises(ValueError, match="soe_first_lag"):
        fdeint(relaxation, torch.ones(1, dtype=F64), t, 0.5, memory="soe", soe_first_lag=1)
    with pytest.raises(ValueError, match="memory must be"):
        fdeint(relaxation, torch.ones(1, dtype=F64), t, 0.5, memory="fast")
    assert math.isfinite(compress("gl", 0.5, 1000, 1e-8).max_rel_error)


def test_single_step_soe_neuron_started_without_grad_can_continue_with_grad():
    neuron = FractionalLIF(alpha=0.7, memory="soe", step_mode="single")
    x = torch.rand(40, 2, 3, dtype=F64) * 2
    with torch.no_grad():
        first = [neuron(xi) for xi in x[:20].unbind(0)]
    w = torch.ones((), dtype=F64, requires_grad=True)
    rest = [neuron(xi * w) for xi in x[20:].unbind(0)]
    torch.stack(rest).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad)
    neuron.reset()
    whole = FractionalLIF(alpha=0.7, memory="soe", step_mode="single")
    expected = [whole(xi) for xi in x.unbind(0)]
    assert all(torch.equal(a, b.detach()) for a, b in zip(expected, first + rest))
