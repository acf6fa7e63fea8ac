r"""L1 and product integration on a non-uniform grid $t_0 < t_1 < \dots < t_N$ (e.g. graded, $t_j = T (j/N)^r$).

With $\tau_k = t_k - t_{k-1}$ and the slopes $d_k = (y_k - y_{k-1}) / \tau_k$, the L1 scheme
replaces $y$ by its piecewise linear interpolant in the Caputo derivative:

$$
D^\alpha y(t_n) \approx \sum_{k=1}^{n} a_{n,k} d_k, \qquad
a_{n,k} = \frac{(t_n - t_{k-1})^{1-\alpha} - (t_n - t_k)^{1-\alpha}}{\Gamma(2 - \alpha)},
$$

and each step solves $a_{n,n} d_n = F - \sum_{k<n} a_{n,k} d_k$ for $y_n$ ($F = f(t_{n-1}, y_{n-1})$,
or $f(t_n, y_n)$ by Newton's method with `implicit=True`).  On the graded mesh
$r = (2 - \alpha)/\alpha$ it recovers the order $2 - \alpha$ in the maximum norm for solutions
that behave like $t^\alpha$ (Stynes, O'Riordan & Gracia, SIAM J. Numer. Anal. 55, 2017), where a
uniform grid gives about $\alpha$.  The weights change with $n$ (no convolution), so every step
is one product of its weights with the stored slopes (`WeightedRows`): O(n) work per step,
full memory only.

Product integration works on the Volterra form
$y(t_n) = y_0 + \frac{1}{\Gamma(\alpha)} \int_{t_0}^{t_n} (t_n - s)^{\alpha - 1} f(s)\, ds$ with $f$
replaced on each $[t_j, t_{j+1}]$ by a constant (`pred`: $f_j$, or $f_{j+1}$ with
`implicit=True`) or by its linear interpolant (`trap`).  With $A = t_n - t_j$ and
$B = t_n - t_{j+1}$ the exact integrals are

$$
\int_{t_j}^{t_{j+1}} (t_n - s)^{\alpha-1} ds = \frac{A^\alpha - B^\alpha}{\alpha}, \quad
\int_{t_j}^{t_{j+1}} (t_n - s)^{\alpha-1} \frac{s - t_j}{t_{j+1} - t_j} ds =
\frac{1}{t_{j+1} - t_j}\Bigl(A \frac{A^\alpha - B^\alpha}{\alpha} - \frac{A^{\alpha+1} - B^{\alpha+1}}{\alpha + 1}\Bigr),
$$

which give the product rectangle and trapezoid weights of every step (Diethelm, Ford & Freed
2002 on a uniform grid).  `trap` is the PECE method (rectangle predictor, one trapezoid
corrector) or, with `implicit=True`, the trapezoid equation solved by Newton's method.
"""

from __future__ import annotations

from typing import Callable

import torch

from .engine import check_finite, step_threads
from .memory import WeightedRows
from .newton import ConvergenceError, solve_at
from .weights import as_alpha_tensor, gamma

__all__ = ["l1_nonuniform", "product_nonuniform"]


def l1_nonuniform(func: Callable, y0: torch.Tensor, t: torch.Tensor, alpha, *, implicit: bool, newton_tol: float,
                  newton_max_iters: int, save_every: int, event: Callable | None = None, blockwise: bool = False,
                  block_jacobian: Callable | None = None) -> torch.Tensor:
    """Solve `D^alpha y = func(t, y)`, `y(t[0]) = y0` by the L1 scheme on the increasing grid `t`
    (already checked); returns the states at steps `0, save_every, ...` and the last.  An `event`
    runs after every step; one with a `step_failed` method (a hybrid solve's) supplies the state of
    an implicit step whose Newton iteration failed, as in `engine.march`.  `blockwise` and
    `block_jacobian`: Newton per system of the state's last axis, as fdeint's `jacobian='blockwise'`."""
    newton = dict(tol=newton_tol, max_iters=newton_max_iters, blockwise=blockwise, block_jacobian=block_jacobian)
    times = t.to(torch.float64)
    a = as_alpha_tensor(alpha, y0.device)
    scale = gamma(2.0 - a)
    n_steps = t.numel() - 1
    slopes = WeightedRows(n_steps, y0)
    grid = t.to(y0.dtype).unbind(0)
    saved, y = [y0], y0
    recover = getattr(event, "step_failed", None)
    with step_threads(y0):
        for n in range(1, n_steps + 1):
            weights = (_l1_weights(times, n, a) / scale).to(y0.dtype)
            coef = (times[n] - times[n - 1]).to(y0.dtype) / weights[-1]  # tau_n / a_{n,n}
            base = y - coef * slopes.weighted_sum(weights[:-1]) if n > 1 else y
            if implicit:
                try:
                    y_new = solve_at(func, grid[n], base, coef, y, step=n, **newton)
                except ConvergenceError as error:  # a hybrid solve's spiking variable ran away in this step
                    if recover is None:
                        raise
                    y_new = recover(grid[n], y, error)
            else:
                y_new = base + coef * func(grid[n - 1], y)
            if event is not None:
                y_new = event(grid[n], y_new)
            slopes.append((y_new - y) / (times[n] - times[n - 1]).to(y0.dtype))
            y = y_new
            if n % save_every == 0 or n == n_steps:
                saved.append(y)
    out = torch.stack(saved)
    check_finite(out, save_every, n_steps)
    return out


