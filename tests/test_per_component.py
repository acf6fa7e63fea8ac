"""Per-component orders: `alpha` as a 1-D tensor, one order per entry of the state's last axis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikede import fdeint
from spikede.solvers import SCHEMES

F64 = torch.float64
PER_COMPONENT = [(name, implicit) for name, cls in SCHEMES.items() if cls.per_component
                 for implicit in cls.implicit_modes]


def _brusselator(t, y, a=1.0, mu=4.0):
    """FractionalDiffEq.jl's Brusselator: D^a1 x = a - (mu + 1) x + x^2 y, D^a2 y = mu x - x^2 y."""
    x, v = y[..., 0], y[..., 1]
    return torch.stack([a - (mu + 1.0) * x + x * x * v, mu * x - x * x * v], -1)


def test_the_registry_names_the_schemes():
    assert {name for name, _ in PER_COMPONENT} == {"gl", "l1", "pred", "trap"}


@pytest.mark.parametrize("memory", [None, 40])
@pytest.mark.parametrize("method,implicit", PER_COMPONENT)
def test_decoupled_components_equal_scalar_solves(method, implicit, memory):
    """A decoupled system: each component is the scalar-order solve of its own equation."""
    t = torch.linspace(0.0, 3.0, 151, dtype=F64)
    y0 = torch.tensor([[1.0, 0.5], [0.3, -0.2]], dtype=F64)
    alpha = torch.tensor([0.6, 0.9], dtype=F64)

    def rhs(t, y):
        return -y + 0.2 * torch.sin(t)

    ours = fdeint(rhs, y0, t, alpha, method=method, implicit=implicit, memory=memory)
    for k in range(2):
        alone = fdeint(rhs, y0[:, k], t, float(alpha[k]), method=method, implicit=implicit, memory=memory)
        assert (ours[..., k] - alone).abs().max().item() <= 1e-13


@pytest.mark.parametrize("method,implicit", PER_COMPONENT)
def test_equal_orders_equal_the_scalar_order(method, implicit):
    """Coupled (the Brusselator): per-component orders that are all 0.7 give the alpha = 0.7 solve
    (the same sums, contracted component by component: agreement to rounding)."""
    t = torch.linspace(0.0, 2.0, 101, dtype=F64)
    y0 = torch.tensor([1.0, 1.0], dtype=F64)
    vector = fdeint(_brusselator, y0, t, torch.tensor([0.7, 0.7], dtype=F64), method=method, implicit=implicit)
    scalar = fdeint(_brusselator, y0, t, 0.7, method=method, implicit=implicit)
    assert (vector - scalar).abs().max().item() <= 1e-12 * scalar.abs().max().item()


