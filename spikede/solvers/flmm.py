r"""Second-order fractional linear multistep methods (FLMM2) with starting weights.

Lubich's fractional linear multistep methods (SIAM J. Math. Anal. 17, 1986) solve the Volterra
form $y(t) = y_0 + I^\alpha f$ of $D^\alpha y = f(t, y)$ by

$$
y_n = y_0 + h^\alpha \sum_{j=0}^{n} \omega_{n-j} f_j + h^\alpha \sum_{k=0}^{s} w_{n,k} f_k ,
$$

where $\omega_j$ are the coefficients of $\omega(\xi) = \delta(\xi)^{-\alpha}$ for the generating
function $\delta$ of a second-order linear multistep method (Garrappa, Math. Comput. Simul. 110,
2015):

| method | $\omega(\xi)$ |
|---|---|
| `flmm-trap` (trapezoid) | $\bigl(\frac{1+\xi}{2(1-\xi)}\bigr)^{\alpha}$ |
| `flmm-ng` (Newton–Gregory) | $(1-\xi)^{-\alpha}\bigl(1 - \frac{\alpha}{2}(1-\xi)\bigr)$ |
| `flmm-bdf2` (backward differentiation) | $\bigl(\frac{3}{2} - 2\xi + \frac{\xi^2}{2}\bigr)^{-\alpha}$ |

The starting weights $w_{n,k}$ make the rule exact for $f = t^\gamma$, $\gamma \in
\{k + j\alpha : k, j \ge 0\} \cap [0, 1]$, the powers that every Caputo solution carries near
$t = 0$; with them the order is 2 whether or not the solution is smooth.  They solve a small
Vandermonde-type system $\sum_k w_{n,k} k^\gamma = \frac{\Gamma(\gamma+1)}{\Gamma(\gamma+1+\alpha)}
n^{\gamma+\alpha} - \sum_{j=0}^{n} \omega_{n-j} j^\gamma$ in float64.  Its size grows like
$1/\alpha$ and its condition number with it (7e5 at $\alpha = 0.2$, 3e9 at 0.15, 6e15 at 0.1),
so the methods refuse $\alpha$ whose system is worse than `MAX_CONDITION` (about $\alpha < 0.17$).

Two sets of exponents are offered (`STARTING_SETS`, fdeint's `options={"starting_exponents": ...}`).
`"up_to_one"` (the default, the set of Garrappa's codes) is the one above, 1 included.  Lubich's
theory asks only for $\gamma < 1$ (the set $\{j\alpha\} \cap [0, 1)$, `"below_one"`): the
rule's own $O(h^2)$ error on the solution's $t^1$ term then stays.  The terms $t^\gamma$,
$\gamma > 1$, that neither set covers add errors of order $h^{1+\gamma}$; beside the smaller
$h^2$ term of `"up_to_one"` they keep the observed order away from 2 on practical grids (on
$D^{0.3} y = -y$ the halvings from N = 64 to 2048 give 1.39 ... 2.45 for `flmm-trap`), while
with `"below_one"` the $h^2$ term dominates from the coarsest grid (1.87 ... 1.98), at errors
1 to 14 times larger (`python benchmarks/flmm_starting.py`).
"""

from __future__ import annotations

import math

import torch

__all__ = ["FLMM_GENERATORS", "MAX_CONDITION", "STARTING_SETS", "flmm_weights", "starting_exponents",
           "starting_weights"]

FLMM_GENERATORS = ("trap", "ng", "bdf2")
STARTING_SETS = ("up_to_one", "below_one")  # fdeint's options={"starting_exponents": ...}, default first
MAX_CONDITION = 1e8  # of the starting-weight system; exceeded below alpha ~ 0.165 (8 or more exponents)


