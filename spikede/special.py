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

import cmath
import math

import torch

from .solvers.weights import as_alpha_tensor, gamma

__all__ = ["mittag_leffler", "prabhakar", "relaxation", "caputo_power", "diethelm_problem"]

_LOG_FLOAT64_MAX = math.log(torch.finfo(torch.float64).max)
_LOG_TARGET = 42.0  # about -ln(1e-18): the quadrature's error budget before scaling
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


def _contour(z: torch.Tensor, alpha: float):
    """Per element: `mu`, the trapezoid step `h`, the half-width in `u` and, for each
    candidate pole of `_poles`, where it lies outside the contour (residue added).

    A pole `s` lies outside the parabola `mu (1 + iu)^2` when `Re sqrt(s) > sqrt(mu)`, and the
    quadrature converges like `exp(-2 pi d / h)` with `d = |Re sqrt(s) / sqrt(mu) - 1|` (at most
    1, the branch cut).  `sqrt(mu)` is chosen among `1`, `2`, `r / 2`, `2 r` and the geometric means
    of the poles' `r = Re sqrt(s)` as the one that keeps every pole farthest from the contour (the
    first on a tie: `mu = 1` where no pole matters, which keeps the integrand, up to `e^mu`,
    small against values that decay like `1/z^2`; `mu = 4` left 1.1e-12 there), under
    one condition: the integrand reaches `e^mu` on the contour, so `mu` may not exceed the
    exponent of the largest residue added (the size of the value) or 4, else the sum cancels
    to noise (this was the 1e11-sized error of `E_{0.3}(5.885 - 3.289i)`).
    """
    poles = _poles(z, alpha)
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
        better = score > best_score
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
    with torch.no_grad():
        mu, h, half_width, outside = _contour(zc.detach(), alpha)
    value = _integrate(zc.reshape(-1), mu.reshape(-1), h.reshape(-1), half_width, alpha, beta).reshape(zc.shape)
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

    def outward(half: torch.Tensor) -> torch.Tensor:
        step = torch.diff(half, dim=-1)
        step = step - 2.0 * math.pi * torch.round(step.detach() / (2.0 * math.pi))
        return torch.cat([half[:, :1], half[:, :1] + torch.cumsum(step, -1)], -1)

    right = outward(angle[:, middle:])
    left = outward(angle[:, : middle + 1].flip(-1)).flip(-1)
    return torch.cat([left[:, :-1], right], -1)


