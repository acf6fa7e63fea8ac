import pytest
import torch
from torch import nn

from spikede import FractionalLIF, TimeDistributed, fused
from spikede.membrane import Drive, LeakyDrive

from .reference import scheme_variants
from .spikes import same_spikes

F64 = torch.float64


def gradients(adjoint, cls=FractionalLIF, **kwargs):
    torch.manual_seed(0)
    x = torch.rand(60, 3, 5, dtype=F64) * 2
    torch.manual_seed(1)
    w = (0.5 + torch.rand(5, dtype=F64)).requires_grad_(True)
    neuron = cls(alpha=0.7, surrogate="gaussian", learn_alpha=True, learn_tau=True, learn_threshold=True,
                 adjoint=adjoint, **kwargs).double()
    out = neuron(x * w)
    loss = (out * torch.linspace(0.5, 1.5, 60, dtype=F64)[:, None, None]).sum()
    return out.detach(), torch.autograd.grad(loss, [w, neuron.alpha_logit, neuron.log_tau, neuron.threshold])


def _layers_with_an_adjoint() -> list:
    """Every layer class that spikede.neurons exports and that has a discrete adjoint (`uses_adjoint`)."""
    import inspect

    import spikede.neurons

    classes = [getattr(spikede.neurons, name) for name in spikede.neurons.__all__]
    return [cls for cls in classes if isinstance(cls, type) and issubclass(cls, spikede.neurons.SpikingNeuron)
            and not inspect.isabstract(cls) and hasattr(cls, "uses_adjoint")]


def test_the_layer_adjoint_test_covers_every_layer_class():
    assert {cls.__name__ for cls in _layers_with_an_adjoint()} == {"FractionalLIF", "FractionalIF"}


@pytest.mark.parametrize("cls", _layers_with_an_adjoint())
@pytest.mark.parametrize("method", ["gl", "l1"])
@pytest.mark.parametrize("memory", [None, 7])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_neuron_adjoint_equals_autograd(cls, method, memory, reset, detach_reset):
    kwargs = dict(method=method, memory=memory, reset=reset, v_reset=0.2, detach_reset=detach_reset)
    spikes, expected = gradients(False, cls, **kwargs)
    spikes_adj, got = gradients(True, cls, **kwargs)
    assert torch.equal(spikes, spikes_adj) and spikes.sum() > 10
    for name, a, b in zip(("input weight", "alpha", "tau", "threshold"), expected, got):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max(), name


class SaturatingDrive(Drive):
    """tau D^a v = I - (v - v_rest) - 0.5 tanh(2 v): not the LIF's drive, products by autograd."""

    def __init__(self, v_rest):
        self.v_rest = v_rest

    def __call__(self, v, current, tau):
        return (current - (v - self.v_rest) - 0.5 * torch.tanh(2.0 * v)) / tau


class GatedDrive(Drive):
    """tau D^a v = I / (1 + v^2) - v: nonlinear in the current, products in closed form."""

    def __call__(self, v, current, tau):
        return (current / (1.0 + v * v) - v) / tau

    def vjp(self, grad, v, current, tau, value=None):
        gain = 1.0 / (1.0 + v * v)
        g_v = grad * (-2.0 * v * current * gain * gain - 1.0) / tau
        g_tau = None if value is None else -(grad * value).sum() / tau
        return g_v, grad * gain / tau, g_tau


class OwnDynamicsLIF(FractionalLIF):
    def __init__(self, drive, **kwargs):
        super().__init__(**kwargs)
        self.drive = drive


