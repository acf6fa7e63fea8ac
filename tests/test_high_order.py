"""Orders 1 < alpha <= 2: two initial values, the schemes that take them, and the refusals.

Reference solutions: `D^a y = -y`, `y(0) = y0`, `y'(0) = y1` has
`y = y0 E_a(-t^a) + y1 t E_{a,2}(-t^a)` (Diethelm, *The Analysis of Fractional Differential
Equations*, 2010, Thm. 4.3); constant and linear right-hand sides have the closed forms
`T(t) + c t^a / Gamma(a + 1)` and `T(t) + t^(a+1) / Gamma(a + 2)`, `T(t) = y0 + t y1`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikede import fdeint
from spikede.solvers import SCHEMES
from spikede.special import mittag_leffler

F64 = torch.float64
HIGH_ORDER = [(name, implicit) for name, cls in SCHEMES.items() if cls.max_alpha > 1 for implicit in cls.implicit_modes]


def _pair(y0: float, y1: float, size: int = 1):
    return torch.full((size,), y0, dtype=F64), torch.full((size,), y1, dtype=F64)


def _relaxation(t: torch.Tensor, a: float, y0: float, y1: float) -> torch.Tensor:
    return y0 * mittag_leffler(-t**a, a) + y1 * t * mittag_leffler(-t**a, a, 2.0)


def test_the_registry_names_the_high_order_schemes():
    assert {name for name, _ in HIGH_ORDER} == {"gl", "pred", "trap"}


@pytest.mark.parametrize("alpha", [pytest.param(1.3, marks=pytest.mark.slow), 1.5,
                                   pytest.param(1.8, marks=pytest.mark.slow)])
@pytest.mark.parametrize("method,implicit", HIGH_ORDER)
def test_convergence_orders(alpha, method, implicit):
    errors = []
    sizes = [32, 64, 128, 256, 512, 1024]
    for n in sizes:
        t = torch.linspace(0.0, 2.0, n + 1, dtype=F64)
        y = fdeint(lambda t, y: -y, _pair(1.0, 0.5), t, alpha, method=method, implicit=implicit)
        errors.append((y[:, 0] - _relaxation(t, alpha, 1.0, 0.5)).abs().max().item())
    slopes = -np.diff(np.log2(errors))  # five halvings
    expected = SCHEMES[method].order(alpha, implicit)
    assert np.all(np.abs(slopes - expected) <= 0.15), (slopes, expected)


@pytest.mark.parametrize("alpha", [1.2, 1.7, 2.0])
@pytest.mark.parametrize("method,implicit", [m for m in HIGH_ORDER if m[0] != "gl"])
def test_product_rules_are_exact_for_constant_f(alpha, method, implicit):
    t = torch.linspace(0.0, 2.0, 41, dtype=F64)
    y = fdeint(lambda t, y: torch.full_like(y, 0.7), _pair(0.3, -0.2), t, alpha, method=method, implicit=implicit)
    exact = 0.3 - 0.2 * t + 0.7 * t**alpha / math.gamma(alpha + 1.0)
    assert (y[:, 0] - exact).abs().max().item() <= 1e-12


@pytest.mark.parametrize("alpha", [1.2, 1.7])
@pytest.mark.parametrize("implicit", [False, True])
def test_trapezoid_is_exact_for_linear_f(alpha, implicit):
    t = torch.linspace(0.0, 2.0, 41, dtype=F64)
    y = fdeint(lambda t, y: t * torch.ones_like(y), _pair(1.0, 2.0), t, alpha, method="trap", implicit=implicit)
    exact = 1.0 + 2.0 * t + t ** (alpha + 1.0) / math.gamma(alpha + 2.0)
    assert (y[:, 0] - exact).abs().max().item() <= 1e-12


def test_gl_matches_an_independent_recursion():
    """Explicit Caputo GL written out: h^-a sum_j g_j (y_{n-j} - T(t_{n-j})) = f(t_{n-1}, y_{n-1})."""
    a, n, h = 1.6, 80, 0.025
    g = [1.0]
    for j in range(1, n + 1):
        g.append(g[-1] * (1.0 - (a + 1.0) / j))
    taylor = [0.4 - 1.1 * h * k for k in range(n + 1)]
    y = [0.4]
    for k in range(1, n + 1):
        u = h**a * (-math.sin(y[k - 1])) - sum(g[j] * (y[k - j] - taylor[k - j]) for j in range(1, k + 1))
        y.append(taylor[k] + u)
    t = torch.linspace(0.0, n * h, n + 1, dtype=F64)
    ours = fdeint(lambda t, y: -torch.sin(y), _pair(0.4, -1.1), t, a, method="gl")
    assert np.abs(ours[:, 0].numpy() - np.array(y)).max() <= 1e-13


def test_fractionaldiffeq_jl_problem():
    """FractionalDiffEq.jl's `D^1.8 y = 1 - y`, `y(0) = y'(0) = 0`: `y = 1 - E_1.8(-t^1.8)`."""
    t = torch.linspace(0.0, 5.0, 501, dtype=F64)
    y = fdeint(lambda t, y: 1.0 - y, _pair(0.0, 0.0), t, 1.8, method="trap", implicit=True)
    exact = 1.0 - mittag_leffler(-t**1.8, 1.8)
    assert (y[:, 0] - exact).abs().max().item() <= 2e-5


def test_alpha_two_is_a_second_order_ode():
    t = torch.linspace(0.0, 3.0, 301, dtype=F64)
    fractional = fdeint(lambda t, y: -y, _pair(1.0, 0.0), t, 2.0, method="trap", implicit=True)
    delegated = fdeint(lambda t, y: -y, _pair(1.0, 0.0), t, 2.0, method="rk4")
    assert delegated.shape == fractional.shape == (301, 1)
    assert (delegated[:, 0] - torch.cos(t)).abs().max().item() <= 1e-8
    assert (fractional[:, 0] - torch.cos(t)).abs().max().item() <= 1e-4


def test_gradients_reach_the_slope_and_the_order():
    t = torch.linspace(0.0, 1.0, 17, dtype=F64)

    def solve(y1, alpha):
        return fdeint(lambda t, y: -y + 0.3 * torch.cos(y), (torch.ones(2, dtype=F64), y1), t, alpha, method="trap")

    y1 = torch.tensor([0.5, -0.25], dtype=F64, requires_grad=True)
    alpha = torch.tensor(1.4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (y1, alpha))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(alpha=1.5, y0=torch.ones(1, dtype=F64)),
         r"alpha=1.5 takes ceil\(alpha\)=2 initial value\(s\): pass y0=\(y\(t0\), y'\(t0\)\); got a tensor"),
        (dict(alpha=0.5, y0=_pair(1.0, 0.0)), r"alpha=0.5 takes ceil\(alpha\)=1 initial value\(s\)"),
        (dict(alpha=2.5), r"alpha must satisfy 0 < alpha <= 2 \(Caputo order\), got 2.5"),
        (dict(alpha=1.5, method="l1"), r"method 'l1' takes 0 < alpha <= 1; alpha=1.5 is solved by 'gl', 'pred', 'trap'"),
        (dict(alpha=1.5, method="flmm-trap"), r"method 'flmm-trap' takes 0 < alpha <= 1"),
        (dict(alpha=1.5, memory="soe"), r"memory='soe' compresses the weights of orders up to 1"),
        (dict(alpha=1.5, adjoint=True), r"the discrete adjoint covers orders up to 1"),
        (dict(alpha=[1.5, 0.5], coefficients=[1.0, 1.0]), r"multi-term equations take orders 0 < alpha <= 1"),
        (dict(alpha=1.5, y0=(torch.ones(1, dtype=F64), torch.ones(2, dtype=F64))), r"y0\[1\] must match y0\[0\]"),
        (dict(alpha=1.5, y0=(torch.ones(1, dtype=F64),) * 3), r"y0 as a sequence holds the initial values"),
        (dict(alpha=1.5, method="rk4"), r"'rk4' is an integer-order torchdiffeq solver; it needs alpha == 1 or 2"),
    ],
)
def test_refusals_name_the_problem(kwargs, match):
    args = dict(y0=_pair(1.0, 0.0), alpha=1.5, method="gl")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fdeint(lambda t, y: -y, args.pop("y0"), torch.linspace(0.0, 1.0, 11, dtype=F64), args.pop("alpha"), **args)
