r"""Convolution weights of the fractional integrators (DESIGN.md section 2).

Every function takes `alpha` as a float or a 0-d tensor (gradients flow to a
tensor that requires them), computes in float64, and returns a 1-D float64 tensor
indexed by the lag `j = 0 .. n`; a 1-D `alpha` (one order per state component) gives one
such row per order, `[len(alpha), n + 1]`.  Differences of powers `(j+1)^p - j^p` are
evaluated as `j^p expm1(p log1p(1/j))` so that the weights keep full relative
accuracy at large lags (a plain difference loses `log10(j)` digits); the product trapezoid's
second differences, which would lose up to `2 log10(j)` digits, as binomial series in `1/j`.
"""

from __future__ import annotations

import torch

__all__ = [
    "as_alpha_tensor",
    "gamma",
    "grunwald_letnikov",
    "l1_weights",
    "rectangle_weights",
    "trapezoid_weights",
    "trapezoid_start_weight",
]


def as_alpha_tensor(alpha: float | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """`alpha` as a float64 tensor (0-d, or 1-D for per-component orders) on `device`
    (differentiable if `alpha` is a tensor)."""
    if isinstance(alpha, torch.Tensor):
        return alpha.to(device=device, dtype=torch.float64)
    return torch.tensor(float(alpha), dtype=torch.float64, device=device)


def gamma(x: torch.Tensor) -> torch.Tensor:
    """Gamma function for positive arguments, `exp(lgamma(x))`."""
    return torch.exp(torch.lgamma(x))


def _lags(n: int, device) -> torch.Tensor:
    return torch.arange(n + 1, dtype=torch.float64, device=device)


def _forward_difference_of_power(j: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """`(j+1)^p - j^p` for `j >= 1`, accurate to rounding at every lag."""
    return j**p * torch.expm1(p * torch.log1p(1.0 / j))


def _column(alpha: float | torch.Tensor, device) -> torch.Tensor:
    """`alpha` with a trailing axis of length 1, to broadcast against the lags."""
    return as_alpha_tensor(alpha, device).unsqueeze(-1)


def _with_ones(tail: torch.Tensor) -> torch.Tensor:
    """`tail` (`[..., n]`) after a leading weight 1 at lag 0."""
    return torch.cat([torch.ones(*tail.shape[:-1], 1, dtype=tail.dtype, device=tail.device), tail], -1)


def grunwald_letnikov(alpha: float | torch.Tensor, n: int, device=None) -> torch.Tensor:
    """`g_0 = 1`, `g_j = (1 - (1 + alpha)/j) g_{j-1}`: the coefficients of `(1 - z)^alpha`.

    For `alpha = 1` they are `1, -1, 0, 0, ...` exactly (forward Euler).
    """
    a = _column(alpha, device)
    j = _lags(n, a.device)[1:]
    return _with_ones(torch.cumprod(1.0 - (1.0 + a) / j, -1))


def _difference_weights(p: torch.Tensor, n: int) -> torch.Tensor:
    return _with_ones(_forward_difference_of_power(_lags(n, p.device)[1:], p))


def l1_weights(alpha: float | torch.Tensor, n: int, device=None) -> torch.Tensor:
    """L1 scheme: `b_j = (j+1)^(1-alpha) - j^(1-alpha)`, `b_0 = 1` (Oldham & Spanier; Lin & Xu 2007)."""
    return _difference_weights(1.0 - _column(alpha, device), n)


def rectangle_weights(alpha: float | torch.Tensor, n: int, device=None) -> torch.Tensor:
    """Product rectangle rule: `b_k = (k+1)^alpha - k^alpha`, `b_0 = 1` (Diethelm, Ford & Freed 2002)."""
    return _difference_weights(_column(alpha, device), n)


def trapezoid_weights(alpha: float | torch.Tensor, n: int, device=None) -> torch.Tensor:
    """Product trapezoid rule, interior weights by lag `m = n - j` (Diethelm, Ford & Freed 2002).

    `c_0 = 1` (the weight of `f(t_n, y_n)`), `c_m = (m+1)^(a+1) + (m-1)^(a+1) - 2 m^(a+1)`
    for `m >= 1`; the weight of `f_0` is `trapezoid_start_weight` instead.
    """
    p = _column(alpha, device) + 1.0
    head = _with_ones(2.0**p - 2.0)
    if n < 2:
        return head[..., : n + 1]
    near, far = _lags(n, p.device)[2:].split([min(n - 1, _SERIES_FROM - 2), max(0, n + 1 - _SERIES_FROM)])
    near = near**p * (torch.expm1(p * torch.log1p(1.0 / near)) + torch.expm1(p * torch.log1p(-1.0 / near)))
    far = 2.0 * far**p * _binomial_tail(p, 1.0 / far, even_only=True)
    return torch.cat([head, near, far], -1)


def trapezoid_start_weight(alpha: float | torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Weight of `f_0` in the product trapezoid rule at step `n >= 1`:
    `a_{0,n} = (n-1)^(a+1) - (n-1-a) n^a`, from lag `_SERIES_FROM` on as
    `n^p sum_{k>=2} C(p, k) (-1/n)^k` (`p = a + 1`; the two powers agree to `log10(n^2)` digits)."""
    p = _column(alpha, n.device) + 1.0
    n = n.to(torch.float64)
    near = (n - 1.0) ** p - (n - p) * n ** (p - 1.0)
    far = n**p * _binomial_tail(p, -1.0 / n.clamp(min=_SERIES_FROM), even_only=False)
    return torch.where(n >= _SERIES_FROM, far, near)


_SERIES_FROM = 4  # lags from which the trapezoid weights are summed as binomial series in 1/m
_SERIES_TERMS = 28  # (1/4)^26 < 3e-16 relative to the k = 2 term, times C(p, k) / C(p, 2) < 1e-2


def _binomial_tail(p: torch.Tensor, x: torch.Tensor, even_only: bool) -> torch.Tensor:
    r"""$\sum_{k \ge 2} \binom{p}{k} x^k$ (only even $k$ if `even_only`) for $|x| \le 1/4$, $1 < p \le 3$.

    $(1+x)^p + (1-x)^p - 2$ and $(1-x)^p - 1 + p x$, the trapezoid weights' second differences,
    lose up to $2 \log_{10}(1/x)$ digits as differences of powers; their series lose none: the
    $k = 2$ term outweighs the rest, and for $p \le 2$ (orders up to 1) the terms have one sign
    (the signs of $\binom{p}{k}$ and of $(-1)^k$ agree for $k \ge 2$)."""
    coef, power, total = torch.ones_like(p), torch.ones_like(x), torch.zeros_like(p * x)
    for k in range(1, _SERIES_TERMS + 1):
        coef = coef * (p - (k - 1)) / k
        power = power * x
        if k >= 2 and (k % 2 == 0 or not even_only):
            total = total + coef * power
    return total
