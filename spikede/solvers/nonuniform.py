r"""The L1 scheme on a non-uniform grid $t_0 < t_1 < \dots < t_N$ (e.g. graded, $t_j = T (j/N)^r$).

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
"""

from __future__ import annotations

from typing import Callable

import torch

from .engine import check_finite, step_threads
from .memory import WeightedRows
from .newton import newton_solve
from .weights import as_alpha_tensor, gamma

__all__ = ["l1_nonuniform"]


def l1_nonuniform(func: Callable, y0: torch.Tensor, t: torch.Tensor, alpha, *, implicit: bool, newton_tol: float,
                  newton_max_iters: int, save_every: int, event: Callable | None = None) -> torch.Tensor:
    """Solve `D^alpha y = func(t, y)`, `y(t[0]) = y0` by the L1 scheme on the increasing grid `t`
    (already checked); returns the states at steps `0, save_every, ...` and the last."""
    times = t.to(torch.float64)
    a = as_alpha_tensor(alpha, y0.device)
    scale = gamma(2.0 - a)
    n_steps = t.numel() - 1
    slopes = WeightedRows(n_steps, y0)
    grid = t.to(y0.dtype).unbind(0)
    saved, y = [y0], y0
    with step_threads(y0):
        for n in range(1, n_steps + 1):
            now = times[n]
            weights = (((now - times[:n]) ** (1.0 - a) - (now - times[1 : n + 1]) ** (1.0 - a)) / scale).to(y0.dtype)
            coef = (times[n] - times[n - 1]).to(y0.dtype) / weights[-1]  # tau_n / a_{n,n}
            base = y - coef * slopes.weighted_sum(weights[:-1]) if n > 1 else y
            if implicit:
                y_new = newton_solve(lambda v: func(grid[n], v), base, coef, y, tol=newton_tol,
                                     max_iters=newton_max_iters, step=n)
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
