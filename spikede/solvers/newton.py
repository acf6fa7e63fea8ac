r"""Implicit steps `y = b + c f(t, y)` solved by Newton's method.

The iterations run without a graph; one last Newton update
`y = y* - M^{-1} (y* - b - c f(t, y*))`, with `y*` and `M = I - c df/dy(y*)`
held constant, is taken with autograd on.  Its value is `y*` to the solver
tolerance and its derivatives with respect to `b`, `c` and the parameters of
`f` are exactly those of the implicit-function theorem, `dy = M^{-1} (db + dc f + c df)`.
The Jacobian is dense (`S x S` for a state of `S` elements), formed with
`torch.func.jacrev`.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["ConvergenceError", "newton_solve", "default_tolerance"]


class ConvergenceError(RuntimeError):
    """An implicit step did not converge; the message names the step and the iteration count.

    `system` is the equation that failed, `(f, b, c)` of `y = b + c f(y)` (`None` if unknown),
    so that a caller can solve a related one (e.g. a hybrid solve pinning the spiking variable).
    """

    def __init__(self, message: str, system: tuple | None = None):
        super().__init__(message)
        self.system = system


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative step tolerance `256 * eps` of `dtype` (5.7e-14 for float64, 3.1e-5 for float32)."""
    return 256.0 * torch.finfo(dtype).eps


def _jacobian(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    def flat(v: torch.Tensor) -> torch.Tensor:
        return f(v.reshape(y.shape)).reshape(-1)

    return torch.func.jacrev(flat)(y.reshape(-1))


def newton_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    c: torch.Tensor,
    y_guess: torch.Tensor,
    *,
    tol: float,
    max_iters: int,
    step: int,
) -> torch.Tensor:
    """Solve `y = b + c f(y)` starting from `y_guess`; differentiable in `b`, `c` and `f`.
    `c` is a scalar or broadcasts against `y` (per-component orders: one `c` per component)."""
    size = y_guess.numel()
    eye = torch.eye(size, dtype=y_guess.dtype, device=y_guess.device)
    b_, c_ = b.detach(), c.detach()
    rows = c_ if c_.dim() == 0 else c_.expand(y_guess.shape).reshape(-1, 1)  # c of each Jacobian row
    y = y_guess.detach()
    with torch.no_grad():
        for iteration in range(1, max_iters + 1):
            residual = (y - b_ - c_ * f(y)).reshape(-1)
            matrix = eye - rows * _jacobian(f, y)
            delta = torch.linalg.solve(matrix, residual).reshape(y.shape)
            y = y - delta
            scale = 1.0 + y.abs().max()
            if not torch.isfinite(delta).all():
                break
            if delta.abs().max() <= tol * scale:
                break
        else:
            iteration = max_iters + 1
    if iteration > max_iters or not torch.isfinite(y).all():
        raise ConvergenceError(
            f"implicit step {step}: Newton's method did not converge in {max_iters} iterations "
            f"(last update {delta.abs().max().item():.3e}, tolerance {tol:.1e}); "
            "reduce the step size or raise newton_max_iters",
            system=(f, b, c),
        )
    with torch.no_grad():
        matrix = eye - rows * _jacobian(f, y)
    residual = (y - b - c * f(y)).reshape(-1)
    return y - torch.linalg.solve(matrix, residual).reshape(y.shape)