@pytest.mark.parametrize("drive", ["saturating", "gated"])
@pytest.mark.parametrize("method,memory", [("gl", None), ("l1", 7), ("gl", "soe")])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_adjoint_follows_a_layer_s_own_drive(drive, method, memory, reset):
    """A subclass that changes the membrane equation (its `drive`) gets the adjoint of its own equation:
    gradients equal autograd's to 1e-9 relative, float64, with the drive's products by autograd (the `Drive`
    default) or in closed form; the compiled kernels, which implement the LIF's drive only, step aside."""
    learn = memory != "soe"
    results = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        x = torch.rand(60, 3, 5, dtype=F64) * 3
        w = (0.5 + torch.rand(5, dtype=F64)).requires_grad_(True)
        neuron = OwnDynamicsLIF(SaturatingDrive(0.0) if drive == "saturating" else GatedDrive(), alpha=0.7,
                                method=method, memory=memory, reset=reset, v_reset=0.1, learn_alpha=learn,
                                learn_tau=True, learn_threshold=True, adjoint=adjoint, surrogate="gaussian",
                                dtype=F64)
        assert not fused.applies(neuron, x)
        out = neuron(x * w)
        loss = (out * torch.linspace(0.5, 1.5, 60, dtype=F64)[:, None, None]).sum()
        params = [w, neuron.log_tau, neuron.threshold] + ([neuron.alpha_logit] if learn else [])
        results.append((out.detach(), torch.autograd.grad(loss, params)))
    (spikes, expected), (spikes_adj, got) = results
    assert same_spikes(spikes, spikes_adj) and spikes.sum() > 10
    lif = FractionalLIF(alpha=0.7, method=method, memory=memory, reset=reset, v_reset=0.1, dtype=F64)
    assert not same_spikes(lif(x * w.detach()), spikes)  # the same input through the leaky drive: the drive matters
    for a, b in zip(expected, got):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max()


def test_leaky_drive_products_equal_autograd():
    torch.manual_seed(0)
    v, current, grad = torch.randn(3, 4, 5, dtype=F64).unbind(0)
    tau = torch.tensor(1.7, dtype=F64)
    for leak in (True, False):
        drive = LeakyDrive(v_rest=-0.3, leak=leak)
        value = drive(v, current, tau)
        closed = drive.vjp(grad, v, current, tau, value)
        by_autograd = Drive.vjp(drive, grad, v, current, tau, value)
        if not leak:
            assert closed[0] is None and by_autograd[0] is None
        for a, b in zip(closed, by_autograd):
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("memory", [None, "soe"])
def test_two_layer_network_adjoint_equals_autograd(memory):
    torch.manual_seed(0)
    x = torch.rand(80, 4, 6, dtype=F64) * 2
    results = []
    for adjoint in (False, True):
        torch.manual_seed(2)
        model = nn.Sequential(
            TimeDistributed(nn.Linear(6, 8)),
            FractionalLIF(alpha=0.6, memory=memory, learn_tau=True, learn_threshold=True, adjoint=adjoint,
                          surrogate="arctan"),
            TimeDistributed(nn.Linear(8, 3)),
            FractionalLIF(alpha=0.8, method="l1", memory=memory, learn_tau=True, learn_threshold=True, adjoint=adjoint),
        ).double()
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        loss = (out.mean(0) ** 2).sum() + out.sum()
        results.append(torch.autograd.grad(loss, [xi, *model.parameters()]))
    for a, b in zip(*results):
        assert (a - b).abs().max() <= 1e-9 * max(a.abs().max(), 1e-12)


def test_adjoint_float32_and_errors():
    x = torch.rand(50, 2, 3, requires_grad=True)
    FractionalLIF(alpha=0.7, adjoint=True)(x).sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="adjoint=True needs step_mode='multi'"):
        FractionalLIF(adjoint=True, step_mode="single")
    with pytest.raises(ValueError, match="'noisy' surrogate is random"):
        FractionalLIF(adjoint=True, surrogate="noisy")(torch.rand(5, 2, requires_grad=True))