def test_multi_order_brusselator_converges():
    """Orders [0.8, 0.7] (FractionalDiffEq.jl's multi-order Brusselator) on [0, 2], errors against a
    16x finer implicit-trapezoid solve at h = 0.04, 0.02, 0.01: gl falls at first order; the
    solution has t^alpha terms at 0, where the trapezoid reaches about 1 + alpha rather than 2
    (measured 1.44, 1.48), and at h = 0.01 it is more than 5x closer than gl (8.3e-4 vs 7.1e-3)."""
    alpha = torch.tensor([0.8, 0.7], dtype=F64)
    y0 = torch.tensor([1.0, 1.0], dtype=F64)
    fine_n = 3200
    fine = fdeint(_brusselator, y0, torch.linspace(0.0, 2.0, fine_n + 1, dtype=F64), alpha, method="trap",
                  implicit=True)
    errors = {}
    for method, implicit in (("gl", False), ("trap", True)):
        errors[method] = []
        for n in (50, 100, 200):
            y = fdeint(_brusselator, y0, torch.linspace(0.0, 2.0, n + 1, dtype=F64), alpha, method=method,
                       implicit=implicit)
            errors[method].append((y - fine[:: fine_n // n]).abs().max().item())
    gl_slopes, trap_slopes = (-np.diff(np.log2(errors[m])) for m in ("gl", "trap"))
    assert np.all(np.abs(gl_slopes - 1.0) <= 0.15), gl_slopes
    assert np.all(trap_slopes >= 1.35), trap_slopes
    assert errors["trap"][-1] <= errors["gl"][-1] / 5


@pytest.mark.parametrize("method,implicit", [("gl", False), ("l1", True), ("trap", True)])
def test_gradients_reach_each_order(method, implicit):
    t = torch.linspace(0.0, 1.0, 13, dtype=F64)

    def solve(alpha, y0):
        return fdeint(lambda t, y: -y + 0.3 * torch.cos(y), y0, t, alpha, method=method, implicit=implicit)

    alpha = torch.tensor([0.55, 0.85], dtype=F64, requires_grad=True)
    y0 = torch.tensor([1.0, -0.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (alpha, y0))


@pytest.mark.parametrize("method,implicit", PER_COMPONENT)
@pytest.mark.parametrize("memory", [None, 6])
def test_adjoint_equals_autograd(method, implicit, memory):
    """The discrete adjoint with one order per component (the Brusselator at orders [0.8, 0.6], both learnable):
    the gradients of autograd through the same solve to 1e-10 relative, float64 (the reverse kernels and the
    weights' gradient pair each component with its own order)."""
    t = torch.linspace(0.0, 2.0, 41, dtype=F64)
    y0 = torch.tensor([[0.2, 0.03], [1.0, 0.5]], dtype=F64)
    weights = torch.linspace(0.5, 1.5, 41, dtype=F64)[:, None, None]
    results = []
    for adjoint in (False, True):
        alpha = torch.tensor([0.8, 0.6], dtype=F64, requires_grad=True)
        start = y0.clone().requires_grad_(True)
        y = fdeint(_brusselator, start, t, alpha, method=method, implicit=implicit, memory=memory, adjoint=adjoint)
        results.append(torch.autograd.grad((weights * y).sum(), [alpha, start]))
    for expected, got in zip(*results):
        assert (expected - got).abs().max() <= 1e-10 * expected.abs().max()


def test_learning_the_orders_from_a_trajectory():
    """Gradient descent on the orders recovers them from a trajectory they produced."""
    t = torch.linspace(0.0, 2.0, 41, dtype=F64)
    y0 = torch.tensor([1.0, 1.0], dtype=F64)
    truth = fdeint(_brusselator, y0, t, torch.tensor([0.8, 0.7], dtype=F64))
    alpha = torch.tensor([0.9, 0.9], dtype=F64, requires_grad=True)
    optimizer = torch.optim.Adam([alpha], lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        loss = ((fdeint(_brusselator, y0, t, alpha) - truth) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert (alpha.detach() - torch.tensor([0.8, 0.7], dtype=F64)).abs().max().item() <= 0.01


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(alpha=torch.tensor([0.5, 0.6, 0.7], dtype=F64)),
         r"a 1-D alpha gives one order per component of y0's last axis: y0 has shape \(4, 2\), alpha has 3"),
        (dict(alpha=torch.tensor([[0.5, 0.6]], dtype=F64)), r"alpha must be a float, a 0-d tensor or a 1-D tensor"),
        (dict(alpha=torch.tensor([0.5, 1.5], dtype=F64)), r"0 < alpha <= 1 \(per-component orders\), got 1.5"),
        (dict(method="flmm-trap"), r"method 'flmm-trap' takes one order for the whole state"),
        (dict(memory="soe"), r"memory='soe' is not available with them"),
        (dict(coefficients=[1.0, 2.0]), r"per-component orders \(a 1-D alpha\) take none"),
        (dict(t=torch.tensor([0.0, 0.1, 0.3, 0.6], dtype=F64), method="l1"), r"a non-uniform grid is not available"),
    ],
)
def test_refusals(kwargs, match):
    args = dict(alpha=torch.tensor([0.5, 0.6], dtype=F64), t=torch.linspace(0.0, 1.0, 11, dtype=F64))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fdeint(lambda t, y: -y, torch.ones(4, 2, dtype=F64), args.pop("t"), args.pop("alpha"), **args)


def test_gamma_of_each_order_enters_l1():
    """L1's step coefficient is Gamma(2 - a) h^a per component: one explicit step from y0 = 1 with
    f = 1 gives y_1 = 1 + Gamma(2 - a_k) h^a_k in component k."""
    h = 0.1
    alpha = torch.tensor([0.3, 0.8], dtype=F64)
    y = fdeint(lambda t, y: torch.ones_like(y), torch.ones(2, dtype=F64), torch.tensor([0.0, h], dtype=F64), alpha,
               method="l1")
    expected = [1.0 + math.gamma(2.0 - a) * h**a for a in (0.3, 0.8)]
    assert y[1].tolist() == pytest.approx(expected, rel=1e-15)