def _binomial_series(power: float, n: int, ratio: float = 1.0) -> torch.Tensor:
    """Coefficients of $(1 - r\\xi)^{p}$ up to $\\xi^n$: $c_0 = 1$, $c_k = c_{k-1} r (k - 1 - p) / k$."""
    k = torch.arange(1, n + 1, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(ratio * (k - 1.0 - power) / k, 0)])


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The first `len(a)` coefficients of the product of two power series (FFT convolution)."""
    n = a.numel()
    size = 1 << (2 * n - 1).bit_length()
    return torch.fft.irfft(torch.fft.rfft(a, size) * torch.fft.rfft(b, size), size)[:n]


def flmm_weights(generator: str, alpha: float, n: int) -> torch.Tensor:
    """The convolution weights $\\omega_0 \\dots \\omega_n$ of `generator` (float64, by lag)."""
    a = float(alpha)
    if generator == "trap":  # 2^-a (1 + xi)^a (1 - xi)^-a
        return 2.0**-a * _product(_binomial_series(a, n, -1.0), _binomial_series(-a, n))
    if generator == "ng":  # (1 - xi)^-a - a/2 (1 - xi)^(1 - a)
        return _binomial_series(-a, n) - 0.5 * a * _binomial_series(1.0 - a, n)
    if generator == "bdf2":  # ((1 - xi)(3 - xi) / 2)^-a = (2/3)^a (1 - xi)^-a (1 - xi/3)^-a
        return (2.0 / 3.0) ** a * _product(_binomial_series(-a, n), _binomial_series(-a, n, 1.0 / 3.0))
    raise ValueError(f"unknown FLMM generator {generator!r}; valid generators are {', '.join(FLMM_GENERATORS)}")


def starting_exponents(alpha: float, starting: str = "up_to_one") -> list[float]:
    """The powers of $t$ the starting weights integrate exactly: $\\{k + j\\alpha\\} \\cap [0, 1]$
    ($k = 0, 1$) for `"up_to_one"`, $\\{j\\alpha\\} \\cap [0, 1)$ for `"below_one"` (`STARTING_SETS`)."""
    if starting not in STARTING_SETS:
        raise ValueError(f"starting_exponents must be one of {', '.join(map(repr, STARTING_SETS))}, got {starting!r}")
    top = 1.0 + 1e-12 if starting == "up_to_one" else 1.0 - 1e-12
    found: list[float] = []
    for value in sorted(k + j * alpha for k in (0, 1) for j in range(int(1.0 / alpha) + 1)):
        if value <= top and all(abs(value - other) > 1e-9 for other in found):
            found.append(value)
    return found


def starting_weights(omega: torch.Tensor, alpha: float, n: int, gammas: list[float]) -> torch.Tensor:
    """$w_{m,k}$ for $m = 0 \\dots n$ and $k = 0 \\dots s$: `[n + 1, s + 1]` float64 (row 0 is zero), exact
    for $f = t^\\gamma$, $\\gamma$ in `gammas` (from `starting_exponents`).

    Raises `FloatingPointError` if the system is too ill-conditioned to satisfy its own equations
    to 1e-8 (very small `alpha` means many exponents)."""
    s1 = len(gammas)
    m = torch.arange(n + 1, dtype=torch.float64)
    k = torch.arange(s1, dtype=torch.float64)
    exponents = torch.tensor(gammas, dtype=torch.float64)
    vander = torch.where(exponents[:, None] == 0, torch.ones(s1, s1, dtype=torch.float64),
                         k[None, :] ** exponents[:, None])  # [gamma, k], 0^0 = 1
    rhs = []
    for gamma in gammas:
        powers = torch.where(m == 0, torch.full_like(m, 1.0 if gamma == 0 else 0.0), m**gamma)
        exact = math.gamma(gamma + 1.0) / math.gamma(gamma + 1.0 + alpha) * m ** (gamma + alpha)
        rhs.append(exact - _causal_convolution(omega[: n + 1], powers))
    rhs = torch.stack(rhs, 1)  # [m, gamma]
    rhs[0] = 0.0
    condition = torch.linalg.cond(vander).item()
    if not condition <= MAX_CONDITION:
        raise ValueError(
            f"the starting weights of an FLMM for alpha={alpha:g} need {s1} exponents and are too ill-conditioned "
            f"(condition number {condition:.1e} > {MAX_CONDITION:.0e}: the first steps would not converge); "
            "the flmm methods take alpha >= 0.17; for smaller alpha use 'trap' (implicit=True) or 'l1'"
        )
    weights = torch.linalg.solve(vander, rhs.t()).t()
    residual = (weights @ vander.t() - rhs).abs().max().item()
    if not residual <= 1e-8 * max(1.0, rhs.abs().max().item()):
        raise FloatingPointError(f"the FLMM starting weights for alpha={alpha:g} missed their equations by {residual:.1e}")
    return weights


def _causal_convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """$c_m = \\sum_{j=0}^{m} a_{m-j} b_j$ for $m = 0 \\dots$ `len(a) - 1`."""
    if a.numel() <= 2048:  # exact sums where they are cheap
        n = a.numel()
        idx = torch.arange(n)
        lag = idx[:, None] - idx[None, :]
        return (torch.where(lag >= 0, a[lag.clamp(min=0)], torch.zeros(())) * b[None, :]).sum(1)
    return _product(a, b)
