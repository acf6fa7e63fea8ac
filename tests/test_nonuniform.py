"""Product integration (`pred`, `trap`) on non-uniform grids (`spikede.solvers.nonuniform`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikede import fdeint
from spikede.solvers.nonuniform import product_nonuniform
from spikede.special import mittag_leffler

F64 = torch.float64
VARIANTS = [("pred", False), ("pred", True), ("trap", False), ("trap", True)]


def _graded(n: int, r: float, end: float = 1.0) -> torch.Tensor:
    return end * (torch.arange(n + 1, dtype=F64) / n) ** r


@pytest.mark.parametrize("method,implicit", VARIANTS)
def test_on_a_uniform_grid_it_is_the_uniform_scheme(method, implicit):
    """The grid-by-grid weights on a uniform grid are the convolution weights: the same solution
    (to rounding: the two sum the same terms with other formulas)."""
    t = torch.linspace(0.0, 2.0, 81, dtype=F64)

    def rhs(t, y):
        return -y + 0.3 * torch.sin(3.0 * t)

    y0 = torch.tensor([1.0, 0.5], dtype=F64)
    uniform = fdeint(rhs, y0, t, 0.6, method=method, implicit=implicit)
    general = product_nonuniform(rhs, y0, t, 0.6, method=method, implicit=implicit, newton_tol=1e-14,
                                 newton_max_iters=50, save_every=1)
    assert (uniform - general).abs().max().item() <= 1e-12


@pytest.mark.parametrize("method,implicit", VARIANTS)
@pytest.mark.parametrize("alpha", [0.3, 0.8, 1.6])
def test_exact_for_constant_f_on_a_graded_mesh(method, implicit, alpha):
    t = _graded(40, 3.0, 2.0)
    y0 = torch.full((1,), 0.4, dtype=F64)
    if alpha > 1:
        y0 = (y0, torch.full((1,), -0.3, dtype=F64))
    y = fdeint(lambda t, y: torch.full_like(y, 0.7), y0, t, alpha, method=method, implicit=implicit)
    exact = 0.4 + (-0.3 * t if alpha > 1 else 0.0) + 0.7 * t**alpha / math.gamma(alpha + 1.0)
    assert (y[:, 0] - exact).abs().max().item() <= 1e-12


@pytest.mark.parametrize("implicit", [False, True])
def test_trapezoid_exact_for_linear_f_on_a_graded_mesh(implicit):
    t = _graded(40, 3.0)
    y = fdeint(lambda t, y: t * torch.ones_like(y), torch.ones(1, dtype=F64), t, 0.45, method="trap",
               implicit=implicit)
    assert (y[:, 0] - (1.0 + t**1.45 / math.gamma(2.45))).abs().max().item() <= 1e-12


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7])
def test_graded_mesh_restores_order_two(alpha):
    """`D^a y = -y`, `y = E_a(-t^a)` (a `t^a` term at 0): implicit trapezoid on `t_j = (j/N)^(2/a)`
    converges at order 2 over four halvings from N = 32 (measured 1.92-2.00), where the uniform
    grid gives about `min(2, 1 + a)` at best (0.5 at a = 0.3).  The mesh's first steps are tiny
    (`(1/512)^6.7 ~ 1e-18` at a = 0.3): the weights must not cancel there."""
    errors = {}
    for r in (1.0, 2.0 / alpha):
        errors[r] = []
        for n in (32, 64, 128, 256, 512):
            t = _graded(n, r)
            y = fdeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, alpha, method="trap", implicit=True)
            errors[r].append((y[:, 0] - mittag_leffler(-t**alpha, alpha)).abs().max().item())
    graded = -np.diff(np.log2(errors[2.0 / alpha]))
    uniform = -np.diff(np.log2(errors[1.0]))
    assert np.all(np.abs(graded - 2.0) <= 0.15), graded
    assert uniform[-1] <= 1.0 + alpha + 0.1 and errors[2.0 / alpha][-1] < errors[1.0][-1] / 30


def test_gradients_by_autograd_on_a_graded_mesh():
    t = _graded(12, 2.0)

    def solve(alpha, y0):
        return fdeint(lambda t, y: -y + 0.2 * torch.cos(y), y0, t, alpha, method="trap", implicit=True)

    alpha = torch.tensor(0.6, dtype=F64, requires_grad=True)
    y0 = torch.tensor([1.0, -0.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (alpha, y0))
