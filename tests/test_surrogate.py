import math

import pytest
import torch
from scipy import integrate

import spikede
from spikede import Surrogate, available_surrogates, register_surrogate, spike

BUILTINS = ("sigmoid", "arctan", "linear", "gaussian", "noisy")
DEFAULTS = {"sigmoid": 5.0, "arctan": 2.0, "linear": 1.0, "gaussian": 1.0, "noisy": 5.0}


def closed_form(name, x, a):
    """The seed document's bumps, written out independently of the library."""
    if name in ("sigmoid", "noisy"):
        s = 1.0 / (1.0 + torch.exp(-a * x))
        return a * s * (1.0 - s)
    if name == "arctan":
        return a / (2.0 * (1.0 + (math.pi / 2.0 * a * x) ** 2))
    if name == "linear":
        return torch.where(x.abs() <= a, torch.full_like(x, 1.0 / (2.0 * a)), torch.zeros_like(x))
    if name == "gaussian":
        return torch.exp(-(x**2) / (2.0 * a**2)) / (a * math.sqrt(2.0 * math.pi))
    raise AssertionError(name)


def autograd_bump(name, x, scale):
    xr = x.clone().requires_grad_(True)
    out = spike(xr, name, scale, training=False)
    (g,) = torch.autograd.grad(out.sum(), xr)
    return g


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("scale", [None, 0.3, 1.0, 2.5, 7.0])
def test_gradient_matches_closed_form(name, scale):
    x = torch.linspace(-4.0, 4.0, 8001, dtype=torch.float64)
    a = DEFAULTS[name] if scale is None else scale
    if name == "linear":  # keep grid points off the window edges, where the indicator jumps
        x = x[(x.abs() - a).abs() > 1e-9]
    got = autograd_bump(name, x, scale)
    want = closed_form(name, x, a)
    assert torch.max(torch.abs(got - want)).item() <= 1e-12


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("scale", [None, 0.5, 3.0])
def test_bump_has_unit_area(name, scale):
    spec = spikede.get_surrogate(name)
    a = spec.default_scale if scale is None else scale

    def f(x):
        return spec.derivative(torch.tensor(x, dtype=torch.float64), a).item()

    if name == "linear":
        area = integrate.quad(f, -a, a)[0]
    else:
        area = integrate.quad(f, -math.inf, math.inf, limit=500)[0]
    assert abs(area - 1.0) <= 1e-3


def test_linear_window_edges_are_inside():
    x = torch.tensor([-1.0, 1.0, 1.0 + 1e-6], dtype=torch.float64)
    assert autograd_bump("linear", x, 1.0).tolist() == [0.5, 0.5, 0.0]


@pytest.mark.parametrize("name", ("sigmoid", "arctan", "linear", "gaussian"))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_forward_is_exact_step(name, dtype):
    x = torch.tensor([-3.0, -1e-3, 0.0, 1e-3, 2.0], dtype=dtype, requires_grad=True)
    y = spike(x, name)
    assert y.dtype == dtype and y.device == x.device
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.dtype == dtype and torch.all(torch.isfinite(x.grad))


def test_negative_zero_fires():
    assert spike(torch.tensor([-0.0])).item() == 1.0


def test_noisy_eval_is_hard_and_deterministic():
    torch.manual_seed(0)
    x = torch.randn(1000, dtype=torch.float64)
    a = spike(x, "noisy", training=False)
    b = spike(x, "noisy", training=False)
    assert torch.equal(a, b)
    assert torch.equal(a, (x >= 0).double())
    module = Surrogate("noisy").eval()
    assert torch.equal(module(x), a)


def test_noisy_training_is_soft_random_and_unbiased():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    draws = torch.stack([spike(x, "noisy", 2.0, training=True) for _ in range(20000)])
    assert torch.all((draws > 0) & (draws < 1))
    assert not torch.equal(draws[0], draws[1])
    # sigmoid(kx + eps) with eps ~ Logistic(0,1): P(spike-mean > 1/2) grows with x; its mean at x=0 is 1/2.
    assert abs(draws[:, 2].mean().item() - 0.5) < 0.01
    assert torch.all(torch.diff(draws.mean(0)) > 0)


def test_noisy_training_gradient_is_true_gradient_of_its_forward():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    y = spike(x, "noisy", 3.0, training=True)
    (g,) = torch.autograd.grad(y.sum(), x)
    # the same noise, drawn again, through the explicit formula
    torch.manual_seed(3)
    u = torch.rand_like(x).clamp(torch.finfo(x.dtype).tiny, 1.0)
    eps = torch.log(u) - torch.log1p(-u)
    s = torch.sigmoid(3.0 * x.detach() + eps)
    assert torch.allclose(y.detach(), s, rtol=0, atol=1e-15)
    assert torch.allclose(g, 3.0 * s * (1 - s), rtol=0, atol=1e-14)


def test_noisy_mean_field_option():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    y = Surrogate("noisy", 4.0, noise=False).train()(x)
    assert torch.allclose(y, torch.sigmoid(4.0 * x), rtol=0, atol=0)


def test_module_form_matches_function_form():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    m = Surrogate("gaussian", scale=0.5)
    (g1,) = torch.autograd.grad(m(x).sum(), x)
    (g2,) = torch.autograd.grad(spike(x, "gaussian", scale=0.5).sum(), x)
    assert torch.equal(g1, g2)
    assert "sigma=0.5" in repr(m)


def test_register_custom_surrogate():
    def triangle(x, width):
        return torch.clamp(1.0 - x.abs() / width, min=0.0) / width

    register_surrogate("triangle_test", triangle, default_scale=1.0, parameter="width")
    try:
        assert "triangle_test" in available_surrogates()
        x = torch.tensor([-0.5, 0.0, 0.25, 2.0], dtype=torch.float64)
        assert torch.allclose(autograd_bump("triangle_test", x, 1.0), torch.tensor([0.5, 1.0, 0.75, 0.0], dtype=torch.float64))
        with pytest.raises(ValueError, match="already registered"):
            register_surrogate("triangle_test", triangle, default_scale=1.0)
    finally:
        spikede.surrogate._REGISTRY.pop("triangle_test")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        spike(torch.zeros(3), "tanh")
    message = str(info.value)
    assert "'tanh'" in message
    for name in BUILTINS:
        assert repr(name) in message


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_raises(scale):
    with pytest.raises(ValueError, match="surrogate_scale"):
        spike(torch.zeros(3), "sigmoid", scale)
    with pytest.raises(ValueError, match="surrogate_scale"):
        Surrogate("arctan", scale)


def test_bad_types_raise():
    with pytest.raises(TypeError, match="surrogate_scale"):
        spike(torch.zeros(3), "sigmoid", "5")
    with pytest.raises(TypeError, match="floating-point"):
        spike(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="surrogate must be a name"):
        spike(torch.zeros(3), 5)


def test_works_under_torch_func():
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)
    g = torch.func.vmap(torch.func.grad(lambda v: spike(v, "arctan")))(x)
    assert torch.allclose(g, closed_form("arctan", x, 2.0), rtol=0, atol=1e-15)