def prabhakar(z: torch.Tensor, alpha: float, beta: float = 1.0, gamma: float = 1.0) -> torch.Tensor:
    r"""Three-parameter (Prabhakar) Mittag-Leffler function, elementwise:

    $$
    E^{\gamma}_{\alpha,\beta}(z) = \sum_{k \ge 0} \frac{(\gamma)_k\, z^k}{k!\, \Gamma(\alpha k + \beta)},
    $$

    `(gamma)_k` the rising factorial (Prabhakar, Yokohama Math. J. 19, 1971); `gamma = 1` is
    `mittag_leffler`.  For `0 < alpha <= 2`, `beta > 0`, `gamma > 0`.  The function is the
    inverse Laplace transform of `s^(alpha gamma - beta) / (s^alpha - z)^gamma` at `t = 1`
    (Garrappa, SIAM J. Numer. Anal. 53, 2015), computed on a parabolic contour; for
    `0 < alpha <= 1`:

    - where `|arg z| >= alpha pi` (the negative real axis included) `s^alpha = z` has no root on
      the principal sheet, and `mittag_leffler`'s contour serves;
    - in the sector `|arg z| < alpha pi` the root `z^(1/alpha)` is a branch point, and the cut of
      `(s^alpha - z)^gamma` runs from it to the negative real axis; the contour passes to the
      right of the whole cut, as close as the cancellation allows (its integrand exceeds the value
      by up to `e^(mu - Re z^(1/alpha))`).  This is done for `|z|^(1/alpha) <= 12`, where it keeps
      about 1e-13; larger `z` in the sector are refused with a `ValueError`;
    - on the non-negative real axis the series has positive terms and is summed (in log space;
      `inf` past float64's range).

    For `1 < alpha <= 2` every `z` off the non-negative axis has one or two roots `s^alpha = z`
    on the principal sheet.  The parabola keeps them inside, and the power of `s^alpha - z` is
    continued along it from its vertex, which puts each root's cut inside too (running to the
    left), so that only the roots bound the contour; the integrand then exceeds the value by
    about `e^((Re sqrt s)^2 - Re s)` at a root `s`.  This is done for `|z|^(1/alpha) <= 12`
    (about 2e-13 measured there, 6e-13 at 16); larger `z` are refused with a `ValueError`.  The
    non-negative axis takes the series, as above.

    Real or complex `z` of any shape; differentiable in `z`.  About 1e-13 relative (tested against
    the series at 60 digits); where the value is exponentially small (`alpha = 1`, large negative
    `z`) about 1e-16 absolute.
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
    zc = z.to(torch.complex128)
    on_axis = ((zc.imag == 0) & (zc.real >= 0)).reshape(-1)
    if alpha > 1.0:
        value = _above_one(zc.reshape(-1), on_axis, alpha, beta, gamma).reshape(zc.shape)
        return value.to(z.dtype) if z.is_complex() else value.real.to(z.dtype)
    inner = (torch.angle(zc).abs() < alpha * math.pi - 1e-12).reshape(-1) & ~on_axis
    flat = zc.reshape(-1)
    far = inner & (flat.abs() ** (1.0 / alpha) > _SECTOR_RADIUS * (1.0 + 1e-9))
    if bool(far.any()):
        bad = flat[far][0].item()
        raise ValueError(f"prabhakar covers the sector |arg z| < alpha pi only for |z|^(1/alpha) <= {_SECTOR_RADIUS:g} "
                         f"(beyond, the contour's sum cancels); z = {bad} has |z|^(1/alpha) = "
                         f"{abs(bad) ** (1.0 / alpha):.4g} at arg {cmath.phase(bad):.4g} < alpha pi = "
                         f"{alpha * math.pi:.4g}")
    contour_z = torch.where(on_axis | inner, torch.full_like(flat, -1.0), flat)
    with torch.no_grad():
        mu, h, half_width, _ = _contour(contour_z.detach(), alpha)
        if bool(inner.any()):
            near = torch.where(inner, flat.detach(), torch.ones_like(flat))
            mu_s, h_s, half_s = _sector_contour(near, alpha)
            mu, h, half_width = (torch.where(inner, a, b) for a, b in ((mu_s, mu), (h_s, h), (half_s, half_width)))
    integrated = torch.where(on_axis, torch.full_like(flat, -1.0), flat)  # the axis takes the series
    value = _with_series(flat, on_axis, _integrate(integrated, mu, h, half_width, alpha, beta, gamma),
                         alpha, beta, gamma).reshape(zc.shape)
    return value.to(z.dtype) if z.is_complex() else value.real.to(z.dtype)


def _with_series(flat: torch.Tensor, on_axis: torch.Tensor, integrated: torch.Tensor, alpha: float, beta: float,
                 gamma: float) -> torch.Tensor:
    """The contour's values, and on the non-negative real axis the summed series."""
    series = _positive_series(flat.real, alpha, beta, gamma).to(torch.complex128)
    return torch.where(on_axis, series, integrated)


_SECTOR_RADIUS = 12.0  # largest |z|^(1/alpha) in the sector |arg z| < alpha pi (measured <= 1.3e-13 there)
_SECTOR_LOSS = 1.5  # allowed log excess of the contour's integrand over (max Re sqrt(s) on the cut)^2
_CUT_SAMPLES = 257  # points on the branch cut where its rightmost extent is measured


