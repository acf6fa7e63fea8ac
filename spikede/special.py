r"""Mittag-Leffler function and exact solutions used to test the solvers.

`E_{a,b}(z) = sum_k z^k / Gamma(a k + b)` is computed from its Laplace-transform
representation (the method of Garrappa, SIAM J. Numer. Anal. 53 (2015), with the
parabolic contour of Weideman & Trefethen, Math. Comp. 76 (2007)):

$$
E_{a,b}(z) = \frac{1}{2\pi i}\int_C \frac{e^s s^{a-b}}{s^a - z}\,ds
             + \sum_{s_k \text{ right of } C} \frac{1}{a} s_k^{1-b} e^{s_k},
\qquad s_k = |z|^{1/a} e^{i(\arg z + 2\pi k)/a},\ |\arg z + 2\pi k| < a\pi,
$$

with `C: s(u) = mu (1 + i u)^2` and the trapezoidal rule in `u`.  `mu` puts
every pole `s_k` either well inside the parabola or well outside it (then its
residue is added), and the step is chosen for about 1e-15 relative accuracy.  Unlike
the power series, this stays accurate for large `|z|` (the series' terms grow like
`exp(|z|^(1/a))`).
"""

from __future__ import annotations

import math

import torch

from .solvers.weights import as_alpha_tensor, gamma

__all__ = ["mittag_leffler", "relaxation", "caputo_power", "diethelm_problem"]

_LOG_FLOAT64_MAX = math.log(torch.finfo(torch.float64).max)
_LOG_TARGET = 42.0  # about -ln(1e-18): the quadrature's error budget before scaling


def _check_order(alpha, beta) -> tuple[float, float]:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a real number, got {alpha!r}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(f"beta must be a real number, got {beta!r}")
    if not (0.0 < alpha <= 2.0):
        raise ValueError(f"alpha must satisfy 0 < alpha <= 2, got {alpha}")
    if not (math.isfinite(beta) and beta > 0.0):
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    return float(alpha), float(beta)


