r"""Implicit steps `y = b + c f(t, y)` solved by Newton's method.

The iterations run without a graph; one last Newton update
`y = y* - M^{-1} (y* - b - c f(t, y*))`, with `y*` and `M = I - c df/dy(y*)`
held constant, is taken with autograd on.  Its value is `y*` to the solver
tolerance and its derivatives with respect to `b`, `c` and the parameters of
`f` are exactly those of the implicit-function theorem, `dy = M^{-1} (db + dc f + c df)`.
The Jacobian is dense (`S x S` for a state of `S` elements), formed with
`torch.func.jacrev`, or, for a right-hand side that couples only the state's last axis (a batch
of independent systems), `[..., C, C]` blocks formed by `C` reverse passes.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["ConvergenceError", "newton_solve", "solve_at", "default_tolerance"]


class ConvergenceError(RuntimeError):
    """An implicit step did not converge; the message names the step and the iteration count.

    `system` is the equation that failed, `(f, b, c, jacobian)` of `y = b + c f(y)` (`jacobian`
    the closed-form blocks of `df/dy` or `None`; `system` is `None` if unknown),
    `iterate` Newton's last iterate and `unconverged` a mask over the state's leading axes of the
    systems that did not converge (all of them for a dense Jacobian), so that a caller can solve a
    related equation (e.g. a hybrid solve pinning the spiking variable where a neuron ran away).
    """

    def __init__(self, message: str, system: tuple | None = None, iterate: torch.Tensor | None = None,
                 unconverged: torch.Tensor | None = None):
        super().__init__(message)
        self.system = system
        self.iterate = iterate
        self.unconverged = unconverged


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative step tolerance `256 * eps` of `dtype` (5.7e-14 for float64, 3.1e-5 for float32)."""
    return 256.0 * torch.finfo(dtype).eps


def _jacobian(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    def flat(v: torch.Tensor) -> torch.Tensor:
        return f(v.reshape(y.shape)).reshape(-1)

    return torch.func.jacrev(flat)(y.reshape(-1))


def _block_jacobian(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """`[..., C, C]`: the Jacobian blocks of an `f` that couples only the last axis of `y`.  Row `i`
    of every block at once is the gradient of `sum f_i` (one reverse pass per row)."""
    with torch.enable_grad():
        point = y.detach().requires_grad_(True)
        value = f(point)
        rows = [torch.autograd.grad(value[..., i].sum(), point, retain_graph=i + 1 < y.shape[-1])[0]
                for i in range(y.shape[-1])]
    return torch.stack(rows, -2)


class _Linearisation:
    """`I - c df/dy` and its solve: dense over the whole state, or blockwise over its last axis."""

    def __init__(self, f, c: torch.Tensor, shape: torch.Size, blockwise: bool, dtype, device, jacobian=None):
        self.f, self.blockwise, self.shape = f, blockwise, shape
        self.jacobian = jacobian if blockwise else None
        size = shape[-1] if blockwise else shape.numel()
        self.eye = torch.eye(size, dtype=dtype, device=device)
        if blockwise:
            self.rows = (c if c.dim() == 0 else c.expand(shape)).unsqueeze(-1)  # c of each block row
        else:
            self.rows = c if c.dim() == 0 else c.expand(shape).reshape(-1, 1)  # c of each Jacobian row

    def matrix(self, y: torch.Tensor) -> torch.Tensor:
        if self.jacobian is not None:
            return self.eye - self.rows * self.jacobian(y)
        if self.blockwise:
            return self.eye - self.rows * _block_jacobian(self.f, y)
        return self.eye - self.rows * _jacobian(self.f, y)

    def solve(self, matrix: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if self.blockwise:
            return torch.linalg.solve(matrix, residual.unsqueeze(-1)).squeeze(-1)
        return torch.linalg.solve(matrix, residual.reshape(-1)).reshape(self.shape)


def solve_at(func: Callable, t: torch.Tensor, b: torch.Tensor, c: torch.Tensor, y_guess: torch.Tensor, *,
             tol: float, max_iters: int, step: int, blockwise: bool = False,
             block_jacobian: Callable | None = None) -> torch.Tensor:
    """`newton_solve` for `y = b + c func(t, y)` at the time `t`, blockwise with the closed-form blocks
    `block_jacobian(t, y)` where given (a right-hand side `func(t, y)` of the solvers)."""
    closed_form = None
    if blockwise and block_jacobian is not None:
        def closed_form(y):
            return block_jacobian(t, y)
    return newton_solve(lambda v: func(t, v), b, c, y_guess, tol=tol, max_iters=max_iters, step=step,
                        blockwise=blockwise, jacobian=closed_form)


def newton_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    c: torch.Tensor,
    y_guess: torch.Tensor,
    *,
    tol: float,
    max_iters: int,
    step: int,
    blockwise: bool = False,
    jacobian: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve `y = b + c f(y)` starting from `y_guess`; differentiable in `b`, `c` and `f`.
    `c` is a scalar or broadcasts against `y` (per-component orders: one `c` per component).
    `blockwise=True`: `f` couples only the last axis of `y` (each leading index an independent
    system, e.g. a batch of neurons), so its Jacobian is `[..., C, C]` blocks instead of one dense
    `S x S` matrix; `jacobian(y)` gives those blocks in closed form (else `C` reverse passes do)."""
    b_, c_ = b.detach(), c.detach()
    linear = _Linearisation(f, c_, y_guess.shape, blockwise, y_guess.dtype, y_guess.device, jacobian)
    y = y_guess.detach()
    # per system (blockwise: each leading index; dense: the whole state): converged, or given up on
    # because its update stopped being finite (the others go on)
    systems = y.shape[:-1] if blockwise else ()
    failed = torch.zeros(systems, dtype=torch.bool, device=y.device)
    with torch.no_grad():
        for iteration in range(1, max_iters + 1):
            residual = y - b_ - c_ * f(y)
            delta = linear.solve(linear.matrix(y), residual)
            if blockwise:
                failed = failed | ~torch.isfinite(delta).all(-1)
                delta = torch.where(failed.unsqueeze(-1), torch.zeros_like(delta), delta)
                y = y - delta
                size, scale = delta.abs().amax(-1), 1.0 + y.abs().amax(-1)
            else:
                failed = failed | ~torch.isfinite(delta).all()
                y = y - delta
                size, scale = delta.abs().max(), 1.0 + y.abs().max()
            unconverged = failed | ~(size <= tol * scale)
            if not bool((unconverged & ~failed).any()):  # every system converged or failed
                break
    if bool(unconverged.any()) or not bool(torch.isfinite(y).all()):
        raise ConvergenceError(
            f"implicit step {step}: Newton's method did not converge in {max_iters} iterations "
            f"(last update {delta.abs().max().item():.3e}, tolerance {tol:.1e}); "
            "reduce the step size or raise newton_max_iters",
            system=(f, b, c, jacobian),
            iterate=y,
            unconverged=unconverged.expand(y.shape[:-1]) if not blockwise else unconverged,
        )
    with torch.no_grad():
        matrix = linear.matrix(y)
    return y - linear.solve(matrix, y - b - c * f(y))