@pytest.mark.parametrize("method", ["gl", "l1"])
def test_float32_adjoint_rebuilds_potentials_to_rounding(method):
    """The backward rebuilds v from the rows (l1 sums them back over all T steps) and p from v
    and the spike bits; in float32 over 1000 steps with v_rest != 0 the gradients stay within
    1e-5 of autograd's (measured: 7e-7 for gl, 3e-6 for l1 at 2000 steps)."""
    torch.manual_seed(0)
    x = torch.rand(1000, 4, 8) * 3
    results = []
    for adjoint in (False, True):
        xi = x.clone().requires_grad_(True)
        neuron = FractionalLIF(alpha=0.7, method=method, v_rest=-0.3, learn_tau=True, adjoint=adjoint)
        out = neuron(xi)
        (out * torch.linspace(0, 1, 1000)[:, None, None]).sum().backward()
        results.append((out, xi.grad, neuron.log_tau.grad))
    (out_a, g_a, tau_a), (out_b, g_b, tau_b) = results
    assert torch.equal(out_a, out_b) and out_a.sum() > 100
    assert (g_a - g_b).abs().max() <= 1e-5 * g_a.abs().max()
    assert (tau_a - tau_b).abs() <= 1e-5 * tau_a.abs()


def test_adjoint_backward_can_run_twice_on_a_retained_graph():
    x = (torch.rand(50, 2, 3) * 3).requires_grad_(True)
    loss = (FractionalLIF(alpha=0.7, memory=None)(x) * torch.rand(50, 2, 3)).sum()
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    assert torch.equal(first, second) and first.abs().sum() > 0


def test_adjoint_is_the_default_where_it_applies():
    assert FractionalLIF().uses_adjoint()
    assert not FractionalLIF(record=True).uses_adjoint()  # the recorded membrane keeps its graph
    assert not FractionalLIF(step_mode="single").uses_adjoint()
    assert not FractionalLIF(surrogate="noisy").uses_adjoint()
    assert FractionalLIF(surrogate="noisy").eval().uses_adjoint()  # in eval the spike is deterministic
    assert not FractionalLIF(adjoint=False).uses_adjoint()
    with pytest.raises(TypeError, match="adjoint must be None"):
        FractionalLIF(adjoint="yes")
    x = torch.rand(40, 2, 3, requires_grad=True)
    assert type(FractionalLIF()(x).grad_fn).__name__ == "SequenceAdjointBackward"
    assert type(FractionalLIF(record=True)(x).grad_fn).__name__ != "SequenceAdjointBackward"