def _sector_contour(z: torch.Tensor, alpha: float):
    """`(mu, h, half_width)` of a parabola `mu (1 + iu)^2` that leaves the whole cut of
    `(s^alpha - z)^gamma` on its left, for `z` in the sector `|arg z| < alpha pi`.

    The cut is `s = (z - r)^(1/alpha)`, `r >= 0`, from the root `z^(1/alpha)` until `arg(z - r)`
    reaches `alpha pi` (the negative real `s` axis).  A point `s` lies inside the parabola when
    `Re sqrt(s) < sqrt(mu)`; with `m` the cut's largest `Re sqrt(s)`, `sqrt(mu) = c m` with
    `c^2 = 1 + loss / m^2` bounds the integrand's excess `e^(mu - m^2)` by `e^loss`, and the
    trapezoid step follows from the distance `1 - 1/c` as for `_contour`."""
    rho = z.imag.abs() / math.sin(alpha * math.pi)
    reach = (z.real - rho * math.cos(alpha * math.pi)).clamp(min=0.0)
    along = torch.linspace(0.0, 1.0, _CUT_SAMPLES, dtype=torch.float64, device=z.device)
    cut = (z[:, None] - reach[:, None] * along) ** (1.0 / alpha)
    m = torch.sqrt(cut).real.amax(-1).clamp(min=0.0)
    c = torch.sqrt(1.0 + _SECTOR_LOSS / (m * m).clamp(min=1e-300)).clamp(max=2.0)
    root_mu = (c * m).clamp(min=1.0)
    mu = root_mu**2
    d = (1.0 - m / root_mu).clamp(min=0.02, max=1.0)
    growth = (mu * (1.0 + d) ** 2 - (z ** (1.0 / alpha)).real).clamp(min=0.0)
    h = 2.0 * math.pi * d / (_LOG_TARGET + growth)
    return mu, h, 1.05 * torch.sqrt(1.0 + _LOG_TARGET / mu)


_ROOT_RADIUS = 12.0  # largest |z|^(1/alpha) for 1 < alpha <= 2 off the non-negative axis


def _root_contour(z: torch.Tensor, alpha: float):
    """`(mu, h, half_width)` of a parabola `mu (1 + iu)^2` that keeps every root `s_j` of `s^alpha = z`
    on the principal sheet inside (`Re sqrt(s_j) < sqrt(mu)`), as `_sector_contour` does for the
    whole cut; with the power continued along the parabola the cuts run from the roots to the
    left, inside it, so the roots alone bound `mu`."""
    m = torch.zeros_like(z.real)
    top = torch.zeros_like(z.real)
    for root, valid in _poles(z, alpha):
        m = torch.where(valid, torch.maximum(m, torch.sqrt(root).real), m)
        top = torch.where(valid, torch.maximum(top, root.real), top)
    c = torch.sqrt(1.0 + _SECTOR_LOSS / (m * m).clamp(min=1e-300)).clamp(max=2.0)
    root_mu = (c * m).clamp(min=1.0)
    mu = root_mu**2
    d = (1.0 - m / root_mu).clamp(min=0.02, max=1.0)
    growth = (mu * (1.0 + d) ** 2 - top).clamp(min=0.0)
    h = 2.0 * math.pi * d / (_LOG_TARGET + growth)
    return mu, h, 1.05 * torch.sqrt(1.0 + _LOG_TARGET / mu)


def _above_one(flat: torch.Tensor, on_axis: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """`prabhakar` for `1 < alpha <= 2` on 1-D complex `flat`: the series on the non-negative axis,
    elsewhere the parabola of `_root_contour` with the continued power."""
    far = ~on_axis & (flat.abs() ** (1.0 / alpha) > _ROOT_RADIUS * (1.0 + 1e-9))
    if bool(far.any()):
        bad = flat[far][0].item()
        raise ValueError(f"prabhakar with alpha > 1 covers |z|^(1/alpha) <= {_ROOT_RADIUS:g} off the non-negative "
                         f"real axis (beyond, the contour's sum cancels); z = {bad} has |z|^(1/alpha) = "
                         f"{abs(bad) ** (1.0 / alpha):.4g}")
    integrated = torch.where(on_axis, torch.full_like(flat, -1.0), flat)
    with torch.no_grad():
        mu, h, half_width = _root_contour(integrated.detach(), alpha)
    value = _integrate(integrated, mu, h, half_width, alpha, beta, gamma, continued=True)
    return _with_series(flat, on_axis, value, alpha, beta, gamma)


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