def _l1_weights(times: torch.Tensor, n: int, a: torch.Tensor) -> torch.Tensor:
    """`Gamma(2 - a) a_{n,k}`, `k = 1 .. n`: `A^(1-a) (1 - (1 - x)^(1-a))` with `A = t_n - t_{k-1}` and
    `x = tau_k / A`, through `expm1`/`log1p`: the difference of the two powers would cancel on the tiny
    first intervals of a strongly graded mesh (every digit at `tau_1 ~ 1e-17`).  The last weight
    (`x = 1`) is `tau_n^(1-a)`, also 1 at `a = 1`."""
    upper = times[n] - times[:n]
    width = times[1 : n + 1] - times[:n]
    rest = torch.log1p(-width[:-1] / upper[:-1])
    earlier = -upper[:-1] ** (1.0 - a) * torch.expm1((1.0 - a) * rest)
    return torch.cat([earlier, (width[-1:] ** (1.0 - a)).reshape(1)])


_SERIES_BELOW = 0.25  # x = width / (t_n - t_j) under which the rising integral is summed as a series
_SERIES_TERMS = 32  # 0.25^32 < 1e-19


def _interval_integrals(times: torch.Tensor, n: int, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Over the intervals `[t_j, t_{j+1}]`, `j < n`, of `(t_n - s)^(a-1) / Gamma(a)`: its integral
    (`[n]`) and its integral against the hat rising from `t_j` to `t_{j+1}` (`[n]`).

    With `A = t_n - t_j`, width `w` and `x = w / A`, both are `w A^(a-1)` times
    `q(x) = (1 - (1 - x)^a) / (a x)` and `r(x) = int_0^1 v (1 - x v)^(a-1) dv`, evaluated without
    cancellation for the tiny intervals of a strongly graded mesh: `q` through `expm1`/`log1p`,
    `r` by its binomial series for `x < 1/4`.  The last interval (`x = 1`) has `q = 1/a` and
    `r = 1 / (a (a + 1))`."""
    width = times[1 : n + 1] - times[:n]
    upper = times[n] - times[:n]
    base = width * upper ** (a - 1.0) / gamma(a)
    x = (width[:-1] / upper[:-1]).clamp(max=1.0 - 1e-16)  # intervals before the last: x < 1
    log_rest = torch.log1p(-x)
    q = -torch.expm1(a * log_rest) / (a * x)
    direct = (-torch.expm1(a * log_rest) / a + torch.expm1((a + 1.0) * log_rest) / (a + 1.0)) / x**2
    small = x.clamp(max=_SERIES_BELOW)
    term, series = torch.ones_like(small), 0.5 * torch.ones_like(small)
    for k in range(1, _SERIES_TERMS):
        term = term * (k - a) * small / k
        series = series + term / (k + 2)
    r = torch.where(x < _SERIES_BELOW, series, direct)
    one = torch.ones(1, dtype=times.dtype, device=times.device)
    q = torch.cat([q, one / a])
    r = torch.cat([r, one / (a * (a + 1.0))])
    return base * q, base * r


def product_nonuniform(func: Callable, y0: torch.Tensor, t: torch.Tensor, alpha, *, method: str, implicit: bool,
                       newton_tol: float, newton_max_iters: int, save_every: int,
                       dy0: torch.Tensor | None = None, blockwise: bool = False,
                       block_jacobian: Callable | None = None) -> torch.Tensor:
    """Solve `D^alpha y = func(t, y)`, `y(t[0]) = y0` (and `y'(t[0]) = dy0` for `1 < alpha <= 2`)
    by product integration (`method` `'pred'` or `'trap'`) on the increasing grid `t` (already
    checked); returns the states at steps `0, save_every, ...` and the last.  `blockwise`,
    `block_jacobian`: as for `l1_nonuniform`."""
    newton = dict(tol=newton_tol, max_iters=newton_max_iters, blockwise=blockwise, block_jacobian=block_jacobian)
    times = t.to(torch.float64)
    a = as_alpha_tensor(alpha, y0.device)
    n_steps = t.numel() - 1
    values = WeightedRows(n_steps + 1, y0)  # f_0, f_1, ...
    grid = t.to(y0.dtype).unbind(0)
    values.append(func(grid[0], y0))
    saved, y = [y0], y0
    with step_threads(y0):
        for n in range(1, n_steps + 1):
            plain, rising = (w.to(y0.dtype) for w in _interval_integrals(times, n, a))
            initial = y0 if dy0 is None else y0 + (grid[n] - grid[0]) * dy0  # the Taylor polynomial at t_n
            if method == "pred" and not implicit:  # f_j on [t_j, t_{j+1}]
                y = initial + values.weighted_sum(plain)
            elif method == "pred":  # f_{j+1} on [t_j, t_{j+1}]: y_n = base + plain_{n-1} f(t_n, y_n)
                base = initial + values.weighted_sum(torch.cat([plain.new_zeros(1), plain[:-1]]))
                y = solve_at(func, grid[n], base, plain[-1], y, step=n, **newton)
            else:  # trapezoid: f_j gets plain_j - rising_j from its right interval, rising_{j-1} from its left
                left = plain - rising
                weights = left + torch.cat([plain.new_zeros(1), rising[:-1]])
                base = initial + values.weighted_sum(weights)
                predicted = initial + values.weighted_sum(plain)
                if implicit:
                    y = solve_at(func, grid[n], base, rising[-1], predicted, step=n, **newton)
                else:
                    y = base + rising[-1] * func(grid[n], predicted)
            if n < n_steps:
                values.append(func(grid[n], y))
            if n % save_every == 0 or n == n_steps:
                saved.append(y)
    out = torch.stack(saved)
    check_finite(out, save_every, n_steps)
    return out