@pytest.mark.parametrize("memory", [None, 5, "soe"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("learn", [(), ("learn_tau",), ("learn_alpha",)])
def test_adjoint_saves_the_rows_and_spike_bits_and_only_what_cannot_be_rebuilt(learn, reset, memory):
    """Per step of 20 neurons: the stored row (20 floats) and 3 bytes of spikes; one more float
    sequence for the 'zero' reset (the potential a spike was reset from) and one (the input)
    where tau or alpha needs the drive."""
    if memory == "soe" and learn == ("learn_alpha",):
        return  # soe cannot learn alpha
    steps, x = 40, torch.rand(40, 4, 5, requires_grad=True)
    out = FractionalLIF(alpha=0.7, reset=reset, memory=memory, **{name: True for name in learn})(x)
    saved = [t for t in out.grad_fn.saved_tensors if t is not None and t.dim() == 3 - (t.dtype == torch.uint8)]
    floats = sorted(t.shape[0] for t in saved if t.dtype == torch.float32)
    assert floats == sorted([steps + 1] + [steps] * ((reset == "zero") + bool(learn)))
    (bits,) = [t for t in saved if t.dtype == torch.uint8]
    assert bits.shape == (steps, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(4, 5), (2, 8), (3,)])
def test_spike_bits_round_trip(dtype, shape):
    from spikede.neuron_adjoint import SpikeBits

    torch.manual_seed(0)
    trains = (torch.rand(6, *shape) > 0.5).to(dtype)
    bits = SpikeBits(6, trains[0])
    for n, spikes in enumerate(trains):
        bits.write(n, spikes)
    assert bits.bits.dtype == torch.uint8 and bits.bits.shape == (6, -(-trains[0].numel() // 8))
    again = SpikeBits(6, trains[0], bits.bits)
    assert torch.equal(torch.stack([again.read(n) for n in range(6)]), trains)


class Rhs(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 3).double()

    def forward(self, t, y):
        return torch.tanh(self.linear(y)) - y + torch.sin(t)


def assert_same_solution(autograd, adjoint):
    """The same scheme run by two drivers (with and without grad mode; for 'soe' the adjoint's
    forward even sums the weights block by block, BlockedSOEKernel, in another order), so the
    states agree to rounding: 1e-13 relative is a few hundred eps over these short solves."""
    assert (autograd - adjoint).abs().max() <= 1e-13 * autograd.abs().max()


VARIANTS = scheme_variants(adjoint=True)


@pytest.mark.parametrize("method,implicit", VARIANTS)
@pytest.mark.parametrize("memory", [None, 5, "soe"])
def test_fdeint_adjoint_equals_autograd(method, implicit, memory):
    from spikede import fdeint

    func = Rhs()
    t = torch.linspace(0, 2, 61, dtype=F64)
    cotangent = torch.randn(61, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    results = []
    for adjoint in (False, True):
        y0 = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
        alpha = torch.tensor(0.6, dtype=F64, requires_grad=memory != "soe")
        y = fdeint(func, y0, t, alpha, method=method, implicit=implicit, memory=memory, adjoint=adjoint, block=4)
        inputs = [y0, func.linear.weight, func.linear.bias] + ([alpha] if alpha.requires_grad else [])
        results.append((y.detach(), torch.autograd.grad((y * cotangent).sum(), inputs)))
    (y_a, g_a), (y_b, g_b) = results
    assert_same_solution(y_a, y_b)
    for a, b in zip(g_a, g_b):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max()


@pytest.mark.parametrize("method,implicit", VARIANTS)
@pytest.mark.parametrize("memory", [None, 5, "soe"])
@pytest.mark.parametrize("every,save_every", [(7, 1), (8, 3), (100, 60)])
def test_checkpointed_adjoint_equals_autograd(method, implicit, memory, every, save_every):
    from spikede import fdeint

    func = Rhs()
    t = torch.linspace(0, 2, 61, dtype=F64)
    results = []
    for adjoint in (False, True):
        y0 = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
        alpha = torch.tensor(0.6, dtype=F64, requires_grad=memory != "soe")
        options = dict(adjoint=True, checkpoint_every=every) if adjoint else {}
        y = fdeint(func, y0, t, alpha, method=method, implicit=implicit, memory=memory, block=4,
                   save_every=save_every, **options)
        cotangent = torch.randn(y.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
        inputs = [y0, func.linear.weight, func.linear.bias] + ([alpha] if alpha.requires_grad else [])
        results.append((y.detach(), torch.autograd.grad((y * cotangent).sum(), inputs)))
    (y_a, g_a), (y_b, g_b) = results
    assert y_b.shape[0] == 60 // save_every + 1 + (60 % save_every != 0)
    assert_same_solution(y_a, y_b)
    for a, b in zip(g_a, g_b):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max()


@pytest.mark.parametrize("memory", [None, "soe"])
def test_checkpoints_on_block_boundaries_give_the_same_bits(memory):
    from spikede import fdeint

    func = Rhs()
    t = torch.linspace(0, 2, 81, dtype=F64)
    grads = []
    for every in (None, 8):
        y0 = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
        y = fdeint(func, y0, t, 0.6, memory=memory, block=4, adjoint=True, checkpoint_every=every)
        grads.append(torch.autograd.grad(y.sin().sum(), [y0, func.linear.weight]))
    # Recomputing each stretch from its checkpoint repeats the same sums (checkpoint_every is a
    # multiple of block); 1e-13 relative leaves room for a BLAS that picks another kernel.
    assert all((a - b).abs().max() <= 1e-13 * a.abs().max() for a, b in zip(*grads))


def test_checkpointed_soe_adjoint_keeps_nothing_of_length_n():
    from spikede import fdeint

    y0 = torch.ones(4, dtype=F64, requires_grad=True)
    n = 2000
    y = fdeint(lambda t, y: -y, y0, torch.linspace(0, 5, n + 1, dtype=F64), 0.5, memory="soe", adjoint=True,
               save_every=n, checkpoint_every=50)
    kept = [x for x in y.grad_fn.saved_tensors if x is not None]
    assert y.shape == (2, 4) and max(x.numel() for x in kept) == 8
    assert len(y.grad_fn.checkpoints) == n // 50


def test_fdeint_adjoint_multi_term_and_gradcheck():
    from spikede import fdeint, fdeint_adjoint

    func = Rhs()
    t = torch.linspace(0, 1, 40, dtype=F64)
    results = []
    for adjoint in (False, True):
        y0 = torch.ones(3, dtype=F64, requires_grad=True)
        a1 = torch.tensor(0.9, dtype=F64, requires_grad=True)
        y = fdeint(func, y0, t, [a1, 0.4], coefficients=[1.0, 0.5], adjoint=adjoint)
        results.append(torch.autograd.grad(y.sum(), [y0, a1, func.linear.weight]))
    for a, b in zip(*results):
        assert (a - b).abs().max() <= 1e-9 * a.abs().max()

    def run(y0, alpha, w):
        return fdeint_adjoint(lambda t, y: torch.tanh(w @ y) - y, y0, torch.linspace(0, 1, 9, dtype=F64), alpha,
                              method="trap", adjoint_params=[w])

    args = (torch.randn(3, dtype=F64, requires_grad=True), torch.tensor(0.6, dtype=F64, requires_grad=True),
            torch.randn(3, 3, dtype=F64, requires_grad=True))
    assert torch.autograd.gradcheck(run, args, eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("alpha,d_lam,d_alpha", [(0.5, -0.27321201478389857, -0.14407058134299248),
                                                 (0.7, -0.30056192341289101, -0.13292628976465169)])
def test_adjoint_gradients_converge_to_exact_derivatives(alpha, d_lam, d_alpha):
    from spikede import fdeint

    errors = []
    for n in (64, 256, 1024):
        lam = torch.tensor(1.0, dtype=F64, requires_grad=True)
        a = torch.tensor(alpha, dtype=F64, requires_grad=True)
        y = fdeint(lambda t, y: -lam * y, torch.ones(1, dtype=F64), torch.linspace(0, 1, n + 1, dtype=F64), a,
                   method="trap", adjoint=True, adjoint_params=[lam])
        g_lam, g_alpha = torch.autograd.grad(y[-1, 0], (lam, a))
        errors.append((abs(g_lam.item() - d_lam), abs(g_alpha.item() - d_alpha)))
    assert errors[-1][0] < 5e-6 and errors[-1][1] < 5e-6
    assert all(b[0] < a[0] / 4 and b[1] < a[1] / 4 for a, b in zip(errors, errors[1:]))


def test_fdeint_adjoint_errors():
    from spikede import fdeint

    t = torch.linspace(0, 1, 10, dtype=F64)
    with pytest.raises(ValueError, match="save_every=3 needs checkpoint_every="):
        fdeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, 0.5, adjoint=True, save_every=3)
    with pytest.raises(ValueError, match="checkpoint_every= is an option of the adjoint"):
        fdeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, 0.5, checkpoint_every=3)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int, got 0"):
        fdeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, 0.5, adjoint=True, checkpoint_every=0)
    with pytest.raises(ValueError, match="adjoint= with event= needs an event the reverse sweep can replay"):
        fdeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, 0.5, adjoint=True, event=lambda t, y: y)


def test_adjoint_as_an_object_equals_the_shorthand():
    from spikede import DiscreteAdjoint, fdeint

    func = Rhs()
    t = torch.linspace(0, 2, 41, dtype=F64)
    grads = []
    for adjoint, extra in ((True, dict(checkpoint_every=8)), (DiscreteAdjoint(checkpoint_every=8), {})):
        y0 = torch.tensor([0.3, -0.2, 0.5], dtype=F64, requires_grad=True)
        y = fdeint(func, y0, t, 0.6, method="l1", adjoint=adjoint, **extra)
        grads.append(torch.autograd.grad(y.sin().sum(), [y0, func.linear.weight]))
    assert all((a - b).abs().max() <= 1e-13 * a.abs().max() for a, b in zip(*grads))  # the same computation
    lam = torch.tensor(0.7, dtype=F64, requires_grad=True)
    y = fdeint(lambda t, y: -lam * y, torch.ones(1, dtype=F64), t, 0.6, adjoint=DiscreteAdjoint(params=[lam]))
    assert torch.autograd.grad(y[-1, 0], lam)[0] < 0
    with pytest.raises(ValueError, match="checkpoint_every must be None or a positive int, got 0"):
        DiscreteAdjoint(checkpoint_every=0)
    with pytest.raises(ValueError, match="give checkpoint_every= and adjoint_params= to DiscreteAdjoint"):
        fdeint(func, torch.ones(3, dtype=F64), t, 0.6, adjoint=DiscreteAdjoint(), checkpoint_every=4)
    with pytest.raises(TypeError, match="adjoint must be a bool or a DiscreteAdjoint, got str"):
        fdeint(func, torch.ones(3, dtype=F64), t, 0.6, adjoint="yes")
    with pytest.raises(ValueError, match="adjoint_params= is an option of the adjoint"):
        fdeint(func, torch.ones(3, dtype=F64), t, 0.6, adjoint_params=[lam])


def test_solver_modules_import_one_way():
    """fdeint imports the adjoint and both import the engine; nothing imports fdeint back."""
    import ast
    from pathlib import Path

    root = Path(__file__).parents[1] / "spikede" / "solvers"

    def imports(name):
        tree = ast.parse((root / f"{name}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}

    assert "fdeint" not in imports("adjoint") and "fdeint" not in imports("engine")
    assert "adjoint" not in imports("engine") and {"engine", "adjoint"} <= imports("fdeint")


@pytest.mark.parametrize("window", [None, 40])
def test_weight_gradient_by_fft_equals_the_product(monkeypatch, window):
    """`lag_gradient` (the orders' gradient through the weights) by FFT correlation equals the
    direct lag-by-lag product sums, float64, to 1e-12 relative (a few ulps of the largest sum)."""
    from spikede.solvers import adjoint

    generator = torch.Generator().manual_seed(3)
    grads = torch.randn(300, 2, 37, generator=generator, dtype=torch.float64)
    rows = torch.randn(300, 37, generator=generator, dtype=torch.float64)
    results = []
    for threshold in (1, 10**9):
        monkeypatch.setattr(adjoint, "LAG_FFT_MIN_STEPS", threshold)
        results.append(adjoint.lag_gradient(grads, rows, 320, window))
    by_fft, direct = results
    assert ((by_fft - direct).abs().max() / direct.abs().max()).item() <= 1e-12
    assert by_fft[:, 0].abs().max() == 0 and by_fft[:, 301:].abs().max() == 0  # no lag 0, none past N


@pytest.mark.parametrize("method", ["gl", "l1", "pred", "trap"])
def test_step_inputs_get_their_gradient_row_by_row(method):
    """fdeint with a func that reads a sequence a row per step (StepInputs): the discrete adjoint's
    gradient of the sequence, row by row, and of a parameter equal autograd's, float64, 1e-10
    relative (summation order only; measured about 1e-15).  'pred' and 'trap' also read row 0 for
    f(t_0, y_0), which the adjoint differentiates on its own."""
    from spikede import DiscreteAdjoint, StepInputs, fdeint

    steps = 40
    t = torch.linspace(0, 2, steps + 1, dtype=F64)
    sequence = torch.rand(steps + 1, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    weights = torch.linspace(-1, 1, (steps + 1) * 3, dtype=F64).view(steps + 1, 3)
    grads = []
    for adjoint in (False, True):
        x = sequence.clone().requires_grad_(True)
        lam = torch.tensor(0.7, dtype=F64, requires_grad=True)
        inputs = StepInputs(x)

        def func(s, y):
            return -lam * y + torch.tanh(inputs[int(round(float(s) / (2 / steps)))]) * y.cos()

        options = dict(adjoint=DiscreteAdjoint(params=[lam], inputs=inputs)) if adjoint else {}
        y = fdeint(func, torch.ones(3, dtype=F64), t, 0.6, method=method, **options)
        grads.append(torch.autograd.grad((weights * y).sum(), [x, lam]))
    for a, b in zip(*grads):
        assert a.abs().max() > 1e-3
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()
    with pytest.raises(TypeError, match="inputs must be a StepInputs"):
        DiscreteAdjoint(inputs=sequence)
    with pytest.raises(TypeError, match=r"sequence must be a tensor \[T, \.\.\.\]"):
        StepInputs(torch.tensor(1.0))


def _replayed_and_autograd(make, replay):
    """Spikes, membrane and gradients (input, log_tau, threshold, alpha_logit) of one float64 layer through
    `replay(layer, x)` and through plain autograd; the loss weighs both outputs."""
    torch.manual_seed(0)
    x = torch.rand(50, 3, 5, dtype=F64) * 2
    results = []
    for run in (replay, None):
        layer = make()
        leaf = x.clone().requires_grad_(True)
        if run is None:
            layer.return_membrane = True
            spikes, membrane = layer(leaf)
        else:
            spikes, membrane = run(layer, leaf)
        steps = torch.linspace(0.5, 1.5, 50, dtype=F64)[:, None, None]
        loss = (spikes * steps).sum() + 0.1 * (membrane**2 * steps).sum()
        params = [leaf] + [p for p in (layer.log_tau, layer.threshold, layer.alpha_logit) if p is not None]
        results.append((spikes.detach(), torch.autograd.grad(loss, params)))
    return results


@pytest.mark.parametrize("cls", _layers_with_an_adjoint())
@pytest.mark.parametrize("method,memory,reset", [("gl", None, "subtract"), ("l1", 7, "zero"), ("gl", "soe", "none")])
@pytest.mark.parametrize("history", ["reset", "continuous"])
def test_generic_replayed_adjoint_equals_autograd_for_every_layer_class(cls, method, memory, reset, history):
    """The generic discrete adjoint (spikede.layer_loop.replay_adjoint: the layer's own step loop replayed one
    step at a time, carrying the jumps of a continuous history) against autograd, float64: identical spikes; the
    gradients of the input, tau, the threshold and the order, through spikes and membrane, to 1e-10 relative
    (they differ only in summation order)."""
    from spikede.layer_loop import replay_adjoint

    def make():
        return cls(alpha=0.7, surrogate="gaussian", method=method, memory=memory, reset=reset, learn_tau=True,
                   learn_threshold=True, learn_alpha=memory != "soe", adjoint=False, history=history, dtype=F64)

    (spikes, got), (expected_spikes, expected) = _replayed_and_autograd(make, replay_adjoint)
    assert same_spikes(spikes, expected_spikes) and spikes.sum() > 10
    for a, b in zip(expected, got):
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()


@pytest.mark.parametrize("memory", [None, "soe"])
def test_reference_rule_trains_through_the_generic_adjoint(memory):
    """ReferenceLIF(adjoint=True), whose spike is decided in the right-hand side (no closed-form sweep), gets
    autograd's gradients (1e-10 relative) from the replayed step loop."""
    from spikede.compat import ReferenceLIF

    def make():
        return ReferenceLIF(alpha=0.7, dt=0.1, tau=0.5, surrogate="arctan", memory=memory, learn_tau=True,
                            learn_threshold=True, learn_alpha=memory is None, dtype=F64)

    def through_forward(layer, x):
        layer.adjoint, layer.return_membrane = True, True
        spikes, membrane = layer(x)
        assert type(spikes.grad_fn).__name__ == "_AdjointBackward"  # the replayed adjoint, not autograd
        return spikes, membrane

    (spikes, got), (expected_spikes, expected) = _replayed_and_autograd(make, through_forward)
    assert same_spikes(spikes, expected_spikes) and spikes.sum() > 10
    for a, b in zip(expected, got):
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()
    with pytest.raises(TypeError, match="adjoint must be True or False"):
        ReferenceLIF(adjoint=None)


def test_continuous_history_layer_trains_through_the_generic_adjoint_and_steps_singly():
    """FractionalLIF(history='continuous'): adjoint=True runs the replayed adjoint (autograd's gradients, 1e-10),
    the default is autograd, the compiled engine does not take it, and single steps carry the jumps between
    calls (the same spikes and potentials as one multi-step call, 1e-12)."""
    def make(**kwargs):
        return FractionalLIF(alpha=0.7, surrogate="gaussian", memory=9, learn_tau=True, learn_threshold=True,
                             learn_alpha=True, history="continuous", dtype=F64, **kwargs)

    def through_forward(layer, x):
        layer.adjoint, layer.return_membrane = True, True
        spikes, membrane = layer(x)
        assert type(spikes.grad_fn).__name__ == "_AdjointBackward"
        return spikes, membrane

    (spikes, got), (expected_spikes, expected) = _replayed_and_autograd(make, through_forward)
    assert same_spikes(spikes, expected_spikes) and spikes.sum() > 10
    for a, b in zip(expected, got):
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()
    layer = make()
    x = torch.rand(80, 3, 5, dtype=F64) * 2
    assert not layer.uses_adjoint() and not fused.applies(layer, x)
    multi = make(record=True)
    with torch.no_grad():
        s_multi = multi(x)
        single = make(step_mode="single", record=True)
        s_single = torch.stack([single(row) for row in x.unbind(0)])
    assert same_spikes(s_multi, s_single) and s_multi.sum() > 10
    assert (multi.membrane - single.membrane).abs().max() <= 1e-12
    assert (multi.v - single.v).abs().max() <= 1e-12 and (multi.v - multi.membrane[-1]).abs().max() <= 1e-12
    with pytest.raises(ValueError, match="history must be one of 'reset', 'continuous', got 'jumps'"):
        FractionalLIF(history="jumps")
    multi_term = FractionalLIF(alpha=[0.5, 0.8], learn_coefficients=True, history="continuous", adjoint=True,
                               dtype=F64)
    with pytest.raises(ValueError, match="does not learn multi-term coefficients .learn_coefficients=True.; "
                                         "use adjoint=False"):
        multi_term(x)
    from spikede.compat import ReferenceLIF

    with pytest.raises(ValueError, match="history='reset'"):
        ReferenceLIF(history="continuous")


def test_the_hybrid_event_and_the_layer_steps_are_replayable_events():
    """One seam: the hybrid solves' event and a layer's replayed steps implement the protocol the discrete adjoint
    replays; anything else is refused with the protocol's methods named."""
    from spikede.layer_loop import _Replayed
    from spikede.solvers.adjoint import DiscreteAdjoint, ReplayableEvent, StepInputs
    from spikede.solvers.hybrid import SpikeRule, _Events

    y0 = torch.zeros(2, 1, dtype=F64)
    hybrid = _Events(lambda t, y: -y, y0, torch.linspace(0, 1, 5, dtype=F64).unbind(0), SpikeRule(0, 1.0), None,
                     None, 1, True)
    layer = _Replayed(FractionalLIF(dtype=F64), StepInputs(torch.zeros(4, 3, dtype=F64)), 1.0, 1.0, False)
    assert isinstance(hybrid, ReplayableEvent) and isinstance(layer, ReplayableEvent)
    assert not isinstance(lambda t, y: y, ReplayableEvent)
    with pytest.raises(TypeError, match="event must be a ReplayableEvent .start, rewind, carry"):
        DiscreteAdjoint().solve(lambda t, y: -y, None, y0, [0.5], None, {}, 1, event=lambda t, y: y)
