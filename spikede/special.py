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

import numpy
import torch

from .solvers.weights import as_alpha_tensor, gamma

__all__ = ["mittag_leffler", "prabhakar", "relaxation", "caputo_power", "diethelm_problem"]

_LOG_FLOAT64_MAX = math.log(torch.finfo(torch.float64).max)
_LOG_TARGET = 42.0  # about -ln(1e-18): the quadrature's error budget before scaling
_AMPLE_SEPARATION = 0.5  # the parabola: the smallest mu that keeps the poles this far (see _contour)
_NODES_PER_CHUNK = 1 << 21  # elements x quadrature nodes evaluated at once (complex128: 32 MiB per array)


def _check_order(alpha, beta) -> tuple[float, float]:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a real number, got {alpha!r}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(f"beta must be a real number, got {beta!r}")
    if not (0.0 < alpha and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
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


def _contour(z: torch.Tensor, poles: list[tuple[torch.Tensor, torch.Tensor]]):
    """Per element of `z`: `mu`, the trapezoid step `h`, the half-width in `u` and, for each
    candidate pole of `poles` (`_poles(z, alpha)`), where it lies outside the contour (residue added).

    A pole `s` lies outside the parabola `mu (1 + iu)^2` when `Re sqrt(s) > sqrt(mu)`, and the
    quadrature converges like `exp(-2 pi d / h)` with `d = |Re sqrt(s) / sqrt(mu) - 1|` (at most
    1, the branch cut).  `sqrt(mu)` is chosen among `1`, `2`, `r / 2`, `2 r` and the geometric means
    of the poles' `r = Re sqrt(s)` as the one that keeps every pole farthest from the contour, where
    any `d >= _AMPLE_SEPARATION` counts as far enough and then the smallest `mu` wins: the integrand
    reaches `e^mu` on the contour, and where the value is small against it (values that decay like
    `1/z^2`, as `E_{a,a}` and `E^gamma_{a,b}` with `b - a gamma` a non-positive integer do) that
    `e^mu` shows.  `E_{0.8,0.8}` at `|z|^(1/a) = 100` near the sector's edge erred 1.3e-12 when the
    widest separation won (`mu = 4`), 7e-14 now; `E_{1.2,0.2}` at radius 200, 4.6e-11 and 1e-13.
    One condition: `mu` may not exceed the exponent of the largest residue added (the size of the
    value) or 4, else the sum cancels to noise (this was the 1e11-sized error of
    `E_{0.3}(5.885 - 3.289i)`).
    """
    nan = torch.full_like(z.real, math.nan)
    roots = [torch.where(valid, torch.sqrt(s).real, nan) for s, valid in poles]
    candidates = [torch.full_like(z.real, 1.0), torch.full_like(z.real, 2.0)]
    for i, r in enumerate(roots):
        candidates += [r / 2.0, 2.0 * r] + [torch.sqrt(r * other) for other in roots[i + 1:]]
    best_m, best_score = candidates[0], torch.full_like(z.real, -math.inf)
    for m in candidates:
        sep = torch.ones_like(z.real)
        cap = torch.full_like(z.real, 4.0)
        for (s, valid), r in zip(poles, roots):
            sep = torch.where(valid, torch.minimum(sep, (r / m - 1.0).abs()), sep)
            cap = torch.where(valid & (r > m), torch.maximum(cap, s.real), cap)
        score = torch.where(torch.isfinite(m) & (m >= 0.5) & (m * m <= cap), sep, torch.full_like(sep, -math.inf))
        both_ample = torch.minimum(score, best_score) >= _AMPLE_SEPARATION
        better = torch.where(both_ample, m < best_m, score > best_score)
        best_m, best_score = torch.where(better, m, best_m), torch.where(better, score, best_score)
    mu = best_m**2
    d = best_score.clamp(min=0.05, max=1.0)
    log_scale = torch.zeros_like(mu)
    outside = []
    for (s, valid), r in zip(poles, roots):
        is_out = valid & (r > best_m)
        log_scale = torch.where(is_out, torch.maximum(log_scale, s.real), log_scale)
        outside.append(is_out)
    growth = (mu * (1.0 + d) ** 2 - log_scale).clamp(min=0.0)
    h = 2.0 * math.pi * d / (_LOG_TARGET + growth)
    half_width = 1.05 * torch.sqrt(1.0 + _LOG_TARGET / mu)
    return mu, h, half_width, outside


def mittag_leffler(z: torch.Tensor, alpha: float, beta: float = 1.0) -> torch.Tensor:
    """Two-parameter Mittag-Leffler function `E_{alpha,beta}(z)`, elementwise.

    `z`: real or complex tensor (any shape, any device); the result has `z`'s
    dtype and device and is differentiable in `z`.  `alpha > 0`, `beta > 0`; an order above 2
    is reduced to `m = ceil(alpha / 2)` evaluations of order `alpha / m` at the `m`-th roots of
    `z` (see `_split_order`), where non-finite `z` give NaN.  Accuracy about 1e-13 relative in float64, on the real axis and on the
    complex plane (tested against high-precision series for every argument of `z`; float32
    inputs are computed in float64 and rounded); where the value is exponentially small
    (`alpha = 1`, `beta != 1`, large negative `z`) the error is about 1e-16
    absolute.  `E_{1,1}(z)` is `exp(z)` exactly.  Large positive `z` overflows to `inf`
    where `exp(z^(1/alpha))/alpha` does.  An empty `z` gives an empty result; on the real axis
    `E(+inf) = inf` and `E(-inf) = 0` (for `alpha < 2`, or `alpha = 2` with `beta > 1`;
    otherwise `E_{2,beta}(-x)` keeps oscillating and the answer is NaN), complex infinities and
    NaN give NaN; a complex value too large for float64 is returned as `inf + 0j`.  Large
    batches are evaluated a chunk at a time (a few tens of MiB, whatever the batch size).
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
    if alpha > 2.0:
        return _split_order(z, alpha, beta)
    finite = torch.isfinite(z)
    if not bool(finite.all()):
        return _with_limits(z, finite, alpha, beta)
    zc = z.to(torch.complex128)
    poles = _poles(zc, alpha)
    with torch.no_grad():
        mu, h, half_width, outside = _contour(zc.detach(), poles)
    value = _integrate(zc.reshape(-1), mu.reshape(-1), h.reshape(-1), half_width, alpha, beta).reshape(zc.shape)
    for (pole, _), is_out in zip(poles, outside):
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


def _split_order(z: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    r"""$E_{\alpha,\beta}(z) = \frac{1}{m} \sum_{k=0}^{m-1} E_{\alpha/m,\beta}\bigl(z^{1/m} e^{2\pi i k/m}\bigr)$
    with $m = \lceil \alpha/2 \rceil$: the sum over the roots keeps exactly the series terms
    $z^{mj} / \Gamma(\alpha j + \beta)$ (Gorenflo, Kilbas, Mainardi & Rogosin, *Mittag-Leffler
    Functions*, 2014, eq. 4.2.7 generalised to any $\beta$).  Non-finite `z` give NaN."""
    m = math.ceil(alpha / 2.0)
    finite = torch.isfinite(z)
    zc = torch.where(finite, z, torch.zeros_like(z)).to(torch.complex128)
    root = zc ** (1.0 / m)
    value = sum(mittag_leffler(root * complex(math.cos(2.0 * math.pi * k / m), math.sin(2.0 * math.pi * k / m)),
                               alpha / m, beta) for k in range(m)) / m
    value = torch.where(finite, value, torch.full_like(value, complex(math.nan, math.nan)))
    if z.is_complex():
        return value.to(z.dtype)
    return value.real.to(z.dtype)


def _integrate(z: torch.Tensor, mu: torch.Tensor, h: torch.Tensor, half_width: torch.Tensor, alpha: float,
               beta: float, gamma: float = 1.0, continued: bool = False) -> torch.Tensor:
    """`_quadrature` over 1-D `z` with nodes `|u| <= half_width` spaced `h`: elements x quadrature
    nodes a chunk of elements at a time, so that memory stays bounded for any batch."""
    n_nodes = int(torch.ceil((half_width / h).max()).item())
    k = torch.arange(-n_nodes, n_nodes + 1, dtype=torch.float64, device=z.device)
    chunk = max(1, _NODES_PER_CHUNK // (2 * n_nodes + 1))
    return torch.cat([_quadrature(zz, mm, hh, k, alpha, beta, gamma, continued)
                      for zz, mm, hh in zip(*(x.split(chunk) for x in (z, mu, h)))])


def _quadrature(z: torch.Tensor, mu: torch.Tensor, h: torch.Tensor, k: torch.Tensor, alpha: float, beta: float,
                gamma: float = 1.0, continued: bool = False):
    """The trapezoid sum over the parabola `s(u) = mu (1 + iu)^2`, `u = h k`, for 1-D `z`, of the
    Laplace inverse of `s^(alpha gamma - beta) / (s^alpha - z)^gamma`.  `continued`: the power of
    `s^alpha - z` continued along the parabola from its vertex (`k` symmetric about 0) instead of
    the principal one: the branch whose cuts run from the roots of `s^alpha = z` to the left."""
    u = h[:, None] * k
    mu_ = mu[:, None]
    s = mu_ * torch.complex(1.0 - u * u, 2.0 * u)
    ds = 2.0 * mu_ * torch.complex(-u, torch.ones_like(u))
    denominator = s**alpha - z[:, None]
    if continued:
        log = torch.log(denominator)
        denominator = torch.exp(gamma * torch.complex(log.real, _unwrapped(log.imag)))
    elif gamma != 1.0:
        denominator = denominator**gamma
    integrand = torch.exp(s) * s ** (alpha * gamma - beta) / denominator * ds
    return integrand.sum(-1) * (h / (2.0 * math.pi)).to(torch.complex128) / 1j


def _unwrapped(angle: torch.Tensor) -> torch.Tensor:
    """The phases `[rows, 2n + 1]` made continuous outward from the middle column (kept as it is)."""
    middle = angle.shape[-1] // 2
    right = _continued(angle[:, middle:])
    left = _continued(angle[:, : middle + 1].flip(-1)).flip(-1)
    return torch.cat([left[:, :-1], right], -1)


def _continued(angle: torch.Tensor) -> torch.Tensor:
    """The phases `[rows, n]` along a path made continuous from the first column (kept as it is):
    each step is taken modulo `2 pi` into `[-pi, pi]`, so the path must be sampled finely enough
    that the true phase moves less than `pi` between neighbours."""
    step = torch.diff(angle, dim=-1)
    step = step - 2.0 * math.pi * torch.round(step.detach() / (2.0 * math.pi))
    return torch.cat([angle[:, :1], angle[:, :1] + torch.cumsum(step, -1)], -1)


def prabhakar(z: torch.Tensor, alpha: float, beta: float = 1.0, gamma: float = 1.0) -> torch.Tensor:
    r"""Three-parameter (Prabhakar) Mittag-Leffler function, elementwise:

    $$
    E^{\gamma}_{\alpha,\beta}(z) = \sum_{k \ge 0} \frac{(\gamma)_k\, z^k}{k!\, \Gamma(\alpha k + \beta)},
    $$

    `(gamma)_k` the rising factorial (Prabhakar, Yokohama Math. J. 19, 1971); `gamma = 1` is
    `mittag_leffler`.  For `0 < alpha <= 2`, `beta > 0`, `gamma > 0`, and any finite `z`.  The
    function is the inverse Laplace transform of `s^(alpha gamma - beta) / (s^alpha - z)^gamma` at
    `t = 1` (Garrappa, SIAM J. Numer. Anal. 53, 2015):

    $$
    E^{\gamma}_{\alpha,\beta}(z) = \frac{1}{2\pi i}\int_C
        \frac{e^s s^{\alpha\gamma-\beta}}{(s^\alpha - z)^\gamma}\,ds
        + \sum_{s_j \text{ right of } C} \frac{1}{2\pi i}\oint_{H_j}
        \frac{e^s s^{\alpha\gamma-\beta}}{(s^\alpha - z)^\gamma}\,ds .
    $$

    `C` is `mittag_leffler`'s parabola `mu (1 + iu)^2` (`_contour`; where `beta - alpha gamma` is a
    non-positive integer the value's leading term `z^(-gamma) / Gamma(beta - alpha gamma)` vanishes,
    and the smallest `mu` that keeps the roots far enough matters: `mu = 4` left 2.4e-12 at
    `|z|^(1/alpha) = 100`, `mu = 1` 2e-14).  The power of `s^alpha - z` is continued
    along it from its vertex, so that the cuts of the roots `s_j` of `s^alpha = z` inside it run to
    the left, inside.  A root `s_j` right of `C` is a branch point (a pole when `gamma` is an
    integer); its cut is taken along the parabola through it, `mu_j (1 + iu)^2`, away from the real
    axis, where `e^s` decays like `e^(-mu_j u^2)`, and `H_j` wraps that cut: a circle of radius
    `delta` (1 to 3, `gamma - 1` where room allows) around `s_j` and the cut's two sides, whose values
    differ by the factor `e^(-+2 pi i gamma)`.  The parabola's integrand stays below
    `e^mu <= e^max(4, Re s_j)` and the loop's below about `e^(Re s_j + delta)`, while the value grows
    like `e^(Re s_j)`: the sum does not cancel for any `|z|`.
    Quadrature: the trapezoidal rule on `C`, Gauss-Legendre on the circle and on the cut (in
    pieces graded towards `s_j`).  On the non-negative real axis the series has positive terms and is
    summed (in log space).

    Real or complex `z` of any shape; differentiable in `z`.  About 1e-13 relative (tested against
    the series at high precision up to `|z|^(1/alpha) = 200`); where the value is exponentially
    small (`alpha = 1`, large negative `z`) about 1e-16 absolute.  Values beyond float64's range are
    `inf`.
    """
    if gamma == 1.0:
        return mittag_leffler(z, alpha, beta)
    alpha, beta = _check_order(alpha, beta)
    if alpha > 2.0:
        raise ValueError(f"prabhakar takes 0 < alpha <= 2, got alpha={alpha}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    if not isinstance(z, torch.Tensor) or not (z.is_floating_point() or z.is_complex()):
        raise TypeError(f"z must be a floating-point or complex tensor, got {type(z).__name__}")
    if z.numel() == 0:
        return torch.empty_like(z)
    if not bool(torch.isfinite(z).all()):
        raise ValueError("prabhakar needs finite z")
    flat = z.to(torch.complex128).reshape(-1)
    on_axis = (flat.imag == 0) & (flat.real >= 0)
    integrated = torch.where(on_axis, torch.full_like(flat, -1.0), flat)  # the axis takes the series
    with torch.no_grad():
        roots = _poles(integrated.detach(), alpha)
        mu, h, half_width, outside = _contour(integrated, roots)
    value = _integrate(integrated, mu, h, half_width, alpha, beta, gamma, continued=True)
    for j, ((root, _), out) in enumerate(zip(roots, outside)):
        if not bool(out.any()):
            continue
        index = out.nonzero().squeeze(-1)
        others = [torch.where(valid, other, torch.full_like(other, math.inf))[index]
                  for i, (other, valid) in enumerate(roots) if i != j]
        value = value.index_add(0, index, _cut_loops(integrated[index], root[index], others, mu[index],
                                                        alpha, beta, gamma))
    overflow = value.real.isinf() | value.imag.isinf()  # a loop beyond float64 (inf + finite is NaN)
    value = torch.where(overflow, torch.full_like(value, complex(math.inf, 0.0)), value)
    if bool(on_axis.any()):
        index = on_axis.nonzero().squeeze(-1)
        series = _positive_series(flat.real[index], alpha, beta, gamma).to(torch.complex128)
        value = value.index_put((index,), series)
    value = value.reshape(z.shape)
    return value.to(z.dtype) if z.is_complex() else value.real.to(z.dtype)


_ARM_NODES = 20  # Gauss-Legendre nodes per piece of a cut
_ARM_PHASE = 8.0  # largest change of the exponent's imaginary part over one piece of a cut (radians)
_ARM_DEPTH = 50.0  # a cut ends where e^s has fallen by e^-50 below e^(Re s_j)
_CIRCLE_NODES = 48  # Gauss-Legendre nodes on the circle around a root
_PATH_SAMPLES = 64  # samples of each leg of the path along which a cut's branch is found


def _cut_loops(z: torch.Tensor, root: torch.Tensor, others: list[torch.Tensor], mu: torch.Tensor, alpha: float,
               beta: float, gamma: float) -> torch.Tensor:
    """`_cut_loop` over 1-D `z`, a chunk of elements at a time (bounded memory for any batch)."""
    chunk = max(1, _NODES_PER_CHUNK // 2048)
    parts = zip(*(x.split(chunk) for x in (z, root, mu, *others)))
    return torch.cat([_cut_loop(zz, rr, list(oo), mm, alpha, beta, gamma) for zz, rr, mm, *oo in parts])


def _cut_loop(z: torch.Tensor, root: torch.Tensor, others: list[torch.Tensor], mu: torch.Tensor, alpha: float,
              beta: float, gamma: float) -> torch.Tensor:
    """`(1/2 pi i)` times the integral around the cut of the root `s_j` (`root`, right of the parabola
    `mu (1 + iu)^2`), for 1-D `z`.

    The cut runs along the parabola through the root, `s(u) = mu_j (1 + iu)^2` with
    `sqrt(mu_j) = Re sqrt(s_j)`, from `u_j = Im sqrt(s_j) / Re sqrt(s_j)` away from the real axis
    (`sigma = sign u_j`); it lies outside `C` and meets no other root.  The loop is a circle of radius
    `delta` around `s_j` (`_circle_radius`, but at most a quarter of the distance to the other roots
    and to the negative axis, and of the parabola's radius of curvature) joined at the junction
    `s(u_j + sigma du)` to the cut's two sides: the side facing `C` takes the branch of
    `_branch_at_junction`, the other differs by `e^(-2 pi i sigma gamma)`.  Each part is summed as
    `e^(s - Re s_j)`, the size `e^(Re s_j)` multiplied in at the end (`inf` beyond float64)."""
    root_sqrt = torch.sqrt(root)
    mu_j = root_sqrt.real**2
    u_j = root_sqrt.imag / root_sqrt.real
    sigma = torch.where(u_j >= 0, 1.0, -1.0).to(torch.float64)
    distance = torch.where(root.real > 0, root.abs(), root.imag.abs())
    for other in others:
        distance = torch.minimum(distance, (other - root).abs())
    curvature_radius = 2.0 * mu_j * (1.0 + u_j * u_j) ** 1.5
    radius = torch.minimum(torch.minimum(torch.full_like(distance, _circle_radius(gamma)), distance / 4.0),
                           curvature_radius / 4.0)
    du = radius / (2.0 * mu_j * torch.sqrt(1.0 + u_j * u_j))  # |ds/du| = 2 mu_j |1 + iu|
    junction = _parabola(mu_j, u_j + sigma * du)
    anchor = _branch_at_junction(z, mu, mu_j, u_j + sigma * du, alpha)

    def summed(s: torch.Tensor, ds: torch.Tensor) -> torch.Tensor:
        log_power = _log_power(torch.cat([junction[:, None], s], -1), z, alpha, anchor)[:, 1:]
        return (torch.exp(s - root.real[:, None] - gamma * log_power) * s ** (alpha * gamma - beta) * ds).sum(-1)

    s, ds = _along_cut(mu_j, u_j, sigma, du)
    arm = summed(s, ds) * sigma * (torch.exp(-2j * math.pi * sigma * gamma) - 1.0)
    x, w = _gauss_legendre(_CIRCLE_NODES, z.device)
    phase = torch.angle(junction - root)[:, None] + sigma[:, None] * math.pi * (x + 1.0)
    step = torch.polar((junction - root).abs()[:, None].expand_as(phase), phase)
    circle = summed(root[:, None] + step, 1j * step * math.pi * w)
    loop = (arm + circle) / (2j * math.pi)
    overflow = torch.log(loop.abs()) + root.real > _LOG_FLOAT64_MAX
    return torch.where(overflow, torch.full_like(loop, complex(math.inf, 0.0)),
                       loop * torch.exp(root.real.clamp(max=_LOG_FLOAT64_MAX)))


def _branch_at_junction(z: torch.Tensor, mu: torch.Tensor, mu_j: torch.Tensor, u: torch.Tensor,
                        alpha: float) -> torch.Tensor:
    """`log(s^alpha - z)` at `s = mu_j (1 + iu)^2` on the cut's side facing `C`: continued from `C`'s
    vertex along `C` and then across to the cut, a horizontal path in the `sqrt(s)` plane (where
    both parabolas are vertical lines and the strip between them holds no root on that side)."""
    along = torch.linspace(0.0, 1.0, _PATH_SAMPLES, dtype=torch.float64, device=z.device)
    height = torch.sqrt(mu_j) * u
    on_c = _parabola(mu[:, None], (height / torch.sqrt(mu))[:, None] * along)
    across = torch.complex(torch.sqrt(mu)[:, None] + (torch.sqrt(mu_j) - torch.sqrt(mu))[:, None] * along,
                           height[:, None].expand(-1, _PATH_SAMPLES)) ** 2
    return _log_power(torch.cat([on_c, across[:, 1:]], -1), z, alpha)[:, -1]


def _along_cut(mu_j: torch.Tensor, u_j: torch.Tensor, sigma: torch.Tensor,
               du: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes `s` and weights `ds` (`[rows, n]`) on the cut `mu_j (1 + iu)^2`,
    `u = u_j + sigma t`, from `t = du` to where `e^s` has fallen by `e^-_ARM_DEPTH`: in pieces that
    double in length from `du` (each no longer than its distance from the root, where the integrand
    is singular) up to the length over which `Im s` turns by `_ARM_PHASE`, then of that length."""
    t_end = torch.sqrt(u_j * u_j + _ARM_DEPTH / mu_j) - u_j.abs()
    piece = _ARM_PHASE / (2.0 * mu_j * torch.sqrt(1.0 + (u_j.abs() + t_end) ** 2))
    doublings = torch.floor(torch.log2((piece / du).clamp(min=1.0)))
    count = int((doublings + torch.ceil(t_end / piece)).max().item()) + 2
    k = torch.arange(count + 1, dtype=torch.float64, device=mu_j.device)
    edges = (du[:, None] * 2.0 ** torch.minimum(k, doublings[:, None])
             + piece[:, None] * (k - doublings[:, None]).clamp(min=0.0))
    edges = torch.minimum(edges, t_end[:, None])
    x, w = _gauss_legendre(_ARM_NODES, mu_j.device)
    low, width = edges[:, :-1, None], torch.diff(edges, dim=-1)[..., None]
    t = (low + width * (x + 1.0) / 2.0).reshape(len(mu_j), -1)
    u = u_j[:, None] + sigma[:, None] * t
    weight = (width * w / 2.0).reshape(len(mu_j), -1)
    ds = 2j * mu_j[:, None] * torch.complex(torch.ones_like(u), u) * sigma[:, None] * weight
    return _parabola(mu_j[:, None], u), ds


def _circle_radius(gamma: float) -> float:
    """The radius `delta` of the circle around a root that keeps the loop's parts least above its
    value: near the root the integrand is about `e^s (s - s_j)^-gamma`, which on the circle reaches
    `e^delta delta^-gamma` (smallest at `delta = gamma`) against the value's `1 / Gamma(gamma)`; and
    `s^alpha - z` loses the digits of `|z| / delta` there.  `gamma - 1` (the circle's length counted),
    between 1 and 3."""
    return min(max(gamma - 1.0, 1.0), 3.0)


def _parabola(mu: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """`mu (1 + iu)^2`."""
    return mu * torch.complex(1.0 - u * u, 2.0 * u)


def _log_power(path: torch.Tensor, z: torch.Tensor, alpha: float, anchor: torch.Tensor | None = None) -> torch.Tensor:
    """`log(s^alpha - z)` along each row of points `path` `[rows, n]`, continued from the first
    column: there the principal value, or the one within `pi` of `anchor`."""
    log = torch.log(path**alpha - z[:, None])
    phase = _continued(log.imag)
    if anchor is not None:
        turns = torch.round(((anchor.imag - phase[:, 0]) / (2.0 * math.pi)).detach())
        phase = phase + 2.0 * math.pi * turns[:, None]
    return torch.complex(log.real, phase)


def _gauss_legendre(n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights on `[-1, 1]` (float64, on `device`)."""
    x, w = numpy.polynomial.legendre.leggauss(n)
    return (torch.tensor(x, dtype=torch.float64, device=device), torch.tensor(w, dtype=torch.float64, device=device))


def _positive_series(x: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """`E^gamma_{alpha,beta}(x)` for `x >= 0` by its series (positive terms, summed in log space;
    entries `x < 0` are ignored and give finite junk); near 0 its first two terms."""
    positive = x > 0
    safe = torch.where(positive, x, torch.ones_like(x))
    peak = float(safe.detach().max()) ** (1.0 / alpha)
    if peak > 750.0:  # beyond exp(709): the value overflows
        peak = 750.0
    terms = int((1.5 * peak + 60.0) / alpha) + 20
    k = torch.arange(terms, dtype=torch.float64, device=x.device)
    log_c = torch.lgamma(gamma + k) - math.lgamma(gamma) - torch.lgamma(k + 1.0) - torch.lgamma(alpha * k + beta)
    log_terms = log_c + k * torch.log(safe)[:, None]
    total = torch.logsumexp(log_terms, -1).exp()
    near_zero = 1.0 / math.gamma(beta) + x * gamma / math.gamma(alpha + beta)
    return torch.where(positive, total, near_zero)


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