def _poles(z: torch.Tensor, alpha: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Candidate poles `s_k` and masks of where they lie on the principal sheet."""
    radius = z.abs() ** (1.0 / alpha)
    angle = torch.angle(z)
    out = []
    for k in (-1, 0, 1):
        theta = angle + 2.0 * math.pi * k
        valid = (theta.abs() < alpha * math.pi) & (radius > 0)
        out.append((torch.polar(radius, theta / alpha), valid))
    return out


def _contour(z: torch.Tensor, alpha: float):
    """Per element: `mu`, the trapezoid step `h`, the half-width in `u` and, for each
    candidate pole of `_poles`, where it lies outside the contour (residue added)."""
    poles = _poles(z, alpha)
    real_sqrt = [torch.where(valid, torch.sqrt(s).real, torch.zeros_like(z.real)) for s, valid in poles]
    r_max = torch.stack(real_sqrt).max(0).values
    outside_mode = r_max > 1.0
    mu = torch.where(outside_mode, r_max**2 / 4.0, torch.full_like(r_max, 4.0))
    d = torch.ones_like(mu)
    log_scale = torch.zeros_like(mu)
    outside = []
    for (s, valid), rs in zip(poles, real_sqrt):
        q = rs / mu.sqrt()
        is_out = valid & (q > 1.0)
        d = torch.where(valid, torch.minimum(d, (q - 1.0).abs()), d)
        log_scale = torch.where(is_out, torch.maximum(log_scale, s.real), log_scale)
        outside.append(is_out)
    d = d.clamp(min=0.2)
    growth = (mu * (1.0 + d) ** 2 - log_scale).clamp(min=0.0)
    h = 2.0 * math.pi * d / (_LOG_TARGET + growth)
    half_width = 1.05 * torch.sqrt(1.0 + _LOG_TARGET / mu)
    return mu, h, half_width, outside


def mittag_leffler(z: torch.Tensor, alpha: float, beta: float = 1.0) -> torch.Tensor:
    """Two-parameter Mittag-Leffler function `E_{alpha,beta}(z)`, elementwise.

    `z`: real or complex tensor (any shape, any device); the result has `z`'s
    dtype and device and is differentiable in `z`.  `0 < alpha <= 2`,
    `beta > 0`.  Accuracy about 1e-13 relative in float64 (float32 inputs are
    computed in float64 and rounded); where the value is exponentially small
    (`alpha = 1`, `beta != 1`, large negative `z`) the error is about 1e-16
    absolute.  `E_{1,1}(z)` is `exp(z)` exactly.  Large positive `z` overflows to `inf`
    where `exp(z^(1/alpha))/alpha` does.  An empty `z` gives an empty result; on the real axis
    `E(+inf) = inf` and `E(-inf) = 0` (for `alpha < 2`, or `alpha = 2` with `beta > 1`;
    otherwise `E_{2,beta}(-x)` keeps oscillating and the answer is NaN), complex infinities and
    NaN give NaN.
    """
    alpha, beta = _check_order(alpha, beta)
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be a tensor, got {type(z).__name__}")
    if not (z.is_floating_point() or z.is_complex()):
        raise TypeError(f"z must be a floating-point or complex tensor, got dtype {z.dtype}")
    if alpha == 1.0 and beta == 1.0:
        return torch.exp(z)
    if z.numel() == 0:
        return torch.empty_like(z)
    finite = torch.isfinite(z)
    if not bool(finite.all()):
        return _with_limits(z, finite, alpha, beta)
    zc = z.to(torch.complex128)
    with torch.no_grad():
        mu, h, half_width, outside = _contour(zc.detach(), alpha)
        n_nodes = int(torch.ceil((half_width / h).max()).item())
    k = torch.arange(-n_nodes, n_nodes + 1, dtype=torch.float64, device=z.device)
    u = h[..., None] * k
    mu_ = mu[..., None]
    s = mu_ * torch.complex(1.0 - u * u, 2.0 * u)
    ds = 2.0 * mu_ * torch.complex(-u, torch.ones_like(u))
    integrand = torch.exp(s) * s ** (alpha - beta) / (s**alpha - zc[..., None]) * ds
    value = integrand.sum(-1) * (h / (2.0 * math.pi)).to(torch.complex128) / 1j
    for (pole, _), is_out in zip(_poles(zc, alpha), outside):
        residue = torch.exp(pole) * pole ** (1.0 - beta) / alpha
        value = value + torch.where(is_out, residue, torch.zeros_like(residue))
        # where the residue overflows (|E| > float max) so does the quadrature: answer inf
        log_size = pole.real + (1.0 - beta) * torch.log(pole.abs()) - math.log(alpha)
        overflow = is_out & (log_size > _LOG_FLOAT64_MAX)
        value = torch.where(overflow, torch.full_like(value, complex(math.inf, 0.0)), value)
    value = torch.where(zc == 0, torch.full_like(value, 1.0 / math.gamma(beta)), value)
    if z.is_complex():
        return value.to(z.dtype)
    return value.real.to(z.dtype)


def _with_limits(z: torch.Tensor, finite: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    r"""`mittag_leffler` where some `z` are infinite or NaN: the finite ones as usual, and the limits
    $E_{\alpha,\beta}(+\infty) = +\infty$ and $E_{\alpha,\beta}(-\infty) = 0$ on the real axis
    (the latter for $\alpha < 2$, or $\beta > 1$ at $\alpha = 2$, where the oscillation of
    $E_{2,\beta}(-x)$ dies out); `NaN` where there is no limit (complex infinities, $\alpha = 2$ with
    $\beta \le 1$) or `z` is `NaN`."""
    value = mittag_leffler(torch.where(finite, z, torch.zeros_like(z)), alpha, beta)
    limit = torch.full_like(value, math.nan)
    if not z.is_complex():
        limit = torch.where(z == math.inf, torch.full_like(value, math.inf), limit)
        if alpha < 2.0 or beta > 1.0:
            limit = torch.where(z == -math.inf, torch.zeros_like(value), limit)
    return torch.where(finite, value, limit)


def relaxation(t: torch.Tensor, alpha: float, lam: float = 1.0, y0: float = 1.0) -> torch.Tensor:
    """Exact solution `y = y0 E_alpha(-lam t^alpha)` of `D^alpha y = -lam y` (Caputo)."""
    return y0 * mittag_leffler(-lam * t**alpha, alpha)


def caputo_power(t: torch.Tensor, p: float, alpha) -> torch.Tensor:
    """`D^alpha t^p = Gamma(p+1)/Gamma(p+1-alpha) t^(p-alpha)` (Caputo, `p > 0`)."""
    a = as_alpha_tensor(alpha, t.device)
    c = gamma(torch.tensor(p + 1.0, dtype=torch.float64)) / gamma(p + 1.0 - a)
    return (c * t.to(torch.float64) ** (p - a)).to(t.dtype)


def diethelm_problem(alpha: float):
    """Nonlinear test problem of Diethelm, Ford & Freed (2002), exact `y = t^8 - 3 t^(4+a/2) + 9/4 t^a`.

    `D^a y = 40320/Gamma(9-a) t^(8-a) - 3 Gamma(5+a/2)/Gamma(5-a/2) t^(4-a/2)
    + 9/4 Gamma(a+1) + (3/2 t^(a/2) - t^4)^3 - y^(3/2)`, `y(0) = 0`.
    Returns `(func, exact)`.
    """
    a = float(alpha)
    c8 = 40320.0 / math.gamma(9.0 - a)
    c4 = 3.0 * math.gamma(5.0 + a / 2.0) / math.gamma(5.0 - a / 2.0)
    c0 = 2.25 * math.gamma(a + 1.0)

    def func(t, y):
        forcing = c8 * t ** (8.0 - a) - c4 * t ** (4.0 - a / 2.0) + c0 + (1.5 * t ** (a / 2.0) - t**4) ** 3
        return forcing - y.clamp(min=0.0) ** 1.5

    def exact(t):
        return t**8 - 3.0 * t ** (4.0 + a / 2.0) + 2.25 * t**a

    return func, exact
